#!/usr/bin/python
"""Ansible module: apply a saved cis-tui plan on this node (check mode: show its diff)."""

from __future__ import annotations

import json
import os
import shlex
import shutil
import tempfile
from typing import Any

from ansible.module_utils.basic import AnsibleModule
from ansible.module_utils.cis_tui_fleet import (
    COMMITTED,
    FAILED,
    UNCHANGED,
    WOULD_CHANGE,
    apply_files,
    json_lines,
    not_planned,
    plan_diff,
)

DOCUMENTATION = r"""
module: cis_tui_apply
short_description: Apply a saved cis-tui plan on one control-plane node, health-gated
description:
  - Re-plans the saved plan against this node (C(cis-tui plan --plan --format json)); if it
    changes anything, runs C(cis-tui apply --plan --yes --format json) with the health gate on.
    A failing change is rolled back by cis-tui and the module fails.
  - Check mode runs the planning step only, and returns the plan's diff.
  - C(changed) is false when every check of the plan already passes on the node.
  - The plan and its companion bundle are written to a private directory on the node (0700,
    files 0600) for the run and removed afterwards.
options:
  plan: {description: The plan file's content., type: str, required: true}
  plan_name: {description: The plan's name in messages., type: str, default: plan.yaml}
  companions:
    description: The companion bundle, file name to content (never logged).
    type: dict
  config: {description: cis-tui's --config for this node., type: path}
  command: {description: How to run cis-tui (split like a shell)., type: str, default: cis-tui}
  timeout: {description: Health-gate timeout per component in seconds., type: float}
"""


def _write(path: str, text: str) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8", newline="") as fh:
        fh.write(text)


def stage(directory: str, plan: str, companions: dict[str, str] | None) -> list[str]:
    """Write the plan (and bundle) into `directory`; cis-tui's --plan/--companions options."""
    _write(os.path.join(directory, "plan.yaml"), plan)
    options = ["--plan", os.path.join(directory, "plan.yaml")]
    if companions:
        bundle = os.path.join(directory, "companions")
        os.mkdir(bundle, 0o700)
        for name, text in companions.items():
            if not name or "/" in name or name.startswith("."):
                raise ValueError(f"companion file name {name!r} is not a plain file name")
            _write(os.path.join(bundle, name), text)
        options += ["--companions", bundle]
    return options


def main() -> None:
    module = AnsibleModule(
        argument_spec={
            "plan": {"type": "str", "required": True},
            "plan_name": {"type": "str", "default": "plan.yaml"},
            "companions": {"type": "dict", "no_log": True},
            "config": {"type": "path"},
            "command": {"type": "str", "default": "cis-tui"},
            "timeout": {"type": "float"},
        },
        supports_check_mode=True,
    )
    directory = tempfile.mkdtemp(prefix="cis-tui-rollout.")  # 0700
    try:
        run(module, directory)
    finally:
        shutil.rmtree(directory, ignore_errors=True)


def run(module: AnsibleModule, directory: str) -> None:
    p = module.params
    base = shlex.split(p["command"])
    if p["config"]:
        base += ["--config", p["config"]]
    try:
        source = stage(directory, p["plan"], p["companions"])
    except (OSError, ValueError) as exc:
        module.fail_json(msg=f"cannot stage the plan on the node: {exc}", outcome=FAILED)
    result: dict[str, Any] = {
        "changed": False,
        "checks_fixed": [],
        "backups": [],
        "failures": [],
        "files": [],
    }

    rc, out, err = module.run_command([*base, "plan", *source, "--format", "json"])
    try:
        plan_doc = json.loads(out)
    except ValueError:
        plan_doc = None
    if rc not in (0, 1) or not isinstance(plan_doc, dict):
        why = err.strip() or out.strip() or f"cis-tui plan exited {rc}"
        module.fail_json(msg=why, outcome=FAILED, exit_code=rc, **{**result, "failures": [why]})
    refused = not_planned(plan_doc)
    if refused:  # the node would not end up like the others: touch nothing
        why = "not planned on this node: " + "; ".join(refused)
        module.fail_json(msg=why, outcome=FAILED, exit_code=rc, **{**result, "failures": [why]})
    would_fix = [c for f in plan_doc["files"] for c in f["checks"]]
    result["would_fix"] = sorted(set(would_fix), key=would_fix.index)
    if not plan_doc["files"]:
        module.exit_json(outcome=UNCHANGED, msg="every check of the plan already passes", **result)
    result["diff"] = {
        "before_header": f"{p['plan_name']} (this node now)",
        "after_header": f"{p['plan_name']} (this node after apply)",
        "prepared": plan_diff(plan_doc),
    }
    if module.check_mode:
        module.exit_json(**{**result, "changed": True, "outcome": WOULD_CHANGE})

    command = [*base, "apply", *source, "--yes", "--format", "json"]
    if p["timeout"]:
        command += ["--timeout", str(p["timeout"])]
    rc, out, err = module.run_command(command)
    events = json_lines(out)
    files = apply_files(events)
    result["files"] = files
    result["exit_code"] = rc
    result["backups"] = [f["backup"] for f in files if f.get("backup")]
    fixed = [f for f in files if f["outcome"] == COMMITTED]
    doc_checks = {(f["path"] or "file modes and owners"): f["checks"] for f in plan_doc["files"]}
    result["checks_fixed"] = [c for f in fixed for c in doc_checks.get(f["file"], [])]
    result["changed"] = bool(fixed)
    result["failures"] = [
        f"{f['component'] or f['file']}: {f['outcome']}: {f.get('message', '')}"
        for f in files
        if f["outcome"] not in (COMMITTED, None)
    ]
    done = next((e["message"] for e in events if e.get("kind") == "done"), "")
    if rc != 0:
        if err.strip():
            result["failures"].append(err.strip())
        outcome = next((f["outcome"] for f in files if f["outcome"] not in (COMMITTED, None)), "")
        module.fail_json(
            msg=f"cis-tui apply exited {rc}: {done or err.strip()}",
            outcome=outcome or FAILED,
            **result,
        )
    module.exit_json(msg=done, outcome=COMMITTED, **result)


if __name__ == "__main__":
    main()
