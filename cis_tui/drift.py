"""Drift: this scan against an earlier `cis-tui scan --format json` (`scan --baseline FILE`).

A regression is a check that passed in the baseline and now fails (FAIL, WARN or ERROR); each
names what changed in the file or the running process. An improvement is the other way round.
Other status changes (to or from SKIP or WAIVED) are listed but are neither. Pure functions
over the baseline document and the results; reading the file is `load_baseline`.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cis_tui.audit.evaluate import Result, Status
from cis_tui.errors import UserError
from cis_tui.userfiles import load_json

_FAILING = {Status.FAIL.value, Status.WARN.value, Status.ERROR.value}
_STATUSES = {s.value for s in Status}
#: A scan document is a few hundred KB; anything far larger is not one.
_LIMIT = 64 << 20


@dataclass(frozen=True)
class Entry:
    """One check as the baseline recorded it."""

    id: str
    title: str
    status: str
    file: str | None
    live: str | None
    reason: str


@dataclass(frozen=True)
class Baseline:
    path: Path
    benchmark: str
    entries: Mapping[str, Entry]


@dataclass(frozen=True)
class Change:
    """A check whose status differs from the baseline's, with what changed."""

    id: str
    title: str
    old: str
    new: str
    details: tuple[str, ...]

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "title": self.title,
            "was": self.old,
            "now": self.new,
            "changes": list(self.details),
        }


@dataclass(frozen=True)
class Drift:
    baseline: Path
    baseline_benchmark: str
    regressions: tuple[Change, ...]
    improvements: tuple[Change, ...]
    other: tuple[Change, ...]
    #: Checks in this scan only, or in the baseline only (another benchmark, or --check).
    added: tuple[str, ...] = ()
    removed: tuple[str, ...] = ()

    @property
    def changed_ids(self) -> dict[str, str]:
        """Check id -> its status in the baseline, for every check whose status changed."""
        return {c.id: c.old for c in (*self.regressions, *self.improvements, *self.other)}

    def to_dict(self) -> dict[str, Any]:
        return {
            "baseline": str(self.baseline),
            "baseline_benchmark": self.baseline_benchmark,
            "regressions": [c.to_dict() for c in self.regressions],
            "improvements": [c.to_dict() for c in self.improvements],
            "other_changes": [c.to_dict() for c in self.other],
            "only_now": list(self.added),
            "only_in_baseline": list(self.removed),
        }


def _text(value: Any) -> str | None:
    return value if isinstance(value, str) else None


def parse_baseline(doc: Any, path: Path) -> Baseline:
    """A scan document as a baseline; UserError (exit 2) when it is not one."""
    what = "not a `cis-tui scan --format json` document"
    if not isinstance(doc, dict) or not isinstance(doc.get("results"), list):
        raise UserError(f"{what}: no results list", path)
    entries: dict[str, Entry] = {}
    for index, item in enumerate(doc["results"]):
        if not isinstance(item, dict):
            raise UserError(f"{what}: result {index} is not an object", path)
        check_id, status = item.get("id"), item.get("status")
        if not isinstance(check_id, str) or status not in _STATUSES:
            raise UserError(f"{what}: result {index} has no id or a status it cannot have", path)
        evidence = item.get("evidence") if isinstance(item.get("evidence"), dict) else {}
        entries[check_id] = Entry(
            check_id,
            _text(item.get("title")) or "",
            str(status),
            _text(evidence.get("file")),
            _text(evidence.get("live")),
            _text(item.get("reason")) or "",
        )
    return Baseline(path, _text(doc.get("benchmark")) or "", entries)


def load_baseline(path: Path) -> Baseline:
    return parse_baseline(load_json(path, "baseline", _LIMIT), path)


def _details(old: Entry, new: Result) -> tuple[str, ...]:
    """What changed in the file and the running process, else the new reason."""
    lines = []
    component = new.check.component
    for label, was, now in (
        ("file", old.file, new.file_value),
        (f"running {component}", old.live, new.live_value),
    ):
        if was != now and (was or now):
            lines.append(f"{label}: was {was or 'not read'}, now {now or 'not read'}")
    if new.disagreement:
        lines.append(new.disagreement)
    if not lines:
        lines.append(new.reason)
    return tuple(lines)


def compare(baseline: Baseline, results: Sequence[Result], benchmark: str) -> Drift:
    """This scan's results against the baseline's, check by check."""
    regressions, improvements, other = [], [], []
    for result in results:
        old = baseline.entries.get(result.id)
        new = result.status.value
        if old is None or old.status == new:
            continue
        change = Change(result.id, result.check.title, old.status, new, _details(old, result))
        if old.status == Status.PASS.value and new in _FAILING:
            regressions.append(change)
        elif old.status in _FAILING and new == Status.PASS.value:
            improvements.append(change)
        else:
            other.append(change)
    added: tuple[str, ...] = ()
    removed: tuple[str, ...] = ()
    if baseline.benchmark != benchmark:  # the same benchmark has the same checks
        now = {r.id for r in results}
        added = tuple(r.id for r in results if r.id not in baseline.entries)
        removed = tuple(i for i in baseline.entries if i not in now)
    return Drift(
        baseline.path,
        baseline.benchmark,
        tuple(regressions),
        tuple(improvements),
        tuple(other),
        added,
        removed,
    )


def render_drift(drift: Drift, benchmark: str, color: bool = False) -> str:
    """The drift section under the scan table."""

    def label(text: str, code: str) -> str:
        padded = f"{text:<11}"
        return f"\x1b[{code}m{padded}\x1b[0m" if color else padded

    count = len(drift.regressions)
    lines = [
        f"Drift against {drift.baseline}: {count} regression{'s' if count != 1 else ''}, "
        f"{len(drift.improvements)} improved, {len(drift.other)} other change"
        f"{'s' if len(drift.other) != 1 else ''}"
    ]
    if drift.baseline_benchmark and drift.baseline_benchmark != benchmark:
        lines.append(
            f"note: the baseline is of {drift.baseline_benchmark}, this scan of {benchmark}; "
            "checks are compared by id"
        )
    for title, code, changes in (
        ("REGRESSION", "31", drift.regressions),
        ("IMPROVED", "32", drift.improvements),
        ("CHANGED", "33", drift.other),
    ):
        for c in changes:
            lines.append(f"{label(title, code)} {c.id}  {c.title}: {c.old} -> {c.new}")
            lines.extend(f"{'':<11}   {d}" for d in c.details)
    if drift.added:
        lines.append(f"only in this scan: {', '.join(drift.added)}")
    if drift.removed:
        lines.append(f"only in the baseline: {', '.join(drift.removed)}")
    return "\n".join(lines)


# -- the wizard's memory: the last scan it showed, in the state directory ----------------------
LAST_SCAN_FILE = "last-scan.json"


def read_last_scan(state_dir: Path) -> Baseline | None:
    """The scan the wizard saved last (None: none yet, or unreadable: then nothing is marked)."""
    from cis_tui.engine.statedir import check_trusted, read_private

    path = state_dir / LAST_SCAN_FILE
    try:
        check_trusted(state_dir)
        return parse_baseline(json.loads(read_private(path, _LIMIT)), path)
    except (OSError, UserError, ValueError):
        return None


def save_last_scan(state_dir: Path, document: str) -> None:
    """Replace the saved scan (a `scan --format json` document) atomically, mode 0600."""
    import os

    from cis_tui.engine.atomic import atomic_write
    from cis_tui.engine.statedir import ensure_state_dir

    ensure_state_dir(state_dir)
    data = document.encode("utf-8")
    atomic_write(state_dir / LAST_SCAN_FILE, data, 0o600, os.geteuid(), os.getegid())
