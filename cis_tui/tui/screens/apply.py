"""The apply screen: the live health-gate panel of an engine job (apply, restore, recover)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, ClassVar

from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import VerticalScroll
from textual.content import Content
from textual.screen import Screen
from textual.widgets import Header, Log, Static

from cis_tui.audit.evaluate import Result
from cis_tui.engine.events import Event, Kind, Outcome, Step
from cis_tui.tui.display import STATUS_STYLE, outcome_content
from cis_tui.tui.engine_runner import EngineJob
from cis_tui.tui.widgets.file_progress import FileProgress
from cis_tui.tui.widgets.key_footer import KeyFooter

if TYPE_CHECKING:
    from cis_tui.engine.restore import Recovered
    from cis_tui.engine.transaction import ApplyResult
    from cis_tui.tui.app import CisTuiApp

LOG_LINES = 1000


def _label(path: object) -> str:
    """The engine's name for a file (its path, or the attributes pseudo-file)."""
    return str(path) if path else "file modes and owners"


class ApplyScreen(Screen[None]):
    """Follows one engine job; the job runs on the App, so leaving this screen never stops it."""

    BINDING_GROUP_TITLE = "Apply"
    AUTO_FOCUS = "#apply-log"
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("x,escape", "cancel", "Cancel: roll back", tooltip="Stop safely: roll back"),
        Binding("enter,escape", "back", "Back", tooltip="Back to the previous screen"),
    ]

    def __init__(self, job: EngineJob, *, start: bool = True) -> None:
        super().__init__(id="apply")
        self.job = job
        self.autostart = start
        self.sections: dict[str, FileProgress] = {}
        self.running = True
        self.started = 0.0
        self.status = "starting"
        self._pending_lines: list[str] = []
        self._last_poll: dict[str, tuple[bool | None, float]] = {}
        self.final: Content | None = None

    @property
    def cis_app(self) -> CisTuiApp:
        return self.app  # type: ignore[return-value]

    def compose(self) -> ComposeResult:
        yield Header()
        yield Static(Content.styled(self.job.title, "bold"), id="apply-title")
        yield Static("", id="apply-status")
        with VerticalScroll(id="apply-files"):
            for file in self.job.files:
                yield self._section(_label(file.path), file.component)
        yield Log(max_lines=LOG_LINES, id="apply-log")
        yield KeyFooter()

    def _section(self, label: str, component: str) -> FileProgress:
        app = self.cis_app
        section = FileProgress(label, app.paths.path(label), component, app.runner.health_gate)
        self.sections[label] = section
        return section

    def on_mount(self) -> None:
        self.started = self.cis_app.clock()
        self._set_status("running")
        self.set_interval(0.5, self._tick)
        # Every Log write is a relayout (its virtual size grows): lines are written in batches.
        self.set_interval(0.5, self.flush_log)
        if self.autostart:
            self.cis_app.runner.start(self.job)

    # -- status ----------------------------------------------------------------------------
    def _elapsed(self) -> float:
        return self.cis_app.clock() - self.started

    def _tick(self) -> None:
        if self.running:
            self._set_status(self.status)

    def _set_status(self, status: str) -> None:
        # Only a new status (or the final message) can change the line's height.
        relayout = status != self.status or self.final is not None
        self.status = status
        if self.final is not None:
            line = self.final
        else:
            style = "bold $text-warning" if "rolling back" in status else "bold $text-accent"
            line = Content.assemble(
                (status, style),
                (f"  · elapsed {self._elapsed():.0f} s", "$text-muted"),
                ("  · x cancels (rolls back)", "$text-muted"),
            )
        self.query_one("#apply-status", Static).update(line, layout=relayout)

    def write(self, text: str) -> None:
        self._pending_lines.append(f"{self._elapsed():6.1f}s  {self.cis_app.paths.show(text)}")

    def flush_log(self) -> None:
        if self._pending_lines:
            lines, self._pending_lines = self._pending_lines, []
            self.query_one(Log).write_lines(lines)

    # -- engine events ---------------------------------------------------------------------
    def record(self, event: Event) -> None:
        """Show one engine event."""
        section = None
        if event.file:
            section = self.sections.get(event.file)
            if section is None:
                section = self._section(event.file, event.component or "node")
                self.query_one("#apply-files").mount(section)
        kind = event.kind
        who = event.component or event.file
        if kind is Kind.STEP:
            if section is not None and event.step is not None:
                section.step(event.step, event.ok)
            if event.step is Step.LOCK:
                self.write(f"node lock taken by cis-tui PID {event.message}")
            elif event.ok is not None or event.step in (Step.HEALTH, Step.RESTART_EVIDENCE):
                state = {None: "…", True: "ok", False: "FAILED"}[event.ok]
                detail = f" ({event.message})" if event.message else ""
                step = event.step.value if event.step else ""
                self.write(f"{who}: {step} {state}{detail}")
        elif kind in (Kind.POLL, Kind.HEALTHY, Kind.STABLE):
            if section is not None:
                section.gate(event)
            if kind is Kind.POLL:
                if self._poll_worth_a_line(event):
                    latency = f" {event.latency_ms:.0f} ms" if event.latency_ms is not None else ""
                    stability = f", {event.stability}" if event.ok and event.stability else ""
                    self.write(f"{who}: probe {event.message}{latency}{stability}")
            else:
                self.write(f"{who}: {event.message}")
        elif kind is Kind.ROLLBACK:
            self._set_status(f"{who}: {event.message}…")
            if section is not None:
                section.step(Step.ROLLBACK, None)
            self.write(f"{who}: {event.message}")
        elif kind in (Kind.OUTCOME, Kind.SKIPPED):
            outcome = event.outcome.value if event.outcome else Outcome.SKIPPED.value
            if section is not None:
                if outcome == Outcome.ROLLED_BACK.value:
                    section.step(Step.ROLLBACK, True)
                section.finish(outcome, self.cis_app.paths.show(event.message))
            self.write(f"{who}: {outcome.upper()}: {event.message}")
        else:
            self.write(f"{who + ': ' if who else ''}{event.message}")

    def _poll_worth_a_line(self, event: Event) -> bool:
        """A probe line when the answer changes, else one a second per endpoint (the gate line
        above shows every poll): as the CLI prints them."""
        key = f"{event.component} {event.data.get('url', '')}"
        last = self._last_poll.get(key)
        if last is not None and last[0] == event.ok and event.time - last[1] < 1.0:
            return False
        self._last_poll[key] = (event.ok, event.time)
        return True

    def cancelling(self) -> None:
        self._set_status("cancelling: rolling back…")
        self.write("cancel requested: the engine rolls back or completes, never stops half-way")

    def finish(self, result: object) -> None:
        """The job ended: show the overall outcome."""
        self.flush_log()
        self.running = False
        from cis_tui.engine.transaction import ApplyResult

        if isinstance(result, ApplyResult):
            self.final = self._apply_outcome(result)
        elif isinstance(result, list):
            self.final = self._recover_outcome(result)
        else:
            self.final = Content("done")
        self._set_status("done")
        self.refresh_bindings()

    def failed(self, error: str) -> None:
        self.running = False
        self.final = Content.assemble(("failed: ", "bold $text-error"), error, "; nothing changed")
        self.write(f"failed: {error}")
        self.flush_log()
        self._set_status("failed")
        self.refresh_bindings()

    def _apply_outcome(self, result: ApplyResult) -> Content:
        if not result.files:
            return Content.assemble(("nothing to do: ", "bold"), "the files already match")
        outcomes = {f.outcome for f in result.files}
        if Outcome.CRITICAL in outcomes:
            critical = next(f for f in result.files if f.outcome is Outcome.CRITICAL)
            return Content.assemble(
                outcome_content("CRITICAL"), ": ", self.cis_app.paths.show(critical.message)
            )
        if outcomes == {Outcome.COMMITTED}:
            head = outcome_content("committed")
        elif result.cancelled:
            head = outcome_content("cancelled and rolled back")
        else:
            head = outcome_content("rolled back")
        counts = ", ".join(
            f"{sum(1 for f in result.files if f.outcome is o)} {o.value}"
            for o in Outcome
            if o in outcomes
        )
        return Content.assemble(head, f": {counts}. ", ("enter", "bold"), " goes back.")

    def _recover_outcome(self, done: Sequence[Recovered]) -> Content:
        failed = [d for d in done if not d.ok]
        if failed:
            message = "; ".join(f"{d.path}: {d.action}" for d in failed)
            return Content.assemble(
                outcome_content("CRITICAL"), ": ", self.cis_app.paths.show(message)
            )
        if not done:
            return Content("nothing was left to recover")
        return Content.assemble(outcome_content("recovered"), f": {len(done)} file(s) restored")

    def show_statuses(self, results: Sequence[Result], checks: Sequence[str]) -> None:
        """After the rescan: the new status of the checks this job was about."""
        wanted = [r for r in results if r.id in set(checks)]
        if not wanted or self.final is None:
            return
        parts: list[Content | str | tuple[str, str]] = [self.final, "\nnow: "]
        for r in wanted:
            parts.extend([(r.id, "bold"), " ", (r.status.value, STATUS_STYLE[r.status]), "  "])
        self.final = Content.assemble(*parts)
        self._set_status(self.status)

    # -- keys ------------------------------------------------------------------------------
    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        if action == "cancel":
            return self.running
        if action == "back":
            return not self.running
        return True

    def action_cancel(self) -> None:
        if self.cis_app.runner.cancel():
            self.cancelling()

    def action_back(self) -> None:
        self.dismiss()
