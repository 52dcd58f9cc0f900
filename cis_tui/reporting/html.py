"""The report as one self-contained HTML file: inline CSS and SVG, no script, no external
resource; printable, and readable in a terminal browser (every chart has its numbers in text).

Every value that comes from a file, a process, the config or the state directory goes through
`esc` (html.escape, quotes included): text, never markup.
"""

from __future__ import annotations

import html
from collections.abc import Iterable, Sequence

from cis_tui import __version__
from cis_tui.audit.evaluate import Result
from cis_tui.reporting.model import (
    STATUS_SEQUENCE,
    FleetReport,
    History,
    NodeReport,
    Section,
    Transaction,
    WaiverRow,
    utc,
)

#: Fill colours of the chart (the status is always written out too: print and colour-blind).
COLORS = {
    "FAIL": "#c62828",
    "ERROR": "#8e24aa",
    "WARN": "#ef6c00",
    "WAIVED": "#0277bd",
    "PASS": "#2e7d32",
    "SKIP": "#9e9e9e",
}

CSS = """
:root { color-scheme: light; }
body { font-family: system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; margin: 2em auto;
  max-width: 72em; padding: 0 1em; color: #1b1b1b; line-height: 1.4; }
h1 { font-size: 1.6em; margin-bottom: .2em; }
h2 { border-bottom: 2px solid #ccc; padding-bottom: .2em; margin-top: 2em; }
table { border-collapse: collapse; margin: .5em 0; }
th, td { border: 1px solid #ccc; padding: .25em .5em; text-align: left; vertical-align: top; }
th { background: #f2f2f2; }
table.kv th { width: 14em; }
code, pre { font-family: ui-monospace, "DejaVu Sans Mono", monospace; font-size: .9em; }
pre { background: #f7f7f7; border: 1px solid #ddd; padding: .5em; white-space: pre-wrap;
  word-break: break-all; }
.status { font-weight: bold; padding: 0 .3em; border: 1px solid currentColor; }
.s-FAIL, .o-critical { color: #c62828; } .s-ERROR { color: #8e24aa; }
.s-WARN, .o-rolled-back { color: #b45309; } .s-WAIVED { color: #0277bd; }
.s-PASS, .o-committed { color: #2e7d32; } .s-SKIP, .o-skipped { color: #616161; }
.check, .tx { border: 1px solid #ddd; border-left: 6px solid #9e9e9e; padding: .3em .8em;
  margin: .8em 0; }
.check.s-FAIL, .tx.o-critical { border-left-color: #c62828; }
.check.s-WARN, .tx.o-rolled-back { border-left-color: #ef6c00; }
.check.s-PASS, .tx.o-committed { border-left-color: #2e7d32; }
.check.s-WAIVED { border-left-color: #0277bd; } .check.s-ERROR { border-left-color: #8e24aa; }
.check h4, .tx h3 { margin: .3em 0; }
.check, .tx, .check h4 { color: #1b1b1b; }
.add { color: #1b5e20; background: #e8f5e9; } .del { color: #b71c1c; background: #ffebee; }
.hunk { color: #01579b; }
.muted { color: #616161; }
.chart { display: flex; gap: 1em; align-items: center; flex-wrap: wrap; margin: .3em 0; }
.chart h3 { width: 22em; margin: 0; font-size: 1em; }
nav ul ul { columns: 2; }
@media print {
  body { margin: 0; max-width: none; font-size: 10pt; }
  nav { display: none; }
  .check, .tx, .chart, tr { break-inside: avoid; }
  #checks > h2, #history > h2 { break-before: page; }
  a { color: inherit; text-decoration: none; }
}
"""


def esc(value: object) -> str:
    return html.escape("" if value is None else str(value), quote=True)


def _status(status: str) -> str:
    return f'<span class="status s-{esc(status)}">{esc(status)}</span>'


def _kv(rows: Iterable[tuple[str, str]]) -> str:
    """A two-column table; values are HTML already (callers escape)."""
    body = "".join(f"<tr><th>{esc(k)}</th><td>{v}</td></tr>" for k, v in rows)
    return f'<table class="kv">{body}</table>'


def chart(title: str, counts: dict[str, int], width: int = 360) -> str:
    """A stacked bar of statuses as inline SVG, its numbers in text beside it."""
    total = sum(counts.values()) or 1
    x = 0.0
    rects = []
    for status in STATUS_SEQUENCE:
        n = counts.get(status.value, 0)
        if not n:
            continue
        w = width * n / total
        rects.append(
            f'<rect x="{x:.2f}" y="0" width="{w:.2f}" height="18" fill="{COLORS[status.value]}">'
            f"<title>{n} {status.value}</title></rect>"
        )
        x += w
    label = ", ".join(f"{n} {s}" for s, n in counts.items() if n) or "no checks"
    svg = (
        f'<svg width="{width}" height="18" '
        f'viewBox="0 0 {width} 18" role="img" aria-label="{esc(title)}: {esc(label)}">'
        f"<title>{esc(title)}: {esc(label)}</title>{''.join(rects)}</svg>"
    )
    text = " · ".join(f'<span class="s-{s}">{n} {s}</span>' for s, n in counts.items() if n)
    return f'<div class="chart"><h3>{esc(title)}</h3>{svg}<span>{text or "no checks"}</span></div>'


def diff_pre(diff: str) -> str:
    """A unified diff, each line escaped and marked by its kind."""
    if not diff:
        return '<p class="muted">No content diff recorded (file modes and owners only).</p>'
    lines = []
    for line in diff.splitlines():
        kind = ""
        if line.startswith(("+++", "---")):
            kind = "hunk"
        elif line.startswith("+"):
            kind = "add"
        elif line.startswith("-"):
            kind = "del"
        elif line.startswith("@@"):
            kind = "hunk"
        lines.append(f'<span class="{kind}">{esc(line)}</span>' if kind else esc(line))
    return '<pre class="diff">' + "\n".join(lines) + "</pre>"


def _page(title: str, body: str) -> str:
    return (
        "<!DOCTYPE html>\n"
        '<html lang="en">\n<head>\n<meta charset="utf-8">\n'
        '<meta name="viewport" content="width=device-width, initial-scale=1">\n'
        f"<title>{esc(title)}</title>\n<style>{CSS}</style>\n</head>\n<body>\n"
        f"{body}\n"
        f'<footer><p class="muted">Written by cis-tui {esc(__version__)}. Every value read '
        "from the node is shown as text.</p></footer>\n</body>\n</html>\n"
    )


# -- one node ----------------------------------------------------------------------------------
def _node_table(report: NodeReport) -> str:
    scan, s = report.scan, report.scan.settings
    lay = s.layout
    rows = [
        ("Host", esc(report.host)),
        ("Source", esc(scan.source)),
        ("Node root", f"<code>{esc(lay.root)}</code>"),
        ("Manifests", f"<code>{esc(lay.manifests_dir)}</code>"),
        ("Kubelet config", f"<code>{esc(lay.kubelet_config)}</code>"),
        ("Config file", f"<code>{esc(s.config_path)}</code>" if s.config_path else "none"),
        ("Live processes", "read" if scan.live else "none (an offline tree or a report)"),
    ]
    if scan.versions is not None:
        parts = [esc(scan.versions.label)]
        for comp in scan.versions.components:
            if comp.version is not None:
                assumed = " (assumed)" if comp.assumed else ""
                parts.append(f"{esc(comp.component)} {esc(comp.version)}{assumed}")
        rows.append(("Kubernetes versions", "<br>".join(parts)))
        rows.append(("Version read from", esc(scan.versions.kubernetes_source)))
    rows.append(("Benchmark", f"<strong>{esc(s.benchmark)}</strong>"))
    rows.append(("Benchmark chosen by", esc(s.benchmark_chosen_by or "given")))
    rows.append(("Report time", esc(report.generated.strftime("%Y-%m-%d %H:%M:%S %Z"))))
    return _kv(rows)


def _waivers(rows: Sequence[WaiverRow], warnings: Sequence[str]) -> str:
    if not rows:
        return '<p class="muted">No waivers in the config.</p>'
    body = "".join(
        f'<tr><td><a href="#check-{esc(r.waiver.check)}">{esc(r.waiver.check)}</a></td>'
        f"<td>{esc(r.state)}</td><td>{esc(r.waiver.owner)}</td>"
        f"<td>{esc(r.when)}</td>"
        f"<td>{esc(', '.join(r.waiver.nodes) or 'every node')}</td>"
        f"<td>{esc(r.waiver.reason)}</td></tr>"
        for r in rows
    )
    notes = "".join(f"<li>{esc(w)}</li>" for w in warnings)
    return (
        "<table><tr><th>Check</th><th>State</th><th>Owner</th><th>Expires</th><th>Nodes</th>"
        f"<th>Reason</th></tr>{body}</table>" + (f"<ul>{notes}</ul>" if notes else "")
    )


def _check(r: Result) -> str:
    check, rem = r.check, r.check.remediation
    rows = [
        ("Expected", esc(r.expected)),
        ("The file says", f"<code>{esc(r.file_value)}</code>" if r.file_value else "—"),
        ("The running process says", f"<code>{esc(r.live_value)}</code>" if r.live_value else "—"),
        ("Why this status", esc(r.reason)),
    ]
    if r.disagreement:
        rows.append(("Disagreement", f"<strong>{esc(r.disagreement)}</strong>"))
    if r.waiver is not None:
        w = r.waiver
        rows.append(("Waiver", f"{esc(w.note())} (the check itself: {_status(w.status)})"))
    rows.append(("Scored", "yes (Automated)" if check.scored else "no (Manual)"))
    fix = esc(rem.summary) + (
        f' <span class="muted">(cis-tui fixes it: {esc(rem.kind)}'
        + (f"; parameters {esc(', '.join(p.name for p in rem.params))}" if rem.params else "")
        + ")</span>"
        if rem.available
        else ' <span class="muted">(no mechanical fix: a human decides)</span>'
    )
    rows.append(("Remediation", fix))
    if rem.risks:
        rows.append(
            ("Risk notes", "<ul>" + "".join(f"<li>{esc(x)}</li>" for x in rem.risks) + "</ul>")
        )
    return (
        f'<article class="check s-{esc(r.status.value)}" id="check-{esc(r.id)}">'
        f"<h4>{_status(r.status.value)} {esc(r.id)} {esc(check.title)} "
        f'<span class="muted">({esc(check.component)})</span></h4>{_kv(rows)}</article>'
    )


def _gate_text(tx: Transaction) -> str:
    if not tx.gates:
        no_gate = "no health gate (offline tree, or nothing restarts)"
        return esc(no_gate)
    items = []
    for g in tx.gates:
        verdict = {True: "healthy", False: "FAILED", None: "unfinished"}[g.ok]
        parts = [f"<strong>{esc(g.component)}</strong> ({esc(g.phase)}): {esc(verdict)}"]
        if g.result:
            parts.append(esc(g.result))
        parts.append(f"{g.polls} probes, {g.failed_polls} failing")
        if g.first_healthy is not None:
            parts.append(f"first healthy {g.first_healthy:.2f} s after the restart began")
        if g.stable_after is not None:
            window = f" (window {g.window:g} s)" if g.window is not None else ""
            parts.append(f"stable after {g.stable_after:.2f} s{window}")
        if g.latency:
            lo, mid, hi = g.latency
            parts.append(f"probe latency min {lo:g} / median {mid:g} / max {hi:g} ms")
        if g.timeout is not None:
            parts.append(f"timeout {g.timeout:g} s")
        if g.tls:
            parts.append(f"TLS {esc(g.tls)}")
        if g.urls:
            parts.append(", ".join(f"<code>{esc(u)}</code>" for u in g.urls))
        items.append("<li>" + "; ".join(parts) + "</li>")
    return "<ul>" + "".join(items) + "</ul>"


def _transaction(tx: Transaction) -> str:
    when = utc(tx.started) if tx.started else "unknown time"
    took = f" ({tx.finished - tx.started:.1f} s)" if tx.started and tx.finished else ""
    pids = f"{tx.old_pid or 'not running'} → {tx.new_pid or 'no new process'}"
    audit = (
        "<ul>"
        + "".join(
            f"<li>{esc({True: 'pass', False: 'FAIL', None: 'checked'}[a.ok])}: {esc(a.result)}</li>"
            for a in tx.audit
        )
        + "</ul>"
        if tx.audit
        else "none (the change did not get that far)"
    )
    rows = [
        ("Time", esc(when + took)),
        ("Kind", esc(tx.kind + (f" of backup {tx.restores}" if tx.restores else ""))),
        ("File", f"<code>{esc(tx.file)}</code> ({esc(tx.component)})"),
        ("Checks", esc(", ".join(tx.checks) or "—")),
        ("Backup", f"<code>{esc(tx.backup_id or '—')}</code>"),
        ("Transaction", f"<code>{esc(tx.txid or '—')}</code>"),
        ("Component PID (old → new)", esc(pids)),
        ("Restart evidence", esc(tx.restart or "—")),
        ("Health gate", _gate_text(tx)),
        ("Audit re-check", audit),
    ]
    if tx.rollback_reason:
        rows.append(("Rolled back because", f"<strong>{esc(tx.rollback_reason)}</strong>"))
    rows.append(
        (
            "Outcome",
            f'<strong class="o-{esc(tx.outcome)}">{esc(tx.outcome.upper())}</strong>: '
            f"{esc(tx.message)}",
        )
    )
    if tx.notes:
        rows.append(("Notes", "<ul>" + "".join(f"<li>{esc(n)}</li>" for n in tx.notes) + "</ul>"))
    if tx.risks:
        rows.append(
            ("Risk notes shown", "<ul>" + "".join(f"<li>{esc(n)}</li>" for n in tx.risks) + "</ul>")
        )
    steps = "".join(
        f"<tr><td>{esc(s.step)}</td><td>{'ok' if s.ok else 'FAILED'}</td>"
        f"<td>{esc(utc(s.time)) if s.time else ''}</td><td>{esc(s.message)}</td></tr>"
        for s in tx.steps
    )
    return (
        f'<article class="tx o-{esc(tx.outcome)}" id="{esc(tx.anchor)}">'
        f"<h3>{esc(when)} · {esc(tx.file)} · {esc(tx.outcome.upper())}</h3>{_kv(rows)}"
        f"<h4>Diff</h4>{diff_pre(tx.diff)}"
        + (
            "<h4>Steps</h4><table><tr><th>Step</th><th>Result</th><th>Time</th><th>Detail</th>"
            f"</tr>{steps}</table>"
            if steps
            else ""
        )
        + "</article>"
    )


def _history(history: History | None) -> str:
    if history is None:
        return '<p class="muted">Not included: these results come from a kube-bench report.</p>'
    if history.problem:
        return (
            f"<p><strong>The change history could not be read:</strong> {esc(history.problem)}</p>"
        )
    intro = (
        f"<p>{len(history.transactions)} transaction(s) recorded in <code>{esc(history.source)}"
        "</code>, newest first: each with its diff, the component's PID before and after the "
        "restart, the health gate, the audit re-check and the outcome.</p>"
    )
    if not history.transactions:
        intro = f"<p>No change recorded in <code>{esc(history.source)}</code>.</p>"
    body = "".join(_transaction(tx) for tx in history.transactions)
    if history.unrecorded:
        rows = "".join(
            f"<tr><td><code>{esc(b.id)}</code></td><td>{esc(b.time)}</td><td><code>{esc(b.path)}"
            f"</code></td><td>{esc(', '.join(b.checks) or '—')}</td><td>{esc(b.outcome)}</td></tr>"
            for b in history.unrecorded
        )
        body += (
            '<h3>Backups without a history record</h3><p class="muted">Taken before the '
            "history was kept, or by <code>cis-tui persist</code>.</p><table><tr><th>Backup</th>"
            f"<th>Time</th><th>File</th><th>Checks</th><th>Outcome</th></tr>{rows}</table>"
        )
    return intro + body


def render_node_html(report: NodeReport) -> str:
    scan = report.scan
    secs: Sequence[Section] = report.sections
    counts = {s.value: 0 for s in STATUS_SEQUENCE}
    for r in scan.results:
        counts[r.status.value] += 1
    toc = "".join(
        f'<li><a href="#sec-{esc(s.id)}">{esc(s.id)} {esc(s.title)}</a></li>' for s in secs
    )
    strays = "".join(
        f"<li><strong>{'FINDING' if st.serious else 'NOTE'}</strong> <code>{esc(st.path)}</code>: "
        f"{esc(st.message)} {esc(st.remedy)}</li>"
        for st in scan.strays
    )
    checks = "".join(
        f'<h3 id="sec-{esc(s.id)}">{esc(s.id)} {esc(s.title)}</h3>'
        + "".join(_check(r) for r in s.results)
        for s in secs
    )
    body = (
        f"<header><h1>CIS Kubernetes Benchmark report: {esc(report.host)}</h1>"
        f"<p>{esc(scan.settings.benchmark)} · {len(scan.results)} checks · "
        f"{esc(report.generated.strftime('%Y-%m-%d %H:%M:%S %Z'))}</p></header>"
        '<nav><h2 id="contents-title">Contents</h2><ul><li><a href="#node">Node</a></li>'
        '<li><a href="#summary">Summary</a></li><li><a href="#waivers">Waivers</a></li>'
        f'<li><a href="#checks">Checks</a><ul>{toc}</ul></li>'
        '<li><a href="#history">Change history</a></li></ul></nav>'
        f'<section id="node"><h2>Node</h2>{_node_table(report)}</section>'
        f'<section id="summary"><h2 id="summary-title">Summary</h2>{chart("All checks", counts)}'
        + "".join(chart(f"{s.id} {s.title}", s.counts) for s in secs)
        + (f"<h3>Manifests directory</h3><ul>{strays}</ul>" if strays else "")
        + "</section>"
        f'<section id="waivers"><h2>Waivers</h2>{_waivers(report.waivers, scan.warnings)}</section>'
        f'<section id="checks"><h2>Checks</h2>{checks}</section>'
        f'<section id="history"><h2>Change history</h2>'
        f"{_history(report.history)}</section>"
    )
    return _page(f"cis-tui report: {report.host}", body)


# -- a fleet -----------------------------------------------------------------------------------
def render_fleet_html(fleet: FleetReport) -> str:
    differing = set(fleet.differing())
    charts = "".join(
        chart(f"{n.host} ({n.benchmark}, {n.versions})", n.counts) for n in fleet.nodes
    )
    head = "".join(f"<th>{esc(n.host)}</th>" for n in fleet.nodes)
    rows = []
    for check_id, title in fleet.checks:
        cells = "".join(
            f"<td>{_status(n.entries[check_id].status)}</td>"
            if check_id in n.entries
            else '<td class="muted">absent</td>'
            for n in fleet.nodes
        )
        mark = "<strong>differs</strong>" if check_id in differing else ""
        rows.append(f"<tr><td>{esc(check_id)}</td><td>{esc(title)}</td>{cells}<td>{mark}</td></tr>")
    detail = []
    for check_id, title in fleet.checks:
        if check_id not in differing:
            continue
        items = "".join(
            f"<li>{esc(n.host)}: {_status(n.entries[check_id].status)} "
            f"{esc(n.entries[check_id].reason)}</li>"
            if check_id in n.entries
            else f"<li>{esc(n.host)}: not in its scan</li>"
            for n in fleet.nodes
        )
        detail.append(f"<h3>{esc(check_id)} {esc(title)}</h3><ul>{items}</ul>")
    body = (
        f"<header><h1>CIS Kubernetes Benchmark fleet report</h1><p>{len(fleet.nodes)} nodes "
        f"from <code>{esc(fleet.source)}</code> · "
        f"{esc(fleet.generated.strftime('%Y-%m-%d %H:%M:%S %Z'))}</p></header>"
        f'<section id="summary"><h2 id="summary-title">Summary</h2>{charts}</section>'
        f'<section id="differences"><h2>Checks that differ between nodes</h2>'
        + ("".join(detail) or "<p>Every node has the same status on every check.</p>")
        + "</section>"
        f'<section id="checks"><h2>Every check</h2><table><tr><th>Check</th><th>Title</th>'
        f"{head}<th></th></tr>{''.join(rows)}</table></section>"
    )
    return _page("cis-tui fleet report", body)
