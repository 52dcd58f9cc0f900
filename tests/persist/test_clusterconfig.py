"""Editing kubeadm's stored ClusterConfiguration and KubeletConfiguration texts, on kubeadm's own
examples (shared/ref/kubeadm-config) and hand-written variants of their layout."""

from __future__ import annotations

import difflib
from pathlib import Path

import pytest

from cis_tui import safeyaml
from cis_tui.persist.clusterconfig import (
    ClusterConfigText,
    ConfigEditError,
    ExtraVolume,
    KubeletConfigText,
)

REF = Path(__file__).resolve().parents[3] / "shared/ref/kubeadm-config"
V1BETA3 = "v1beta3.upstream-example.configmap.yaml"
V1BETA4 = "v1beta4.upstream-example.configmap.yaml"
CP1 = "cp-1-cis.v1beta4.configmap.yaml"
KUBELET = "kubelet-config.upstream-example.configmap.yaml"

AUDIT_POLICY = ExtraVolume(
    "audit-policy",
    "/etc/kubernetes/audit-policy.yaml",
    "/etc/kubernetes/audit-policy.yaml",
    read_only=True,
    path_type="File",
)


def configmap_data(name: str, key: str) -> str:
    """A data key of one of the reference ConfigMaps (the test is skipped without them)."""
    path = REF / name
    if not path.is_file():
        pytest.skip(f"{path} is absent: the kubeadm-config reference data is not checked out")
    return safeyaml.load(path.read_text(encoding="utf-8"))["data"][key]


def cluster(name: str) -> str:
    return configmap_data(name, "ClusterConfiguration")


def changes(old: str, new: str) -> tuple[list[str], list[str]]:
    """Lines removed from `old` and lines added in `new`."""
    removed: list[str] = []
    added: list[str] = []
    a, b = old.splitlines(), new.splitlines()
    for tag, i1, i2, j1, j2 in difflib.SequenceMatcher(None, a, b, autojunk=False).get_opcodes():
        if tag != "equal":
            removed += a[i1:i2]
            added += b[j1:j2]
    return removed, added


# --- round trips --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "component", "arg", "value"),
    [
        (V1BETA3, "kube-scheduler", "address", "10.100.0.1"),
        (V1BETA4, "etcd", "listen-client-urls", "http://10.100.0.1:2379"),
        (CP1, "kube-apiserver", "profiling", "false"),
    ],
)
def test_no_edit_keeps_every_byte(name, component, arg, value):
    text = cluster(name)
    config = ClusterConfigText(text)
    assert config.text() == text
    config.set_arg(component, arg, value)  # already so: nothing to do
    for volume in config.extra_volumes("kube-apiserver"):
        config.add_volume("kube-apiserver", volume)
    assert config.text() == text


def test_kubelet_no_edit_keeps_every_byte():
    text = configmap_data(KUBELET, "kubelet")
    config = KubeletConfigText(text)
    config.set("rotateCertificates", True)  # already so
    config.set("authentication.anonymous.enabled", False)
    assert config.text() == text


@pytest.mark.parametrize("name", [V1BETA3, V1BETA4])
@pytest.mark.parametrize(
    "component", ["kube-apiserver", "kube-controller-manager", "kube-scheduler", "etcd"]
)
def test_set_then_remove_gives_back_the_same_bytes(name, component):
    text = cluster(name)
    config = ClusterConfigText(text)
    config.set_arg(component, "profiling", "false")
    assert config.text() != text
    assert config.remove_arg(component, "profiling") is True
    assert config.text() == text


def test_edit_elsewhere_leaves_the_rest_byte_identical():
    text = cluster(V1BETA4)
    config = ClusterConfigText(text)
    config.set_arg("kube-scheduler", "profiling", "false")
    config.add_volume("kube-apiserver", AUDIT_POLICY)
    removed, added = changes(text, config.text())
    assert removed == []
    assert added == [
        "  - hostPath: /etc/kubernetes/audit-policy.yaml",
        "    mountPath: /etc/kubernetes/audit-policy.yaml",
        "    name: audit-policy",
        "    pathType: File",
        "    readOnly: true",
        "  - name: profiling",
        '    value: "false"',
    ]


# --- v1beta3: extraArgs is a map ----------------------------------------------------------------


def test_v1beta3_second_entry_in_sorted_position_and_quoted():
    text = cluster(V1BETA3)
    config = ClusterConfigText(text)
    assert config.api_version == "kubeadm.k8s.io/v1beta3"
    config.set_arg("kube-apiserver", "profiling", "false")
    config.set_arg("kube-apiserver", "audit-log-maxage", "30")
    removed, added = changes(text, config.text())
    assert removed == []
    assert added == ['    audit-log-maxage: "30"', '    profiling: "false"']
    assert "  extraArgs:\n" + '    audit-log-maxage: "30"\n' in config.text()
    assert config.extra_args("kube-apiserver") == [
        ("audit-log-maxage", "30"),
        ("authorization-mode", "Node,RBAC"),
        ("profiling", "false"),
    ]
    data = safeyaml.load(config.text())
    assert data["apiServer"]["extraArgs"] == {
        "audit-log-maxage": "30",
        "authorization-mode": "Node,RBAC",
        "profiling": "false",
    }


def test_v1beta3_replace_changes_one_line():
    text = cluster(V1BETA3)
    config = ClusterConfigText(text)
    config.set_arg("kube-controller-manager", "node-cidr-mask-size", "24")
    removed, added = changes(text, config.text())
    assert removed == ['    node-cidr-mask-size: "20"']
    assert added == ['    node-cidr-mask-size: "24"']
    config.set_arg("kube-controller-manager", "--node-cidr-mask-size", "true")
    assert config.extra_args("kube-controller-manager") == [("node-cidr-mask-size", "true")]
    assert '    node-cidr-mask-size: "true"' in config.text().splitlines()


def test_v1beta3_remove_last_arg_drops_extra_args_key():
    text = cluster(V1BETA3)
    config = ClusterConfigText(text)
    assert config.remove_arg("kube-controller-manager", "node-cidr-mask-size") is True
    removed, added = changes(text, config.text())
    assert removed == ["  extraArgs:", '    node-cidr-mask-size: "20"']
    assert added == []
    assert config.extra_args("kube-controller-manager") == []
    assert config.extra_volumes("kube-controller-manager")  # kept
    assert config.remove_arg("kube-controller-manager", "node-cidr-mask-size") is False


def test_v1beta3_flow_map_is_rewritten_in_block_style():
    text = (
        "apiServer:\n"
        '  extraArgs: {authorization-mode: "Node,RBAC", profiling: "true"}\n'
        "apiVersion: kubeadm.k8s.io/v1beta3\n"
        "kind: ClusterConfiguration\n"
    )
    config = ClusterConfigText(text)
    config.set_arg("kube-apiserver", "profiling", "false")
    config.set_arg("kube-apiserver", "anonymous-auth", "false")
    assert config.text() == (
        "apiServer:\n"
        "  extraArgs:\n"
        '    anonymous-auth: "false"\n'
        "    authorization-mode: Node,RBAC\n"
        '    profiling: "false"\n'
        "apiVersion: kubeadm.k8s.io/v1beta3\n"
        "kind: ClusterConfiguration\n"
    )


# --- v1beta4: extraArgs is a list ---------------------------------------------------------------


def test_v1beta4_append_replace_and_keep_existing():
    text = cluster(V1BETA4)
    config = ClusterConfigText(text)
    config.set_arg("kube-apiserver", "profiling", "false")
    config.set_arg("kube-apiserver", "authorization-mode", "Node,RBAC,Webhook")
    config.set_arg("kube-controller-manager", "node-cidr-mask-size", "24")
    assert config.extra_args("kube-apiserver") == [
        ("authorization-mode", "Node,RBAC,Webhook"),
        ("profiling", "false"),
    ]
    removed, added = changes(text, config.text())
    assert removed == ["    value: Node,RBAC", '    value: "20"']
    assert added == [
        "    value: Node,RBAC,Webhook",
        "  - name: profiling",
        '    value: "false"',
        '    value: "24"',
    ]
    # extraEnvs and extraVolumes beside the args are untouched
    data = safeyaml.load(config.text())
    assert data["apiServer"]["extraEnvs"] == [{"name": "SOME_VAR", "value": "SOME_VALUE"}]
    assert config.extra_volumes("kube-apiserver") == [
        ExtraVolume("some-volume", "/etc/some-path", "/etc/some-pod-path", path_type="File")
    ]


DUPLICATES = """\
apiServer:
  extraArgs:
  - name: tls-sni-cert-key
    value: /a.crt,/a.key
  - name: profiling
    value: "true"
  - name: tls-sni-cert-key
    value: /b.crt,/b.key
apiVersion: kubeadm.k8s.io/v1beta4
kind: ClusterConfiguration
"""


def test_v1beta4_set_replaces_the_last_duplicate_and_remove_drops_all():
    config = ClusterConfigText(DUPLICATES)
    config.set_arg("kube-apiserver", "tls-sni-cert-key", "/c.crt,/c.key")
    assert config.extra_args("kube-apiserver") == [
        ("tls-sni-cert-key", "/a.crt,/a.key"),
        ("profiling", "true"),
        ("tls-sni-cert-key", "/c.crt,/c.key"),
    ]
    assert config.remove_arg("kube-apiserver", "tls-sni-cert-key") is True
    assert config.text() == (
        "apiServer:\n"
        "  extraArgs:\n"
        "  - name: profiling\n"
        '    value: "true"\n'
        "apiVersion: kubeadm.k8s.io/v1beta4\n"
        "kind: ClusterConfiguration\n"
    )
    assert config.remove_arg("kube-apiserver", "tls-sni-cert-key") is False
    assert config.remove_arg("kube-apiserver", "profiling") is True
    assert config.text() == (
        "apiServer: {}\napiVersion: kubeadm.k8s.io/v1beta4\nkind: ClusterConfiguration\n"
    )


def test_v1beta4_section_left_empty_becomes_braces():
    text = cluster(CP1)
    config = ClusterConfigText(text)
    assert config.remove_arg("kube-scheduler", "profiling") is True
    removed, added = changes(text, config.text())
    assert removed == ["scheduler:", "  extraArgs:", "  - name: profiling", '    value: "false"']
    assert added == ["scheduler: {}"]
    assert config.extra_args("kube-scheduler") == []


BASELINE = """\
apiServer: {}
apiVersion: kubeadm.k8s.io/v1beta4
certificatesDir: /etc/kubernetes/pki
controllerManager: {}
dns: {}
etcd:
  local:
    dataDir: /var/lib/etcd
imageRepository: registry.k8s.io
kind: ClusterConfiguration
networking:
  dnsDomain: cluster.local
"""


def test_missing_sections_are_created_in_sorted_position():
    config = ClusterConfigText(BASELINE)
    config.set_arg("kube-scheduler", "profiling", "false")  # no scheduler key at all
    config.set_arg("kube-apiserver", "profiling", "false")  # apiServer: {}
    config.set_arg("etcd", "cipher-suites", "TLS_AES_128_GCM_SHA256")
    assert config.text() == (
        "apiServer:\n"
        "  extraArgs:\n"
        "  - name: profiling\n"
        '    value: "false"\n'
        "apiVersion: kubeadm.k8s.io/v1beta4\n"
        "certificatesDir: /etc/kubernetes/pki\n"
        "controllerManager: {}\n"
        "dns: {}\n"
        "etcd:\n"
        "  local:\n"
        "    dataDir: /var/lib/etcd\n"
        "    extraArgs:\n"
        "    - name: cipher-suites\n"
        "      value: TLS_AES_128_GCM_SHA256\n"
        "imageRepository: registry.k8s.io\n"
        "kind: ClusterConfiguration\n"
        "networking:\n"
        "  dnsDomain: cluster.local\n"
        "scheduler:\n"
        "  extraArgs:\n"
        "  - name: profiling\n"
        '    value: "false"\n'
    )


@pytest.mark.parametrize(
    ("value", "written"),
    [
        ("20", '"20"'),
        ("false", '"false"'),
        ("True", '"True"'),
        ("yes", '"yes"'),  # a boolean to kubeadm's YAML 1.1 reader
        ("1.5", '"1.5"'),
        ("", '""'),
        ("Node,RBAC", "Node,RBAC"),
        ("*,bootstrapsigner,tokencleaner", '"*,bootstrapsigner,tokencleaner"'),
    ],
)
def test_values_that_are_not_plain_strings_are_quoted(value, written):
    config = ClusterConfigText(BASELINE)
    config.set_arg("kube-controller-manager", "x-flag", value)
    assert f"    value: {written}" in config.text().splitlines()
    assert safeyaml.load(config.text())["controllerManager"]["extraArgs"] == [
        {"name": "x-flag", "value": value}
    ]
    assert config.extra_args("kube-controller-manager") == [("x-flag", value)]


# --- extraVolumes -------------------------------------------------------------------------------


def test_add_volume_appends_and_keeps_existing():
    text = cluster(V1BETA3)
    config = ClusterConfigText(text)
    log = ExtraVolume(
        "audit-log",
        "/var/log/kubernetes/audit/",
        "/var/log/kubernetes/audit/",
        False,
        "DirectoryOrCreate",
    )
    config.add_volume("kube-apiserver", AUDIT_POLICY)
    config.add_volume("kube-apiserver", log)
    assert config.extra_volumes("kube-apiserver") == [
        ExtraVolume("some-volume", "/etc/some-path", "/etc/some-pod-path", path_type="File"),
        AUDIT_POLICY,
        log,
    ]
    removed, added = changes(text, config.text())
    assert removed == []
    assert added == [
        "  - hostPath: /etc/kubernetes/audit-policy.yaml",
        "    mountPath: /etc/kubernetes/audit-policy.yaml",
        "    name: audit-policy",
        "    pathType: File",
        "    readOnly: true",
        "  - hostPath: /var/log/kubernetes/audit/",
        "    mountPath: /var/log/kubernetes/audit/",
        "    name: audit-log",
        "    pathType: DirectoryOrCreate",  # readOnly: false is omitted, as kubeadm does
    ]
    before = config.text()
    config.add_volume("kube-apiserver", AUDIT_POLICY)  # the same again: nothing to do
    assert config.text() == before


def test_add_volume_with_the_same_name_replaces_it():
    text = cluster(V1BETA4)
    config = ClusterConfigText(text)
    moved = ExtraVolume("some-volume", "/etc/other", "/etc/some-pod-path", True, "Directory")
    config.add_volume("kube-scheduler", moved)
    assert config.extra_volumes("kube-scheduler") == [moved]
    assert config.extra_volumes("kube-controller-manager")[0].host_path == "/etc/some-path"
    removed, added = changes(text, config.text())
    assert removed == ["  - hostPath: /etc/some-path", "    pathType: File"]
    assert added == ["  - hostPath: /etc/other", "    pathType: Directory", "    readOnly: true"]


def test_add_volume_creates_extra_volumes_in_sorted_position():
    config = ClusterConfigText(cluster(CP1))
    config.add_volume("kube-controller-manager", AUDIT_POLICY)
    text = config.text()
    assert (
        "controllerManager:\n  extraArgs:\n  - name: profiling\n"
        '    value: "false"\n  - name: terminated-pod-gc-threshold\n    value: "10"\n'
        "  extraVolumes:\n  - hostPath: /etc/kubernetes/audit-policy.yaml\n"
    ) in text


def test_etcd_has_no_extra_volumes():
    config = ClusterConfigText(cluster(V1BETA4))
    assert config.extra_volumes("etcd") == []
    with pytest.raises(
        ConfigEditError, match=r"^ClusterConfiguration: etcd.local has no extraVolumes"
    ):
        config.add_volume("etcd", AUDIT_POLICY)


@pytest.mark.parametrize(
    ("volume", "problem"),
    [
        (ExtraVolume("Bad_Name", "/a", "/a"), "invalid volume name"),
        (ExtraVolume("ok", "relative", "/a"), "hostPath must be absolute"),
        (ExtraVolume("ok", "/a", "/a", path_type="Fil"), "invalid pathType"),
    ],
)
def test_invalid_volume_is_refused(volume, problem):
    config = ClusterConfigText(BASELINE)
    with pytest.raises(ConfigEditError, match=problem):
        config.add_volume("kube-apiserver", volume)
    assert config.text() == BASELINE


# --- refusals -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("apiServer: [\n", "ClusterConfiguration: malformed YAML"),
        ("- a\n- b\n", "ClusterConfiguration: the document is not a YAML block mapping"),
        (
            "apiVersion: kubeadm.k8s.io/v1beta4\nkind: InitConfiguration\n",
            "ClusterConfiguration: the document is kind InitConfiguration, not ClusterConfiguration",
        ),
        (
            "apiVersion: kubeadm.k8s.io/v1beta2\nkind: ClusterConfiguration\n",
            "ClusterConfiguration: apiVersion kubeadm.k8s.io/v1beta2 is not supported",
        ),
        (
            'apiServer:\n  extraArgs:\n    profiling: "false"\n'
            "apiVersion: kubeadm.k8s.io/v1beta4\nkind: ClusterConfiguration\n",
            "ClusterConfiguration: apiServer.extraArgs must be a list of name/value entries in "
            "kubeadm.k8s.io/v1beta4, not a map",
        ),
        (
            "apiVersion: kubeadm.k8s.io/v1beta3\nkind: ClusterConfiguration\n"
            'scheduler:\n  extraArgs:\n  - name: profiling\n    value: "false"\n',
            "ClusterConfiguration: scheduler.extraArgs must be a map of flag: value in "
            "kubeadm.k8s.io/v1beta3, not a list",
        ),
        (
            "apiVersion: kubeadm.k8s.io/v1beta3\nkind: ClusterConfiguration\n"
            "scheduler:\n  extraArgs:\n    profiling: false\n",
            "ClusterConfiguration: scheduler.extraArgs.profiling is not a string",
        ),
        (
            "apiVersion: kubeadm.k8s.io/v1beta4\nkind: ClusterConfiguration\n"
            "etcd:\n  local:\n    extraArgs:\n    - value: x\n",
            "ClusterConfiguration: etcd.local.extraArgs item 1 is not a name/value pair",
        ),
    ],
)
def test_unusable_configuration_is_refused_in_one_line(text, message):
    with pytest.raises(ConfigEditError) as caught:
        ClusterConfigText(text)
    assert str(caught.value).startswith(message)
    assert "\n" not in str(caught.value)


def test_external_etcd_takes_no_local_args():
    text = (
        "apiVersion: kubeadm.k8s.io/v1beta4\netcd:\n  external:\n    endpoints:\n"
        "    - https://10.0.0.5:2379\nkind: ClusterConfiguration\n"
    )
    config = ClusterConfigText(text)
    with pytest.raises(ConfigEditError, match="etcd is external"):
        config.set_arg("etcd", "cipher-suites", "X")
    assert config.text() == text


def test_unknown_component_and_bad_flag_name():
    config = ClusterConfigText(BASELINE)
    with pytest.raises(ConfigEditError, match="no section for component 'kubelet'"):
        config.set_arg("kubelet", "profiling", "false")
    with pytest.raises(ConfigEditError, match="invalid flag name"):
        config.set_arg("kube-apiserver", "profiling=false", "false")
    assert config.text() == BASELINE


def test_anchors_are_refused_not_mangled():
    text = (
        'apiServer:\n  extraArgs:\n  - &a\n    name: profiling\n    value: "true"\n'
        "apiVersion: kubeadm.k8s.io/v1beta4\nkind: ClusterConfiguration\n"
    )
    config = ClusterConfigText(text)
    with pytest.raises(ConfigEditError, match=r"^ClusterConfiguration: "):
        config.set_arg("kube-apiserver", "anonymous-auth", "false")
    assert config.text() == text


# --- KubeletConfiguration -----------------------------------------------------------------------


def test_kubelet_nested_set_creates_maps_in_sorted_position():
    text = configmap_data(KUBELET, "kubelet")
    config = KubeletConfigText(text)
    assert config.get("authentication.anonymous.enabled") is False
    assert config.get("authentication.webhook.cacheTTL") is None
    config.set("authentication.webhook.cacheTTL", "2m0s")
    config.set("featureGates.RotateKubeletServerCertificate", True)
    config.set("readOnlyPort", 0)
    config.set("tlsCipherSuites", ["TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256"])
    config.set("rotateCertificates", False)
    removed, added = changes(text, config.text())
    assert removed == ["rotateCertificates: true"]
    assert added == [
        "    cacheTTL: 2m0s",
        "featureGates:",
        "  RotateKubeletServerCertificate: true",
        "readOnlyPort: 0",
        "rotateCertificates: false",
        "tlsCipherSuites:",
        "- TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256",
    ]
    lines = config.text().splitlines()
    assert lines.index("featureGates:") == lines.index("clusterDomain: cluster.local") + 1
    assert lines.index("    cacheTTL: 2m0s") == lines.index("  webhook:") + 1
    assert config.get("featureGates") == {"RotateKubeletServerCertificate": True}
    assert config.get("tlsCipherSuites") == ["TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256"]


def test_kubelet_refuses_other_kinds():
    with pytest.raises(ConfigEditError, match=r"^KubeletConfiguration: .*ClusterConfiguration"):
        KubeletConfigText(BASELINE)
    with pytest.raises(ConfigEditError, match=r"^KubeletConfiguration: malformed YAML"):
        KubeletConfigText("kind: [\n")
