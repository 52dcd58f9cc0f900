"""Apply the config's waivers to check results: a pure function of results, waivers and a day.

A waiver in force turns a failing check's status (FAIL, WARN, ERROR) into WAIVED (its own
status is kept in the mark); an expired one leaves the real status and adds a note to the
reason; a passing or skipped check keeps its status (the mark says a waiver exists). A waiver
naming a check that no benchmark has is a usage error (exit 2); one naming a check of another
benchmark only is reported and matches nothing.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import socket
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from cis_tui.audit.evaluate import Result, Status
from cis_tui.benchmarks.catalog import Catalog
from cis_tui.errors import UserError
from cis_tui.waivers import Waiver, WaiverMark


@dataclass(frozen=True)
class Waived:
    """Results with the waivers applied, and what an admin should hear about them."""

    results: tuple[Result, ...]
    #: Expired waivers and waivers that expire within EXPIRY_WARNING_DAYS, one line each.
    warnings: tuple[str, ...] = ()

    @property
    def waived_ids(self) -> dict[str, str]:
        """Check id -> the waiver's note, for the checks waived now (never planned)."""
        return {
            r.id: r.waiver.note()
            for r in self.results
            if r.status is Status.WAIVED and r.waiver is not None
        }


def _known_elsewhere(check_id: str, catalog: Catalog) -> str | None:
    """A shipped benchmark other than `catalog`'s that has the check, or None."""
    from cis_tui.benchmarks.catalog import load_catalog
    from cis_tui.benchmarks.selection import shipped_benchmarks

    for name in shipped_benchmarks():
        if name != catalog.benchmark and check_id in load_catalog(name).by_id:
            return name
    return None


def check_waivers(
    waivers: Sequence[Waiver], catalog: Catalog, config: Path | None
) -> tuple[str, ...]:
    """Refuse (UserError naming the config file) a waiver for a check no benchmark has;
    return a warning for each that names a check of another benchmark only."""
    notes = []
    for waiver in waivers:
        if waiver.check in catalog.by_id:
            continue
        other = _known_elsewhere(waiver.check, catalog)
        if other is None:
            raise UserError(
                f"waiver {waiver.index}: unknown check id {waiver.check!r} "
                f"(not in {catalog.benchmark} nor any other benchmark)",
                config,
            )
        notes.append(
            f"waiver {waiver.index}: {waiver.check} is a check of {other}, not of "
            f"{catalog.benchmark}; it waives nothing here"
        )
    return tuple(notes)


def local_host() -> str:
    return socket.gethostname()


def apply_waivers(
    results: Sequence[Result],
    waivers: Sequence[Waiver],
    catalog: Catalog,
    *,
    config: Path | None = None,
    host: str | None = None,
    today: dt.date | None = None,
) -> Waived:
    """The results with every waiver for this host applied (the first one per check wins)."""
    notes = list(check_waivers(waivers, catalog, config))
    if not waivers:
        return Waived(tuple(results), tuple(notes))
    host = host or local_host()
    today = today or dt.date.today()
    by_check: dict[str, Waiver] = {}
    for waiver in waivers:
        if waiver.applies_to(host):
            by_check.setdefault(waiver.check, waiver)
    out = []
    for result in results:
        waiver = by_check.get(result.id)
        if waiver is None:
            out.append(result)
            continue
        mark = WaiverMark(
            waiver,
            result.status.value,
            waiver.expired(today),
            waiver.days_left(today),
        )
        if result.status in (Status.PASS, Status.SKIP):
            out.append(dataclasses.replace(result, waiver=mark))  # nothing to waive: as it is
            continue
        if mark.expired:
            notes.append(
                f"{result.id}: the waiver by {waiver.owner} expired on "
                f"{waiver.expires.isoformat()}; the check counts as {result.status.value} again"
            )
            reason = f"{result.reason} ({mark.note()})"
            out.append(dataclasses.replace(result, reason=reason, waiver=mark))
            continue
        if mark.expiring:
            days = f"in {mark.days_left} day{'s' if mark.days_left != 1 else ''}"
            notes.append(
                f"{result.id}: the waiver by {waiver.owner} expires "
                f"{'today' if mark.days_left == 0 else days} ({waiver.expires.isoformat()})"
            )
        out.append(
            dataclasses.replace(result, status=Status.WAIVED, reason=mark.note(), waiver=mark)
        )
    return Waived(tuple(out), tuple(notes))
