"""The line the wizard leaves behind when a signal stops it: what changed, what rolled back,
where the backups are. Printed once the terminal is restored, and logged to events.jsonl."""

from __future__ import annotations

import contextlib
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from cis_tui.engine.events import Outcome

if TYPE_CHECKING:  # the engine's modules load with the first job, not at start-up
    from cis_tui.engine.restore import Recovered
    from cis_tui.engine.transaction import ApplyResult


def _name(path: object) -> str:
    return Path(str(path)).name if path else "file modes and owners"


def _with_backups(items: Sequence[tuple[str, str | None]], backups: str) -> str:
    """`a.yaml rolled back (backup ID in DIR)`, or each with its ID, then `; backups in DIR`."""
    if len(items) == 1:
        text, backup_id = items[0]
        return f"{text} (backup {backup_id} in {backups})" if backup_id else text
    parts = [f"{text} (backup {backup_id})" if backup_id else text for text, backup_id in items]
    return f"{', '.join(parts)}; backups in {backups}"


def _applied(result: ApplyResult, backups: str) -> str:
    from cis_tui.tui.widgets.file_progress import outcome_reason

    items: list[tuple[str, str | None]] = []
    critical: list[str] = []
    for f in result.files:
        name = _name(f.file.path)
        if f.outcome is Outcome.COMMITTED:
            items.append((f"{name} changed", f.backup_id))
        elif f.outcome is Outcome.ROLLED_BACK:
            items.append((f"{name} rolled back", f.backup_id))
        elif f.outcome is Outcome.CRITICAL:
            critical.append(f"{name} CRITICAL: {outcome_reason('critical', f.message)}")
    if critical:
        done = f"{_with_backups(items, backups)}; " if items else ""
        return done + "; ".join(critical)
    if not items:
        return "nothing changed"
    return f"{_with_backups(items, backups)}; nothing else changed"


def _recovered(done: Sequence[Recovered], backups: str) -> str:
    if not done:
        return "nothing was left to recover"
    parts = [
        f"{_name(r.path)} {'recovered' if r.ok else 'NOT recovered'}: {r.action}" for r in done
    ]
    return f"{'; '.join(parts)}; backups in {backups}"


def exit_summary(stopped_by: str, outcome: object, backups: str) -> str:
    """`cis-tui: stopped by SIGTERM: kube-scheduler.yaml rolled back (backup … in …); nothing
    else changed`. `outcome`: the job's ApplyResult or Recovered list, its error, or None when
    no change was in flight."""
    from cis_tui.engine.transaction import ApplyResult

    if isinstance(outcome, ApplyResult):
        what = _applied(outcome, backups)
    elif isinstance(outcome, list):
        what = _recovered(outcome, backups)
    elif isinstance(outcome, str):
        what = f"{outcome}; nothing changed"
    else:
        what = "no change was in flight; nothing changed"
    return f"cis-tui: stopped by {stopped_by}: {what}"


def print_to_terminal(line: str) -> None:
    """Print a line on stderr; a terminal that went away (EIO after a dropped SSH session, a
    closed stream) is not an error worth a traceback on the way out."""
    with contextlib.suppress(OSError, ValueError):
        print(line, file=sys.stderr, flush=True)
