"""The change history: one record per finished transaction, for auditors (`cis-tui report`).

The journal only has to know about open transactions (and may be compacted once they close);
the history keeps the proof of each change: what changed (the diff), the PIDs of the component
before and after, the health gate's result and probe timings, the audit re-check and the
outcome, rolled-back and CRITICAL ones included. It is built from the engine's own events, so
it says exactly what the admin saw, and written to `history.jsonl` in the state directory
(0600, one JSON object a line, appended). The file is bounded: past MAX_BYTES the oldest
records are dropped, keeping the newest KEEP_RECORDS.
"""

from __future__ import annotations

import json
import os
import statistics
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from cis_tui.engine.atomic import atomic_write
from cis_tui.engine.events import Event, Kind, Step
from cis_tui.engine.statedir import ensure_state_dir, open_private, read_private, write_all
from cis_tui.errors import UserError
from cis_tui.remediate.plan import FilePlan

HISTORY_FILE = "history.jsonl"
#: Past this size the file is rewritten with the newest KEEP_RECORDS records.
MAX_BYTES = 8 << 20
KEEP_RECORDS = 1000
#: A diff longer than this is cut (a manifest diff is a few hundred bytes).
MAX_DIFF = 64 << 10
HISTORY_VERSION = 1


@dataclass
class _Gate:
    """The probes of one health gate (of the change, or of the rollback)."""

    component: str
    phase: str  # "change" | "rollback"
    polls: int = 0
    failures: int = 0
    latencies: list[float] = field(default_factory=list)
    urls: list[str] = field(default_factory=list)
    tls: str = ""
    first_healthy: float | None = None  # seconds after the restart step began
    stable_after: float | None = None
    window: float | None = None
    timeout: float | None = None
    result: str = ""
    ok: bool | None = None

    def to_dict(self) -> dict[str, Any]:
        lat = sorted(self.latencies)
        return {
            "component": self.component,
            "phase": self.phase,
            "ok": self.ok,
            "result": self.result,
            "urls": self.urls,
            "tls": self.tls,
            "polls": self.polls,
            "failed_polls": self.failures,
            "latency_ms": (
                {
                    "min": round(lat[0], 1),
                    "median": round(statistics.median(lat), 1),
                    "max": round(lat[-1], 1),
                }
                if lat
                else None
            ),
            "first_healthy_s": _round(self.first_healthy),
            "stable_after_s": _round(self.stable_after),
            "window_s": self.window,
            "timeout_s": self.timeout,
        }


def _round(value: float | None) -> float | None:
    return None if value is None else round(value, 3)


@dataclass
class _Open:
    """A transaction being recorded."""

    file: FilePlan
    label: str
    started: float
    txid: str = ""
    backup_id: str = ""
    old_pid: int | None = None
    new_pid: int | None = None
    restored_pid: int | None = None
    restart: str = ""
    gates: list[_Gate] = field(default_factory=list)
    audit: list[dict[str, Any]] = field(default_factory=list)
    steps: list[dict[str, Any]] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    rollback_reason: str = ""
    rolling_back: bool = False

    def gate(self, component: str) -> _Gate:
        phase = "rollback" if self.rolling_back else "change"
        for gate in reversed(self.gates):
            if gate.component == component and gate.phase == phase:
                return gate
        self.gates.append(_Gate(component, phase))
        return self.gates[-1]

    def record(self, event: Event) -> dict[str, Any]:
        """The finished transaction as its history record."""
        file = self.file
        diff = file.node_diff
        if len(diff) > MAX_DIFF:
            diff = diff[:MAX_DIFF] + "\n[diff cut at 64 KiB]\n"
        return {
            "version": HISTORY_VERSION,
            "txid": self.txid,
            "backup_id": self.backup_id,
            "started": self.started,
            "finished": event.time,
            "file": self.label,
            "component": file.component,
            "kind": "restore" if file.restores else "apply",
            "restores": file.restores or None,
            "checks": list(file.checks or file.reverts),
            "diff": diff,
            "risks": list(file.risks),
            "old_pid": self.old_pid,
            "new_pid": self.new_pid,
            "restored_pid": self.restored_pid,
            "restart": self.restart,
            "gates": [g.to_dict() for g in self.gates],
            "audit": self.audit,
            "steps": self.steps,
            "notes": self.notes,
            "rollback_reason": self.rollback_reason or None,
            "outcome": event.outcome.value if event.outcome else "",
            "message": event.message,
        }


class HistoryRecorder:
    """Fed every engine event; appends a record when a transaction's outcome arrives. Never
    raises: a full disk must not stop a transaction (the journal is what recovery needs)."""

    def __init__(self, state_dir: Path) -> None:
        self.path = state_dir / HISTORY_FILE
        self.state_dir = state_dir
        self._open: dict[str, _Open] = {}

    def begin(self, label: str, file: FilePlan, when: float) -> None:
        self._open[label] = _Open(file, label, when)

    def observe(self, event: Event) -> None:
        tx = self._open.get(event.file)
        if tx is None:
            return
        if event.kind is Kind.STEP:
            self._step(tx, event)
        elif event.kind is Kind.RESTART:
            tx.new_pid = _pid(event.data.get("pid"))
            tx.restart = event.message
        elif event.kind is Kind.POLL:
            gate = tx.gate(event.component)
            gate.polls += 1
            gate.failures += 0 if event.ok else 1
            if event.latency_ms is not None:
                gate.latencies.append(event.latency_ms)
            url = str(event.data.get("url", ""))
            if url and url not in gate.urls:
                gate.urls.append(url)
            gate.tls = str(event.data.get("tls", gate.tls) or gate.tls)
            gate.timeout = event.timeout
            gate.window = event.window
        elif event.kind is Kind.HEALTHY:
            gate = tx.gate(event.component)
            if gate.first_healthy is None:
                gate.first_healthy = event.elapsed
        elif event.kind is Kind.STABLE:
            gate = tx.gate(event.component)
            gate.stable_after, gate.ok, gate.result = event.elapsed, True, event.message
        elif event.kind is Kind.AUDIT:
            tx.audit.append(
                {"check": event.data.get("check", ""), "ok": event.ok, "result": event.message}
            )
        elif event.kind is Kind.ROLLBACK:
            tx.rolling_back = True
            tx.rollback_reason = event.message.removeprefix("rolling back: ")
        elif event.kind is Kind.NOTE:
            tx.notes.append(event.message)
        elif event.kind is Kind.OUTCOME:
            del self._open[event.file]
            self._append(tx.record(event))

    def _step(self, tx: _Open, event: Event) -> None:
        if event.ok is None:
            return
        tx.steps.append(
            {
                "step": event.step.value if event.step else "",
                "ok": event.ok,
                "message": event.message,
                "time": event.time,
            }
        )
        if not event.ok:
            if event.step is Step.HEALTH:
                gate = tx.gate(event.component)
                gate.ok, gate.result = False, event.message
            return
        if event.step is Step.SNAPSHOT:
            tx.old_pid = _pid(event.data.get("pid"))
        elif event.step is Step.BACKUP:
            tx.backup_id = event.message
        elif event.step is Step.JOURNAL:
            tx.txid = event.message

    def recovered(
        self,
        txid: str,
        backup_id: str,
        path: str,
        component: str,
        started: float | None,
        outcome: str,
        message: str,
    ) -> None:
        """A transaction a crash interrupted, closed by `recover`: what it did about it."""
        self._append(
            {
                "version": HISTORY_VERSION,
                "txid": txid,
                "backup_id": backup_id,
                "started": started,
                "finished": time.time(),
                "file": path,
                "component": component,
                "kind": "recover",
                "checks": [],
                "diff": "",
                "rollback_reason": "the process that made the change stopped before it ended",
                "outcome": outcome,
                "message": message,
            }
        )

    def _append(self, record: dict[str, Any]) -> None:
        line = (json.dumps(record) + "\n").encode()
        try:
            ensure_state_dir(self.state_dir)
            fd = open_private(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT)
            try:
                write_all(fd, line)
                os.fsync(fd)
                size = os.fstat(fd).st_size
            finally:
                os.close(fd)
            if size > MAX_BYTES:
                self._trim()
        except (OSError, UserError):
            return  # the history is evidence, not a safety mechanism

    def _trim(self) -> None:
        lines = read_private(self.path).splitlines(keepends=True)
        data = b"".join(lines[-KEEP_RECORDS:])
        atomic_write(self.path, data, 0o600, os.geteuid(), os.getegid())


def _pid(value: Any) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def read_history(state_dir: Path) -> list[dict[str, Any]]:
    """Every readable record, oldest first (a torn last line and foreign lines are skipped).
    Raises UserError for a state directory or file that is not to be trusted."""
    from cis_tui.engine.statedir import check_trusted

    path = state_dir / HISTORY_FILE
    if not state_dir.exists():
        return []
    check_trusted(state_dir)
    try:
        data = read_private(path)
    except FileNotFoundError:
        return []
    except OSError as exc:
        raise UserError(f"cannot read the change history: {exc.strerror}", path) from None
    records = []
    for line in data.decode("utf-8", errors="replace").splitlines():
        try:
            record = json.loads(line)
        except ValueError:
            continue
        if isinstance(record, dict) and record.get("version") == HISTORY_VERSION:
            records.append(record)
    return records
