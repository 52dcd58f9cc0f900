"""CRLF manifests and kubelet configs are planned, applied and stay CRLF (issue 11 item 11)."""

from __future__ import annotations

import difflib
import json
from pathlib import Path

import pytest

from tests.conftest import run_cli, scan_json

MANIFESTS = "etc/kubernetes/manifests"
KUBELET_CONFIG = "var/lib/kubelet/config.yaml"


@pytest.fixture
def crlf_node(kubeadm_node: Path) -> Path:
    """The kubeadm node with every manifest and the kubelet config in CRLF line endings."""
    for path in [*(kubeadm_node / MANIFESTS).glob("*.yaml"), kubeadm_node / KUBELET_CONFIG]:
        raw = path.read_bytes()
        assert b"\r" not in raw
        path.write_bytes(raw.replace(b"\n", b"\r\n"))
    return kubeadm_node


def apply(capsys, root: Path, *args: str) -> tuple[int, str, str]:
    return run_cli(capsys, "--root", str(root), "apply", "--yes", "--no-health-gate", *args)


def assert_crlf_and_only_added(before: bytes, after: bytes) -> None:
    """Every line of `after` ends in CRLF, and the lines of `before` are all still there, byte
    for byte and in order (an edit that only adds lines)."""
    old, new = before.splitlines(keepends=True), after.splitlines(keepends=True)
    assert all(line.endswith(b"\r\n") for line in new), [
        line for line in new if not line.endswith(b"\r\n")
    ]
    assert after.count(b"\n") == after.count(b"\r\n")  # no bare LF anywhere
    ops = difflib.SequenceMatcher(a=old, b=new, autojunk=False).get_opcodes()
    assert {op for op, *_ in ops} <= {"equal", "insert"}, [o for o in ops if o[0] != "equal"]


def test_a_crlf_manifest_is_planned_applied_and_stays_crlf(capsys, crlf_node):
    path = crlf_node / MANIFESTS / "kube-apiserver.yaml"
    before = path.read_bytes()
    code, out, err = apply(capsys, crlf_node, "1.2.15", "1.2.17")
    assert code == 0, out + err
    assert "changed since the plan was made" not in out
    assert "apply finished: 1 committed" in out
    after = path.read_bytes()
    assert b"    - --profiling=false\r\n" in after
    assert b"    - --audit-log-maxage=30\r\n" in after
    assert_crlf_and_only_added(before, after)
    doc = scan_json(capsys, crlf_node, "--check", "1.2.15,1.2.17")
    assert {r["id"]: r["status"] for r in doc["results"]} == {"1.2.15": "PASS", "1.2.17": "PASS"}


def test_a_crlf_kubelet_config_is_planned_applied_and_stays_crlf(capsys, crlf_node):
    path = crlf_node / KUBELET_CONFIG
    before = path.read_bytes()
    code, out, err = apply(capsys, crlf_node, "4.2.12", "4.2.13", "4.2.14")
    assert code == 0, out + err
    after = path.read_bytes()
    assert b"podPidsLimit: 4096\r\n" in after and b"seccompDefault: true\r\n" in after
    assert b"tlsCipherSuites:\r\n- TLS_" in after  # a new block: every new line CRLF too
    assert_crlf_and_only_added(before, after)
    doc = scan_json(capsys, crlf_node, "--check", "4.2.12,4.2.13,4.2.14")
    assert {r["status"] for r in doc["results"]} == {"PASS"}


def test_every_fix_on_a_crlf_node_keeps_crlf(capsys, crlf_node):
    """Recipes too: hostPath volumes, mounts and list flags added to CRLF manifests."""
    files = [*(crlf_node / MANIFESTS).glob("*.yaml"), crlf_node / KUBELET_CONFIG]
    code, out, err = apply(capsys, crlf_node, "--all-failing")
    assert code == 0, out + err
    assert "changed since the plan was made" not in out
    for path in files:
        after = path.read_bytes()
        assert after.count(b"\n") == after.count(b"\r\n"), path
    doc = scan_json(capsys, crlf_node)
    assert doc["summary"]["FAIL"] == 0 and doc["summary"]["ERROR"] == 0


def test_the_diff_of_a_crlf_file_reads_like_any_other(capsys, crlf_node):
    code, out, _ = run_cli(capsys, "--root", str(crlf_node), "plan", "1.2.15")
    assert code == 0
    assert "\r" not in out
    assert "# CRLF line endings: shown as plain line breaks, kept in the file\n" in out
    assert "\n+    - --profiling=false\n" in out


def test_backups_diff_of_a_crlf_file_shows_only_the_change(capsys, crlf_node):
    assert apply(capsys, crlf_node, "1.2.15")[0] == 0
    code, out, _ = run_cli(capsys, "--root", str(crlf_node), "backups", "list", "--format", "json")
    (backup,) = json.loads(out)
    code, out, _ = run_cli(capsys, "--root", str(crlf_node), "backups", "diff", backup["id"])
    assert code == 0
    changed = [
        line
        for line in out.splitlines()
        if line.startswith(("+", "-")) and not line.startswith(("+++", "---"))
    ]
    assert changed == ["+    - --profiling=false"], out
