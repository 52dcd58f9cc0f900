"""The role's pure helpers (ansible/roles/cis_tui/module_utils/cis_tui_fleet.py), no playbook."""

from __future__ import annotations

import importlib.util
import re
from pathlib import Path

PATH = Path(__file__).resolve().parents[2] / "ansible/roles/cis_tui/module_utils/cis_tui_fleet.py"
spec = importlib.util.spec_from_file_location("cis_tui_fleet", PATH)
assert spec is not None and spec.loader is not None
fleet = importlib.util.module_from_spec(spec)
spec.loader.exec_module(fleet)


def scan(*statuses: tuple[str, str]) -> dict:
    return {"results": [{"id": i, "status": s} for i, s in statuses]}


def test_fleet_scan_points_out_a_different_encryption_key_even_when_every_node_passes():
    enc = "--encryption-provider-config"
    results = [
        {"scan": scan(("1.2.27", "PASS")), "files": {enc: {"path": "/e", "sha256": "a" * 64}}},
        {"scan": scan(("1.2.27", "PASS")), "files": {enc: {"path": "/e", "sha256": "b" * 64}}},
        {"failed": True, "msg": "unreachable"},
    ]
    doc, differences, text = fleet.fleet_scan(["cp1", "cp2", "cp3"], results)
    assert doc == {"nodes": {"cp1": results[0]["scan"], "cp2": results[1]["scan"]}}
    assert differences == [
        "cp3: scan failed: unreachable",
        f"the {enc} file differs between nodes: cp1 {'a' * 12}, cp2 {'b' * 12}",
    ]
    assert re.search(r"^1\.2\.27\s+PASS\s+PASS$", text, re.M)


def test_named_files_reads_both_flag_styles():
    text = (
        "    - --audit-policy-file=/etc/a.yaml\n    - --encryption-provider-config\n    - /e.yaml\n"
    )
    assert fleet.named_files(text) == {
        "--encryption-provider-config": "/e.yaml",
        "--audit-policy-file": "/etc/a.yaml",
    }


def test_fleet_report_while_the_rollout_runs_and_after_it_stopped():
    ok = {"changed": True, "outcome": "committed", "checks_fixed": ["1.2.15"], "backups": ["b1"]}
    report = fleet.fleet_report(["a", "b", "c"], [ok, {}, {}], "p.yaml", False)
    assert report["status"] == "in progress" and report["stopped_at"] is None
    bad = {"failed": True, "outcome": "rolled-back", "msg": "cis-tui apply exited 1"}
    report = fleet.fleet_report(["a", "b", "c"], [ok, bad, {}], "p.yaml", False)
    assert report["status"] == "stopped at b"
    assert [n["outcome"] for n in report["nodes"]] == ["committed", "rolled-back", "not reached"]
    assert report["nodes"][1]["failures"] == ["cis-tui apply exited 1"]
    assert "The rollout stopped at b" in fleet.render_fleet_report(report)
