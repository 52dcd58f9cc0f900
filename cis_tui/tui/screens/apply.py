"""The apply screen: the live health-gate panel of an engine job (apply, restore, recover).

It keeps up with the job without costing the keyboard: log lines are written in batches (every
Log write is a relayout), one-line widgets update without a relayout, and the section of the
file in flight is scrolled into view only when its layout changes, not on every probe.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, ClassVar

from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import VerticalScroll
from textual.content import Content
from textual.screen import Screen
from textual.widgets import Header, Static

from cis_tui.audit.evaluate import Result, Status
from cis_tui.engine.events import Event, Kind, Outcome, Step
from cis_tui.tui.display import STATUS_STYLE, outcome_content
from cis_tui.tui.engine_runner import EngineJob
from cis_tui.tui.widgets.file_progress import FileProgress, outcome_reason
from cis_tui.tui.widgets.follow_log import FollowLog
from cis_tui.tui.widgets.key_footer import KeyFooter

if TYPE_CHECKING:
    from cis_tui.engine.restore import Recovered
    from cis_tui.engine.transaction import ApplyResult
    from cis_tui.tui.app import CisTuiApp

LOG_LINES = 1000
#: Up to this many checks, the status line after an apply names each check's status.
NOW_EACH = 8


def _label(path: object) -> str:
    """The engine's name for a file (its path, or the attributes pseudo-file)."""
    return str(path) if path else "file modes and owners"


class ApplyScreen(Screen[None]):
    """Follows one engine job; the job runs on the App, so leaving this screen never stops it."""

    BINDING_GROUP_TITLE = "Apply"
    AUTO_FOCUS = "#apply-log"
    #: Below 100 columns the gate's bar shrinks so its figures (elapsed of the timeout, the
    #: stability window) are never cut at the edge.
    HORIZONTAL_BREAKPOINTS: ClassVar[list[tuple[int, str]] | None] = [
        (0, "-narrow"),
        (100, "-wide"),
    ]
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding(
            "x,escape", "cancel", "Cancel: roll back", tooltip="Stop safely: roll back", id="cancel"
        ),
        Binding("enter,escape", "back", "Back", tooltip="Back to the previous screen", id="back"),
        Binding(
            "G,end",
            "follow_log",
            "Follow log",
            tooltip="Scroll the log to its newest line and follow it again",
            id="bottom",
        ),
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
        self.cancel_requested = False
        self._cancel_shown = False
        #: The section of the file in flight, kept in view while the job runs.
        self.active: FileProgress | None = None
        self._view_pending = False
        self.log_view = FollowLog(max_lines=LOG_LINES, id="apply-log")

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
        yield self.log_view
        yield Static("", id="log-hint")
        yield KeyFooter()

    def _section(self, label: str, component: str) -> FileProgress:
        app = self.cis_app
        section = FileProgress(label, app.paths.path(label), component, app.runner.health_gate)
        self.sections[label] = section
        return section

    def on_mount(self) -> None:
        self.started = self.cis_app.clock()
        self._set_status("recovering" if self.job.kind == "recover" else "running")
        self.watch(self.log_view, "following", self._follow_changed, init=False)
        self.watch(self.log_view, "unseen", self._show_log_hint, init=False)
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

    @property
    def can_cancel(self) -> bool:
        """Whether x still cancels: not once the job is cancelling or rolling back, nor during
        a recovery (the App knows which)."""
        return self.running and self.cis_app.job_cancellable

    def _set_status(self, status: str) -> None:
        # Only a new status, the cancel hint going, or the final message can change the line's
        # height.
        cancel = self.final is None and self.can_cancel
        relayout = status != self.status or self.final is not None or cancel != self._cancel_shown
        self.status = status
        self._cancel_shown = cancel
        if self.final is not None:
            line = self.final
        else:
            style = "bold $text-warning" if "rolling back" in status else "bold $text-accent"
            line = Content.assemble(
                (status, style),
                (f"  · elapsed {self._elapsed():.0f} s", "$text-muted"),
                (
                    f"  · {self.cis_app.key_hint('cancel', 'x')} cancels (rolls back)"
                    if cancel
                    else "",
                    "$text-muted",
                ),
            )
        self.query_one("#apply-status", Static).update(line, layout=relayout)

    def write(self, text: str) -> None:
        self._pending_lines.append(f"{self._elapsed():6.1f}s  {self.cis_app.paths.show(text)}")

    def flush_log(self) -> None:
        log = self.log_view
        if self._pending_lines:
            lines, self._pending_lines = self._pending_lines, []
            log.write_batch(lines)
        else:
            log.keep_following()  # a relayout (a section grew) may have moved the tail away

    # -- following the job -------------------------------------------------------------------
    def _follow_changed(self, following: bool) -> None:
        self._show_log_hint()
        self.refresh_bindings()

    def _show_log_hint(self) -> None:
        log, hint = self.log_view, self.query_one("#log-hint", Static)
        if log.following:
            hint.display = False
            return
        plural = "s" if log.unseen != 1 else ""
        where = f"↓ {log.unseen} new line{plural} below" if log.unseen else "scrolled up"
        app = self.cis_app
        keys = app.key_hint("bottom", "G") if "bottom" in app.settings.keys else "End or G"
        text = f"{where} · {keys} follows the log"
        relayout = not hint.display
        hint.display = True
        hint.update(Content.styled(text, "$text-warning"), layout=relayout)

    def _keep_in_view(self, section: FileProgress) -> None:
        """The section of the file in flight stays in view (after the layout it changed)."""
        self.active = section
        if not self._view_pending:
            self._view_pending = True
            self.call_after_refresh(self._scroll_to_active)

    def _scroll_to_active(self) -> None:
        self._view_pending = False
        if self.active is not None and self.active.is_mounted:
            files = self.query_one("#apply-files", VerticalScroll)
            files.scroll_to_widget(self.active, animate=False, immediate=True)

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
        if section is not None and kind in (Kind.STEP, Kind.ROLLBACK, Kind.OUTCOME):
            self._keep_in_view(section)  # steps, a rollback, an outcome: its layout changes
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
                if not section.has_class("-gating"):  # the gate's bar appears: a taller section
                    self._keep_in_view(section)
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
            self.refresh_bindings()  # x has nothing left to cancel
            if section is not None:
                section.roll_back(self.cancel_requested or event.data.get("cancelled") is True)
            self.write(f"{who}: {event.message}")
        elif kind in (Kind.OUTCOME, Kind.SKIPPED):
            outcome = event.outcome.value if event.outcome else Outcome.SKIPPED.value
            if section is not None:
                if outcome == Outcome.ROLLED_BACK.value:
                    section.step(Step.ROLLBACK, True)
                section.finish(outcome, self.cis_app.paths.show(event.message))
            reason = outcome_reason(outcome, event.message)
            self.write(f"{who}: {outcome.replace('-', ' ').upper()}: {reason}")
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

    def cancelling(self, why: str = "cancelling") -> None:
        """A cancel was asked for (x, or a signal): the job rolls back; x has nothing left."""
        self.cancel_requested = True
        self._set_status(f"{why}: rolling back…")
        self.refresh_bindings()
        self.write(f"{why}: the engine rolls back or completes, never stops half-way")

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
            reason = outcome_reason("critical", critical.message)
            return Content.assemble(
                outcome_content("CRITICAL"), ": ", self.cis_app.paths.show(reason)
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
        if len(wanted) <= NOW_EACH:
            for r in wanted:
                parts.extend([(r.id, "bold"), " ", (r.status.value, STATUS_STYLE[r.status]), "  "])
        else:  # a long list would push the log off an 80x24 screen: count, name the others
            by_status: dict[Status, list[str]] = {}
            for r in wanted:
                by_status.setdefault(r.status, []).append(r.id)
            for status, ids in by_status.items():
                parts.extend([f"{len(ids)} ", (status.value, STATUS_STYLE[status])])
                if status is not Status.PASS:
                    parts.append(f" ({', '.join(ids)})")
                parts.append("  ")
        self.final = Content.assemble(*parts)
        self._set_status(self.status)

    # -- keys ------------------------------------------------------------------------------
    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        if action == "cancel":
            return self.can_cancel
        if action == "back":
            return not self.running
        if action == "follow_log":
            return not self.log_view.following  # shown only while scrolled up
        return True

    def action_cancel(self) -> None:
        if self.cis_app.runner.cancel():
            self.cancelling()

    def action_back(self) -> None:
        self.dismiss()

    def action_follow_log(self) -> None:
        self.log_view.follow()
