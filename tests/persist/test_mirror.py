"""Mirroring manifest and kubelet config fixes into kubeadm's stored configuration: the old texts
are what kubeadm v1.35 wrote for the reference node cp-1 (shared/ref/kubeadm-manifests), the new
ones are edited with cis-tui's own manifest editor, and the result for the CIS fixes is checked
against the constructed cp-1 ConfigMap (shared/ref/kubeadm-config)."""

from __future__ import annotations

import copy
from pathlib import Path

import pytest

from cis_tui import safeyaml
from cis_tui.persist.clusterconfig import ClusterConfigText, ConfigEditError, ExtraVolume
from cis_tui.persist.mirror import (
    ManifestMirror,
    apply_kubelet,
    apply_mirrors,
    mirror_kubelet,
    mirror_manifest,
)
from cis_tui.remediate.edits import KubeletConfig, PodManifest

SHARED = Path(__file__).resolve().parents[3] / "shared/ref"
REF = SHARED / "kubeadm-config"
MANIFESTS = SHARED / "kubeadm-manifests"
COMPONENTS = ("kube-apiserver", "kube-controller-manager", "kube-scheduler", "etcd")

#: What `kubeadm init` stores for cp-1 before any fix: cp-1-cis without extraArgs/extraVolumes.
CP1_BASELINE = """\
apiServer: {}
apiVersion: kubeadm.k8s.io/v1beta4
caCertificateValidityPeriod: 87600h0m0s
certificateValidityPeriod: 8760h0m0s
certificatesDir: /etc/kubernetes/pki
clusterName: kubernetes
controllerManager: {}
dns: {}
encryptionAlgorithm: RSA-2048
etcd:
  local:
    dataDir: /var/lib/etcd
imageRepository: registry.k8s.io
kind: ClusterConfiguration
kubernetesVersion: v1.35.0
networking:
  dnsDomain: cluster.local
  serviceSubnet: 10.96.0.0/12
proxy: {}
scheduler: {}
"""

#: The CIS fixes cp-1-cis.v1beta4.configmap.yaml holds, as flags per component.
CIS_FLAGS = {
    "kube-apiserver": [
        ("--audit-log-maxage", "30"),
        ("--audit-log-maxbackup", "10"),
        ("--audit-log-maxsize", "100"),
        ("--audit-log-path", "/var/log/kubernetes/audit/audit.log"),
        ("--audit-policy-file", "/etc/kubernetes/audit-policy.yaml"),
        ("--profiling", "false"),
    ],
    "kube-controller-manager": [("--profiling", "false"), ("--terminated-pod-gc-threshold", "10")],
    "kube-scheduler": [("--profiling", "false")],
    "etcd": [
        (
            "--cipher-suites",
            "TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256,TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256",
        )
    ],
}


def read(path: Path) -> str:
    if not path.is_file():
        pytest.skip(f"{path} is absent: the shared kubeadm reference data is not checked out")
    return path.read_text(encoding="utf-8")


def manifest(component: str) -> str:
    return read(MANIFESTS / f"{component}.yaml")


def cluster(name: str) -> str:
    return safeyaml.load(read(REF / name))["data"]["ClusterConfiguration"]


def edited(component: str, *flags: tuple[str, str]) -> PodManifest:
    pod = PodManifest(manifest(component), component)
    for flag, value in flags:
        pod.set_flag(flag, value)
    return pod


def add_audit_volumes(pod: PodManifest) -> None:
    pod.add_host_path_volume(
        "audit-policy",
        "/etc/kubernetes/audit-policy.yaml",
        "/etc/kubernetes/audit-policy.yaml",
        "File",
        True,
    )
    pod.add_host_path_volume(
        "audit-log",
        "/var/log/kubernetes/audit/",
        "/var/log/kubernetes/audit/",
        "DirectoryOrCreate",
        False,
    )


AUDIT_POLICY = ExtraVolume(
    "audit-policy",
    "/etc/kubernetes/audit-policy.yaml",
    "/etc/kubernetes/audit-policy.yaml",
    read_only=True,
    path_type="File",
)
AUDIT_LOG = ExtraVolume(
    "audit-log",
    "/var/log/kubernetes/audit/",
    "/var/log/kubernetes/audit/",
    read_only=False,
    path_type="DirectoryOrCreate",
)


# --- manifests ----------------------------------------------------------------------------------


def test_an_added_flag_becomes_an_extra_arg():
    old = manifest("kube-scheduler")
    mirror = mirror_manifest(
        "kube-scheduler", old, edited("kube-scheduler", ("--profiling", "false")).text
    )
    assert mirror == ManifestMirror("kube-scheduler", (("profiling", "false"),), (), (), ())


def test_a_changed_default_goes_to_extra_args_with_its_literal_value():
    pod = edited(
        "kube-apiserver",
        ("--enable-admission-plugins", "NodeRestriction,AlwaysPullImages"),
        ("--enable-bootstrap-token-auth", "False"),
    )
    mirror = mirror_manifest("kube-apiserver", manifest("kube-apiserver"), pod.text)
    assert mirror.set_args == (
        ("enable-admission-plugins", "NodeRestriction,AlwaysPullImages"),
        ("enable-bootstrap-token-auth", "False"),
    )
    assert mirror.unpersistable == ()


def test_removing_a_flag_kubeadm_always_writes_cannot_be_persisted():
    pod = PodManifest(manifest("kube-apiserver"), "kube-apiserver")
    pod.remove_flag("--enable-bootstrap-token-auth")
    mirror = mirror_manifest("kube-apiserver", manifest("kube-apiserver"), pod.text)
    assert mirror.set_args == () and mirror.remove_args == ()
    assert mirror.unpersistable == (
        "kubeadm always writes --enable-bootstrap-token-auth; removing it needs a patches file",
    )


def test_removing_a_flag_kubeadm_does_not_write_removes_the_extra_arg():
    old = edited(
        "kube-apiserver", ("--profiling", "true"), ("--token-auth-file", "/etc/t.csv")
    ).text
    pod = PodManifest(old, "kube-apiserver")
    pod.remove_flag("--token-auth-file")
    pod.set_flag("--profiling", "false")
    mirror = mirror_manifest("kube-apiserver", old, pod.text)
    assert mirror.set_args == (("profiling", "false"),)
    assert mirror.remove_args == ("token-auth-file",)
    assert mirror.unpersistable == ()
    config = ClusterConfigText(cluster("cp-1-cis.v1beta4.configmap.yaml"))
    config.set_arg("kube-apiserver", "token-auth-file", "/etc/t.csv")
    config.set_arg("kube-apiserver", "profiling", "true")
    after = ClusterConfigText(apply_mirrors(config.text(), [mirror]))
    args = dict(after.extra_args("kube-apiserver"))
    assert "token-auth-file" not in args
    assert args["profiling"] == "false"


def test_authorization_config_replaces_the_default_authorization_mode():
    pod = edited("kube-apiserver", ("--authorization-config", "/etc/kubernetes/authz.yaml"))
    pod.remove_flag("--authorization-mode")
    mirror = mirror_manifest("kube-apiserver", manifest("kube-apiserver"), pod.text)
    assert mirror.set_args == (("authorization-config", "/etc/kubernetes/authz.yaml"),)
    assert mirror.remove_args == ("authorization-mode",)  # kubeadm omits its own then
    assert mirror.unpersistable == ()


def test_added_volumes_become_extra_volumes():
    pod = edited("kube-apiserver", ("--audit-policy-file", "/etc/kubernetes/audit-policy.yaml"))
    add_audit_volumes(pod)
    mirror = mirror_manifest("kube-apiserver", manifest("kube-apiserver"), pod.text)
    assert set(mirror.volumes) == {AUDIT_POLICY, AUDIT_LOG}
    assert mirror.unpersistable == ()


def test_etcd_volumes_and_node_specific_flags_are_unpersistable():
    pod = edited("etcd", ("--name", "cp-2"), ("--auto-tls", "false"))
    pod.add_host_path_volume(
        "etcd-logs", "/var/log/etcd", "/var/log/etcd", "DirectoryOrCreate", False
    )
    mirror = mirror_manifest("etcd", manifest("etcd"), pod.text)
    assert mirror.set_args == (("auto-tls", "false"),)
    assert mirror.volumes == ()
    assert len(mirror.unpersistable) == 2
    assert mirror.unpersistable[0].startswith("--name is specific to this node")
    assert "needs a patches file" in mirror.unpersistable[0]
    assert mirror.unpersistable[1] == (
        "kubeadm has no extraVolumes for etcd; volume etcd-logs needs a patches file"
    )


def test_a_change_outside_command_and_volumes_is_named():
    old = manifest("kube-scheduler")
    new = old.replace("cpu: 100m", "cpu: 200m")
    assert new != old
    mirror = mirror_manifest("kube-scheduler", old, new)
    assert mirror.set_args == () and mirror.volumes == ()
    assert mirror.unpersistable == (
        "the change to spec.containers[0].resources.requests.cpu is outside the command and "
        "volumes; it needs a patches file",
    )


def test_no_change_mirrors_nothing():
    for component in COMPONENTS:
        text = manifest(component)
        assert mirror_manifest(component, text, text) == ManifestMirror(component, (), (), (), ())


# --- the cp-1 reference: baseline manifests + CIS fixes -> cp-1-cis -----------------------------


def cis_mirrors() -> list[ManifestMirror]:
    mirrors = []
    for component in COMPONENTS:
        pod = edited(component, *CIS_FLAGS[component])
        if component == "kube-apiserver":
            add_audit_volumes(pod)
        mirrors.append(mirror_manifest(component, manifest(component), pod.text))
    return mirrors


def test_cp1_cis_fixes_mirror_into_the_reference_configmap():
    expected_text = cluster("cp-1-cis.v1beta4.configmap.yaml")
    mirrors = cis_mirrors()
    assert all(m.unpersistable == () and m.remove_args == () for m in mirrors)
    result = apply_mirrors(CP1_BASELINE, mirrors)
    got, want = ClusterConfigText(result), ClusterConfigText(expected_text)
    for component in COMPONENTS:
        assert set(got.extra_args(component)) == set(want.extra_args(component)), component
        assert set(got.extra_volumes(component)) == set(want.extra_volumes(component)), component
    # The rest of the document is the baseline's, and every line is laid out as kubeadm writes
    # it: the same lines as the reference, only the two extraVolumes in another order.
    assert sorted(result.splitlines()) == sorted(expected_text.splitlines())
    assert (
        safeyaml.load(result)["apiServer"]["extraArgs"]
        == safeyaml.load(expected_text)["apiServer"]["extraArgs"]
    )
    # Mirroring again finds everything in place.
    assert apply_mirrors(result, mirrors) == result
    assert apply_mirrors(expected_text, mirrors) == expected_text


def test_cp1_cis_fixes_mirror_into_a_v1beta3_map():
    baseline = CP1_BASELINE.replace("v1beta4", "v1beta3")
    result = apply_mirrors(baseline, cis_mirrors())
    data = safeyaml.load(result)
    assert data["apiVersion"] == "kubeadm.k8s.io/v1beta3"
    assert data["controllerManager"]["extraArgs"] == {
        "profiling": "false",
        "terminated-pod-gc-threshold": "10",
    }
    assert '    terminated-pod-gc-threshold: "10"' in result.splitlines()
    assert list(data["apiServer"]["extraArgs"]) == sorted(data["apiServer"]["extraArgs"])
    assert data["etcd"]["local"]["extraArgs"] == {"cipher-suites": CIS_FLAGS["etcd"][0][1]}


def test_mirrors_merge_with_existing_extra_args_and_volumes():
    text = cluster("v1beta4.upstream-example.configmap.yaml")
    result = apply_mirrors(text, cis_mirrors())
    config = ClusterConfigText(result)
    assert config.extra_args("kube-apiserver")[0] == ("authorization-mode", "Node,RBAC")
    assert ("profiling", "false") in config.extra_args("kube-apiserver")
    assert config.extra_volumes("kube-apiserver")[0].name == "some-volume"
    assert {v.name for v in config.extra_volumes("kube-apiserver")} == {
        "some-volume",
        "audit-policy",
        "audit-log",
    }
    assert config.extra_args("etcd")[0] == ("listen-client-urls", "http://10.100.0.1:2379")
    assert config.extra_args("kube-scheduler")[0] == ("address", "10.100.0.1")
    data = safeyaml.load(result)
    assert data["apiServer"]["extraEnvs"] == [{"name": "SOME_VAR", "value": "SOME_VALUE"}]


def test_apply_mirrors_propagates_config_errors():
    mirror = ManifestMirror("etcd", (), (), (AUDIT_LOG,), ())
    with pytest.raises(ConfigEditError, match=r"etcd\.local has no extraVolumes"):
        apply_mirrors(CP1_BASELINE, [mirror])
    old = CP1_BASELINE.replace("v1beta4", "v1beta2")
    with pytest.raises(ConfigEditError, match="v1beta2 is not supported"):
        apply_mirrors(
            old, [ManifestMirror("kube-scheduler", (("profiling", "false"),), (), (), ())]
        )


# --- kubelet ------------------------------------------------------------------------------------


def kubelet_configmap() -> str:
    return safeyaml.load(read(REF / "kubelet-config.upstream-example.configmap.yaml"))["data"][
        "kubelet"
    ]


def test_kubelet_fix_fields_mirror_into_the_configmap():
    old = read(MANIFESTS / "kubelet-config.yaml")
    editor = KubeletConfig(old)
    editor.set("authentication.anonymous.enabled", False)  # already false: not a change
    editor.set("readOnlyPort", 0)
    editor.set("streamingConnectionIdleTimeout", "5m0s")  # "0s" before
    editor.set("featureGates.RotateKubeletServerCertificate", True)
    editor.set("tlsCipherSuites", ["TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256"])
    editor.set("evictionHard", {"memory.available": "100Mi"})
    fields = mirror_kubelet(old, editor.text)
    assert fields == {
        "evictionHard": {"memory.available": "100Mi"},  # dotted keys: the map is one field
        "featureGates.RotateKubeletServerCertificate": True,
        "readOnlyPort": 0,
        "streamingConnectionIdleTimeout": "5m0s",
        "tlsCipherSuites": ["TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256"],
    }
    before = kubelet_configmap()
    after = apply_kubelet(before, fields)
    data, original = safeyaml.load(after), safeyaml.load(before)
    expected = copy.deepcopy(original)
    expected.update(
        evictionHard={"memory.available": "100Mi"},
        featureGates={"RotateKubeletServerCertificate": True},
        readOnlyPort=0,
        streamingConnectionIdleTimeout="5m0s",
        tlsCipherSuites=["TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256"],
    )
    assert data == expected
    kept = [line for line in after.splitlines() if line in before.splitlines()]
    assert kept == before.splitlines()  # only insertions
    assert list(data) == sorted(data)
    assert apply_kubelet(after, fields) == after


def test_kubelet_changed_nested_value():
    old = read(MANIFESTS / "kubelet-config.yaml")
    editor = KubeletConfig(old)
    editor.set("authentication.webhook.enabled", True)  # unchanged
    editor.set("authorization.mode", "AlwaysAllow")
    fields = mirror_kubelet(old, editor.text)
    assert fields == {"authorization.mode": "AlwaysAllow"}
    after = apply_kubelet(kubelet_configmap(), fields)
    assert "  mode: AlwaysAllow" in after.splitlines()
    assert "  mode: Webhook" not in after.splitlines()


def test_mirror_kubelet_refuses_other_documents():
    with pytest.raises(ConfigEditError, match=r"^KubeletConfiguration: "):
        mirror_kubelet(CP1_BASELINE, CP1_BASELINE)
