"""The kubeadm regeneration emulator against kubeadm's own output, the golden files and its rules."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import pytest

from cis_tui import safeyaml
from cis_tui.errors import UserError
from cis_tui.persist.regen import (
    CA_CERT_DIRS,
    ERAS,
    NodeInputs,
    RegenError,
    arguments_to_command,
    era_for,
    etcd_image_tag,
    render_kubelet_config,
    render_pods,
    to_kubeadm_yaml,
)

REF = Path(__file__).resolve().parents[3] / "shared/ref"
CONFIG = REF / "kubeadm-config"
MANIFESTS = REF / "kubeadm-manifests"
pytestmark = pytest.mark.skipif(
    not CONFIG.is_dir(), reason=f"kubeadm reference data not found at {REF}"
)

# cp-1 is a Debian-family host: these three CA directories exist, /etc/pki does not.
CP1 = NodeInputs(
    node_name="cp-1",
    advertise_address="10.0.0.10",
    existing_host_paths=frozenset(
        {"/etc/ca-certificates", "/usr/share/ca-certificates", "/usr/local/share/ca-certificates"}
    ),
)
COMPONENTS = ("kube-apiserver", "kube-controller-manager", "kube-scheduler", "etcd")
# Fields of kubeadm's v1.35 output the emulator cannot reproduce for a default node: none.
KNOWN_DIFFERENCES: dict[str, set[str]] = {name: set() for name in (*COMPONENTS, "kubelet")}


def cis_configmap() -> str:
    return (CONFIG / "cp-1-cis.v1beta4.configmap.yaml").read_text()


def cluster_config(**changes: Any) -> dict[str, Any]:
    """cp-1's ClusterConfiguration without the CIS extraArgs/extraVolumes (a default node),
    with top-level sections replaced by `changes`."""
    doc = safeyaml.load(safeyaml.load(cis_configmap())["data"]["ClusterConfiguration"])
    for section in ("apiServer", "controllerManager", "scheduler"):
        doc[section] = {}
    del doc["etcd"]["local"]["extraArgs"]
    doc.update(changes)
    return doc


def render(config: dict[str, Any] | str, era: str = "sorted-all", **kw: Any) -> dict[str, Any]:
    text = config if isinstance(config, str) else to_kubeadm_yaml(config)
    inputs = kw.pop("inputs", CP1)
    return {
        name: safeyaml.load(text) for name, text in render_pods(text, inputs, era, **kw).items()
    }


def command(pod: dict[str, Any]) -> list[str]:
    return pod["spec"]["containers"][0]["command"]


def container(pod: dict[str, Any]) -> dict[str, Any]:
    return pod["spec"]["containers"][0]


def flatten(value: Any, prefix: str = "") -> dict[str, Any]:
    """path -> leaf value, so a mismatch names the field that differs."""
    if isinstance(value, dict) and value:
        out: dict[str, Any] = {}
        for key, item in value.items():
            out.update(flatten(item, f"{prefix}.{key}" if prefix else str(key)))
        return out
    if isinstance(value, list) and value:
        out = {}
        for i, item in enumerate(value):
            out.update(flatten(item, f"{prefix}[{i}]"))
        return out
    return {prefix: value}


def compare_fields(ours: Any, kubeadms: Any, known: set[str]) -> None:
    mine, theirs = flatten(ours), flatten(kubeadms)
    differing = {
        path for path in mine.keys() | theirs.keys() if mine.get(path, ...) != theirs.get(path, ...)
    }
    assert differing <= known, {p: (mine.get(p), theirs.get(p)) for p in differing - known}


# --- eras ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("version", "era"),
    [
        ("v1.22.0", "map"),
        ("v1.30.14", "map"),
        ("v1.31.0", "sorted-all"),
        ("v1.31.14", "sorted-all"),
        ("v1.32.11", "sorted-all"),
        ("v1.32.12", "base-sorted"),
        ("v1.33.7", "sorted-all"),
        ("v1.33.8", "base-sorted"),
        ("v1.34.3", "sorted-all"),
        ("v1.34.4", "base-sorted"),
        ("v1.35.0", "sorted-all"),
        ("1.35.0", "sorted-all"),
        ("v1.35.1", "base-sorted"),
        ("v1.36.0-alpha.1", "base-sorted"),
        ("v1.37.2", "base-sorted"),
    ],
)
def test_era_for_a_kubeadm_version(version: str, era: str) -> None:
    assert era_for(version) == era


@pytest.mark.parametrize("version", ["", "latest", "v2.0.0", "v1.35"])
def test_era_for_refuses_what_is_not_a_version(version: str) -> None:
    with pytest.raises(RegenError, match=r"not v1\.MINOR\.PATCH"):
        era_for(version)


def test_the_three_orderings_of_the_same_arguments() -> None:
    base = [("b", "2"), ("a", "1"), ("c", "3")]
    overrides = [("z", "9"), ("c", "x"), ("c", "y")]
    assert arguments_to_command(base, overrides, "map") == ["--a=1", "--b=2", "--c=y", "--z=9"]
    assert arguments_to_command(base, overrides, "sorted-all") == [
        "--a=1",
        "--b=2",
        "--c=x",
        "--c=y",
        "--z=9",
    ]
    assert arguments_to_command(base, overrides, "base-sorted") == [
        "--a=1",
        "--b=2",
        "--z=9",
        "--c=x",
        "--c=y",
    ]
    with pytest.raises(ValueError, match="unknown era"):
        arguments_to_command(base, overrides, "newest")


# --- kubeadm's own output and the golden files ---------------------------------------------------


@pytest.mark.parametrize("era", ["sorted-all", "base-sorted"])
def test_golden_commands_from_cp1_cis(era: str) -> None:
    expected = safeyaml.load((CONFIG / f"expected/commands.{era}.yaml").read_text())
    pods = render(cis_configmap(), era)
    assert sorted(pods) == sorted(expected)
    for name, pod in pods.items():
        assert command(pod) == expected[name], name


@pytest.mark.parametrize("name", COMPONENTS)
def test_the_default_node_regenerates_what_kubeadm_v1_35_wrote(name: str) -> None:
    text = render_pods(to_kubeadm_yaml(cluster_config()), CP1, era_for("v1.35.0"))[name]
    kubeadms = (MANIFESTS / f"{name}.yaml").read_text()
    compare_fields(safeyaml.load(text), safeyaml.load(kubeadms), KNOWN_DIFFERENCES[name])
    # Nothing is known to differ, so the file kubeadm wrote comes out byte for byte.
    assert text == kubeadms


def test_the_default_kubelet_config_is_what_kubeadm_v1_35_wrote() -> None:
    configmap = (CONFIG / "kubelet-config.upstream-example.configmap.yaml").read_text()
    text = render_kubelet_config(configmap, cluster_config_text=to_kubeadm_yaml(cluster_config()))
    kubeadms = (MANIFESTS / "kubelet-config.yaml").read_text()
    compare_fields(safeyaml.load(text), safeyaml.load(kubeadms), KNOWN_DIFFERENCES["kubelet"])
    assert text == kubeadms


def test_kubeadm_defaults_the_kubelet_fields_it_manages() -> None:
    kubelet = (
        "apiVersion: kubelet.config.k8s.io/v1beta1\n"
        "kind: KubeletConfiguration\n"
        "authentication: {anonymous: {enabled: true}}\n"
        "rotateCertificates: false\n"
        "streamingConnectionIdleTimeout: 5m\n"
    )
    config = to_kubeadm_yaml(cluster_config(networking={"serviceSubnet": "10.100.0.0/16"}))
    cfg = safeyaml.load(render_kubelet_config(kubelet, cluster_config_text=config, cri_socket=None))
    assert cfg["authentication"]["anonymous"] == {"enabled": True}  # set: kept
    assert cfg["authentication"]["webhook"] == {"cacheTTL": "0s", "enabled": True}
    assert cfg["rotateCertificates"] is True  # forced by kubeadm
    assert cfg["clusterDNS"] == ["10.100.0.10"]  # the tenth address of the service subnet
    assert cfg["streamingConnectionIdleTimeout"] == "5m"
    assert cfg["containerRuntimeEndpoint"] == ""  # no instance-config.yaml
    with pytest.raises(RegenError, match="authentication is not a map"):
        render_kubelet_config(kubelet.replace("{anonymous: {enabled: true}}", "[]"))
    with pytest.raises(RegenError, match="is not KubeletConfiguration"):
        render_kubelet_config(to_kubeadm_yaml(cluster_config()))
    with pytest.raises(RegenError, match="no data key 'kubelet'"):
        render_kubelet_config(cis_configmap())


def test_the_default_node_is_the_same_in_every_era() -> None:
    """Without extraArgs every era sorts kubeadm's defaults: an upgrade changes nothing."""
    config = to_kubeadm_yaml(cluster_config())
    assert len({tuple(render_pods(config, CP1, era).values()) for era in ERAS}) == 1


# --- v1beta3 and v1beta4 ------------------------------------------------------------------------


def test_v1beta3_map_gives_the_map_era_ordering() -> None:
    pods = render((CONFIG / "v1beta3.upstream-example.configmap.yaml").read_text(), "map")
    for name, pod in pods.items():
        flags = command(pod)[1:]
        assert flags == sorted(flags), name
        assert len({f.split("=", 1)[0] for f in flags}) == len(flags), f"{name}: a flag twice"
    api, kcm, sched, etcd = (pods[name] for name in COMPONENTS)
    assert "--authorization-mode=Node,RBAC" in command(api)
    assert {
        "--node-cidr-mask-size=20",
        "--allocate-node-cidrs=true",
        "--cluster-cidr=10.244.0.0/24",
        "--cluster-name=example-cluster",
        "--service-cluster-ip-range=10.96.0.0/16",
    } <= set(command(kcm))
    assert "--address=10.100.0.1" in command(sched)  # kubeadm never validates flag names
    # The override replaced the default listen-client-urls; etcd 3.2 gets the experimental flags.
    assert [f for f in command(etcd) if f.startswith("--listen-client-urls")] == [
        "--listen-client-urls=http://10.100.0.1:2379"
    ]
    assert "--experimental-initial-corrupt-check=true" in command(etcd)
    assert container(etcd)["image"] == "registry.k8s.io/etcd:3.2.24"
    assert container(api)["image"] == "registry.k8s.io/kube-apiserver:v1.21.0"
    # timeoutForControlPlane 4m0s of v1beta3: 24 startup probes of 10 s
    assert container(api)["startupProbe"]["failureThreshold"] == 24


def test_v1beta3_map_and_v1beta4_list_hold_the_same_flags() -> None:
    beta3 = render((CONFIG / "v1beta3.upstream-example.configmap.yaml").read_text())
    beta4 = render((CONFIG / "v1beta4.upstream-example.configmap.yaml").read_text())
    for name in COMPONENTS:
        assert command(beta3[name]) == command(beta4[name]), name
    # Only v1beta4 has extraEnvs.
    assert "env" not in container(beta3["kube-apiserver"])
    assert container(beta4["kube-apiserver"])["env"] == [
        {"name": "SOME_VAR", "value": "SOME_VALUE"}
    ]
    assert container(beta4["etcd"])["env"] == [{"name": "SOME_VAR", "value": "SOME_VALUE"}]


def test_a_repeated_v1beta4_flag_keeps_both_unless_the_era_is_map() -> None:
    issuers = [
        {"name": "service-account-issuer", "value": "https://new.example"},
        {"name": "service-account-issuer", "value": "https://kubernetes.default.svc.cluster.local"},
    ]
    config = cluster_config(apiServer={"extraArgs": issuers})
    wanted = [
        "--service-account-issuer=https://new.example",
        "--service-account-issuer=https://kubernetes.default.svc.cluster.local",
    ]
    for era, expected in [
        ("base-sorted", wanted),  # user order: the first one signs tokens
        ("sorted-all", sorted(wanted)),  # sorted by value: the order the user chose is lost
        ("map", wanted[1:]),  # one value per flag, the last wins
    ]:
        got = [f for f in command(render(config, era)["kube-apiserver"]) if "issuer" in f]
        assert got == expected, era
    base_sorted = command(render(config, "base-sorted")["kube-apiserver"])
    assert base_sorted[-2:] == wanted  # overrides go after the sorted defaults


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"apiServer": {"extraArgs": {"profiling": "false"}}}, "must be a list"),
        (
            {
                "apiVersion": "kubeadm.k8s.io/v1beta3",
                "apiServer": {"extraArgs": [{"name": "profiling", "value": "false"}]},
            },
            "must be a map",
        ),
        (
            {
                "apiVersion": "kubeadm.k8s.io/v1beta3",
                "apiServer": {"extraArgs": {"profiling": False}},
            },
            "must be a string",
        ),
        ({"scheduler": {"extraArgs": [{"name": "v", "value": 4}]}}, "must be a string"),
        ({"apiVersion": "kubeadm.k8s.io/v1beta2"}, "is not v1beta3/v1beta4"),
        ({"kubernetesVersion": "stable-1"}, "is not a version"),
        ({"apiServer": {"extraVolumes": [{"name": "x", "hostPath": "/x"}]}}, "mountPath"),
    ],
)
def test_what_kubeadm_fails_to_decode_is_refused(change: dict[str, Any], message: str) -> None:
    with pytest.raises(RegenError, match=message) as caught:
        render(cluster_config(**change))
    assert isinstance(caught.value, UserError)
    assert "\n" not in str(caught.value)


# --- extraArgs and extraVolumes -----------------------------------------------------------------


def test_extra_volumes_are_mounted_sorted_with_the_fixed_volumes() -> None:
    api = render(cis_configmap())["kube-apiserver"]
    volumes = {v["name"]: v for v in api["spec"]["volumes"]}
    mounts = {m["name"]: m for m in container(api)["volumeMounts"]}
    assert volumes["audit-policy"]["hostPath"] == {
        "path": "/etc/kubernetes/audit-policy.yaml",
        "type": "File",
    }
    assert mounts["audit-policy"] == {
        "mountPath": "/etc/kubernetes/audit-policy.yaml",
        "name": "audit-policy",
        "readOnly": True,
    }
    # readOnly omitted in the ClusterConfiguration: a writable mount (the audit log directory).
    assert mounts["audit-log"] == {"mountPath": "/var/log/kubernetes/audit/", "name": "audit-log"}
    names = [v["name"] for v in api["spec"]["volumes"]]
    assert names == sorted(names) == sorted(m["name"] for m in container(api)["volumeMounts"])
    assert {"ca-certs", "k8s-certs", "etc-ca-certificates"} <= set(names)
    assert "etc-pki-ca-trust" not in names  # /etc/pki/ca-trust does not exist on cp-1


def test_an_extra_volume_replaces_the_default_of_the_same_name() -> None:
    extra = {"name": "k8s-certs", "hostPath": "/srv/pki", "mountPath": "/etc/kubernetes/pki"}
    pods = render(cluster_config(controllerManager={"extraVolumes": [extra]}))
    kcm = pods["kube-controller-manager"]
    [volume] = [v for v in kcm["spec"]["volumes"] if v["name"] == "k8s-certs"]
    [mount] = [m for m in container(kcm)["volumeMounts"] if m["name"] == "k8s-certs"]
    assert volume["hostPath"] == {"path": "/srv/pki", "type": ""}  # pathType omitted: no check
    assert mount == {"mountPath": "/etc/kubernetes/pki", "name": "k8s-certs"}
    # The API server keeps its own default.
    [api_volume] = [
        v for v in pods["kube-apiserver"]["spec"]["volumes"] if v["name"] == "k8s-certs"
    ]
    assert api_volume["hostPath"]["path"] == "/etc/kubernetes/pki"


def test_optional_ca_directories_follow_the_host() -> None:
    everything = NodeInputs("cp-1", "10.0.0.10", existing_host_paths=frozenset(CA_CERT_DIRS))
    nothing = NodeInputs("cp-1", "10.0.0.10")
    for inputs, expected in [(everything, 5), (nothing, 0)]:
        pods = render(cluster_config(), inputs=inputs)
        for name in ("kube-apiserver", "kube-controller-manager"):
            optional = {v["name"] for v in pods[name]["spec"]["volumes"]} & {
                p.replace("/", "-")[1:] for p in CA_CERT_DIRS
            }
            assert len(optional) == expected, (name, optional)
        assert [v["name"] for v in pods["kube-scheduler"]["spec"]["volumes"]] == ["kubeconfig"]


@pytest.mark.parametrize("era", ERAS)
def test_extra_args_override_kubeadm_defaults(era: str) -> None:
    config = cluster_config(
        apiServer={
            "extraArgs": [
                {"name": "authorization-mode", "value": "RBAC,Node"},
                {"name": "secure-port", "value": "6443"},
            ]
        },
        scheduler={"extraArgs": [{"name": "bind-address", "value": "0.0.0.0"}]},
        controllerManager={"extraArgs": [{"name": "bind-address", "value": "10.0.0.10"}]},
    )
    pods = render(config, era)
    api = command(pods["kube-apiserver"])
    assert [f for f in api if f.startswith("--authorization-mode=")] == [
        "--authorization-mode=RBAC,Node"
    ]
    assert api.count("--secure-port=6443") == 1
    # Probes follow bind-address: 0.0.0.0 means the pod IP (no host), an address is probed.
    scheduler, kcm = container(pods["kube-scheduler"]), container(pods["kube-controller-manager"])
    assert "--bind-address=0.0.0.0" in scheduler["command"]
    assert all("host" not in scheduler[p]["httpGet"] for p in ("livenessProbe", "startupProbe"))
    assert kcm["livenessProbe"]["httpGet"]["host"] == "10.0.0.10"


def test_an_authorization_config_drops_the_authorization_mode() -> None:
    config = cluster_config(
        apiServer={"extraArgs": [{"name": "authorization-config", "value": "/etc/authz.yaml"}]}
    )
    api = command(render(config)["kube-apiserver"])
    assert "--authorization-config=/etc/authz.yaml" in api
    assert not [f for f in api if f.startswith("--authorization-mode")]


def test_etcd_extra_args_move_its_probes_and_the_api_servers_etcd_servers() -> None:
    etcd_args = [
        {"name": "listen-metrics-urls", "value": "https://10.0.0.10:2382,http://127.0.0.1:2381"},
        {"name": "advertise-client-urls", "value": "https://etcd.example:2379"},
    ]
    config = cluster_config()
    config["etcd"]["local"]["extraArgs"] = etcd_args
    pods = render(config)
    etcd = container(pods["etcd"])
    assert etcd["ports"] == [{"containerPort": 2382, "name": "probe-port", "protocol": "TCP"}]
    assert etcd["livenessProbe"]["httpGet"]["host"] == "10.0.0.10"
    assert etcd["livenessProbe"]["httpGet"]["scheme"] == "HTTPS"
    assert "--etcd-servers=https://etcd.example:2379" in command(pods["kube-apiserver"])


def test_an_ipv6_node_and_an_external_etcd() -> None:
    config = cluster_config()
    config["etcd"] = {
        "external": {
            "endpoints": ["https://e1:2379", "https://e2:2379"],
            "caFile": "/etc/etcd/pki/ca.crt",
            "certFile": "/etc/etcd/pki/client.crt",
            "keyFile": "/etc/etcd/pki/client.key",
        }
    }
    pods = render(config, inputs=NodeInputs("cp-6", "fd00::10"))
    assert "etcd" not in pods  # no local etcd manifest
    api = pods["kube-apiserver"]
    assert "--etcd-servers=https://e1:2379,https://e2:2379" in command(api)
    assert "--etcd-cafile=/etc/etcd/pki/ca.crt" in command(api)
    assert api["metadata"]["annotations"] == {
        "kubeadm.kubernetes.io/kube-apiserver.advertise-address.endpoint": "[fd00::10]:6443"
    }
    [certs] = [v for v in api["spec"]["volumes"] if v["name"] == "etcd-certs-0"]
    assert certs["hostPath"]["path"] == "/etc/etcd/pki"
    local = render(cluster_config(), inputs=NodeInputs("cp-6", "fd00::10"))
    assert "--etcd-servers=https://[::1]:2379" in command(local["kube-apiserver"])
    assert "--listen-client-urls=https://[::1]:2379,https://[fd00::10]:2379" in command(
        local["etcd"]
    )


@pytest.mark.parametrize(
    ("version", "tag"),
    [
        ("v1.35.0", "3.6.6-0"),
        ("v1.34.2", "3.6.5-0"),
        ("v1.40.1", "3.6.6-0"),
        ("v1.30.0", "3.5.24-0"),
    ],
)
def test_the_etcd_tag_follows_the_kubernetes_minor(version: str, tag: str) -> None:
    """The nearest known minor when kubeadm's table lacks it (as kubeadm falls back)."""
    assert etcd_image_tag(to_kubeadm_yaml(cluster_config(kubernetesVersion=version))) == tag
    pinned = cluster_config(kubernetesVersion=version)
    pinned["etcd"]["local"]["imageTag"] = "3.5.9-0"
    assert etcd_image_tag(to_kubeadm_yaml(pinned)) == "3.5.9-0"
    assert container(render(pinned)["etcd"])["image"] == "registry.k8s.io/etcd:3.5.9-0"


# --- patches ------------------------------------------------------------------------------------


def test_the_patches_directory_appends_profiling_and_patches_the_kubelet() -> None:
    default = to_kubeadm_yaml(cluster_config())
    plain = render(default)
    patched = render(default, patches_dir=CONFIG / "patches")
    assert command(patched["kube-apiserver"]) == [
        *command(plain["kube-apiserver"]),
        "--profiling=false",
    ]
    for name in COMPONENTS[1:]:
        assert patched[name] == plain[name]
    # JSON add .../command/- does not replace: with profiling in extraArgs too, it is there twice.
    both = command(render(cis_configmap(), patches_dir=CONFIG / "patches")["kube-apiserver"])
    assert both.count("--profiling=false") == 2

    configmap = (CONFIG / "kubelet-config.upstream-example.configmap.yaml").read_text()
    before = safeyaml.load(render_kubelet_config(configmap))
    after = safeyaml.load(render_kubelet_config(configmap, CONFIG / "patches"))
    assert after == {**before, "protectKernelDefaults": True, "readOnlyPort": 0}


def test_the_strategic_pitfall_replaces_the_whole_command(tmp_path: Path) -> None:
    shutil.copy(CONFIG / "patches-pitfalls/kube-apiserver+strategic.yaml", tmp_path)
    default = to_kubeadm_yaml(cluster_config())
    plain = render(default)["kube-apiserver"]
    patched = render(default, patches_dir=tmp_path)["kube-apiserver"]
    assert command(patched) == ["kube-apiserver", "--profiling=false"]
    # Only the command: the container was merged by name, everything else is kubeadm's.
    assert {**container(patched), "command": None} == {**container(plain), "command": None}
    assert patched["spec"]["volumes"] == plain["spec"]["volumes"]


def test_a_merge_patch_replaces_the_command_too(tmp_path: Path) -> None:
    (tmp_path / "kube-scheduler+merge.yaml").write_text(
        "spec:\n  containers:\n  - name: kube-scheduler\n    command: [kube-scheduler]\n"
    )
    pod = render(cluster_config(), patches_dir=tmp_path)["kube-scheduler"]
    # RFC 7386 replaces lists whole: the container list itself is replaced, not merged.
    assert pod["spec"]["containers"] == [{"name": "kube-scheduler", "command": ["kube-scheduler"]}]


def test_a_json_add_under_a_missing_parent_fails(tmp_path: Path) -> None:
    shutil.copy(CONFIG / "patches-pitfalls/kube-apiserver+json-missing-parent.json", tmp_path)
    with pytest.raises(RegenError, match="could not apply the json patch") as caught:
        render(cluster_config(), patches_dir=tmp_path)
    assert caught.value.path == tmp_path / "kube-apiserver+json-missing-parent.json"


def test_patch_files_apply_in_lexical_order_and_odd_names_are_ignored(tmp_path: Path) -> None:
    add = '[{"op": "add", "path": "/spec/containers/0/command/-", "value": "%s"}]'
    (tmp_path / "kube-scheduler1+json.json").write_text(add % "--second")
    (tmp_path / "kube-scheduler0+json.json").write_text(add % "--first")
    (tmp_path / "kube-scheduler2+json.yaml").write_text(
        "- {op: add, path: /spec/containers/0/command/-, value: --third}\n---\n"
        "- {op: add, path: /spec/containers/0/command/-, value: --fourth}\n"
    )
    (tmp_path / "kube-scheduler+json.txt").write_text(add % "--wrong-extension")
    (tmp_path / "coffee-maker+json.json").write_text(add % "--unknown-target")
    (tmp_path / "kube-scheduler9.yaml").write_text("")  # empty: ignored
    tail = command(render(cluster_config(), patches_dir=tmp_path)["kube-scheduler"])[-4:]
    assert tail == ["--first", "--second", "--third", "--fourth"]

    (tmp_path / "kube-scheduler3+.yaml").write_text("{}")
    with pytest.raises(RegenError, match="unknown or missing patch type"):
        render(cluster_config(), patches_dir=tmp_path)
    with pytest.raises(RegenError, match="not a directory"):
        render(cluster_config(), patches_dir=tmp_path / "absent")


def test_a_strategic_patch_merges_volumes_by_name_and_mounts_by_path(tmp_path: Path) -> None:
    (tmp_path / "kube-apiserver.yaml").write_text(
        "spec:\n"
        "  containers:\n"
        "  - name: kube-apiserver\n"
        "    volumeMounts:\n"
        "    - {mountPath: /etc/kubernetes/pki, name: k8s-certs, readOnly: false}\n"
        "    - {mountPath: /srv/extra, name: extra}\n"
        "  volumes:\n"
        "  - {name: extra, hostPath: {path: /srv/extra, type: Directory}}\n"
        "  - {name: ca-certs, $patch: delete}\n"
    )
    plain = render(cluster_config())["kube-apiserver"]
    pod = render(cluster_config(), patches_dir=tmp_path)["kube-apiserver"]
    names = [v["name"] for v in pod["spec"]["volumes"]]
    # apimachinery puts an item new to the list before the ones it keeps (mergeSortedSlice).
    assert names == ["extra", *[v["name"] for v in plain["spec"]["volumes"][1:]]]
    mounts = container(pod)["volumeMounts"]
    # Patch items keep the patch's order and are interleaved with the kept ones by the old
    # positions: the new mount lands right after k8s-certs, which the patch listed before it.
    assert [m["name"] for m in mounts] == [
        "ca-certs",
        "etc-ca-certificates",
        "k8s-certs",
        "extra",
        "usr-local-share-ca-certificates",
        "usr-share-ca-certificates",
    ]
    assert mounts[3] == {"mountPath": "/srv/extra", "name": "extra"}
    assert mounts[2]["readOnly"] is False  # merged into the existing mount, found by mountPath
    assert "$patch" not in str(pod)


# --- the layout ---------------------------------------------------------------------------------


def test_the_yaml_layout_quotes_like_go_yaml() -> None:
    text = to_kubeadm_yaml(
        {
            "b": ["0", "yes", "*,a", "plain text", "", "a: b", "1.5", "--x=1", None, 2, True],
            "a10": {},
            "a9": [],
            "a-b": [{"k": [1, [2, 3]], "j": "v"}],
        }
    )
    assert text == (
        "a-b:\n"
        "- j: v\n"
        "  k:\n"
        "  - 1\n"
        "  - - 2\n"
        "    - 3\n"
        "a9: []\n"
        "a10: {}\n"
        "b:\n"
        '- "0"\n'
        '- "yes"\n'
        "- '*,a'\n"
        "- plain text\n"
        '- ""\n'
        "- 'a: b'\n"
        '- "1.5"\n'
        "- --x=1\n"
        "- null\n"
        "- 2\n"
        "- true\n"
    )
    loaded = safeyaml.load(text)
    assert loaded["b"][:8] == ["0", "yes", "*,a", "plain text", "", "a: b", "1.5", "--x=1"]
