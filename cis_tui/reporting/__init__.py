"""The auditor's report (`cis-tui report`): one node's scan and change history, or a fleet.

model.py gathers what a report shows; html.py and markdown.py only format it.
"""

from __future__ import annotations

import datetime as dt

from cis_tui.report import Scan
from cis_tui.reporting.html import render_fleet_html, render_node_html
from cis_tui.reporting.markdown import render_fleet_markdown, render_node_markdown
from cis_tui.reporting.model import FleetReport, History, NodeReport, load_fleet, node_report

REPORT_FORMATS = ("html", "markdown")

__all__ = [
    "REPORT_FORMATS",
    "FleetReport",
    "History",
    "NodeReport",
    "load_fleet",
    "node_report",
    "render_fleet",
    "render_node",
    "render_node_report",
]


def render_node(fmt: str, report: NodeReport) -> str:
    if fmt == "html":
        return render_node_html(report)
    return render_node_markdown(report)


def render_fleet(fmt: str, fleet: FleetReport) -> str:
    return render_fleet_html(fleet) if fmt == "html" else render_fleet_markdown(fleet)


def render_node_report(fmt: str, scan: Scan, now: dt.datetime | None = None) -> str:
    """The report of a scan of this node, with the change history of its state directory
    (the wizard's export; `cis-tui report` builds the same)."""
    return render_node(fmt, node_report(scan, now=now))
