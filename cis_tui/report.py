"""Scan results as a terminal table, stable JSON (a public API) or JUnit XML."""

from __future__ import annotations

import json
import shutil
import xml.etree.ElementTree as ET
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from cis_tui.audit.evaluate import STATUS_ORDER, Result, Status, summarize
from cis_tui.audit.strays import StrayFile
from cis_tui.audit.versions import NodeVersions
from cis_tui.layout import Settings

if TYPE_CHECKING:
    from cis_tui.remediate.plan import Plan

JSON_SCHEMA_VERSION = 1


def result_to_dict(result: Result, persisted: bool | None = None) -> dict[str, Any]:
    """One result as the documented JSON object (field names are API). `persisted`: whether
    a pass survives `kubeadm upgrade` (None: not known, or not a pass)."""
    check = result.check
    rem = check.remediation
    return {
        "id": check.id,
        "title": check.title,
        "section": check.section,
        "status": result.status.value,
        "persisted": persisted,
        "scored": check.scored,
        "component": check.component,
        "expected": result.expected,
        "reason": result.reason,
        "evidence": {
            "file": result.file_value,
            "live": result.live_value,
            "disagreement": result.disagreement,
        },
        "remediation": {
            "available": rem.available,
            "kind": rem.kind,
            "summary": rem.summary,
            "needs_parameters": [p.name for p in rem.params],
            "risks": list(rem.risks),
        },
        "waiver": result.waiver.to_dict() if result.waiver is not None else None,
    }


def node_to_dict(
    settings: Settings, live: bool, versions: NodeVersions | None = None
) -> dict[str, Any]:
    lay = settings.layout
    return {
        "root": str(lay.root),
        "manifests_dir": str(lay.manifests_dir),
        "kubelet_config": str(lay.kubelet_config),
        "pki_dir": str(lay.pki_dir),
        "config_file": str(settings.config_path) if settings.config_path else None,
        "live_processes": live,
        "versions": versions.to_dict() if versions is not None else None,
    }


def stray_to_dict(stray: StrayFile) -> dict[str, Any]:
    """A file the kubelet runs from the manifests directory besides the components' own."""
    return stray.to_dict(str(stray.path))


def render_json(
    results: Sequence[Result],
    settings: Settings,
    live: bool,
    source: str,
    strays: Sequence[StrayFile] = (),
    versions: NodeVersions | None = None,
    persisted: Mapping[str, bool] | None = None,
) -> str:
    persisted = persisted or {}
    doc = {
        "schema_version": JSON_SCHEMA_VERSION,
        "benchmark": settings.benchmark,
        "benchmark_chosen_by": settings.benchmark_chosen_by or None,
        "source": source,
        "node": node_to_dict(settings, live, versions),
        "summary": summarize(results),
        "results": [result_to_dict(r, persisted.get(r.id)) for r in results],
        "findings": [stray_to_dict(s) for s in strays],
    }
    return json.dumps(doc, indent=2)


def render_junit(
    results: Sequence[Result], benchmark: str, strays: Sequence[StrayFile] = ()
) -> str:
    counts = summarize(results)
    serious = [s for s in strays if s.serious]
    suite = ET.Element(
        "testsuite",
        name=f"cis-tui {benchmark}",
        tests=str(len(results) + len(serious)),
        failures=str(counts["FAIL"] + counts["WARN"] + len(serious)),
        errors=str(counts["ERROR"]),
        skipped=str(counts["SKIP"] + counts["WAIVED"]),
    )
    for r in results:
        case = ET.SubElement(
            suite,
            "testcase",
            classname=f"{benchmark}.{r.check.component}",
            name=f"{r.id} {r.check.title}",
        )
        if r.status in (Status.FAIL, Status.WARN):
            tag = ET.SubElement(case, "failure", message=r.reason, type=r.status.value)
            tag.text = f"expected: {r.expected}\nfound: {r.reason}"
        elif r.status is Status.ERROR:
            ET.SubElement(case, "error", message=r.reason)
        elif r.status is Status.SKIP:
            ET.SubElement(case, "skipped", message=r.reason)
        elif r.status is Status.WAIVED:  # an accepted exception: skipped, with its reason
            ET.SubElement(case, "skipped", message=r.reason, type="WAIVED")
    for stray in serious:
        case = ET.SubElement(
            suite, "testcase", classname=f"{benchmark}.manifests-dir", name=f"stray {stray.path}"
        )
        tag = ET.SubElement(case, "failure", message=stray.message, type=stray.kind.value)
        tag.text = stray.remedy
    ET.indent(suite)
    return '<?xml version="1.0" encoding="UTF-8"?>\n' + ET.tostring(suite, encoding="unicode")


@dataclass(frozen=True)
class Scan:
    """One scan's results and where they came from: what a scan document renders."""

    results: tuple[Result, ...]
    settings: Settings
    live: bool
    source: str = "node"
    strays: tuple[StrayFile, ...] = ()
    versions: NodeVersions | None = None
    #: check id -> whether its pass survives `kubeadm upgrade` (cis_tui.persist.status).
    persisted: Mapping[str, bool] = field(default_factory=dict)
    #: Waivers that expired or expire soon (cis_tui.audit.waive), one line each.
    warnings: tuple[str, ...] = ()


@dataclass(frozen=True)
class ScanFormat:
    """A file format for a whole scan: `cis-tui scan --format NAME` and the wizard's export."""

    name: str
    title: str
    suffix: str
    render: Callable[[Scan], str]


#: The document formats of a scan, by `--format` name (the terminal table is not one).
SCAN_FORMATS: dict[str, ScanFormat] = {
    "json": ScanFormat(
        "json",
        "JSON",
        ".json",
        lambda s: render_json(
            s.results, s.settings, s.live, s.source, s.strays, s.versions, s.persisted
        ),
    ),
    "junit": ScanFormat(
        "junit",
        "JUnit XML",
        ".xml",
        lambda s: render_junit(s.results, s.settings.benchmark, s.strays),
    ),
    # The auditor's report (cis_tui.reporting): the scan plus the change history of the node's
    # state directory. Offered by the wizard's export; the CLI has `cis-tui report` for it.
    "html": ScanFormat("html", "HTML report", ".html", lambda s: _report("html", s)),
    "markdown": ScanFormat("markdown", "Markdown report", ".md", lambda s: _report("markdown", s)),
}


def _report(fmt: str, scan: Scan) -> str:
    from cis_tui.reporting import render_node_report

    return render_node_report(fmt, scan)


def scan_document(fmt: str, scan: Scan) -> str:
    """The scan as `cis-tui scan --format FMT` prints it, final newline included."""
    return SCAN_FORMATS[fmt].render(scan) + "\n"


def sort_results(results: Sequence[Result]) -> list[Result]:
    """Failing first, then by benchmark order."""
    order = {r.id: i for i, r in enumerate(results)}
    return sorted(results, key=lambda r: (STATUS_ORDER[r.status], order[r.id]))


def _clip(text: str, width: int) -> str:
    return text if len(text) <= width else text[: max(width - 1, 0)] + "…"


def render_reverted(results: Sequence[Result], persisted: Mapping[str, bool]) -> str:
    """The line under the table naming the passes the next `kubeadm upgrade` reverts."""
    reverted = [r.id for r in results if persisted.get(r.id) is False]
    if not reverted:
        return ""
    return (
        f"kubeadm upgrade will revert these passes: {', '.join(reverted)} (they are in the "
        "node's files only; `cis-tui persist` puts them into kubeadm's configuration)"
    )


def render_strays(strays: Sequence[StrayFile], color: bool = False) -> str:
    """The manifests-directory findings under the table: what runs, why, how to remove it."""
    lines = []
    for stray in strays:
        label = "FINDING" if stray.serious else "NOTE"
        if color:
            label = f"\x1b[{'31' if stray.serious else '2'}m{label}\x1b[0m"
        lines.append(f"{label}  {stray.path}: {stray.message}")
        lines.append(f"         {stray.remedy}")
    return "\n".join(lines)


def render_versions(versions: NodeVersions, settings: Settings) -> str:
    """The line above the table: the node's versions and the benchmark, with why."""
    parts = []
    for comp in versions.components:
        if comp.version is not None:
            name = comp.component.replace("kube-", "")
            parts.append(f"{name} {comp.version}{' (assumed)' if comp.assumed else ''}")
    shown = ", ".join(parts) or "no component told its version"
    return (
        f"{versions.label} ({shown})\n"
        f"{settings.benchmark}: {settings.benchmark_chosen_by or 'given'}\n"
    )


def render_table(results: Sequence[Result], benchmark: str | None, color: bool = False) -> str:
    width = max(shutil.get_terminal_size((120, 24)).columns, 80)
    colors = {
        Status.PASS: "32",
        Status.FAIL: "31",
        Status.WARN: "33",
        Status.ERROR: "35",
        Status.SKIP: "2",
        Status.WAIVED: "36",
    }
    lines = []
    title_w = max(20, (width - 30) // 2)
    detail_w = max(10, width - 30 - title_w)
    lines.append(f"{'STATUS':<6}  {'ID':<7}  {'COMPONENT':<9}  {'CHECK':<{title_w}}  FOUND")
    for r in results:
        status = f"{r.status.value:<6}"
        if color:
            status = f"\x1b[{colors[r.status]}m{status}\x1b[0m"
        comp = _clip(r.check.component.replace("kube-", ""), 9)
        detail = r.reason if r.status is not Status.PASS else (r.file_value or r.live_value or "")
        lines.append(
            f"{status}  {r.id:<7}  {comp:<9}  {_clip(r.check.title, title_w):<{title_w}}  "
            f"{_clip(detail, detail_w)}"
        )
        if r.disagreement:
            lines.append(f"{'':<28}! {_clip(r.disagreement, width - 30)}")
    counts = summarize(results)
    lines.append("")
    lines.append(
        f"{benchmark}: "
        + ", ".join(
            f"{counts[s.value]} {s.value}"
            for s in Status
            if s is not Status.WAIVED or counts[s.value]
        )
        + f" ({len(results)} checks)"
    )
    return "\n".join(lines)


def colorize_diff(diff: str) -> str:
    """ANSI colours for a unified diff on a terminal."""
    out = []
    for line in diff.splitlines(keepends=True):
        if line.startswith(("+++", "---")):
            out.append(f"\x1b[1m{line.rstrip(chr(10))}\x1b[0m\n")
        elif line.startswith("+"):
            out.append(f"\x1b[32m{line.rstrip(chr(10))}\x1b[0m\n")
        elif line.startswith("-"):
            out.append(f"\x1b[31m{line.rstrip(chr(10))}\x1b[0m\n")
        elif line.startswith("@@"):
            out.append(f"\x1b[36m{line.rstrip(chr(10))}\x1b[0m\n")
        else:
            out.append(line)
    return "".join(out)


def render_plan(plan: Plan, color: bool = False) -> str:
    """A plan as an admin reviews it: per file, what it fixes, what restarts, risks, the diff."""
    lines: list[str] = []
    if plan.empty:
        lines.append("Nothing to change.")
    for index, file in enumerate(plan.files, 1):
        where = str(file.path) if file.path else "file modes and owners"
        restart = f"; restarts {', '.join(file.restarts)}" if file.restarts else ""
        lines.append(f"[{index}/{len(plan.files)}] {where}")
        lines.append(f"    fixes {', '.join(file.checks)}{restart}")
        for note in file.notes:
            lines.append(f"    note: {note}")
        for risk in file.risks:
            lines.append(f"    risk: {risk}")
        lines.append("")
        diff = file.diff
        lines.append((colorize_diff(diff) if color else diff).rstrip("\n"))
        lines.append("")
    for skip in plan.skipped:
        lines.append(f"not planned: {skip.check_id}: {skip.reason}")
    if plan.files and plan.persistence is not None:
        lines.append(plan.persistence.describe())
    if plan.files:
        restarts = ", ".join(plan.restarts) or "none"
        lines.append(
            f"Plan: {len(plan.checks)} checks, {len(plan.files)} files; components that will "
            f"restart: {restarts}. Nothing has been changed."
        )
    return "\n".join(lines).rstrip("\n")
