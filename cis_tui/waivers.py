"""Waivers: accepted exceptions from the config's `[[waivers]]`, each with an owner and an expiry.

    [[waivers]]
    check = "1.2.16"                 # the check id
    reason = "audit logs go to the SIEM agent's own pipeline"
    owner = "alice@example.com"
    expires = 2026-12-31             # a TOML date: the waiver holds through this day
    nodes = ["cp-1", "cp-2"]         # optional: only on these host names

This module only reads them (it sits beneath the audit, next to the layout); applying them to
results is cis_tui.audit.waive.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cis_tui.errors import UserError

#: A waiver this many days (or fewer) from its expiry is announced by `scan`.
EXPIRY_WARNING_DAYS = 14

_KEYS = {"check", "reason", "owner", "expires", "nodes"}


@dataclass(frozen=True)
class Waiver:
    """One accepted exception: the check, why, who answers for it, and until when."""

    check: str
    reason: str
    owner: str
    expires: dt.date
    nodes: tuple[str, ...] = ()
    #: Its position in the config file (1-based), for messages.
    index: int = 0

    def expired(self, today: dt.date) -> bool:
        return today > self.expires

    def days_left(self, today: dt.date) -> int:
        return (self.expires - today).days

    def applies_to(self, host: str) -> bool:
        """Whether the waiver covers this host (no `nodes`: every host). A short name matches
        its fully qualified form and the other way round."""
        if not self.nodes:
            return True
        short = host.split(".", 1)[0]
        return any(n == host or n.split(".", 1)[0] == short for n in self.nodes)

    def to_dict(self) -> dict[str, Any]:
        return {
            "check": self.check,
            "reason": self.reason,
            "owner": self.owner,
            "expires": self.expires.isoformat(),
            "nodes": list(self.nodes),
        }


@dataclass(frozen=True)
class WaiverMark:
    """A waiver as applied to one result: the status the check really has, and whether the
    waiver still holds."""

    waiver: Waiver
    status: str  # the check's own status (PASS, FAIL, ...)
    expired: bool
    days_left: int

    @property
    def expiring(self) -> bool:
        return not self.expired and self.days_left <= EXPIRY_WARNING_DAYS

    def note(self) -> str:
        """One line for a reason column."""
        w = self.waiver
        if self.expired:
            return f"waiver by {w.owner} expired on {w.expires.isoformat()} ({w.reason})"
        return f"waived by {w.owner} until {w.expires.isoformat()}: {w.reason}"

    def to_dict(self) -> dict[str, Any]:
        return {
            **self.waiver.to_dict(),
            "status": self.status,
            "expired": self.expired,
            "days_left": self.days_left,
        }


def _text(entry: dict[str, Any], key: str, where: str, path: Path) -> str:
    value = entry.get(key)
    if not isinstance(value, str) or not value.strip():
        raise UserError(f"{where}: {key} must be a non-empty string", path)
    return value.strip()


def _date(value: Any, where: str, path: Path) -> dt.date:
    if isinstance(value, dt.datetime):  # a date-time: the day is what counts, say so
        raise UserError(
            f"{where}: expires must be a TOML date such as 2026-12-31, not a time", path
        )
    if isinstance(value, dt.date):
        return value
    if isinstance(value, str):
        try:
            return dt.date.fromisoformat(value.strip())
        except ValueError:
            pass
    raise UserError(f"{where}: expires {value!r} is not a date such as 2026-12-31", path)


def parse_waivers(raw: Any, path: Path) -> tuple[Waiver, ...]:
    """The `[[waivers]]` array of tables; every problem is a one-line UserError (exit 2)."""
    if not isinstance(raw, list):
        raise UserError("waivers must be an array of tables ([[waivers]])", path)
    waivers = []
    for index, entry in enumerate(raw, 1):
        where = f"waiver {index}"
        if not isinstance(entry, dict):
            raise UserError(f"{where} must be a table ([[waivers]])", path)
        extra = sorted(set(entry) - _KEYS)
        if extra:
            raise UserError(f"{where}: unknown key {extra[0]!r}", path)
        check = _text(entry, "check", where, path)
        where = f"waiver {index} ({check})"
        if "expires" not in entry:
            raise UserError(f"{where}: expires is missing (a TOML date such as 2026-12-31)", path)
        nodes = entry.get("nodes", [])
        if not (isinstance(nodes, list) and all(isinstance(n, str) and n.strip() for n in nodes)):
            raise UserError(f"{where}: nodes must be a list of host names", path)
        waivers.append(
            Waiver(
                check=check,
                reason=_text(entry, "reason", where, path),
                owner=_text(entry, "owner", where, path),
                expires=_date(entry["expires"], where, path),
                nodes=tuple(n.strip() for n in nodes),
                index=index,
            )
        )
    return tuple(waivers)
