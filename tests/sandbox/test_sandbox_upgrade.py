"""`sandbox upgrade`: what `kubeadm upgrade apply` does to the sandbox node, on files only (issue
14 item 5): the static pods regenerated from the stored ClusterConfiguration and patches, hand
edits reverted into kubeadm's backup directory, the kubelet config rewritten from its ConfigMap."""

from __future__ import annotations

import json
import shutil
import stat
from pathlib import Path
from typing import Any

import pytest

from cis_tui import safeyaml
from cis_tui.errors import UserError
from cis_tui.sandbox import SCENARIOS, create_sandbox
from cis_tui.sandbox import configmaps as cm
from cis_tui.sandbox import manifests as mf
from cis_tui.sandbox.__main__ import main as sandbox_main
from cis_tui.sandbox.create import sandbox_kubelet_config, sandbox_manifest
from cis_tui.sandbox.paths import STATIC_COMPONENTS, SandboxPaths
from cis_tui.sandbox.upgrade import (
    NEEDED_PORTS,
    UpgradeError,
    recover_ports,
    regenerate,
    upgrade_sandbox,
)

CONTROL_PLANE = ("kube-apiserver", "kube-controller-manager", "kube-scheduler")


def make(tmp_path: Path, scenario: str = "default", config: str | None = None) -> SandboxPaths:
    directory = tmp_path / "node"
    create_sandbox(
        directory, scenario, etcd="standin", reuse_keys=True, kubeadm_config_version=config
    )
    return SandboxPaths(directory.resolve())


@pytest.fixture
def node(tmp_path: Path) -> SandboxPaths:
    return make(tmp_path)


def pod(paths: SandboxPaths, component: str) -> dict[str, Any]:
    return safeyaml.load(paths.manifest(component).read_text())


def container(paths: SandboxPaths, component: str) -> dict[str, Any]:
    return pod(paths, component)["spec"]["containers"][0]


def command(paths: SandboxPaths, component: str) -> list[str]:
    return list(container(paths, component)["command"])


def snapshot(paths: SandboxPaths) -> dict[str, str]:
    return {comp: paths.manifest(comp).read_text() for comp in STATIC_COMPONENTS}


def manifest_backups(paths: SandboxPaths) -> list[Path]:
    return sorted(paths.kubeadm_tmp.glob("kubeadm-backup-manifests-*/*.yaml"))


def cluster_config(paths: SandboxPaths) -> dict[str, Any]:
    obj = cm.read_configmap(paths, "kube-system", "kubeadm-config")
    assert obj is not None
    return safeyaml.load(obj["data"]["ClusterConfiguration"])


def store_cluster_config(paths: SandboxPaths, doc: dict[str, Any]) -> None:
    """Write ClusterConfiguration as kubeadm (or cis-tui's persistence) would."""
    obj = cm.read_configmap(paths, "kube-system", "kubeadm-config")
    assert obj is not None
    obj["data"]["ClusterConfiguration"] = cm.dump_kubeadm_yaml(doc)
    cm.replace_configmap(paths, obj, manager="cis-tui")


def edit_kubelet_configmap(paths: SandboxPaths, key: str, value: Any) -> None:
    obj = cm.read_configmap(paths, "kube-system", "kubelet-config")
    assert obj is not None
    doc = safeyaml.load(obj["data"]["kubelet"])
    doc[key] = value
    obj["data"]["kubelet"] = cm.dump_kubeadm_yaml(doc)
    cm.replace_configmap(paths, obj, manager="cis-tui")


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


# -- an unchanged node stays as it is ------------------------------------------------------
@pytest.mark.parametrize("config", ["v1beta4", "v1beta3"])
@pytest.mark.parametrize("scenario", SCENARIOS)
def test_an_untouched_sandbox_keeps_every_flag_port_path_and_volume(
    tmp_path: Path, scenario: str, config: str
) -> None:
    """The scenario's hardening was stored as extraArgs and extraVolumes at create, so kubeadm's
    regeneration gives back the node's own manifests."""
    paths = make(tmp_path, scenario, config)
    before = {comp: pod(paths, comp) for comp in STATIC_COMPONENTS}
    kubelet_before = safeyaml.load(paths.kubelet_config.read_text())
    flags_env = paths.kubelet_flags_env.read_bytes()
    revision = json.loads(paths.apiserver_store.read_text())["revision"]
    # kubeadm's manifests for this node, etcd's too (an upgrade rewrites it only for a new tag).
    regenerated = regenerate(paths.root).manifests
    expected = {"kube-controller-manager", "kube-scheduler"} if scenario == "insecure" else set()
    for comp in set(STATIC_COMPONENTS) - expected:
        assert safeyaml.load(regenerated[comp]) == before[comp], comp

    lines = upgrade_sandbox(paths.root)

    for comp in STATIC_COMPONENTS:
        old, new = before[comp]["spec"], pod(paths, comp)["spec"]
        old_c, new_c = old["containers"][0], new["containers"][0]
        assert new_c["command"] == old_c["command"], comp  # every flag, in the same order
        assert new_c["ports"] == old_c["ports"], comp
        assert new_c.get("volumeMounts") == old_c.get("volumeMounts"), comp
        assert new.get("volumes") == old.get("volumes"), comp
        assert new_c["image"] == old_c["image"], comp
    # kubeadm drops a probe host when the component binds every address (the pod IP is probed):
    # the insecure node's bind-address=0.0.0.0 is the only change anywhere.
    assert {p.stem for p in manifest_backups(paths)} == expected
    for comp in STATIC_COMPONENTS:
        if comp not in expected:
            assert pod(paths, comp) == before[comp], comp
    for comp in set(CONTROL_PLANE) - expected:
        assert (
            f"[upgrade/staticpods] Current and new manifests of {comp} are equal, skipping upgrade"
            in lines
        )
    tag = before["etcd"]["spec"]["containers"][0]["image"].rpartition(":")[2]
    assert f"[upgrade/etcd] etcd stays at {tag}: etcd.yaml is not regenerated" in lines
    for comp in expected:
        probe = container(paths, comp)["livenessProbe"]["httpGet"]
        assert "host" not in probe
        assert before[comp]["spec"]["containers"][0]["livenessProbe"]["httpGet"]["host"]
    # The kubelet config comes back from its ConfigMap; kubeadm forces rotateCertificates on.
    kubelet_after = safeyaml.load(paths.kubelet_config.read_text())
    if scenario == "insecure":
        assert kubelet_before.pop("rotateCertificates") is False
        assert kubelet_after.pop("rotateCertificates") is True
    assert kubelet_after == kubelet_before
    assert paths.kubelet_flags_env.read_bytes() == flags_env
    assert json.loads(paths.apiserver_store.read_text())["revision"] == revision  # no upload


@pytest.mark.skipif(shutil.which("etcd") is None, reason="the etcd binary is not installed")
def test_a_node_running_an_older_real_etcd_keeps_its_etcd_manifest(tmp_path: Path) -> None:
    directory = tmp_path / "node"
    create_sandbox(directory, "hardened", etcd="real", reuse_keys=True)
    paths = SandboxPaths(directory.resolve())
    before = snapshot(paths)
    regenerated = regenerate(paths.root).manifests
    assert {c: safeyaml.load(t) for c, t in regenerated.items()} == {
        c: safeyaml.load(t) for c, t in before.items()
    }
    assert "/health?serializable=false" in regenerated["etcd"]  # etcd 3.4 has no /readyz
    lines = upgrade_sandbox(paths.root)
    assert snapshot(paths) == before
    assert manifest_backups(paths) == []
    tag = container(paths, "etcd")["image"].rpartition(":")[2]
    assert f"[upgrade/etcd] etcd stays at {tag}: etcd.yaml is not regenerated" in lines


# -- what kubeadm undoes, and what survives -------------------------------------------------
def test_a_hand_edit_is_reverted_and_the_edited_file_backed_up(node: SandboxPaths) -> None:
    manifest = node.manifest("kube-apiserver")
    original = manifest.read_text()
    edited = mf.set_flag(original, "--profiling", "false")
    manifest.write_text(edited)
    others = {c: node.manifest(c).stat().st_ino for c in STATIC_COMPONENTS if c != "kube-apiserver"}

    lines = upgrade_sandbox(node.root)

    assert "--profiling=false" not in command(node, "kube-apiserver")
    assert safeyaml.load(manifest.read_text()) == safeyaml.load(original)
    assert mode(manifest) == 0o600
    [backup] = manifest_backups(node)
    assert backup.name == "kube-apiserver.yaml" and backup.read_text() == edited
    assert mode(backup.parent) == 0o700
    assert f'Moving new manifest to "{manifest}" and backing up old manifest to "{backup}"' in (
        "\n".join(lines)
    )
    assert {c: node.manifest(c).stat().st_ino for c in others} == others  # untouched
    assert not list(node.kubeadm_tmp.glob("kubeadm-upgraded-manifests*"))  # cleaned up


@pytest.mark.parametrize("config", ["v1beta4", "v1beta3"])
def test_the_same_flag_in_extra_args_survives(tmp_path: Path, config: str) -> None:
    paths = make(tmp_path, "default", config)
    doc = cluster_config(paths)
    doc["apiServer"]["extraArgs"] = (
        [{"name": "profiling", "value": "false"}] if config == "v1beta4" else {"profiling": "false"}
    )
    store_cluster_config(paths, doc)
    manifest = paths.manifest("kube-apiserver")
    manifest.write_text(mf.set_flag(manifest.read_text(), "--profiling", "false"))
    fixed = manifest.read_text()

    upgrade_sandbox(paths.root)

    assert manifest.read_text() == fixed  # semantically what kubeadm writes: left alone
    assert manifest_backups(paths) == []
    # Only in the stored configuration: the upgrade applies it.
    doc["scheduler"]["extraArgs"] = doc["apiServer"]["extraArgs"]
    store_cluster_config(paths, doc)
    upgrade_sandbox(paths.root)
    scheduler = command(paths, "kube-scheduler")
    assert "--profiling=false" in scheduler
    assert scheduler[1:] == sorted(scheduler[1:])  # kubeadm v1.35.0 sorts every argument
    assert [p.stem for p in manifest_backups(paths)] == ["kube-scheduler"]


def test_an_extra_volume_in_the_store_appears_in_the_manifest(node: SandboxPaths) -> None:
    doc = cluster_config(node)
    doc["apiServer"] = {
        "extraArgs": [{"name": "audit-log-path", "value": "/var/log/kubernetes/audit/audit.log"}],
        "extraVolumes": [
            {
                "hostPath": "/var/log/kubernetes/audit",
                "mountPath": "/var/log/kubernetes/audit",
                "name": "audit-log",
                "pathType": "DirectoryOrCreate",
            }
        ],
    }
    store_cluster_config(node, doc)

    upgrade_sandbox(node.root)

    audit = node.host("/var/log/kubernetes/audit")
    api = pod(node, "kube-apiserver")["spec"]
    assert f"--audit-log-path={audit}/audit.log" in api["containers"][0]["command"]
    assert {"hostPath": {"path": str(audit), "type": "DirectoryOrCreate"}, "name": "audit-log"} in (
        api["volumes"]
    )
    assert {"mountPath": str(audit), "name": "audit-log"} in api["containers"][0]["volumeMounts"]
    names = [v["name"] for v in api["volumes"]]
    assert names == sorted(names)


def test_a_patches_directory_is_applied(node: SandboxPaths) -> None:
    node.patches.mkdir()
    (node.patches / "kube-apiserver0+json.json").write_text(
        '[{"op": "add", "path": "/spec/containers/0/command/-", "value": "--profiling=false"}]\n'
    )
    (node.patches / "kubeletconfiguration+strategic.yaml").write_text("podPidsLimit: 4096\n")

    lines = upgrade_sandbox(node.root)

    assert f'[patches] Reading patches from "{node.patches}"' in lines
    assert command(node, "kube-apiserver")[-1] == "--profiling=false"  # appended
    assert safeyaml.load(node.kubelet_config.read_text())["podPidsLimit"] == 4096


def test_the_mapping_onto_the_sandbox_takes_node_and_sandbox_paths_alike() -> None:
    """The seeded store holds node paths; a setting cis-tui persisted from the sandbox's files
    holds sandbox paths. Both end up under DIR once, even for a DIR under /var."""
    paths = SandboxPaths(Path("/var/tmp/node"))
    ports = {name: 40000 + i for i, name in enumerate(NEEDED_PORTS)}
    for comp in STATIC_COMPONENTS:
        text = mf.set_flag(
            mf.template(f"{comp}.yaml"), "--x-file", "/var/tmp/node/etc/kubernetes/x.yaml"
        )
        once = sandbox_manifest(comp, text, paths, ports)
        assert sandbox_manifest(comp, once, paths, ports) == once, comp
        flags = mf.flags(once)
        assert flags["--x-file"] == "/var/tmp/node/etc/kubernetes/x.yaml", comp
        assert "10.0.0.10" not in once and ":6443" not in once and ":2379" not in once
    kubelet = sandbox_kubelet_config(mf.template("kubelet-config.yaml"), paths, ports)
    assert sandbox_kubelet_config(kubelet, paths, ports) == kubelet
    doc = safeyaml.load(kubelet)
    assert doc["staticPodPath"] == "/var/tmp/node/etc/kubernetes/manifests"
    assert doc["healthzPort"] == ports["kubelet-healthz"] and doc["port"] == ports["kubelet"]


# -- versions and etcd ----------------------------------------------------------------------
def test_to_bumps_the_images_and_stores_the_version(node: SandboxPaths) -> None:
    stored = cm.read_configmap(node, "kube-system", "kubeadm-config")
    assert stored is not None
    etcd_before = node.manifest("etcd").read_text()

    lines = upgrade_sandbox(node.root, "1.35.1")

    for comp in CONTROL_PLANE:
        assert container(node, comp)["image"] == f"registry.k8s.io/{comp}:v1.35.1"
    assert node.manifest("etcd").read_text() == etcd_before  # v1.35's etcd is still 3.6.6-0
    assert "[upgrade/etcd] etcd stays at 3.6.6-0: etcd.yaml is not regenerated" in lines
    assert sorted(p.stem for p in manifest_backups(node)) == sorted(CONTROL_PLANE)
    # upload-config: only kubernetesVersion changed in the stored text.
    after = cm.read_configmap(node, "kube-system", "kubeadm-config")
    assert after is not None
    old_text = stored["data"]["ClusterConfiguration"]
    assert after["data"]["ClusterConfiguration"] == old_text.replace(
        "kubernetesVersion: v1.35.0", "kubernetesVersion: v1.35.1"
    )
    assert after["metadata"]["resourceVersion"] != stored["metadata"]["resourceVersion"]
    # The stored version is now the default: nothing more to do.
    again = upgrade_sandbox(node.root)
    assert '[upgrade/version] Regenerating the node for the stored version "v1.35.1"' in again
    assert len(manifest_backups(node)) == 3


def test_a_v1beta3_store_is_upgraded_and_keeps_its_format(tmp_path: Path) -> None:
    paths = make(tmp_path, "hardened", "v1beta3")
    before = {comp: command(paths, comp) for comp in CONTROL_PLANE}
    upgrade_sandbox(paths.root, "v1.35.2")
    doc = cluster_config(paths)
    assert doc["apiVersion"] == "kubeadm.k8s.io/v1beta3" and doc["kubernetesVersion"] == "v1.35.2"
    assert doc["apiServer"]["extraArgs"]["profiling"] == "false"
    for comp in CONTROL_PLANE:
        assert sorted(command(paths, comp)) == sorted(before[comp]), comp  # the same flags
        assert container(paths, comp)["image"].endswith(f"{comp}:v1.35.2")
    # From v1.35.1 kubeadm puts extraArgs after its sorted defaults (a v1beta3 map arrives
    # sorted): the hardening moved to the end, so the manifest changed.
    extra = {f"--{name}" for name in doc["apiServer"]["extraArgs"]}
    api = command(paths, "kube-apiserver")
    assert api[-len(extra) :] == [a for a in before["kube-apiserver"] if a.split("=")[0] in extra]
    assert api != before["kube-apiserver"]


def test_etcd_is_upgraded_only_when_its_image_tag_goes_up(node: SandboxPaths) -> None:
    etcd = node.manifest("etcd")
    edited = mf.set_flag(etcd.read_text(), "--snapshot-count", "5000")
    etcd.write_text(edited)

    upgrade_sandbox(node.root)
    assert etcd.read_text() == edited  # same tag: a hand edit is neither reverted nor applied

    doc = cluster_config(node)
    doc["etcd"]["local"]["imageTag"] = "3.6.5-0"
    store_cluster_config(node, doc)
    lines = upgrade_sandbox(node.root)
    assert etcd.read_text() == edited
    assert any("is older than the currently installed" in line for line in lines)

    doc["etcd"]["local"]["imageTag"] = "3.6.7-0"
    store_cluster_config(node, doc)
    (node.etcd_data / "member").mkdir(exist_ok=True)
    (node.etcd_data / "member" / "wal").write_text("data")
    lines = upgrade_sandbox(node.root)
    assert container(node, "etcd")["image"] == "registry.k8s.io/etcd:3.6.7-0"
    assert "--snapshot-count=10000" in command(node, "etcd")  # the hand edit is gone now
    [backup] = [p for p in manifest_backups(node) if p.name == "etcd.yaml"]
    assert backup.read_text() == edited
    [data] = node.kubeadm_tmp.glob("kubeadm-backup-etcd-*/etcd")
    assert (data / "member" / "wal").read_text() == "data"
    assert any(
        line.startswith("[upgrade/etcd] Backed up the etcd data directory") for line in lines
    )


# -- the kubelet ----------------------------------------------------------------------------
def test_the_kubelet_config_is_rewritten_from_its_configmap(tmp_path: Path) -> None:
    paths = make(tmp_path, "hardened")
    config = paths.kubelet_config
    assert mode(config) == 0o600  # the scenario's (CIS 4.1.9)
    original = safeyaml.load(config.read_text())
    config.write_text(mf.set_top_level(config.read_text(), "eventRecordQPS", " 50"))
    hand_edited = config.read_text()
    edit_kubelet_configmap(paths, "maxPods", 50)
    flags_env = paths.kubelet_flags_env.read_bytes()

    lines = upgrade_sandbox(paths.root)

    now = safeyaml.load(config.read_text())
    assert now["eventRecordQPS"] == 5  # the hand edit is gone
    assert now["maxPods"] == 50  # the ConfigMap's change is in
    assert {k: v for k, v in now.items() if k != "maxPods"} == original
    assert now["staticPodPath"] == str(paths.manifests) and now["port"] == original["port"]
    # os.WriteFile(..., 0644) truncates an existing file: its mode stays.
    assert mode(config) == 0o600
    [backup] = paths.kubeadm_tmp.glob("kubeadm-kubelet-config*/config.yaml")
    assert backup.read_text() == hand_edited and mode(backup) == 0o600
    assert f'[upgrade] Backing up kubelet config file to "{backup}"' in lines
    assert paths.kubelet_flags_env.read_bytes() == flags_env


def test_restart_kubelet_needs_a_running_agent_and_changes_nothing_without_one(
    node: SandboxPaths,
) -> None:
    manifest = node.manifest("kube-apiserver")
    manifest.write_text(mf.set_flag(manifest.read_text(), "--profiling", "false"))
    edited = snapshot(node)
    with pytest.raises(UpgradeError, match="no agent is running"):
        upgrade_sandbox(node.root, restart_kubelet=True)
    assert snapshot(node) == edited
    assert not node.kubeadm_tmp.exists()


# -- ports ----------------------------------------------------------------------------------
def test_ports_are_stored_at_create_and_recovered_for_older_sandboxes(node: SandboxPaths) -> None:
    stored = json.loads(node.ports.read_text())
    assert recover_ports(node) == {k: v for k, v in stored.items() if k != "kubelet-read-only"}
    assert f"--secure-port={stored['kube-apiserver']}" in command(node, "kube-apiserver")
    node.ports.unlink()  # a sandbox created before ports were stored
    before = snapshot(node)

    lines = upgrade_sandbox(node.root)

    assert snapshot(node) == before
    assert lines[1] == f"[sandbox] Ports recovered from the manifests and stored in {node.ports}"
    assert json.loads(node.ports.read_text()) == {
        k: v for k, v in stored.items() if k != "kubelet-read-only"
    }


# -- refusals -------------------------------------------------------------------------------
def test_versions_kubeadm_refuses(node: SandboxPaths) -> None:
    before = snapshot(node)
    for version, message in (
        ("v1.37.0", "kubeadm can upgrade only 1 minor version at a time"),
        ("v1.33.9", "kubeadm can downgrade only 1 minor version at a time"),
        ("latest", "not a Kubernetes version"),
        ("v2.0.0", "not a Kubernetes version"),
    ):
        with pytest.raises(UpgradeError, match=message):
            upgrade_sandbox(node.root, version)
    assert snapshot(node) == before


def test_a_missing_store_or_manifest_is_named(node: SandboxPaths, tmp_path: Path) -> None:
    with pytest.raises(UserError, match="not a sandbox directory"):
        upgrade_sandbox(tmp_path / "nowhere")
    scheduler = node.manifest("kube-scheduler")
    text = scheduler.read_text()
    scheduler.unlink()
    with pytest.raises(UpgradeError, match="static pod manifest not found") as exc:
        upgrade_sandbox(node.root)
    assert exc.value.path == scheduler
    scheduler.write_text(text)
    node.apiserver_store.unlink()
    with pytest.raises(UpgradeError, match="kube-system/kubeadm-config: no such ConfigMap"):
        upgrade_sandbox(node.root)


def test_the_cli_prints_each_step_and_errors_in_one_line(
    node: SandboxPaths, capsys: pytest.CaptureFixture[str]
) -> None:
    assert sandbox_main(["upgrade", str(node.root), "--to", "v1.35.1"]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0] == '[upgrade/version] You have chosen to change the cluster version to "v1.35.1"'
    assert any(line.startswith("[upload-config]") for line in out)
    assert container(node, "kube-apiserver")["image"].endswith(":v1.35.1")
    assert sandbox_main(["upgrade", str(node.root), "--to", "v1.99.0"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("cis-tui sandbox: Specified version")
