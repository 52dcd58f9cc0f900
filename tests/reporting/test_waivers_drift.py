"""Waivers (`[[waivers]]`: WAIVED everywhere, never fixed, expiring and expired ones said) and
drift (`scan --baseline`: regressions name what changed, exit 1 only on them)."""

from __future__ import annotations

import datetime as dt
import json
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from tests.conftest import run_cli
from tests.reporting.test_report import SCHEDULER, apply_offline

TODAY = dt.date.today()


def waiver(check: str, days: int, **extra: str) -> str:
    lines = [
        "[[waivers]]",
        f'check = "{check}"',
        f'reason = "{extra.get("reason", "the SIEM pipeline owns it <b>")}"',
        f'owner = "{extra.get("owner", "alice@example.com")}"',
        f"expires = {extra.get('expires', (TODAY + dt.timedelta(days=days)).isoformat())}",
    ]
    if "nodes" in extra:
        lines.append(f"nodes = {extra['nodes']}")
    return "\n".join(lines) + "\n"


def config(tmp_path: Path, *waivers: str) -> Path:
    path = tmp_path / "cis-tui.toml"
    path.write_text("\n".join(waivers))
    return path


def scan(capsys, node: Path, cfg: Path, *extra: str) -> tuple[int, dict, str]:
    code, out, err = run_cli(
        capsys, "--config", str(cfg), "--root", str(node), "scan", "--format", "json", *extra
    )
    return code, json.loads(out), err


def by_id(doc: dict) -> dict[str, dict]:
    return {r["id"]: r for r in doc["results"]}


def test_active_expiring_and_expired_waivers(capsys, kubeadm_node, tmp_path):
    cfg = config(
        tmp_path,
        waiver("1.4.1", 90),  # active
        waiver("1.3.2", 5, owner="bob"),  # expires within 14 days
        waiver("1.2.15", -1, owner="carol"),  # expired yesterday
        waiver("1.2.16", 90, nodes='["some-other-host"]'),  # not this node
    )
    code, doc, err = scan(capsys, kubeadm_node, cfg)
    results = by_id(doc)
    assert results["1.4.1"]["status"] == "WAIVED"
    assert results["1.4.1"]["waiver"]["status"] == "FAIL"  # what the check itself says
    assert results["1.4.1"]["waiver"]["owner"] == "alice@example.com"
    assert "waived by alice@example.com until" in results["1.4.1"]["reason"]
    assert results["1.3.2"]["status"] == "WAIVED"
    assert results["1.2.15"]["status"] == "FAIL"  # expired: the real status, with a note
    assert "expired on" in results["1.2.15"]["reason"] and results["1.2.15"]["waiver"]["expired"]
    assert results["1.2.16"]["status"] == "FAIL" and results["1.2.16"]["waiver"] is None
    assert doc["summary"]["WAIVED"] == 2
    assert "1.3.2: the waiver by bob expires in 5 days" in err
    assert "1.2.15: the waiver by carol expired on" in err
    assert "1.4.1" not in err  # 90 days away: nothing to say
    assert code == 1  # other checks still fail

    # A waived check alone does not fail the exit code; the same check unwaived does.
    code, doc, _err = scan(capsys, kubeadm_node, cfg, "--check", "1.4.1")
    assert code == 0 and by_id(doc)["1.4.1"]["status"] == "WAIVED"
    code, _doc, _err = scan(capsys, kubeadm_node, config(tmp_path), "--check", "1.4.1")
    assert code == 1


def test_junit_and_table_say_waived_with_the_reason(capsys, kubeadm_node, tmp_path):
    cfg = config(tmp_path, waiver("1.4.1", 90))
    code, out, _err = run_cli(
        capsys, "--config", str(cfg), "--root", str(kubeadm_node), "scan", "--format", "junit"
    )
    suite = ET.fromstring(out)
    case = next(c for c in suite.iter("testcase") if c.get("name", "").startswith("1.4.1 "))
    skipped = case.find("skipped")
    assert skipped is not None and skipped.get("type") == "WAIVED"
    assert "the SIEM pipeline owns it <b>" in skipped.get("message", "")
    assert case.find("failure") is None
    code, out, _err = run_cli(capsys, "--config", str(cfg), "--root", str(kubeadm_node), "scan")
    line = next(ln for ln in out.splitlines() if " 1.4.1 " in ln)
    assert line.startswith("WAIVED") and "waived by alice@example.com" in line
    assert "1 WAIVED" in out


def test_a_waived_check_is_never_planned(capsys, kubeadm_node, tmp_path):
    cfg = config(tmp_path, waiver("1.4.1", 90))
    base = ("--config", str(cfg), "--root", str(kubeadm_node))
    code, out, _err = run_cli(capsys, *base, "plan", "--all-failing")
    assert code == 0
    assert "not planned: 1.4.1: waived by alice@example.com" in out
    assert "kube-scheduler.yaml" not in out.split("not planned")[0]  # no change to its file
    code, out, _err = run_cli(capsys, *base, "apply", "1.4.1", "--yes", "--no-health-gate")
    assert code == 0 and "Nothing to change." in out
    assert "--profiling=false" not in (kubeadm_node / SCHEDULER).read_text()


@pytest.mark.parametrize(
    ("entry", "problem"),
    [
        (waiver("9.9.9", 10), "waiver 1: unknown check id '9.9.9'"),
        (waiver("1.4.1", 10, expires='"31/12/2026"'), "expires '31/12/2026' is not a date"),
        (waiver("1.4.1", 10, expires="2026-12-31T10:00:00"), "not a time"),
        ('[[waivers]]\ncheck = "1.4.1"\nreason = "x"\nowner = "y"\n', "expires is missing"),
        (waiver("1.4.1", 10) + "colour = 1\n", "unknown key 'colour'"),
        ("waivers = 3\n", "waivers must be an array of tables"),
    ],
)
def test_a_bad_waiver_is_exit_2_in_one_line(capsys, kubeadm_node, tmp_path, entry, problem):
    cfg = config(tmp_path, entry)
    code, out, err = run_cli(capsys, "--config", str(cfg), "--root", str(kubeadm_node), "scan")
    assert code == 2 and out == ""
    assert err.count("\n") == 1, err
    assert problem in err and str(cfg) in err


def test_a_malformed_toml_date_is_exit_2(capsys, kubeadm_node, tmp_path):
    cfg = config(tmp_path, waiver("1.4.1", 10, expires="2026-13-45"))
    code, _out, err = run_cli(capsys, "--config", str(cfg), "--root", str(kubeadm_node), "scan")
    assert code == 2 and err.count("\n") == 1 and str(cfg) in err


# -- drift -----------------------------------------------------------------------------------
def baseline_of(capsys, node: Path, path: Path) -> Path:
    _code, out, _err = run_cli(capsys, "--root", str(node), "scan", "--format", "json")
    path.write_text(out)
    return path


def test_an_identical_baseline_exits_0(capsys, kubeadm_node, tmp_path):
    baseline = baseline_of(capsys, kubeadm_node, tmp_path / "before.json")
    code, out, _err = run_cli(
        capsys, "--root", str(kubeadm_node), "scan", "--baseline", str(baseline)
    )
    assert code == 0  # the node fails checks, but none newly: nothing drifted
    assert "0 regressions, 0 improved, 0 other changes" in out


def test_a_regression_exits_1_and_names_what_changed(capsys, kubeadm_node, tmp_path):
    assert apply_offline(kubeadm_node, "1.4.1", "1.3.2") == 0
    baseline = baseline_of(capsys, kubeadm_node, tmp_path / "hardened.json")
    path = kubeadm_node / SCHEDULER  # someone reverts the fix by hand
    path.write_text(path.read_text().replace("--profiling=false", "--profiling=true"))
    code, out, _err = run_cli(
        capsys, "--root", str(kubeadm_node), "scan", "--baseline", str(baseline)
    )
    assert code == 1
    drift = out.split("Drift against", 1)[1]
    assert "1 regression," in drift
    assert "REGRESSION  1.4.1" in drift and "PASS -> FAIL" in drift
    assert "file: was --profiling=false, now --profiling=true" in drift
    assert "1.3.2" not in drift  # still fixed

    code, out, _err = run_cli(
        capsys,
        "--root",
        str(kubeadm_node),
        "scan",
        "--format",
        "json",
        "--baseline",
        str(baseline),
    )
    doc = json.loads(out)
    assert code == 1
    assert [r["id"] for r in doc["drift"]["regressions"]] == ["1.4.1"]
    assert doc["drift"]["regressions"][0]["changes"] == [
        "file: was --profiling=false, now --profiling=true"
    ]


def test_improvements_are_listed_and_do_not_fail(capsys, kubeadm_node, tmp_path):
    baseline = baseline_of(capsys, kubeadm_node, tmp_path / "before.json")
    assert apply_offline(kubeadm_node, "1.4.1") == 0
    code, out, _err = run_cli(
        capsys, "--root", str(kubeadm_node), "scan", "--baseline", str(baseline)
    )
    assert code == 0
    assert "IMPROVED    1.4.1" in out and "FAIL -> PASS" in out


@pytest.mark.parametrize("content", ["{}", "[1]", '{"results": [{"id": "1.1.1"}]}', "nope"])
def test_a_baseline_that_is_not_a_scan_is_exit_2(capsys, kubeadm_node, tmp_path, content):
    baseline = tmp_path / "bad.json"
    baseline.write_text(content)
    code, out, err = run_cli(
        capsys, "--root", str(kubeadm_node), "scan", "--baseline", str(baseline)
    )
    assert code == 2 and out == "" and err.count("\n") == 1 and str(baseline) in err
