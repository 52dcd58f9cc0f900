"""`scan --from-kube-bench`: real kube-bench reports mapped onto the cis-1.12 catalog."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.conftest import run_cli

REPORTS = Path(__file__).parents[1] / "data" / "kube-bench"


def imported(capsys, name: str) -> dict:
    code, out, err = run_cli(
        capsys, "scan", "--from-kube-bench", str(REPORTS / name), "--format", "json"
    )
    assert err == ""
    doc = json.loads(out)
    doc["exit_code"] = code
    return doc


def by_id(doc: dict) -> dict[str, dict]:
    return {r["id"]: r for r in doc["results"]}


def test_same_version_report_maps_by_id(capsys):
    doc = imported(capsys, "minikube-node-policies-cis-1.12.json")
    got = by_id(doc)
    assert got["4.1.1"]["status"] == "FAIL"
    assert got["4.1.9"]["status"] == "FAIL"
    assert got["4.2.1"]["status"] == "PASS"
    assert got["4.2.14"]["status"] == "WARN"
    assert got["1.2.15"]["status"] == "SKIP"  # the report holds no master section
    assert got["1.2.15"]["reason"] == "not in the kube-bench report"
    assert doc["source"].startswith("kube-bench report")
    assert doc["exit_code"] == 1


@pytest.mark.parametrize(
    ("ours", "theirs", "status"),
    [
        ("1.2.15", "1.2.18", "FAIL"),  # --profiling: renumbered between versions
        ("1.2.5", "1.2.6", "FAIL"),  # --kubelet-certificate-authority
        ("1.2.12", "1.2.14", "PASS"),  # ServiceAccount: same flag as 1.2.13, told apart by name
        ("1.2.13", "1.2.15", "PASS"),
        ("1.3.3", "1.3.3", "PASS"),  # "is not false" is "is true"
        ("1.2.28", "1.2.31", "WARN"),  # encryption providers
        ("1.1.12", "1.1.12", "FAIL"),
        ("4.2.6", "4.2.7", "PASS"),  # makeIPTablesUtilChains moved
    ],
)
def test_other_version_maps_by_what_is_audited(capsys, ours, theirs, status):
    got = by_id(imported(capsys, "minikube-master-cis-1.23.json"))[ours]
    assert got["reason"].startswith(f"kube-bench cis-1.23 {theirs}:")
    assert got["status"] == status


def test_a_check_whose_meaning_flipped_is_not_mapped(capsys):
    # cis-1.23 1.2.3 wants DenyServiceExternalIPs NOT set; cis-1.12 1.2.3 wants it set.
    got = by_id(imported(capsys, "minikube-master-cis-1.23.json"))["1.2.3"]
    assert got["status"] == "SKIP"


def test_legacy_bare_array_report(capsys):
    got = by_id(imported(capsys, "eks-node-legacy-array.json"))
    assert got["4.2.1"]["status"] == "PASS"
    assert got["4.2.1"]["reason"].startswith("kube-bench eks-1.0 3.2.1:")


@pytest.mark.parametrize(
    ("content", "problem"),
    [
        ("{not json", "kube-bench report is not JSON (line 1)"),
        ('{"Totals": {}}', "not a kube-bench --json report"),
        ("[1, 2]", "not a kube-bench --json report"),
    ],
)
def test_bad_reports(capsys, tmp_path, content, problem):
    report = tmp_path / "r.json"
    report.write_text(content)
    code, out, err = run_cli(capsys, "scan", "--from-kube-bench", str(report))
    assert code == 2 and out == ""
    assert err.strip().startswith(f"cis-tui: error: {report}: {problem}")


def test_missing_report(capsys, tmp_path):
    code, _, err = run_cli(capsys, "scan", "--from-kube-bench", str(tmp_path / "none.json"))
    assert code == 2 and "kube-bench report not found" in err
