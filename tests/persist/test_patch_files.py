"""`[persist] mode = "patches"` (issue 14 item 1): cis-tui's fixes in its own kubeadm patch
files, on a kubeadm node's files in a temporary directory with a real loopback API server
(tests/fake_apiserver.py) holding kubeadm-config, so that cis-tui knows which flags kubeadm
writes itself. The patched regeneration is checked with kubeadm's rules (persist.regen)."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from cis_tui.audit.node import parse_manifest
from cis_tui.persist.patchfiles import (
    PatchDirectory,
    PodPatch,
    edit_kubelet_patch,
    edit_pod_patch,
)
from cis_tui.persist.patchnames import file_name, is_own_file
from cis_tui.persist.regen import NodeInputs, render_pods
from tests.persist.test_persist_apply import (  # noqa: F401
    KUBELET,
    MANIFEST,
    api,
    cli,
    node,
    node_config,
    reference,
    stored,
)


def patches_node(made: tuple[Path, Path], tmp_path: Path) -> tuple[Path, Path, Path]:
    tree, config = made
    patches = tmp_path / "patches"
    text = config.read_text().replace(
        "[persist]\n", f'[persist]\nmode = "patches"\npatches_dir = "{patches}"\n'
    )
    config.write_text(text)
    return tree, config, patches


def regenerated_command(cluster_config: str, patches: Path) -> list[str]:
    pods = render_pods(cluster_config, NodeInputs("node", "10.0.0.10"), "base-sorted", patches)
    path = Path("/etc/kubernetes/manifests/kube-apiserver.yaml")
    manifest = parse_manifest(pods["kube-apiserver"], path, "kube-apiserver")
    return [f"{k}={v}" for k, v in manifest.flags.values.items()]


def test_the_patch_files_sort_after_the_admin_s_own() -> None:
    ours = file_name("kube-apiserver")
    assert is_own_file(ours) and not is_own_file("kube-apiserver0+json.json")
    assert sorted(["kube-apiserver+strategic.yaml", ours, "kube-apiserver0+json.json"])[-1] == ours


def test_edits_append_replace_their_own_value_and_drop() -> None:
    text = edit_pod_patch("", [("profiling", "false"), ("audit-log-maxage", "30")])
    text = edit_pod_patch(text, [("audit-log-maxage", "60")], ["profiling"])
    ops = json.loads(text)
    assert [op["value"] for op in ops] == ["--audit-log-maxage=60"]
    assert edit_pod_patch(text, [], ["audit-log-maxage"]) == ""  # empty: kubeadm ignores it
    with pytest.raises(Exception, match="operations cis-tui does not write"):
        edit_pod_patch('[{"op": "replace", "path": "/spec/containers/0/command/3"}]', [])
    kubelet = edit_kubelet_patch("", {"authentication.anonymous.enabled": False})
    kubelet = edit_kubelet_patch(kubelet, {"readOnlyPort": 0})
    assert kubelet.splitlines() == [
        "apiVersion: kubelet.config.k8s.io/v1beta1",
        "authentication:",
        "  anonymous:",
        "    enabled: false",
        "kind: KubeletConfiguration",
        "readOnlyPort: 0",
    ]


def test_apply_writes_a_patch_kubeadm_applies_once(capsys, api, node, tmp_path):  # noqa: F811
    tree, config, patches = patches_node(node, tmp_path)
    api.seed_reference("v1beta4.upstream-example")
    before_cm = stored(api)
    code, out, err = cli(capsys, config, "plan", "1.2.15")
    assert code == 0, err
    assert f"run every kubeadm upgrade with --patches {patches}" in out
    assert not patches.exists()  # a plan changes nothing
    code, out, err = cli(capsys, config, "apply", "1.2.15", "--yes", "--no-health-gate")
    assert code == 0, out + err
    path = patches / file_name("kube-apiserver")
    assert f"persisted in {path}" in out
    assert stored(api) == before_cm  # the ConfigMap is not touched in this mode
    st = path.stat()
    assert (st.st_mode & 0o777, st.st_uid) == (0o600, os.geteuid())
    command = regenerated_command(before_cm, patches)
    assert command.count("--profiling=false") == 1
    # the scan judges the next upgrade with the patches directory: kept
    code, out, _ = cli(capsys, config, "scan", "--format", "json", "--check", "1.2.15")
    (result,) = json.loads(out)["results"]
    assert (result["status"], result["persisted"]) == ("PASS", True)


def test_a_flag_kubeadm_writes_is_reported_not_persisted(capsys, api, node, tmp_path):  # noqa: F811
    """--authorization-mode is kubeadm's own: a second one appended would not replace it."""
    tree, config, patches = patches_node(node, tmp_path)
    api.seed_reference("v1beta4.upstream-example")
    manifest = tree / MANIFEST
    manifest.write_text(manifest.read_text().replace("Node,RBAC", "AlwaysAllow"))
    code, out, err = cli(capsys, config, "apply", "1.2.6", "1.2.7", "--yes", "--no-health-gate")
    assert "--authorization-mode is written by kubeadm" in out + err
    assert not (patches / file_name("kube-apiserver")).exists()


def test_kubelet_fields_go_into_a_strategic_patch(capsys, api, node, tmp_path):  # noqa: F811
    tree, config, patches = patches_node(node, tmp_path)
    api.seed_reference("v1beta4.upstream-example")
    code, out, err = cli(capsys, config, "apply", "4.2.14", "--yes", "--no-health-gate")
    assert code == 0, out + err
    text = (patches / file_name("kubelet")).read_text()
    assert "seccompDefault: true" in text and "kind: KubeletConfiguration" in text


def test_a_rollback_and_a_restore_take_the_patch_back(capsys, api, node, tmp_path):  # noqa: F811
    tree, config, patches = patches_node(node, tmp_path)
    api.seed_reference("v1beta4.upstream-example")
    assert cli(capsys, config, "apply", "1.2.15", "--yes", "--no-health-gate")[0] == 0
    backups = json.loads(cli(capsys, config, "backups", "list", "--format", "json")[1])
    path = patches / file_name("kube-apiserver")
    (patch_backup,) = [b for b in backups if b["path"] == str(path)]
    code, out, _ = cli(capsys, config, "backups", "diff", patch_backup["id"])
    assert code == 0 and '+  {"op": "add"' in out
    code, out, err = cli(capsys, config, "backups", "restore", patch_backup["id"], "--yes")
    assert code == 0, out + err
    assert not path.exists()


def test_persist_writes_patches_for_a_hand_made_fix(capsys, api, node, tmp_path):  # noqa: F811
    tree, config, patches = patches_node(node, tmp_path)
    api.seed_reference("v1beta4.upstream-example")
    manifest = tree / MANIFEST
    manifest.write_text(
        manifest.read_text().replace(
            "    - --allow-privileged=true\n",
            "    - --allow-privileged=true\n    - --profiling=false\n",
        )
    )
    code, out, err = cli(capsys, config, "persist", "1.2.15", "--yes")
    assert code == 0, out + err
    assert "kubeadm upgrade now keeps 1.2.15" in out
    ops = json.loads((patches / file_name("kube-apiserver")).read_text())
    assert ops == [
        {"op": "add", "path": "/spec/containers/0/command/-", "value": "--profiling=false"}
    ]


def test_the_directory_refuses_what_it_does_not_own_and_concurrent_edits(tmp_path):
    directory = PatchDirectory(tmp_path / "patches")
    found = directory.get()
    with pytest.raises(Exception, match="not a cis-tui patch file"):
        directory.replace(found, {**found.data, "kube-apiserver+json.json": "[]"})
    key = file_name("kube-scheduler")
    directory.replace(found, {**found.data, key: PodPatch((("profiling", "false"),)).edit("")})
    found = directory.get()
    (tmp_path / "patches" / key).write_text("[]\n")  # someone else, since it was read
    with pytest.raises(Exception, match="changed since it was read"):
        directory.replace(found, {**found.data, key: ""})
    os.chmod(tmp_path / "patches", 0o777)
    with pytest.raises(Exception, match="untrusted patches directory: it is writable by group"):
        directory.get()
