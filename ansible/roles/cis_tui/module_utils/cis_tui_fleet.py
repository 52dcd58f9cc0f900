"""What the cis_tui modules share: reading cis-tui's JSON, the fleet report and the fleet scan.

Pure functions over plain data (no Ansible imports), so they are tested without a playbook.
Runs on the node (the apply and scan modules) and on the controller (the report module), with
whatever Python those have: standard library only.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

#: Per-node outcomes in the fleet report.
COMMITTED = "committed"  # the plan's changes were applied and passed the health gate
UNCHANGED = "unchanged"  # every check of the plan already passed: nothing to do
WOULD_CHANGE = "would-change"  # check mode: the plan would change this node
FAILED = "failed"  # cis-tui refused, rolled back, or could not restore health
NOT_REACHED = "not reached"  # the rollout stopped before this node: untouched

#: API server flags naming companion files whose content must match on every node.
SHARED_FILE_FLAGS = (
    "--encryption-provider-config",
    "--admission-control-config-file",
    "--audit-policy-file",
    "--authentication-config",
)


def json_lines(text: str) -> list[dict[str, Any]]:
    """The JSON objects of `apply --format json` output (other lines ignored)."""
    out = []
    for line in text.splitlines():
        line = line.strip()
        if line.startswith("{"):
            try:
                value = json.loads(line)
            except ValueError:
                continue
            if isinstance(value, dict):
                out.append(value)
    return out


def apply_files(events: Iterable[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """Per file of an apply: its outcome, message and backup id, from the progress events."""
    files: dict[str, dict[str, Any]] = {}
    for event in events:
        label = str(event.get("file") or "")
        if not label:
            continue
        entry = files.setdefault(
            label,
            {"file": label, "component": event.get("component", ""), "outcome": None},
        )
        if event.get("kind") == "step" and event.get("step") == "backup" and event.get("ok"):
            entry["backup"] = event.get("message")
        elif event.get("kind") == "outcome":
            entry["outcome"] = event.get("outcome")
            entry["message"] = event.get("message", "")
        elif event.get("kind") == "skipped":
            entry["outcome"] = "skipped"
            entry["message"] = event.get("message", "")
    return list(files.values())


def not_planned(plan_doc: Mapping[str, Any]) -> list[str]:
    """Checks of the saved plan this node would not fix, with why (already passing is fine)."""
    return [
        f"{s['id']}: {s['reason']}"
        for s in plan_doc.get("skipped", [])
        if s.get("reason") != "already passes"
    ]


def plan_diff(plan_doc: Mapping[str, Any]) -> str:
    return "".join(f.get("diff", "") for f in plan_doc.get("files", []))


def node_entry(host: str, result: Mapping[str, Any] | None) -> dict[str, Any]:
    """One node of the fleet report, from the apply module's result (None: not reached)."""
    if not result:
        return {
            "node": host,
            "outcome": NOT_REACHED,
            "changed": False,
            "checks_fixed": [],
            "backups": [],
            "failures": [],
            "files": [],
        }
    outcome = result.get("outcome")
    failures = list(result.get("failures") or [])
    if result.get("failed"):
        outcome = FAILED if outcome in (None, COMMITTED, UNCHANGED, WOULD_CHANGE) else outcome
        if not failures:
            failures = [str(result.get("msg") or "failed")]
    return {
        "node": host,
        "outcome": outcome or FAILED,
        "changed": bool(result.get("changed")),
        "checks_fixed": list(result.get("checks_fixed") or []),
        "would_fix": list(result.get("would_fix") or []),
        "backups": list(result.get("backups") or []),
        "failures": failures,
        "files": list(result.get("files") or []),
        "exit_code": result.get("exit_code"),
    }


def fleet_report(
    hosts: Sequence[str],
    results: Sequence[Mapping[str, Any] | None],
    plan: str,
    check_mode: bool,
) -> dict[str, Any]:
    """The fleet report: one entry per node in rollout order, and where the rollout stopped."""
    nodes = [node_entry(h, r) for h, r in zip(hosts, results)]
    stopped = next((n["node"] for n in nodes if n["outcome"] not in _GOOD), None)
    reached = [n for n in nodes if n["outcome"] != NOT_REACHED]
    if stopped is not None:
        status = f"stopped at {stopped}"
    elif len(reached) < len(nodes):
        status = "in progress"
    else:
        status = "complete"
    return {
        "schema_version": 1,
        "plan": plan,
        "check_mode": check_mode,
        "status": status,
        "stopped_at": stopped,
        "changed": [n["node"] for n in nodes if n["changed"]],
        "nodes": nodes,
    }


_GOOD = (COMMITTED, UNCHANGED, WOULD_CHANGE, NOT_REACHED)


def render_table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    """Columns as wide as their widest cell; the last column is not padded."""
    widths = [max(len(r[i]) for r in (header, *rows)) for i in range(len(header) - 1)]
    lines = []
    for row in (header, *rows):
        cells = [f"{c:<{w}}" for c, w in zip(row, widths)]
        lines.append("  ".join([*cells, row[-1]]).rstrip())
    return "\n".join(lines)


def render_fleet_report(report: Mapping[str, Any]) -> str:
    mode = " (check mode: nothing was changed)" if report["check_mode"] else ""
    lines = [f"cis-tui fleet rollout of {report['plan']}: {report['status']}{mode}", ""]
    rows = []
    for node in report["nodes"]:
        fixed = node["checks_fixed"] or node.get("would_fix") or []
        rows.append(
            [
                node["node"],
                node["outcome"],
                ", ".join(fixed) or "-",
                ", ".join(node["backups"]) or "-",
                "; ".join(node["failures"]) or "-",
            ]
        )
    header = ["node", "outcome", "checks fixed", "backups", "failures"]
    if report["check_mode"]:
        header[2] = "checks it would fix"
    lines.append(render_table(header, rows))
    if report["stopped_at"]:
        lines += [
            "",
            f"The rollout stopped at {report['stopped_at']}: cis-tui rolled back its failing "
            "change there (see failures); nodes after it were not touched. Fix the cause, "
            "then run the playbook again: nodes that already pass are left unchanged.",
        ]
    return "\n".join(lines) + "\n"


# -- fleet scan ------------------------------------------------------------------------------

#: `--f=/path`, or `--f` then `/path` as the next item of the YAML list (an absolute path).
_FLAG_VALUE = r"(?:=|\s+(?:-\s+)?)[\"']?(/[^\s\"']*)"


def named_files(manifest_text: str) -> dict[str, str]:
    """The files the API server manifest names with SHARED_FILE_FLAGS (either flag style)."""
    found = {}
    for flag in SHARED_FILE_FLAGS:
        for match in re.finditer(re.escape(flag) + _FLAG_VALUE, manifest_text):
            found[flag] = match.group(1)  # the last one wins, as in the flag library
    return found


def file_digest(path: str) -> str | None:
    try:
        with open(path, "rb") as fh:
            return hashlib.sha256(fh.read()).hexdigest()
    except OSError:
        return None


def fleet_scan(
    hosts: Sequence[str], results: Sequence[Mapping[str, Any] | None]
) -> tuple[dict[str, Any], list[str], str]:
    """(the fleet scan file, the differences between nodes, the node x check table).

    The file is `{"nodes": {host: <scan --format json>}}`, nothing else (other tools read it);
    a node whose scan failed is left out of it and named in the differences.
    """
    scans: dict[str, Mapping[str, Any]] = {}
    files: dict[str, Mapping[str, Any]] = {}
    failed: dict[str, str] = {}
    for host, result in zip(hosts, results):
        if result and not result.get("failed") and isinstance(result.get("scan"), dict):
            scans[host] = result["scan"]
            files[host] = result.get("files") or {}
        else:
            failed[host] = str((result or {}).get("msg") or "not scanned")
    order: list[str] = []
    status: dict[str, dict[str, str]] = {}
    for host, scan in scans.items():
        for r in scan.get("results", []):
            if r["id"] not in status:
                order.append(r["id"])
                status[r["id"]] = {}
            status[r["id"]][host] = r["status"]
    names = list(scans)
    differences = [f"{h}: scan failed: {why}" for h, why in failed.items()]
    rows = []
    for check_id in order:
        cells = [status[check_id].get(h, "-") for h in names]
        differ = len(set(cells)) > 1
        rows.append([check_id, *cells, "<- differs" if differ else ""])
        if differ:
            differences.append(
                f"{check_id}: " + ", ".join(f"{h} {c}" for h, c in zip(names, cells))
            )
    for flag in SHARED_FILE_FLAGS:
        digests = {h: (files[h].get(flag) or {}).get("sha256") for h in names}
        named = {h: (files[h].get(flag) or {}).get("path") for h in names}
        if not any(named.values()):
            continue
        cells = [
            (d[:12] if d else ("unreadable" if named[h] else "not set")) for h, d in digests.items()
        ]
        differ = len(set(cells)) > 1
        rows.append([f"{flag} file", *cells, "<- differs" if differ else ""])
        if differ:
            differences.append(
                f"the {flag} file differs between nodes: "
                + ", ".join(f"{h} {c}" for h, c in zip(names, cells))
            )
    table = render_table(["check", *names, ""], rows) if names else "(no node was scanned)"
    head = f"cis-tui fleet scan of {len(hosts)} nodes: "
    head += f"{len(differences)} differences" if differences else "every node scans the same"
    text = "\n".join([head, "", table, "", *(f"- {d}" for d in differences)]).rstrip() + "\n"
    return {"nodes": dict(scans)}, differences, text
