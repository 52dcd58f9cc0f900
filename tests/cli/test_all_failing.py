"""`--all-failing` takes scored FAIL checks only; manual (WARN) checks are fixed when named or
with `--include-manual` (issue 13 item 9). `apply --all-failing --yes` on a kubeadm node never
sets `--anonymous-auth=false` (1.2.1 is manual), and still fixes the node's scored failures."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from cis_tui.audit.node import take_snapshot
from cis_tui.benchmarks.catalog import load_catalog
from cis_tui.layout import load_settings
from cis_tui.remediate.plan import build_plan
from tests.conftest import run_cli, scan_json

APISERVER = "etc/kubernetes/manifests/kube-apiserver.yaml"
AUTHN_CONFIG = "etc/kubernetes/authentication-config.yaml"


def fixable(doc: dict, *, scored: bool, status: str) -> set[str]:
    return {
        r["id"]
        for r in doc["results"]
        if r["scored"] is scored and r["status"] == status and r["remediation"]["available"]
    }


def planned(out: str) -> set[str]:
    """The check ids the printed plan fixes."""
    return {i for m in re.finditer(r"^    fixes (.+?)(;|$)", out, re.M) for i in m[1].split(", ")}


def apply(capsys, root: Path, *args: str) -> tuple[int, str, str]:
    return run_cli(capsys, "--root", str(root), "apply", "--yes", "--no-health-gate", *args)


def test_plan_all_failing_takes_scored_failures_and_names_the_manual_ones_left_out(
    capsys, kubeadm_node
):
    doc = scan_json(capsys, kubeadm_node)
    scored = fixable(doc, scored=True, status="FAIL")
    manual = fixable(doc, scored=False, status="WARN")
    assert "1.2.1" in manual and scored
    code, out, err = run_cli(capsys, "--root", str(kubeadm_node), "plan", "--all-failing")
    assert code == 0, err
    assert planned(out) == scored
    assert "--anonymous-auth" not in out
    (left,) = re.findall(r"^left out: (.+?): manual checks .*--include-manual$", out, re.M)
    assert set(left.split(", ")) == manual


def test_apply_all_failing_yes_fixes_the_kubeadm_node_without_touching_anonymous_auth(
    capsys, kubeadm_node
):
    before = scan_json(capsys, kubeadm_node)
    code, out, err = apply(capsys, kubeadm_node, "--all-failing")
    assert code == 0, out + err
    manifest = (kubeadm_node / APISERVER).read_text()
    assert "--anonymous-auth" not in manifest and "--authentication-config" not in manifest
    assert not (kubeadm_node / AUTHN_CONFIG).exists()
    after = {r["id"]: r["status"] for r in scan_json(capsys, kubeadm_node)["results"]}
    assert {i: after[i] for i in fixable(before, scored=True, status="FAIL")} == dict.fromkeys(
        fixable(before, scored=True, status="FAIL"), "PASS"
    )
    assert after["1.2.1"] == "WARN"  # a human's decision: left as it was


def test_include_manual_fixes_1_2_1_with_the_allow_list_never_the_bare_flag(capsys, kubeadm_node):
    code, out, err = apply(capsys, kubeadm_node, "--all-failing", "--include-manual")
    assert code == 0, out + err
    assert "1.2.1" in planned(out) and "left out:" not in out
    manifest = (kubeadm_node / APISERVER).read_text()
    assert "--anonymous-auth" not in manifest
    assert f"--authentication-config=/{AUTHN_CONFIG}" in manifest
    doc = scan_json(capsys, kubeadm_node, "--check", "1.2.1")
    assert doc["results"][0]["status"] == "PASS"


def test_a_named_manual_check_is_planned(capsys, kubeadm_node):
    code, out, err = run_cli(capsys, "--root", str(kubeadm_node), "plan", "1.2.1")
    assert code == 0, err
    assert planned(out) == {"1.2.1"} and "left out:" not in out
    assert "+    - --authentication-config=" in out


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["plan", "1.2.15", "--include-manual"], "--include-manual widens --all-failing"),
        (["plan", "--include-manual"], "--include-manual widens --all-failing"),
        (["apply", "--plan", "p.yaml", "--include-manual", "--yes"], "--plan takes no check ids"),
    ],
)
def test_include_manual_alone_is_a_usage_error(capsys, kubeadm_node, argv, message):
    code, out, err = run_cli(capsys, "--root", str(kubeadm_node), *argv)
    assert code == 2 and message in err, err
    assert out == ""


def test_build_plan_selection_is_explicit(kubeadm_node):
    catalog = load_catalog("cis-1.12")
    snap = take_snapshot(load_settings(root=kubeadm_node))
    default = build_plan(catalog, snap, None)
    assert all(catalog.get(i).scored for i in default.checks)
    assert "1.2.1" in default.manual_left_out and "1.2.1" not in default.checks
    wider = build_plan(catalog, snap, None, include_manual=True)
    assert "1.2.1" in wider.checks and wider.manual_left_out == ()
    assert set(default.checks) < set(wider.checks)
