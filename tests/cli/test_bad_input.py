"""Bad input is never accepted silently (issue 11 item 13): an empty or mistyped --root, an
unreadable manifests directory, a configured but missing kubelet config, planning an ERROR."""

from __future__ import annotations

import json
import os
import shutil
import sys
from pathlib import Path

import pytest

from tests.conftest import run_cli, scan_json
from tests.hostile import attacker  # noqa: F401 - a real non-root user, as a fixture
from tests.nodetree import build_kubeadm_tree, write

MANIFESTS = "etc/kubernetes/manifests"


def statuses(doc: dict) -> dict[str, str]:
    return {r["id"]: r["status"] for r in doc["results"]}


def reasons(doc: dict) -> dict[str, str]:
    return {r["id"]: r["reason"] for r in doc["results"]}


@pytest.mark.parametrize("command", [["scan"], ["scan", "--format", "json"], ["plan", "1.2.15"]])
def test_an_empty_root_is_no_node(capsys, tmp_path, command):
    empty = tmp_path / "empty"
    empty.mkdir()
    code, out, err = run_cli(capsys, "--root", str(empty), *command)
    assert code == 2 and out == ""
    assert err.startswith(f"cis-tui: error: no Kubernetes node found under --root {empty}: ")
    assert f"no manifests directory {empty}/{MANIFESTS}" in err
    assert len(err.strip().splitlines()) == 1


def test_a_mistyped_root_is_no_node(capsys, kubeadm_node):
    """One level too deep: /etc instead of the node's root."""
    code, out, err = run_cli(capsys, "--root", str(kubeadm_node / "etc"), "scan")
    assert code == 2 and out == ""
    assert "no Kubernetes node found" in err


def test_a_worker_node_without_manifests_is_still_a_node(capsys, kubeadm_node):
    shutil.rmtree(kubeadm_node / MANIFESTS)
    doc = scan_json(capsys, kubeadm_node, "--check", "1.2.15,4.2.1")
    assert statuses(doc) == {"1.2.15": "SKIP", "4.2.1": "PASS"}


def test_a_manifests_directory_that_is_a_file_is_error_not_skip(capsys, kubeadm_node):
    manifests = kubeadm_node / MANIFESTS
    shutil.rmtree(manifests)
    manifests.write_text("not a directory\n")
    doc = scan_json(capsys, kubeadm_node, "--check", "1.1.1,1.1.7,1.2.15,1.3.2,1.4.1,2.1")
    assert set(statuses(doc).values()) == {"ERROR"}, statuses(doc)
    assert set(reasons(doc).values()) == {f"{manifests}: manifests directory is not a directory"}
    assert doc["exit_code"] == 1


def test_an_unreadable_manifests_directory_is_error_for_a_real_user(attacker, tmp_path):  # noqa: F811
    """chmod 000 stops everyone but root: the scan runs as a real unprivileged user."""
    node = build_kubeadm_tree(attacker.home / "node")
    for path in [node, *node.rglob("*")]:
        if not path.is_symlink():
            os.chown(path, attacker.uid, attacker.gid)
    manifests = node / MANIFESTS
    manifests.chmod(0)
    env = {
        "HOME": str(attacker.home),
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "XDG_CACHE_HOME": str(attacker.home / "cache"),
        "XDG_CONFIG_HOME": str(attacker.home / "config"),
        "XDG_STATE_HOME": str(attacker.home / "state"),
        "PYTHONPATH": str(Path(__file__).resolve().parents[2]),
    }
    argv = [sys.executable, "-m", "cis_tui", "--root", str(node), "scan", "--format", "json"]
    done = attacker.run([*argv, "--check", "1.1.1,1.2.15,1.4.1,4.2.1"], env=env, cwd=attacker.home)
    assert done.returncode == 1, done.stderr
    doc = json.loads(done.stdout)
    assert statuses(doc) == {"1.1.1": "ERROR", "1.2.15": "ERROR", "1.4.1": "ERROR", "4.2.1": "PASS"}
    problem = f"{manifests}: cannot read manifests directory: Permission denied"
    assert reasons(doc)["1.2.15"] == problem and reasons(doc)["1.1.1"] == problem


def test_a_kubelet_config_named_by_the_drop_in_but_missing_is_error(capsys, kubeadm_node):
    config = kubeadm_node / "var/lib/kubelet/config.yaml"
    config.unlink()
    doc = scan_json(capsys, kubeadm_node, "--check", "4.1.9,4.1.10,4.2.1,4.2.2,4.2.12")
    assert set(statuses(doc).values()) == {"ERROR"}, statuses(doc)
    why = reasons(doc)["4.2.1"]
    assert why.startswith(f"{config}: kubelet config not found, although --config in ")
    assert "10-kubeadm.conf" in why
    code, out, _ = run_cli(capsys, "--root", str(kubeadm_node), "plan", "4.2.1", "4.1.9")
    assert code == 1
    assert "not planned: 4.2.1: ERROR: the check cannot be evaluated" in out


def test_a_kubelet_config_at_another_path_is_the_one_judged(capsys, kubeadm_node):
    """The kubelet reads the file its --config names (the last one wins, as in the kubelet)."""
    default = kubeadm_node / "var/lib/kubelet/config.yaml"
    moved = kubeadm_node / "etc/kubernetes/kubelet.conf.yaml"
    write(moved, default.read_text() + "podPidsLimit: 1024\n", 0o600)
    default.unlink()
    env = kubeadm_node / "var/lib/kubelet/kubeadm-flags.env"
    env.write_text('KUBELET_KUBEADM_ARGS="--config=/etc/kubernetes/kubelet.conf.yaml"\n')
    doc = scan_json(capsys, kubeadm_node, "--check", "4.1.9,4.2.13")
    assert statuses(doc) == {"4.1.9": "PASS", "4.2.13": "PASS"}
    assert str(moved) in doc["results"][0]["evidence"]["file"]
    # The file the kubelet reads is the one planned (and backed up, and restored).
    code, out, _ = run_cli(capsys, "--root", str(kubeadm_node), "plan", "4.2.12")
    assert code == 0
    assert f"[1/1] {moved}\n" in out
    assert not default.exists()


def test_planning_an_error_check_exits_1(capsys, kubeadm_node):
    path = write(kubeadm_node / MANIFESTS / "kube-scheduler.yaml", "kind: [\n", 0o600)
    code, out, err = run_cli(capsys, "--root", str(kubeadm_node), "plan", "1.4.1", "1.2.15")
    assert code == 1, err
    assert (
        f"not planned: 1.4.1: ERROR: the check cannot be evaluated, so no fix can be planned: {path}: malformed YAML"
        in out
    )
    assert "--profiling=false" in out  # the other check is still planned
    code, _, _ = run_cli(capsys, "--root", str(kubeadm_node), "plan", "1.2.15")
    assert code == 0
