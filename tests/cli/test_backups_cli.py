"""`backups list/show/diff/prune` output an admin can read and trust (issue 12, item 10)."""

from __future__ import annotations

import json
from pathlib import Path

from tests.conftest import run_cli


def _apply(capsys, root: Path, *ids: str) -> None:
    code, out, err = run_cli(
        capsys, "--root", str(root), "apply", "--yes", "--no-health-gate", *ids
    )
    assert code == 0, out + err


def _ids(capsys, root: Path) -> list[str]:
    code, out, _ = run_cli(capsys, "--root", str(root), "backups", "list", "--format", "json")
    assert code == 0
    return [b["id"] for b in json.loads(out)]


def test_list_aligns_every_column_and_cuts_nothing(capsys, kubeadm_node):
    _apply(capsys, kubeadm_node, "1.2.15", "1.2.16", "1.2.17", "1.2.18", "1.4.1", "4.1.9")
    code, out, _ = run_cli(capsys, "--root", str(kubeadm_node), "backups", "list")
    assert code == 0
    header, *rows = out.splitlines()
    starts = [header.index(name) for name in ("TIME", "OUTCOME", "CHECKS", "FILE")]
    for row in rows:
        for start in starts:
            assert row[start - 2 : start] == "  " and row[start] != " ", (row, start)
    assert any("1.2.15,1.2.16,1.2.17,1.2.18" in row for row in rows)  # the checks, whole


def test_show_prints_lists_as_text(capsys, kubeadm_node):
    _apply(capsys, kubeadm_node, "1.2.15", "1.2.16")
    (backup_id,) = _ids(capsys, kubeadm_node)
    code, out, _ = run_cli(capsys, "--root", str(kubeadm_node), "backups", "show", backup_id)
    assert code == 0
    assert "checks: 1.2.15, 1.2.16" in out and "['" not in out


def test_diff_names_each_side(capsys, kubeadm_node):
    _apply(capsys, kubeadm_node, "1.4.1")
    (backup_id,) = _ids(capsys, kubeadm_node)
    code, out, _ = run_cli(capsys, "--root", str(kubeadm_node), "backups", "diff", backup_id)
    assert code == 0
    first, second = out.splitlines()[:2]
    assert first.startswith("--- ") and first.endswith(f"(backup {backup_id})")
    assert second.startswith("+++ ") and second.endswith("(current file)")


def test_prune_lists_what_goes_and_asks(capsys, kubeadm_node):
    _apply(capsys, kubeadm_node, "1.4.1")
    _apply(capsys, kubeadm_node, "1.2.15")
    newer, older = _ids(capsys, kubeadm_node)  # newest first, in the order taken
    code, out, err = run_cli(capsys, "--root", str(kubeadm_node), "backups", "prune", "--keep", "1")
    assert code == 2 and "confirmation needed" in err  # no terminal here, no --yes
    assert "would be deleted" in out and older in out and newer not in out
    assert _ids(capsys, kubeadm_node) == [newer, older]
    code, out, _ = run_cli(
        capsys, "--root", str(kubeadm_node), "backups", "prune", "--keep", "1", "--yes"
    )
    assert code == 0 and older in out and "Removed 1 backup(s)" in out
    assert _ids(capsys, kubeadm_node) == [newer]


def test_list_says_which_backup_it_cannot_read(capsys, kubeadm_node):
    """A backup whose metadata is corrupt is not dropped silently: list names it and why."""
    _apply(capsys, kubeadm_node, "1.2.15")
    _apply(capsys, kubeadm_node, "1.4.1")
    broken, kept = _ids(capsys, kubeadm_node)
    meta = kubeadm_node / "var/lib/cis-tui/backups" / broken / "meta.json"
    meta.write_text("{not json")
    code, out, err = run_cli(capsys, "--root", str(kubeadm_node), "backups", "list")
    assert code == 0
    assert kept in out and broken not in out
    assert err.count("\n") == 1
    assert f"backup {broken} not listed" in err and str(meta) in err
