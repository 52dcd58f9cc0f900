"""The report as Markdown for a ticket: the same facts as the HTML, in tables and lists.

Text read from the node is escaped for Markdown and for the HTML a Markdown renderer passes
through (`<script>` stays text); diffs go in code fences longer than any backtick run in them.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence

from cis_tui import __version__
from cis_tui.reporting.model import (
    FleetReport,
    History,
    NodeReport,
    Transaction,
    WaiverRow,
    utc,
)

#: Characters that mean something inside a line (a line never starts with read text here).
_SPECIAL = re.compile(r"([\\`*_\[\]|~])")


def md(value: object) -> str:
    """One line of literal text: Markdown and HTML characters escaped, line breaks joined."""
    text = " ".join(("" if value is None else str(value)).split())
    text = text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
    return _SPECIAL.sub(r"\\\1", text)


def fence(text: str, lang: str = "") -> str:
    """A fenced code block that no backtick run inside `text` can close."""
    longest = max((len(m) for m in re.findall(r"`+", text)), default=0)
    ticks = "`" * max(3, longest + 1)
    return f"{ticks}{lang}\n{text.rstrip(chr(10))}\n{ticks}"


def _table(header: Sequence[str], rows: Iterable[Sequence[str]]) -> str:
    """Cells are escaped already."""
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return "\n".join(lines)


def _counts(counts: dict[str, int]) -> str:
    return ", ".join(f"{n} {s}" for s, n in counts.items() if n) or "no checks"


def _waivers(rows: Sequence[WaiverRow]) -> str:
    if not rows:
        return "No waivers in the config."
    return _table(
        ("Check", "State", "Owner", "Expires", "Nodes", "Reason"),
        (
            (
                md(r.waiver.check),
                md(r.state),
                md(r.waiver.owner),
                md(r.when),
                md(", ".join(r.waiver.nodes) or "every node"),
                md(r.waiver.reason),
            )
            for r in rows
        ),
    )


def _transaction(tx: Transaction) -> str:
    when = utc(tx.started) if tx.started else "unknown time"
    lines = [
        f"### {md(when)} · {md(tx.file)} · {md(tx.outcome.upper())}",
        "",
        f"- **Kind:** {md(tx.kind + (f' of backup {tx.restores}' if tx.restores else ''))}",
        f"- **Checks:** {md(', '.join(tx.checks) or '-')}",
        f"- **Backup:** {md(tx.backup_id or '-')} · **transaction:** {md(tx.txid or '-')}",
        f"- **{md(tx.component)} PID:** {md(tx.old_pid or 'not running')} → "
        f"{md(tx.new_pid or 'no new process')}",
    ]
    if tx.restart:
        lines.append(f"- **Restart evidence:** {md(tx.restart)}")
    if not tx.gates:
        lines.append("- **Health gate:** none (offline tree, or nothing restarts)")
    for g in tx.gates:
        verdict = {True: "healthy", False: "FAILED", None: "unfinished"}[g.ok]
        parts = [f"{g.component} ({g.phase}): {verdict}", g.result, f"{g.polls} probes"]
        if g.first_healthy is not None:
            parts.append(f"first healthy after {g.first_healthy:.2f} s")
        if g.stable_after is not None:
            parts.append(f"stable after {g.stable_after:.2f} s")
        if g.latency:
            parts.append(
                f"latency min {g.latency[0]:g} / median {g.latency[1]:g} / max {g.latency[2]:g} ms"
            )
        lines.append(f"- **Health gate:** {md('; '.join(p for p in parts if p))}")
    for a in tx.audit:
        verdict = {True: "pass", False: "FAIL", None: "checked"}[a.ok]
        lines.append(f"- **Audit re-check:** {md(verdict)}: {md(a.result)}")
    if tx.rollback_reason:
        lines.append(f"- **Rolled back because:** {md(tx.rollback_reason)}")
    lines.append(f"- **Outcome:** {md(tx.outcome.upper())}: {md(tx.message)}")
    lines.extend(f"- **Note:** {md(n)}" for n in tx.notes)
    lines += ["", fence(tx.diff or "(no content diff: file modes and owners only)", "diff")]
    return "\n".join(lines)


def _history(history: History | None) -> str:
    if history is None:
        return "Not included: these results come from a kube-bench report."
    if history.problem:
        return f"**The change history could not be read:** {md(history.problem)}"
    if not history.transactions:
        out = f"No change recorded in {md(history.source)}."
    else:
        out = f"{len(history.transactions)} transaction(s) from {md(history.source)}, newest first."
        out += "\n\n" + "\n\n".join(_transaction(t) for t in history.transactions)
    if history.unrecorded:
        out += "\n\n### Backups without a history record\n\n" + _table(
            ("Backup", "Time", "File", "Checks", "Outcome"),
            (
                (md(b.id), md(b.time), md(b.path), md(", ".join(b.checks) or "-"), md(b.outcome))
                for b in history.unrecorded
            ),
        )
    return out


def render_node_markdown(report: NodeReport) -> str:
    scan, settings = report.scan, report.scan.settings
    versions = scan.versions.label if scan.versions is not None else "Kubernetes version unknown"
    out = [
        f"# CIS Kubernetes Benchmark report: {md(report.host)}",
        "",
        _table(
            ("", ""),
            (
                ("Source", md(scan.source)),
                ("Node root", md(settings.layout.root)),
                ("Kubernetes", md(versions)),
                ("Benchmark", md(settings.benchmark)),
                ("Benchmark chosen by", md(settings.benchmark_chosen_by or "given")),
                ("Live processes", "read" if scan.live else "none"),
                ("Report time", md(report.generated.strftime("%Y-%m-%d %H:%M:%S %Z"))),
            ),
        ),
        "",
        "## Summary",
        "",
        _table(
            ("Section", "Result"),
            ((md(f"{s.id} {s.title}"), md(_counts(s.counts))) for s in report.sections),
        ),
    ]
    for stray in scan.strays:
        label = "FINDING" if stray.serious else "NOTE"
        out.append(f"\n- **{label}** {md(stray.path)}: {md(stray.message)} {md(stray.remedy)}")
    out += ["", "## Waivers", "", _waivers(report.waivers)]
    out += [f"- {md(w)}" for w in scan.warnings]
    out += ["", "## Checks", ""]
    for section in report.sections:
        out += [f"### {md(section.id)} {md(section.title)}", ""]
        out.append(
            _table(
                ("Status", "ID", "Check", "Expected", "File", "Running process", "Why"),
                (
                    (
                        f"**{r.status.value}**",
                        md(r.id),
                        md(r.check.title),
                        md(r.expected),
                        md(r.file_value or "-"),
                        md(r.live_value or "-"),
                        md(r.reason),
                    )
                    for r in section.results
                ),
            )
        )
        out.append("")
        for r in section.results:
            rem = r.check.remediation
            if r.status.value in {"FAIL", "WARN", "ERROR"} and (rem.summary or rem.risks):
                out.append(f"- **{md(r.id)} remediation:** {md(rem.summary)}")
                out += [f"  - risk: {md(x)}" for x in rem.risks]
        out.append("")
    out += ["## Change history", "", _history(report.history)]
    out += ["", f"_Written by cis-tui {md(__version__)}._", ""]
    return "\n".join(out)


def render_fleet_markdown(fleet: FleetReport) -> str:
    differing = set(fleet.differing())
    out = [
        "# CIS Kubernetes Benchmark fleet report",
        "",
        f"{len(fleet.nodes)} nodes from {md(fleet.source)}.",
        "",
        _table(
            ("Node", "Benchmark", "Kubernetes", "Result"),
            (
                (md(n.host), md(n.benchmark), md(n.versions), md(_counts(n.counts)))
                for n in fleet.nodes
            ),
        ),
        "",
        "## Checks that differ between nodes",
        "",
    ]
    rows = [
        (
            md(check_id),
            md(title),
            *(
                md(n.entries[check_id].status) if check_id in n.entries else "absent"
                for n in fleet.nodes
            ),
        )
        for check_id, title in fleet.checks
        if check_id in differing
    ]
    header = ("Check", "Title", *(md(n.host) for n in fleet.nodes))
    out.append(_table(header, rows) if rows else "Every node has the same status on every check.")
    out.append("")
    return "\n".join(out)
