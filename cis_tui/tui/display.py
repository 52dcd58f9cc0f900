"""How values are shown in the wizard: status styles, short names, node paths, clipping.

Every string from a file or the catalog becomes `Content` here or in the widgets, never markup.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from pathlib import Path

from textual.content import Content

from cis_tui.audit.evaluate import Result, Status
from cis_tui.engine.events import Outcome

STATUS_STYLE: dict[Status, str] = {
    Status.FAIL: "bold $text-error",
    Status.ERROR: "bold $text-error",
    Status.WARN: "bold $text-warning",
    Status.PASS: "$text-success",
    Status.SKIP: "$text-muted",
    Status.WAIVED: "italic $text-accent",
}

OUTCOME_STYLE: dict[str, str] = {
    Outcome.COMMITTED.value: "bold $text-success",
    Outcome.ROLLED_BACK.value: "bold $text-warning",
    Outcome.SKIPPED.value: "$text-muted",
    Outcome.CRITICAL.value: "bold $text-error",
    "restored": "$text-success",
    "recovered": "$text-success",
    "pending": "bold $text-warning",
}

_SHORT = {
    "kube-apiserver": "apiserver",
    "kube-controller-manager": "controller",
    "kube-scheduler": "scheduler",
    "kube-proxy": "proxy",
}


def short_component(component: str) -> str:
    """A component name narrow enough for a table column."""
    return _SHORT.get(component, component)


def clip(text: str, width: int) -> str:
    """One line of at most `width` cells, with an ellipsis when cut."""
    line = " ".join(text.split())
    if width <= 0:
        return ""
    return line if len(line) <= width else line[: width - 1] + "…"


def status_content(status: Status) -> Content:
    return Content.styled(status.value, STATUS_STYLE[status])


def outcome_content(outcome: str) -> Content:
    return Content.styled(outcome, OUTCOME_STYLE.get(outcome, ""))


def found_text(result: Result) -> str:
    """What the node says now, from both sources when they disagree."""
    file_value, live_value = result.file_value, result.live_value
    if result.disagreement and file_value and live_value:
        return f"file {file_value} / live {live_value}"
    return file_value or live_value or result.reason


def short_time(iso: str) -> str:
    """An ISO 8601 UTC time as `YYYY-mm-dd HH:MM:SS` (the zone is in the column title)."""
    try:
        when = dt.datetime.fromisoformat(iso)
    except ValueError:
        return iso
    return when.astimezone(dt.timezone.utc).strftime("%Y-%m-%d %H:%M:%S")


@dataclass(frozen=True)
class NodePaths:
    """Shows paths as the node names them: with `--root DIR`, without the DIR prefix."""

    root: Path = Path("/")

    def show(self, text: str) -> str:
        """Text with the root prefix removed from every path it contains."""
        if self.root == Path("/") or not text:
            return text
        prefix = str(self.root)
        # Diff headers name paths without their leading slash (a/tmp/x/etc/...).
        return text.replace(prefix + "/", "/").replace(prefix.lstrip("/") + "/", "")

    def path(self, path: Path | str | None) -> str:
        if path is None or path == "":
            return "file modes and owners"
        return self.show(str(path))
