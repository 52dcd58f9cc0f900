"""One file's transaction on the apply screen: its steps, the health-gate bar, its outcome."""

from __future__ import annotations

from urllib.parse import urlsplit

from textual.app import ComposeResult
from textual.containers import Horizontal, Vertical
from textual.content import Content
from textual.widgets import ProgressBar, Static

from cis_tui.engine.events import Event, Step
from cis_tui.tui.display import outcome_content, short_component

LABELS = {
    Step.SNAPSHOT: "snapshot",
    Step.BACKUP: "backup",
    Step.JOURNAL: "journal",
    Step.WRITE: "write",
    Step.RESTART: "restart",
    Step.RESTART_EVIDENCE: "restarted",
    Step.HEALTH: "health",
    Step.AUDIT: "audit",
    Step.COMMIT: "commit",
    Step.ROLLBACK: "rollback",
}

#: state -> (glyph, style); glyphs keep the states readable without colour (NO_COLOR).
STATES = {
    "pending": ("·", "$text-muted"),
    "running": ("…", "bold $text-accent"),
    "ok": ("✓", "$text-success"),
    "failed": ("✗", "bold $text-error"),
}


def planned_steps(component: str, gate: bool) -> list[Step]:
    """The steps a file's transaction goes through, in order."""
    steps = [Step.SNAPSHOT, Step.BACKUP, Step.JOURNAL, Step.WRITE]
    if gate and component != "node":
        if component == "kubelet":
            steps.append(Step.RESTART)
        steps.extend([Step.RESTART_EVIDENCE, Step.HEALTH])
    steps.extend([Step.AUDIT, Step.COMMIT])
    return steps


class FileProgress(Vertical):
    """Steps and states of one file; the progress bar follows the health gate's timeout."""

    DEFAULT_CSS = """
    FileProgress { height: auto; padding: 0 1; margin: 0 0 1 0; }
    FileProgress > Horizontal { height: auto; display: none; }
    FileProgress.-gating > Horizontal { display: block; }
    FileProgress ProgressBar { width: 34; }
    FileProgress .gate-info { width: 1fr; height: 1; color: $text-muted; }
    FileProgress .file-outcome { display: none; }
    FileProgress.-done .file-outcome { display: block; }
    """

    def __init__(self, label: str, shown: str, component: str, gate: bool) -> None:
        super().__init__(classes="file-progress")
        self.label = label
        self.shown = shown
        self.component = component
        self.states: dict[Step, str] = dict.fromkeys(planned_steps(component, gate), "pending")
        self.outcome: str | None = None
        self.outcome_message = ""
        self.gate_event: Event | None = None
        self._shown_steps: Content | None = None

    def compose(self) -> ComposeResult:
        yield Static(self._title(), classes="file-title")
        yield Static(self._steps(), classes="file-steps")
        with Horizontal():
            yield ProgressBar(total=100, show_eta=False, show_percentage=False)
            yield Static("", classes="gate-info")
        yield Static("", classes="file-outcome")

    def _title(self) -> Content:
        return Content.assemble(
            (short_component(self.component) or "node", "bold"), "  ", (self.shown, "")
        )

    def _steps(self) -> Content:
        parts: list[Content] = []
        for step, state in self.states.items():
            glyph, style = STATES[state]
            parts.append(Content.styled(f"{glyph} {LABELS[step]}", style))
        return Content(" ").join(parts)

    def step(self, step: Step, ok: bool | None) -> None:
        if step not in LABELS:
            return
        self.states[step] = {None: "running", True: "ok", False: "failed"}[ok]
        self._sync()

    def gate(self, event: Event) -> None:
        """A poll, healthy or stable event: move the bar, show the probe's answer."""
        if event.elapsed is None or event.timeout is None:
            return
        self.gate_event = event
        self._sync()

    def finish(self, outcome: str, message: str) -> None:
        self.outcome = outcome
        self.outcome_message = message
        for step, state in self.states.items():
            if state == "running":
                self.states[step] = "failed" if outcome != "committed" else "ok"
        self._sync()

    def on_mount(self) -> None:
        self._sync()

    def _sync(self) -> None:
        """Show the state (events can arrive before a new section is composed)."""
        if not self.is_mounted or not self.children:
            return
        steps = self._steps()
        if steps != self._shown_steps:  # a relayout only when a step changed state
            self._shown_steps = steps
            self.query_one(".file-steps", Static).update(steps)
        event = self.gate_event
        if event is not None and event.elapsed is not None and event.timeout is not None:
            self.add_class("-gating")
            self.query_one(ProgressBar).update(total=event.timeout, progress=event.elapsed)
            # one line of fixed height: no relayout of the screen for every probe
            self.query_one(".gate-info", Static).update(Content(_gate_info(event)), layout=False)
        if self.outcome is not None:
            self.add_class("-done")
            self.query_one(".file-outcome", Static).update(
                Content.assemble(outcome_content(self.outcome), ": ", self.outcome_message)
            )


def _gate_info(event: Event) -> str:
    """Elapsed against the timeout, the stability window, and the probe's last answer (URL
    path only)."""
    detail = event.message
    url = event.data.get("url")
    if isinstance(url, str) and detail.startswith(url):
        detail = urlsplit(url).path + detail[len(url) :]
    if event.latency_ms is not None:
        detail = f"{detail} in {event.latency_ms:.0f} ms"
    stability = f"{event.stability}  " if event.stability else ""
    return f"{event.elapsed:5.1f} s / {event.timeout:.0f} s  {stability}{detail}"
