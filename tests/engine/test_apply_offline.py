"""apply / backups / recover on an offline tree (--root, --no-health-gate): the file side."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from cis_tui.engine.lock import node_lock
from tests.conftest import run_cli


def apply(capsys, root: Path, *args: str):
    return run_cli(capsys, "--root", str(root), "apply", "--yes", "--no-health-gate", *args)


def backups(capsys, root: Path) -> list[dict]:
    code, out, _ = run_cli(capsys, "--root", str(root), "backups", "list", "--format", "json")
    assert code == 0
    return json.loads(out)


def test_apply_fixes_checks_and_records_backups(capsys, kubeadm_node):
    manifest = kubeadm_node / "etc/kubernetes/manifests/kube-apiserver.yaml"
    original = manifest.read_bytes()
    code, out, err = apply(capsys, kubeadm_node, "1.2.15", "1.2.17", "4.1.9")
    assert code == 0, err
    assert "apply finished: 2 committed" in out
    assert b"--profiling=false" in manifest.read_bytes()
    assert manifest.stat().st_mode & 0o777 == 0o600
    items = backups(capsys, kubeadm_node)
    assert {b["outcome"] for b in items} == {"committed"}
    file_backup = next(b for b in items if b["kind"] == "file")
    assert file_backup["path"] == str(manifest)
    assert file_backup["checks"] == ["1.2.15", "1.2.17"]  # one file, one transaction
    assert set(file_backup) >= {"id", "time", "path", "sha256", "checks", "outcome"}
    state = kubeadm_node / "var/lib/cis-tui"
    stored = Path(state / "backups" / file_backup["id"] / "original")
    assert stored.read_bytes() == original
    assert stored.stat().st_mode & 0o777 == 0o600
    assert (state / "backups").stat().st_mode & 0o777 == 0o700
    # nothing but the four manifests in the manifests directory
    assert sorted(p.name for p in manifest.parent.iterdir()) == [
        "etcd.yaml",
        "kube-apiserver.yaml",
        "kube-controller-manager.yaml",
        "kube-scheduler.yaml",
    ]
    code, out, _ = run_cli(
        capsys, "--root", str(kubeadm_node), "scan", "--check", "1.2.15,1.2.17,4.1.9"
    )
    assert code == 0


def test_backups_show_diff_restore_prune(capsys, kubeadm_node):
    manifest = kubeadm_node / "etc/kubernetes/manifests/kube-scheduler.yaml"
    original = manifest.read_bytes()
    assert apply(capsys, kubeadm_node, "1.4.1")[0] == 0
    (backup,) = backups(capsys, kubeadm_node)
    code, out, _ = run_cli(capsys, "--root", str(kubeadm_node), "backups", "diff", backup["id"])
    assert code == 0 and "+    - --profiling=false" in out
    code, out, _ = run_cli(capsys, "--root", str(kubeadm_node), "backups", "show", backup["id"])
    assert code == 0 and f"sha256: {backup['sha256']}" in out and "--- content ---" in out
    code, out, _ = run_cli(
        capsys,
        "--root",
        str(kubeadm_node),
        "backups",
        "restore",
        backup["id"],
        "--yes",
        "--no-health-gate",
    )
    assert code == 0, out
    assert f"COMMITTED: restored {manifest} from backup {backup['id']}" in out
    assert "failing again: 1.4.1" in out and "0 checks pass" not in out
    assert manifest.read_bytes() == original
    items = backups(capsys, kubeadm_node)
    assert {b["outcome"] for b in items} == {"restored", "committed"}
    code, out, _ = run_cli(
        capsys, "--root", str(kubeadm_node), "backups", "prune", "--keep", "1", "--yes"
    )
    assert code == 0 and len(backups(capsys, kubeadm_node)) == 1


def test_tampered_backup_metadata_is_refused(capsys, kubeadm_node, tmp_path):
    assert apply(capsys, kubeadm_node, "1.4.1")[0] == 0
    (backup,) = backups(capsys, kubeadm_node)
    meta = kubeadm_node / "var/lib/cis-tui/backups" / backup["id"] / "meta.json"
    doc = json.loads(meta.read_text())
    victim = tmp_path / "victim.txt"
    victim.write_text("keep me")
    doc["path"] = str(victim)
    meta.write_text(json.dumps(doc))
    code, out, err = run_cli(
        capsys,
        "--root",
        str(kubeadm_node),
        "backups",
        "restore",
        backup["id"],
        "--yes",
        "--no-health-gate",
    )
    assert code == 2 and "outside the node layout; refusing" in err
    assert victim.read_text() == "keep me"


def test_corrupt_backup_bytes_are_refused(capsys, kubeadm_node):
    assert apply(capsys, kubeadm_node, "1.4.1")[0] == 0
    (backup,) = backups(capsys, kubeadm_node)
    manifest = kubeadm_node / "etc/kubernetes/manifests/kube-scheduler.yaml"
    current = manifest.read_bytes()
    stored = kubeadm_node / "var/lib/cis-tui/backups" / backup["id"] / "original"
    stored.write_bytes(stored.read_bytes() + b"# tampered\n")
    code, _, err = run_cli(
        capsys,
        "--root",
        str(kubeadm_node),
        "backups",
        "restore",
        backup["id"],
        "--yes",
        "--no-health-gate",
    )
    assert code == 2 and "does not match its recorded sha256" in err
    assert manifest.read_bytes() == current


def test_second_transaction_gets_exit_4_naming_the_holder(capsys, kubeadm_node):
    state = kubeadm_node / "var/lib/cis-tui"
    with node_lock(state):
        code, _, err = apply(capsys, kubeadm_node, "1.4.1")
    assert code == 4
    assert f"(PID {os.getpid()}) holds the node lock" in err
    assert (
        b"--profiling"
        not in (kubeadm_node / "etc/kubernetes/manifests/kube-scheduler.yaml").read_bytes()
    )


def test_apply_on_root_tree_needs_no_health_gate(capsys, kubeadm_node):
    code, _, err = run_cli(capsys, "--root", str(kubeadm_node), "apply", "1.4.1", "--yes")
    assert code == 2 and "add --no-health-gate" in err


def test_apply_without_yes_needs_a_terminal(capsys, kubeadm_node, monkeypatch):
    monkeypatch.setattr("sys.stdin", open(os.devnull))
    code, _, err = run_cli(
        capsys, "--root", str(kubeadm_node), "apply", "1.4.1", "--no-health-gate"
    )
    assert code == 2 and "confirmation needed" in err


def test_nothing_to_recover(capsys, kubeadm_node):
    code, out, _ = run_cli(capsys, "--root", str(kubeadm_node), "recover", "--yes")
    assert code == 0 and "Nothing to recover" in out


def test_recover_restores_an_interrupted_write(capsys, kubeadm_node):
    """A crash after the write and before the commit leaves the journal open."""
    from cis_tui.layout import load_settings
    from tests.crashstate import interrupted_write

    settings = load_settings(root=kubeadm_node)
    journal, _, original = interrupted_write(settings, "kube-scheduler", ("1.4.1",), "writing")
    manifest = settings.layout.manifest("kube-scheduler")
    code, out, _ = run_cli(capsys, "--root", str(kubeadm_node), "recover", "--yes")
    assert code == 0, out
    assert "recovered" in out and "restored the original bytes" in out
    assert manifest.read_bytes() == original
    assert journal.open_transactions() == []
    code, out, _ = run_cli(capsys, "--root", str(kubeadm_node), "recover", "--yes")
    assert "Nothing to recover" in out


# ---- plans ----


def test_plan_changes_nothing_and_saves_a_node_independent_plan(capsys, kubeadm_node, tmp_path):
    before = {p: p.read_bytes() for p in kubeadm_node.rglob("*") if p.is_file()}
    saved = tmp_path / "plan.yaml"
    code, out, _ = run_cli(
        capsys,
        "--root",
        str(kubeadm_node),
        "plan",
        "1.2.17",
        "1.4.1",
        "--param",
        "1.2.17.maxage=45",
        "--save",
        str(saved),
    )
    assert code == 0
    assert "+    - --audit-log-maxage=45" in out and "Nothing has been changed." in out
    assert {p: p.read_bytes() for p in kubeadm_node.rglob("*") if p.is_file()} == before
    text = saved.read_text()
    assert "kind: Plan" in text and 'maxage: "45"' in text and "checksum: sha256:" in text
    assert "kube-apiserver.yaml" not in text  # no diffs, no node paths
    code, out, err = run_cli(
        capsys,
        "--root",
        str(kubeadm_node),
        "apply",
        "--plan",
        str(saved),
        "--yes",
        "--no-health-gate",
    )
    assert code == 0, err
    assert (
        b"--audit-log-maxage=45"
        in (kubeadm_node / "etc/kubernetes/manifests/kube-apiserver.yaml").read_bytes()
    )


@pytest.mark.parametrize(
    ("edit", "problem"),
    [
        (lambda t: t.replace('maxage: "45"', 'maxage: "60"'), "checksum mismatch"),
        (
            lambda t: t.replace("apiVersion: cis-tui/v1", "apiVersion: cis-tui/v9"),
            "unknown plan version 'cis-tui/v9'",
        ),
        (lambda t: "{{{ not yaml", "malformed plan file"),
        (lambda t: "kind: Pod\n", "not a cis-tui plan file"),
    ],
)
def test_bad_plan_files_are_refused(capsys, kubeadm_node, tmp_path, edit, problem):
    saved = tmp_path / "plan.yaml"
    assert (
        run_cli(
            capsys,
            "--root",
            str(kubeadm_node),
            "plan",
            "1.2.17",
            "--param",
            "1.2.17.maxage=45",
            "--save",
            str(saved),
        )[0]
        == 0
    )
    saved.write_text(edit(saved.read_text()))
    code, out, err = run_cli(
        capsys,
        "--root",
        str(kubeadm_node),
        "apply",
        "--plan",
        str(saved),
        "--yes",
        "--no-health-gate",
    )
    assert code == 2 and problem in err and str(saved) in err
    assert (
        b"audit-log-maxage"
        not in (kubeadm_node / "etc/kubernetes/manifests/kube-apiserver.yaml").read_bytes()
    )


@pytest.mark.parametrize(
    ("param", "problem"),
    [
        ("1.2.17.maxage=29", "1.2.17.maxage: must be at least 30 (got 29)"),
        ("1.2.17.maxage=thirty", "is not a whole number"),
        ("1.2.17.bogus=1", "check 1.2.17 has no parameter 'bogus' (parameters: maxage)"),
        ("9.9.maxage=1", "unknown check id '9.9'"),
        ("maxage", "expected ID.NAME=VALUE"),
        ("1.2.27.provider=rot13", "must be one of secretbox, aescbc"),
    ],
)
def test_bad_parameters_exit_2(capsys, kubeadm_node, param, problem):
    code, out, err = run_cli(
        capsys, "--root", str(kubeadm_node), "plan", "1.2.17", "--param", param
    )
    assert code == 2 and problem in err and out == ""


def test_lock_is_released_for_the_next_transaction(capsys, kubeadm_node):
    assert apply(capsys, kubeadm_node, "1.4.1")[0] == 0
    assert apply(capsys, kubeadm_node, "1.3.2")[0] == 0


def test_concurrent_applies_one_gets_exit_4(kubeadm_node):
    """Two real `apply` runs at once: exactly one holds the lock (the other exits 4)."""
    import subprocess
    import sys

    state = kubeadm_node / "var/lib/cis-tui"
    results = []
    with node_lock(state):  # hold the lock while both start, then release
        procs = [
            subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "cis_tui",
                    "--root",
                    str(kubeadm_node),
                    "apply",
                    check,
                    "--yes",
                    "--no-health-gate",
                ],
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
            )
            for check in ("1.4.1", "1.3.2")
        ]
        for proc in procs:
            out, err = proc.communicate(timeout=60)
            results.append((proc.returncode, err))
    assert [code for code, _ in results] == [4, 4]
    assert all("holds the node lock" in err for _, err in results)
