"""Messages from workers to the app: workers never touch widgets, the app's handlers do."""

from __future__ import annotations

from collections.abc import Sequence

from textual.message import Message

from cis_tui.audit.evaluate import Result
from cis_tui.audit.strays import StrayFile
from cis_tui.audit.versions import NodeVersions
from cis_tui.engine.events import Event


class ScanDone(Message):
    """A scan of the node finished."""

    def __init__(
        self,
        results: Sequence[Result],
        live: bool,
        strays: Sequence[StrayFile] = (),
        versions: NodeVersions | None = None,
        warnings: Sequence[str] = (),
    ) -> None:
        super().__init__()
        self.results = tuple(results)
        self.live = live
        self.strays = tuple(strays)
        self.versions = versions
        #: Waivers that expired or expire soon (cis_tui.audit.waive).
        self.warnings = tuple(warnings)


class PersistedKnown(Message):
    """Which passes the next `kubeadm upgrade` keeps (check id -> bool; absent: unknown)."""

    def __init__(self, persisted: dict[str, bool]) -> None:
        super().__init__()
        self.persisted = persisted


class ScanFailed(Message):
    """A scan could not read the node."""

    def __init__(self, error: str) -> None:
        super().__init__()
        self.error = error


class EngineEvent(Message):
    """One progress event from the engine (its sink posts these)."""

    def __init__(self, event: Event) -> None:
        super().__init__()
        self.event = event


class EngineDone(Message):
    """The engine job finished; `result` is an ApplyResult or a list of Recovered."""

    def __init__(self, result: object) -> None:
        super().__init__()
        self.result = result


class EngineFailed(Message):
    """The engine job raised (node locked, bad backup, ...); nothing half-done."""

    def __init__(self, error: str, exit_code: int) -> None:
        super().__init__()
        self.error = error
        self.exit_code = exit_code
