"""Runs engine jobs (apply, restore, recover) as one worker on the App.

The worker lives on the App, not on a screen the admin can pop, so leaving a screen never
cancels a transaction. The engine's sink posts an `EngineEvent` per event and appends it to
the event log (for a dropped SSH session); the App's handlers update the widgets.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from textual.worker import Worker, WorkerState

from cis_tui.engine.eventlog import RotatingLog
from cis_tui.engine.events import Event, Kind
from cis_tui.errors import NodeLocked, UserError
from cis_tui.tui.messages import EngineDone, EngineEvent, EngineFailed

if TYPE_CHECKING:
    from textual.app import App

    from cis_tui.benchmarks.catalog import Catalog
    from cis_tui.engine.transaction import Engine
    from cis_tui.layout import EventLogSettings, Settings
    from cis_tui.remediate.plan import FilePlan, Plan


@dataclass(frozen=True)
class EngineJob:
    """What the engine is asked to do, and what the apply screen shows about it."""

    kind: str  # "apply" | "restore" | "recover"
    title: str
    run: Callable[[Engine], Awaitable[object]]
    files: tuple[FilePlan, ...] = ()


async def _restore(engine: Engine, backup_id: str) -> object:
    from cis_tui.engine.restore import restore

    return await restore(engine, backup_id)


async def _recover(engine: Engine) -> object:
    from cis_tui.engine.restore import recover

    return await recover(engine)


def apply_job(plan: Plan) -> EngineJob:
    count = len(plan.files)
    title = f"Applying {count} file change{'s' if count != 1 else ''} for {', '.join(plan.checks)}"
    return EngineJob("apply", title, lambda engine: engine.apply(plan), plan.files)


def restore_job(backup_id: str, what: str) -> EngineJob:
    return EngineJob(
        "restore", f"Restoring {what} from backup {backup_id}", lambda e: _restore(e, backup_id)
    )


def recover_job(count: int) -> EngineJob:
    title = f"Recovering {count} unfinished transaction{'s' if count != 1 else ''}"
    return EngineJob("recover", title, _recover)


class EventLog:
    """Appends events as JSON lines (rotated by size); a failing log never stops a
    transaction."""

    def __init__(self, path: Path, settings: EventLogSettings | None = None) -> None:
        self.path = path
        self._log = RotatingLog(path, settings)
        self._file: RotatingLog | None = None

    def open(self) -> None:
        self._file = self._log

    def write(self, event: Event) -> None:
        if self._file is not None:
            self._file.write(json.dumps(event.to_dict()))

    def close(self) -> None:
        if self._file is not None:
            self._file.close()
            self._file = None

    def note(self, message: str) -> None:
        """A note of the wizard's own (the terminal was lost), logged during a job or not."""
        event = Event(Kind.NOTE, message=message)
        if self._file is not None:
            self.write(event)
            return
        self.open()
        self.write(event)
        self.close()


class EngineRunner:
    """One engine job at a time, as the App's worker in the group "engine"."""

    def __init__(
        self,
        app: App[int],
        settings: Settings,
        catalog: Catalog,
        *,
        health_gate: bool,
        timeout: float | None = None,
    ) -> None:
        self.app = app
        self.settings = settings
        self.catalog = catalog
        self.health_gate = health_gate
        self.timeout = timeout
        self.engine: Engine | None = None
        self.worker: Worker[object] | None = None
        self.log = EventLog(settings.log_dir / "events.jsonl", settings.events)

    @property
    def busy(self) -> bool:
        """Whether a job runs: a write or a rollback may be in flight."""
        return self.worker is not None and self.worker.state in (
            WorkerState.PENDING,
            WorkerState.RUNNING,
        )

    @property
    def cancelling(self) -> bool:
        return self.busy and self.engine is not None and self.engine.cancel.is_set()

    def _sink(self, event: Event) -> None:
        self.log.write(event)
        self.app.post_message(EngineEvent(event))

    def start(self, job: EngineJob) -> None:
        if self.busy:
            raise RuntimeError("an engine job is already running")
        from cis_tui.engine.transaction import Engine

        self.engine = Engine(
            self.settings,
            self.catalog,
            self._sink,
            health_gate=self.health_gate,
            timeout=self.timeout,
        )
        self.worker = self.app.run_worker(
            self._work(job, self.engine),
            name=f"engine-{job.kind}",
            group="engine",
            exclusive=True,
            exit_on_error=False,
        )

    def cancel(self, reason: str = "cancelled by the admin") -> bool:
        """Ask the engine to stop: it rolls back or completes, never stops half-way."""
        if not self.busy or self.engine is None:
            return False
        self.engine.stop(reason)
        return True

    async def _work(self, job: EngineJob, engine: Engine) -> object:
        self.log.open()
        try:
            result = await job.run(engine)
        except NodeLocked as exc:
            self.app.post_message(EngineFailed(f"the node is locked: {exc}", NodeLocked.exit_code))
            return None
        except UserError as exc:
            self.app.post_message(EngineFailed(str(exc), UserError.exit_code))
            return None
        except Exception as exc:  # a bug must not leave the apply screen waiting forever
            self.app.post_message(EngineFailed(f"{type(exc).__name__}: {exc}", 1))
            raise
        finally:
            self.log.close()
        self.app.post_message(EngineDone(result))
        return result
