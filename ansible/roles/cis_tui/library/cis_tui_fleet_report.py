#!/usr/bin/python
"""Ansible module (run on the controller): write the fleet report or the fleet scan."""

from __future__ import annotations

import json
import os
import tempfile
from typing import Any

from ansible.module_utils.basic import AnsibleModule
from ansible.module_utils.cis_tui_fleet import fleet_report, fleet_scan, render_fleet_report

DOCUMENTATION = r"""
module: cis_tui_fleet_report
short_description: Write cis-tui's fleet report (rollout) or fleet scan as JSON and a table
options:
  mode: {description: What to write., type: str, choices: [rollout, scan], required: true}
  hosts: {description: The nodes in rollout order., type: list, elements: str, required: true}
  results: {description: Each node's module result ({} when none)., type: list, required: true}
  dest: {description: Directory for the files., type: path, required: true}
  plan: {description: The plan file (rollout)., type: str, default: ""}
  check_mode: {description: The rollout ran in check mode., type: bool, default: false}
"""


def _write(path: str, text: str) -> None:
    """Replace `path` atomically: a reader never sees half a report."""
    fd, tmp = tempfile.mkstemp(dir=os.path.dirname(path), prefix=".cis-tui-report.")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(text)
        os.chmod(tmp, 0o640)
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def main() -> None:
    module = AnsibleModule(
        argument_spec={
            "mode": {"type": "str", "choices": ["rollout", "scan"], "required": True},
            "hosts": {"type": "list", "elements": "str", "required": True},
            "results": {"type": "list", "elements": "raw", "required": True},
            "dest": {"type": "path", "required": True},
            "plan": {"type": "str", "default": ""},
            "check_mode": {"type": "bool", "default": False},
        },
        supports_check_mode=True,
    )
    p = module.params
    hosts = p["hosts"]
    results: list[Any] = [r if isinstance(r, dict) else None for r in p["results"]]
    if len(results) != len(hosts):
        module.fail_json(msg="hosts and results differ in length")
    os.makedirs(p["dest"], mode=0o750, exist_ok=True)
    if p["mode"] == "rollout":
        report = fleet_report(hosts, results, p["plan"], p["check_mode"])
        text = render_fleet_report(report)
        names = ("fleet-report.json", "fleet-report.txt")
        doc: dict[str, Any] = report
        extra: dict[str, Any] = {"report": report}
    else:
        doc, differences, text = fleet_scan(hosts, results)
        names = ("fleet-scan.json", "fleet-scan.txt")
        extra = {"differences": differences}
    json_path, text_path = (os.path.join(p["dest"], n) for n in names)
    _write(json_path, json.dumps(doc, indent=2) + "\n")
    _write(text_path, text)
    module.exit_json(changed=False, json=json_path, text=text_path, table=text, **extra)


if __name__ == "__main__":
    main()
