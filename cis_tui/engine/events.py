"""The engine's progress: a stream of typed events that the CLI prints and the TUI renders."""

from __future__ import annotations

import enum
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import Any


class Kind(str, enum.Enum):
    STEP = "step"  # a step started (ok None) or finished (ok True/False)
    POLL = "poll"  # one health probe answer, with its latency
    RESTART = "restart"  # the component restarted with the new arguments
    HEALTHY = "healthy"  # first healthy answer after the restart
    STABLE = "stable"  # healthy long enough: the gate passed
    AUDIT = "audit"  # audit re-check of one check
    ROLLBACK = "rollback"  # rolling back a file
    SKIPPED = "skipped"  # a file not attempted after an earlier failure
    NOTE = "note"  # anything an admin should read (unverified TLS, companions left in place)
    OUTCOME = "outcome"  # the end of one file's transaction
    DONE = "done"  # the end of the whole apply


class Step(str, enum.Enum):
    LOCK = "lock"
    SNAPSHOT = "snapshot"
    BACKUP = "backup"
    JOURNAL = "journal"
    WRITE = "write"
    RESTART = "restart"
    RESTART_EVIDENCE = "restart-evidence"
    HEALTH = "health"
    PERSIST = "persist"  # the fix mirrored into kubeadm's stored configuration
    AUDIT = "audit"
    COMMIT = "commit"
    ROLLBACK = "rollback"


class Outcome(str, enum.Enum):
    COMMITTED = "committed"
    ROLLED_BACK = "rolled-back"
    SKIPPED = "skipped"
    CRITICAL = "critical"
    NOTHING = "nothing-to-do"


@dataclass(frozen=True)
class Event:
    kind: Kind
    file: str = ""  # the file (or "file modes and owners") the event is about
    component: str = ""
    step: Step | None = None
    ok: bool | None = None
    message: str = ""
    latency_ms: float | None = None  # POLL: how long the probe took
    elapsed: float | None = None  # seconds since the step (restart, gate) began
    timeout: float | None = None  # the step's deadline, for progress bars
    outcome: Outcome | None = None
    data: dict[str, Any] = field(default_factory=dict)
    time: float = field(default_factory=time.time)
    #: POLL, HEALTHY, STABLE: how long the component has answered healthy without a break,
    #: against the stability window the gate needs (`stable 3.1 s / 20 s`).
    stable: float | None = None
    window: float | None = None

    @property
    def stability(self) -> str | None:
        """`stable 3.1 s / 20 s`, or None when the event is not about the window."""
        if self.stable is None or self.window is None:
            return None
        return f"stable {self.stable:.1f} s / {self.window:g} s"

    def to_dict(self) -> dict[str, Any]:
        raw = asdict(self)
        raw["kind"] = self.kind.value
        raw["step"] = self.step.value if self.step else None
        raw["outcome"] = self.outcome.value if self.outcome else None
        return {k: v for k, v in raw.items() if v not in (None, "", {})}


Sink = Callable[[Event], None]


#: Steps long enough that their start deserves a line of its own.
_SLOW_STEPS = {Step.RESTART, Step.RESTART_EVIDENCE, Step.HEALTH, Step.ROLLBACK}


def format_event(event: Event) -> str | None:
    """One readable progress line (None: not worth a line of text)."""
    where = f"{event.component or event.file}: " if (event.component or event.file) else ""
    if event.kind is Kind.STEP and event.ok is None and event.step not in _SLOW_STEPS:
        return None
    if event.kind is Kind.STEP:
        state = {None: "...", True: "ok", False: "FAILED"}[event.ok]
        detail = f" ({event.message})" if event.message else ""
        return f"{where}{event.step.value if event.step else ''} {state}{detail}"
    if event.kind is Kind.POLL:
        latency = f" in {event.latency_ms:.0f} ms" if event.latency_ms is not None else ""
        elapsed = (
            f" [{event.elapsed:.1f}s/{event.timeout:.0f}s]" if event.elapsed is not None else ""
        )
        stability = f" {event.stability}" if event.ok and event.stability else ""
        return f"{where}probe {event.message}{latency}{elapsed}{stability}"
    if event.kind is Kind.OUTCOME and event.outcome:
        return f"{where}{event.outcome.value.upper()}: {event.message}"
    if event.kind is Kind.DONE:
        return event.message
    return f"{where}{event.message}"
