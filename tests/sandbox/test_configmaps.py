"""The sandbox as a kubeadm node's API server: kube-system/kubeadm-config and kubelet-config
seeded as `kubeadm init` uploads them, kept in a file store with resourceVersion
compare-and-swap, and served by the API server stand-in to the identities kubeadm's RBAC
lets in (issue 14 item 5)."""

from __future__ import annotations

import base64
import hashlib
import json
import os
import ssl
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx
import pytest

import cis_tui.sandbox as sandbox
from cis_tui import safeyaml
from cis_tui.errors import UserError
from cis_tui.sandbox import configmaps as cm
from cis_tui.sandbox import events as ev
from cis_tui.sandbox import manifests as mf
from cis_tui.sandbox.__main__ import main as sandbox_main
from cis_tui.sandbox.harness import SandboxRun
from cis_tui.sandbox.paths import SandboxPaths
from cis_tui.sandbox.pki import make_cert, write_file
from tests.e2e.conftest import SandboxFactory, sandbox_factory  # noqa: F401 - a started node

REF = Path(__file__).resolve().parents[3] / "shared/ref/kubeadm-config"
CONFLICT = (
    'Operation cannot be fulfilled on configmaps "kubeadm-config": the object has been '
    "modified; please apply your changes to the latest version and try again"
)


def configmap(name: str, data: dict[str, str], namespace: str = "kube-system") -> dict[str, Any]:
    return {
        "kind": "ConfigMap",
        "apiVersion": "v1",
        "metadata": {"name": name, "namespace": namespace},
        "data": data,
    }


@pytest.fixture
def store(tmp_path: Path) -> SandboxPaths:
    return SandboxPaths(tmp_path)


# -- the store ----------------------------------------------------------------------------
def test_a_written_configmap_reads_back_with_server_fields(store: SandboxPaths) -> None:
    assert cm.read_configmap(store, "kube-system", "x") is None
    written = cm.write_configmap(store, configmap("x", {"k": "v"}))
    meta = written["metadata"]
    assert meta["resourceVersion"] == "1" and isinstance(meta["resourceVersion"], str)
    assert len(meta["uid"]) == 36 and meta["uid"].count("-") == 4
    assert time.strptime(meta["creationTimestamp"], "%Y-%m-%dT%H:%M:%SZ")
    assert meta["managedFields"][0]["manager"] == "kubeadm"
    assert cm.read_configmap(store, "kube-system", "x") == written
    assert cm.read_configmap(store, "default", "x") is None
    on_disk = json.loads(store.apiserver_store.read_text())
    assert on_disk == {"revision": 1, "configmaps": {"kube-system/x": written}}
    assert store.apiserver_store == store.root / "apiserver" / "configmaps.json"
    assert store.apiserver_store.stat().st_mode & 0o777 == 0o600


def test_replace_with_the_current_version_bumps_it_and_keeps_the_identity(
    store: SandboxPaths,
) -> None:
    first = cm.write_configmap(store, configmap("x", {"k": "v"}))
    cm.write_configmap(store, configmap("other", {}))  # the revision is store-wide, like etcd's
    edited = {**first, "data": {"k": "w"}}
    new = cm.replace_configmap(store, edited, manager="cis-tui")
    assert new["metadata"]["resourceVersion"] == "3"
    assert new["data"] == {"k": "w"}
    for kept in ("uid", "creationTimestamp"):
        assert new["metadata"][kept] == first["metadata"][kept]
    assert [f["manager"] for f in new["metadata"]["managedFields"]] == ["kubeadm", "cis-tui"]
    assert cm.read_configmap(store, "kube-system", "x") == new


def test_a_stale_version_is_a_conflict_and_changes_nothing(store: SandboxPaths) -> None:
    first = cm.write_configmap(store, configmap("kubeadm-config", {"k": "v"}))
    cm.replace_configmap(store, {**first, "data": {"k": "someone else"}})
    before = store.apiserver_store.read_bytes()
    with pytest.raises(cm.Conflict) as caught:
        cm.replace_configmap(store, {**first, "data": {"k": "mine"}})
    assert str(caught.value) == CONFLICT
    assert store.apiserver_store.read_bytes() == before


def test_without_a_version_the_update_is_unconditional(store: SandboxPaths) -> None:
    cm.write_configmap(store, configmap("x", {"k": "v"}))
    cm.replace_configmap(store, configmap("x", {"k": "w"}))
    new = cm.replace_configmap(store, configmap("x", {"k": "last writer wins"}))
    assert new["metadata"]["resourceVersion"] == "3"
    assert new["data"] == {"k": "last writer wins"}


def test_an_unchanged_update_or_a_dry_run_writes_nothing(store: SandboxPaths) -> None:
    first = cm.write_configmap(store, configmap("x", {"k": "v"}))
    before = store.apiserver_store.read_bytes()
    assert cm.replace_configmap(store, first) == first
    preview = cm.replace_configmap(store, {**first, "data": {"k": "w"}}, dry_run=True)
    assert preview["data"] == {"k": "w"} and preview["metadata"]["resourceVersion"] == "2"
    assert store.apiserver_store.read_bytes() == before


def test_missing_and_invalid_objects_are_refused(store: SandboxPaths) -> None:
    with pytest.raises(cm.NotFound, match=r'^configmaps "nope" not found$'):
        cm.replace_configmap(store, configmap("nope", {}))
    cm.write_configmap(store, configmap("x", {}))
    with pytest.raises(cm.Invalid, match="data: values must be strings"):
        cm.replace_configmap(store, {**configmap("x", {}), "data": {"n": 1}})
    with pytest.raises(cm.Invalid, match="name is required"):
        cm.write_configmap(store, {"kind": "ConfigMap", "metadata": {}})
    with pytest.raises(cm.Invalid, match="not a v1 ConfigMap"):
        cm.write_configmap(store, {**configmap("x", {}), "kind": "Secret"})
    frozen = cm.write_configmap(store, {**configmap("frozen", {"k": "v"}), "immutable": True})
    with pytest.raises(cm.Invalid, match="field is immutable"):
        cm.replace_configmap(store, {**frozen, "data": {"k": "w"}})


def test_a_damaged_store_names_its_file(store: SandboxPaths) -> None:
    write_file(store.apiserver_store, b'{"revision": "x"', 0o600)
    with pytest.raises(cm.StoreError, match=r"configmaps\.json: not a ConfigMap store"):
        cm.read_configmap(store, "kube-system", "x")


WRITER = """
import sys
from pathlib import Path
from cis_tui.sandbox import configmaps as cm
from cis_tui.sandbox.paths import SandboxPaths

paths, conflicts = SandboxPaths(Path(sys.argv[1])), 0
for _ in range(int(sys.argv[2])):
    while True:
        obj = cm.read_configmap(paths, "kube-system", "counter")
        obj["data"]["n"] = str(int(obj["data"]["n"]) + 1)
        try:
            cm.replace_configmap(paths, obj)
            break
        except cm.Conflict:
            conflicts += 1
print(conflicts)
"""


def test_concurrent_writers_lose_no_update_and_readers_never_see_a_torn_file(
    store: SandboxPaths,
) -> None:
    cm.write_configmap(store, configmap("counter", {"n": "0"}))
    writers = [
        subprocess.Popen(
            [sys.executable, "-c", WRITER, str(store.root), "40"], stdout=subprocess.PIPE
        )
        for _ in range(4)
    ]
    reads = 0
    while any(w.poll() is None for w in writers):
        json.loads(store.apiserver_store.read_text())  # always a whole document
        reads += 1
    outputs = [w.communicate()[0] for w in writers]
    assert all(w.returncode == 0 for w in writers)
    final = cm.read_configmap(store, "kube-system", "counter")
    assert final is not None and final["data"]["n"] == "160"
    assert final["metadata"]["resourceVersion"] == "161"
    assert reads > 0 and all(o.strip().isdigit() for o in outputs)
    assert sorted(p.name for p in store.apiserver_store.parent.iterdir()) == [
        "configmaps.json",
        "configmaps.json.lock",
    ]  # no temporary file left behind


# -- seeding --------------------------------------------------------------------------------
def make_node(
    tmp_path_factory: pytest.TempPathFactory, scenario: str, **options: Any
) -> SandboxPaths:
    directory = tmp_path_factory.mktemp(scenario)
    sandbox.create_sandbox(directory, scenario, etcd="standin", reuse_keys=True, **options)
    return SandboxPaths(directory.resolve())


@pytest.fixture(scope="module")
def default_node(tmp_path_factory: pytest.TempPathFactory) -> SandboxPaths:
    return make_node(tmp_path_factory, "default")


@pytest.fixture(scope="module")
def hardened_v1beta3(tmp_path_factory: pytest.TempPathFactory) -> SandboxPaths:
    return make_node(tmp_path_factory, "hardened", kubeadm_config_version="v1beta3")


@pytest.fixture(scope="module")
def hardened_v1beta4(tmp_path_factory: pytest.TempPathFactory) -> SandboxPaths:
    return make_node(tmp_path_factory, "hardened")


def stored(node: SandboxPaths, name: str = "kubeadm-config") -> dict[str, Any]:
    found = cm.read_configmap(node, "kube-system", name)
    assert found is not None, name
    return found


def cluster_config_text(node: SandboxPaths) -> str:
    return stored(node)["data"]["ClusterConfiguration"]


def cluster_config(node: SandboxPaths) -> dict[str, Any]:
    doc = safeyaml.load(cluster_config_text(node))
    assert isinstance(doc, dict)
    return doc


def flags(node: SandboxPaths, component: str) -> dict[str, str | None]:
    return mf.flags(node.manifest(component).read_text())


def at_node(node: SandboxPaths, value: str) -> str:
    """A sandbox host path as the node's path (DIR/etc/x -> /etc/x)."""
    return value.replace(f"{node.root}/", "/")


def test_a_fresh_node_stores_kubeadms_v1beta4_clusterconfiguration(
    default_node: SandboxPaths,
) -> None:
    port = flags(default_node, "kube-apiserver")["--secure-port"]
    assert cluster_config_text(default_node) == (
        "apiServer: {}\n"
        "apiVersion: kubeadm.k8s.io/v1beta4\n"
        "caCertificateValidityPeriod: 87600h0m0s\n"
        "certificateValidityPeriod: 8760h0m0s\n"
        "certificatesDir: /etc/kubernetes/pki\n"
        "clusterName: kubernetes\n"
        f"controlPlaneEndpoint: 127.0.0.1:{port}\n"
        "controllerManager: {}\n"
        "dns: {}\n"
        "encryptionAlgorithm: RSA-2048\n"
        "etcd:\n"
        "  local:\n"
        "    dataDir: /var/lib/etcd\n"
        "imageRepository: registry.k8s.io\n"
        "kind: ClusterConfiguration\n"
        "kubernetesVersion: v1.35.0\n"
        "networking:\n"
        "  dnsDomain: cluster.local\n"
        "  serviceSubnet: 10.96.0.0/12\n"
        "proxy: {}\n"
        "scheduler: {}\n"
    )
    obj = stored(default_node)
    assert obj["metadata"]["name"] == "kubeadm-config"
    assert "annotations" not in obj["metadata"] and "labels" not in obj["metadata"]
    assert list(obj["data"]) == ["ClusterConfiguration"]


@pytest.mark.skipif(not REF.is_dir(), reason=f"the kubeadm-config reference is not at {REF}")
def test_a_fresh_node_matches_the_reference_nodes_config_without_its_fixes(
    default_node: SandboxPaths,
) -> None:
    ref = safeyaml.load((REF / "cp-1-cis.v1beta4.configmap.yaml").read_text())
    expected = safeyaml.load(ref["data"]["ClusterConfiguration"])
    for section in ("apiServer", "controllerManager", "scheduler"):
        expected[section] = {}  # cp-1's CIS fixes
    del expected["etcd"]["local"]["extraArgs"]
    ours = cluster_config(default_node)
    assert ours.pop("controlPlaneEndpoint").startswith("127.0.0.1:")
    assert ours == expected


def test_the_config_follows_the_nodes_manifests(default_node: SandboxPaths) -> None:
    doc = cluster_config(default_node)
    api = flags(default_node, "kube-apiserver")
    image = next(
        ln.split()[1]
        for ln in default_node.manifest("kube-apiserver").read_text().splitlines()
        if ln.strip().startswith("image:")
    )
    assert image == f"{doc['imageRepository']}/kube-apiserver:{doc['kubernetesVersion']}"
    assert doc["networking"]["serviceSubnet"] == api["--service-cluster-ip-range"]
    assert "podSubnet" not in doc["networking"]  # no --cluster-cidr on the node
    assert "--cluster-cidr" not in flags(default_node, "kube-controller-manager")
    assert f"{doc['certificatesDir']}/ca.crt" == at_node(
        default_node, api["--client-ca-file"] or ""
    )
    assert doc["etcd"]["local"]["dataDir"] == at_node(
        default_node, flags(default_node, "etcd")["--data-dir"] or ""
    )
    admin = safeyaml.load((default_node.etc_kubernetes / "admin.conf").read_text())
    assert admin["clusters"][0]["cluster"]["server"] == f"https://{doc['controlPlaneEndpoint']}"


def test_v1beta3_is_the_map_format_kubeadm_1_30_stored(
    default_node: SandboxPaths, hardened_v1beta3: SandboxPaths
) -> None:
    doc = cluster_config(hardened_v1beta3)
    assert doc["apiVersion"] == "kubeadm.k8s.io/v1beta3"
    assert doc["apiServer"]["timeoutForControlPlane"] == "4m0s"
    for v1beta4_only in (
        "caCertificateValidityPeriod",
        "certificateValidityPeriod",
        "encryptionAlgorithm",
        "proxy",
    ):
        assert v1beta4_only not in doc
    assert doc["controllerManager"]["extraArgs"] == {
        "profiling": "false",
        "terminated-pod-gc-threshold": "10",
    }
    assert doc["scheduler"]["extraArgs"] == {"profiling": "false"}
    text = cluster_config_text(hardened_v1beta3)
    assert '    profiling: "false"\n' in text and "  - name: profiling" not in text


def test_a_hardened_node_holds_its_hardening_as_extra_args_and_volumes(
    hardened_v1beta4: SandboxPaths, hardened_v1beta3: SandboxPaths
) -> None:
    node = hardened_v1beta4
    doc = cluster_config(node)
    api = flags(node, "kube-apiserver")
    hardening = [
        "admission-control-config-file",
        "audit-log-maxage",
        "audit-log-maxbackup",
        "audit-log-maxsize",
        "audit-log-path",
        "audit-policy-file",
        "enable-admission-plugins",
        "encryption-provider-config",
        "kubelet-certificate-authority",
        "profiling",
        "request-timeout",
        "service-account-extend-token-expiration",
        "service-account-lookup",
        "tls-cipher-suites",
        "tls-min-version",
    ]
    assert doc["apiServer"]["extraArgs"] == [
        {"name": name, "value": at_node(node, api[f"--{name}"] or "")} for name in hardening
    ]
    assert {"name": "profiling", "value": "false"} in doc["apiServer"]["extraArgs"]
    assert doc["controllerManager"]["extraArgs"] == [
        {"name": "profiling", "value": "false"},
        {"name": "terminated-pod-gc-threshold", "value": "10"},
    ]
    assert "extraArgs" not in doc["etcd"]["local"]
    volumes = {v["name"]: v for v in doc["apiServer"]["extraVolumes"]}
    assert sorted(volumes) == ["admission-config", "audit-log", "audit-policy", "encryption-config"]
    assert volumes["audit-policy"] == {
        "hostPath": "/etc/kubernetes/audit-policy.yaml",
        "mountPath": "/etc/kubernetes/audit-policy.yaml",
        "name": "audit-policy",
        "pathType": "File",
        "readOnly": True,
    }
    assert "readOnly" not in volumes["audit-log"]  # the log is written: omitempty drops false
    manifest = node.manifest("kube-apiserver").read_text()
    for v in volumes.values():
        assert f"path: {node.root}{v['hostPath']}\n" in manifest
    # Both formats say the same thing.
    beta3 = cluster_config(hardened_v1beta3)
    assert beta3["apiServer"]["extraArgs"] == {
        a["name"]: at_node(hardened_v1beta3, a["value"]) for a in doc["apiServer"]["extraArgs"]
    }
    assert beta3["apiServer"]["extraVolumes"] == doc["apiServer"]["extraVolumes"]
    # Nothing of the sandbox's own directory leaks into what the cluster stores.
    assert str(node.root) not in node.apiserver_store.read_text()


def test_an_insecure_nodes_etcd_flag_and_a_v1_29_nodes_defaults(
    tmp_path_factory: pytest.TempPathFactory,
) -> None:
    insecure = cluster_config(make_node(tmp_path_factory, "insecure"))
    assert insecure["etcd"]["local"]["extraArgs"] == [
        {"name": "peer-client-cert-auth", "value": "false"}
    ]
    assert {"name": "authorization-mode", "value": "AlwaysAllow"} in insecure["apiServer"][
        "extraArgs"
    ]
    old = make_node(tmp_path_factory, "v1.29")
    doc = cluster_config(old)
    # kubeadm 1.29 stored v1beta3; its etcd 3.5 flags are kubeadm's own, not extraArgs.
    assert doc["apiVersion"] == "kubeadm.k8s.io/v1beta3"
    assert doc["kubernetesVersion"] == "v1.29.4"
    assert "--experimental-initial-corrupt-check" in flags(old, "etcd")
    assert doc["etcd"] == {"local": {"dataDir": "/var/lib/etcd"}}
    assert all(doc[s] == {} for s in ("controllerManager", "scheduler"))


def test_kubelet_config_is_the_nodes_file_signed_with_kubeadms_hash(
    hardened_v1beta4: SandboxPaths,
) -> None:
    node = hardened_v1beta4
    obj = stored(node, "kubelet-config")
    text = obj["data"]["kubelet"]
    assert list(obj["data"]) == ["kubelet"]
    assert text == node.kubelet_config.read_text().replace(f"{node.root}/", "/")
    assert str(node.root) not in text
    config = safeyaml.load(text)
    assert config["kind"] == "KubeletConfiguration"
    assert config["authentication"]["x509"]["clientCAFile"] == "/etc/kubernetes/pki/ca.crt"
    assert config["tlsCertFile"] == "/var/lib/kubelet/pki/kubelet.crt"  # hardened
    assert config["containerRuntimeEndpoint"] == "unix:///var/run/containerd/containerd.sock"
    digest = hashlib.sha256(text.encode()).hexdigest()
    assert obj["metadata"]["annotations"] == {
        "kubeadm.kubernetes.io/component-config.hash": f"sha256:{digest}"
    }
    assert cm.config_hash({"b": "2", "a": "1"}) == (
        "sha256:" + hashlib.sha256(b"12").hexdigest()
    )  # values in key order


def test_the_cli_chooses_the_format_and_refuses_others(tmp_path: Path, capsys) -> None:
    assert sandbox_main(["create", str(tmp_path / "a"), "--kubeadm-config", "v1beta3"]) == 0
    doc = cluster_config(SandboxPaths((tmp_path / "a").resolve()))
    assert doc["apiVersion"] == "kubeadm.k8s.io/v1beta3"
    with pytest.raises(SystemExit) as caught:
        sandbox_main(["create", str(tmp_path / "b"), "--kubeadm-config", "v1beta2"])
    assert caught.value.code == 2
    assert "invalid choice: 'v1beta2'" in capsys.readouterr().err
    with pytest.raises(UserError, match="unknown kubeadm config version 'v1'"):
        sandbox.create_sandbox(tmp_path / "c", kubeadm_config_version="v1")


# -- the API server stand-in ----------------------------------------------------------------
KUBEADM_CONFIG = "/api/v1/namespaces/kube-system/configmaps/kubeadm-config"
KUBELET_CONFIG = "/api/v1/namespaces/kube-system/configmaps/kubelet-config"


def credentials(run: SandboxRun, kubeconfig: str, into: Path) -> tuple[Path, Path]:
    """The client certificate and key embedded in one of the node's kubeconfigs."""
    user = safeyaml.load((run.paths.etc_kubernetes / kubeconfig).read_text())["users"][0]["user"]
    into.mkdir(parents=True, exist_ok=True)
    cert, key = into / "client.crt", into / "client.key"
    write_file(cert, base64.b64decode(user["client-certificate-data"]), 0o600)
    write_file(key, base64.b64decode(user["client-key-data"]), 0o600)
    return cert, key


def client(run: SandboxRun, cert: tuple[Path, Path] | None) -> httpx.Client:
    """A client that verifies the API server against the node's CA, as kubectl does."""
    ctx = ssl.create_default_context(cafile=str(run.paths.ca_cert))
    if cert is not None:
        ctx.load_cert_chain(*cert)
    port = flags(run.paths, "kube-apiserver")["--secure-port"]
    return httpx.Client(base_url=f"https://127.0.0.1:{port}", verify=ctx, timeout=10)


def forbidden(user: str, verb: str, name: str = "kubeadm-config") -> str:
    return (
        f'configmaps "{name}" is forbidden: User "{user}" cannot {verb} resource "configmaps" '
        'in API group "" in the namespace "kube-system"'
    )


def test_the_api_server_serves_both_configmaps_to_admins_with_resource_versions(
    sandbox_factory: SandboxFactory,  # noqa: F811
    tmp_path: Path,
) -> None:
    run = sandbox_factory()
    admin = client(run, credentials(run, "admin.conf", tmp_path / "admin"))
    got = admin.get(KUBEADM_CONFIG)
    assert got.status_code == 200 and got.headers["content-type"] == "application/json"
    obj = got.json()
    assert obj == stored(run.paths)
    assert obj["data"]["ClusterConfiguration"].startswith("apiServer: {}\n")
    kubelet = admin.get(KUBELET_CONFIG).json()
    assert kubelet["data"]["kubelet"] == stored(run.paths, "kubelet-config")["data"]["kubelet"]

    rv = obj["metadata"]["resourceVersion"]
    obj["data"]["ClusterConfiguration"] += "# edited\n"
    put = admin.put(KUBEADM_CONFIG, params={"fieldManager": "cis-tui"}, json=obj)
    assert put.status_code == 200, put.text
    new_rv = put.json()["metadata"]["resourceVersion"]
    assert int(new_rv) > int(rv)
    assert put.json()["metadata"]["managedFields"][-1]["manager"] == "cis-tui"
    assert admin.get(KUBEADM_CONFIG).json()["data"] == obj["data"]

    stale = admin.put(KUBEADM_CONFIG, json=obj)  # still carries the old resourceVersion
    assert stale.status_code == 409
    assert stale.json() == {
        "kind": "Status",
        "apiVersion": "v1",
        "metadata": {},
        "status": "Failure",
        "message": CONFLICT,
        "reason": "Conflict",
        "details": {"name": "kubeadm-config", "kind": "configmaps"},
        "code": 409,
    }
    del obj["metadata"]["resourceVersion"]  # unconditional: the last writer wins
    obj["data"]["ClusterConfiguration"] += "# again\n"
    assert admin.put(KUBEADM_CONFIG, json=obj).status_code == 200
    assert stored(run.paths)["data"] == obj["data"]

    missing = admin.get("/api/v1/namespaces/kube-system/configmaps/nope")
    assert (missing.status_code, missing.json()["reason"]) == (404, "NotFound")
    assert missing.json()["message"] == 'configmaps "nope" not found'
    renamed = admin.put(KUBELET_CONFIG, json=obj)
    assert renamed.status_code == 400
    assert "does not match the name on the URL (kubelet-config)" in renamed.json()["message"]
    # super-admin.conf (system:masters) passes every authorizer.
    masters = client(run, credentials(run, "super-admin.conf", tmp_path / "super"))
    assert masters.get(KUBELET_CONFIG).status_code == 200


def test_other_identities_get_403_and_no_certificate_401_once_anonymous_is_off(
    sandbox_factory: SandboxFactory,  # noqa: F811
    tmp_path: Path,
) -> None:
    run = sandbox_factory()
    before = run.paths.apiserver_store.read_bytes()
    obj = stored(run.paths)
    # The kubelet (system:nodes) may read both, as kubeadm's Roles allow, but not write.
    node_pem = run.paths.kubelet_pki / "kubelet-client-current.pem"
    kubelet = client(run, (node_pem, node_pem))
    assert kubelet.get(KUBEADM_CONFIG).status_code == 200
    assert kubelet.get(KUBELET_CONFIG).status_code == 200
    denied = kubelet.put(KUBEADM_CONFIG, json=obj)
    assert denied.status_code == 403
    assert denied.json()["message"] == forbidden("system:node:cp-1", "update")
    assert denied.json()["reason"] == "Forbidden"
    # The controller manager's identity has no business here.
    kcm = client(run, credentials(run, "controller-manager.conf", tmp_path / "kcm"))
    answer = kcm.get(KUBEADM_CONFIG)
    assert answer.status_code == 403
    assert answer.json()["message"] == forbidden("system:kube-controller-manager", "get")
    # A certificate the cluster CA signed for someone else.
    ca = x509_pair(run)
    intruder = make_cert(ca, "intruder", orgs=["users"], client=True)
    write_file(tmp_path / "i.crt", intruder.cert_pem, 0o600)
    write_file(tmp_path / "i.key", intruder.key_pem, 0o600)
    other = client(run, (tmp_path / "i.crt", tmp_path / "i.key"))
    assert other.put(KUBEADM_CONFIG, json=obj).json()["message"] == forbidden("intruder", "update")
    assert other.get(KUBELET_CONFIG).json()["message"] == forbidden(
        "intruder", "get", "kubelet-config"
    )
    # kubeadm's API server keeps anonymous requests on: without a certificate, RBAC says no.
    anonymous = client(run, None)
    assert anonymous.get(KUBEADM_CONFIG).json()["message"] == forbidden("system:anonymous", "get")
    assert run.paths.apiserver_store.read_bytes() == before

    since = time.time()
    manifest = run.paths.manifest("kube-apiserver")
    edited = manifest.with_name(".kube-apiserver.yaml.new")
    write_file(
        edited, mf.set_flag(manifest.read_text(), "--anonymous-auth", "false").encode(), 0o600
    )
    os.replace(edited, manifest)  # as an editor saves it: the kubelet never reads half a file
    run.wait_event("kube-apiserver", ev.STARTED, since)
    deadline = time.monotonic() + 30
    while True:  # the new process answers once its certificates are loaded
        try:
            answer = anonymous.get(KUBEADM_CONFIG)
            if answer.status_code == 401:
                break
        except httpx.TransportError:
            pass
        assert time.monotonic() < deadline, "no 401 to an anonymous request within 30 s"
        time.sleep(0.05)
    assert answer.json() == {
        "kind": "Status",
        "apiVersion": "v1",
        "metadata": {},
        "status": "Failure",
        "message": "Unauthorized",
        "reason": "Unauthorized",
        "code": 401,
    }
    # The restarted API server serves the same objects: they live in the store, not in it.
    admin = client(run, credentials(run, "admin.conf", tmp_path / "admin"))
    assert admin.get(KUBEADM_CONFIG).json() == obj


def x509_pair(run: SandboxRun) -> Any:
    """The node's cluster CA as a KeyPair (to mint a client certificate with it)."""
    from cryptography import x509
    from cryptography.hazmat.primitives import serialization

    from cis_tui.sandbox.pki import KeyPair

    cert = x509.load_pem_x509_certificate(run.paths.ca_cert.read_bytes())
    key = serialization.load_pem_private_key((run.paths.pki / "ca.key").read_bytes(), None)
    return KeyPair(cert, key)  # type: ignore[arg-type]


def test_without_etcd_the_api_server_cannot_reach_its_configmaps(
    sandbox_factory: SandboxFactory,  # noqa: F811
    tmp_path: Path,
) -> None:
    run = sandbox_factory()
    admin = client(run, credentials(run, "admin.conf", tmp_path / "admin"))
    assert admin.get(KUBEADM_CONFIG).status_code == 200
    etcd = run.paths.manifest("etcd")
    parked = tmp_path / "etcd.yaml"
    since = time.time()
    os.replace(etcd, parked)  # the kubelet stops etcd's pod
    run.wait_event("kube-apiserver", ev.UNHEALTHY, since)
    down = admin.get(KUBEADM_CONFIG)
    assert down.status_code == 500
    assert down.json()["reason"] == "ServerTimeout"
    assert down.json()["message"] == (
        "The get operation against configmaps could not be completed at this time, "
        "please try again."
    )
    assert admin.put(KUBEADM_CONFIG, json=stored(run.paths)).json()["reason"] == "ServerTimeout"
    since = time.time()
    os.replace(parked, etcd)
    run.wait_healthy("kube-apiserver", since)
    assert admin.get(KUBEADM_CONFIG).status_code == 200
