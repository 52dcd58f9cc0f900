"""One file's transaction on the apply screen: its steps, the health-gate bar, its outcome."""

from __future__ import annotations

from urllib.parse import urlsplit

from textual.app import ComposeResult
from textual.containers import Horizontal, Vertical
from textual.content import Content
from textual.widgets import ProgressBar, Static

from cis_tui.engine.events import Event, Step
from cis_tui.tui.display import OUTCOME_STYLE, short_component

LABELS = {
    Step.SNAPSHOT: "snapshot",
    Step.BACKUP: "backup",
    Step.JOURNAL: "journal",
    Step.WRITE: "write",
    Step.RESTART: "restart",
    Step.RESTART_EVIDENCE: "restarted",
    Step.HEALTH: "health",
    Step.PERSIST: "persist",  # after the gate: a restarted API server takes the write
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
    "cancelled": ("✗", "bold $text-warning"),  # and the word, so it reads apart from failed
}


def outcome_reason(outcome: str, message: str) -> str:
    """The engine's message without the outcome it repeats (`rolled back: why` -> `why`)."""
    words = outcome.replace("-", " ")
    if message[: len(words) + 1].lower() == words + ":":
        return message[len(words) + 1 :].lstrip()
    return message


def outcome_line(outcome: str, message: str) -> Content:
    """`rolled back: why`: the outcome said once, in words, then the reason."""
    reason = outcome_reason(outcome, message)
    head = Content.styled(outcome.replace("-", " "), OUTCOME_STYLE.get(outcome, ""))
    return Content.assemble(head, ": ", reason) if reason else head


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
        #: Rolling back: later restart and health events are the rollback's own gate, which
        #: must not turn the change's failed or cancelled steps into ✓.
        self.rolling_back = False
        self._rollback_gate = False
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
            label = f"{LABELS[step]} (cancelled)" if state == "cancelled" else LABELS[step]
            parts.append(Content.styled(f"{glyph} {label}", style))
        return Content(" ").join(parts)

    def step(self, step: Step, ok: bool | None) -> None:
        if step not in LABELS or (self.rolling_back and step is not Step.ROLLBACK):
            return
        if step not in self.states:  # persisting: only files with a kubeadm config change
            order = list(LABELS)
            self.states = dict(
                sorted({**self.states, step: "pending"}.items(), key=lambda i: order.index(i[0]))
            )
        self.states[step] = {None: "running", True: "ok", False: "failed"}[ok]
        self._sync()

    def roll_back(self, cancelled: bool) -> None:
        """The rollback began: the step in flight was cancelled (or failed)."""
        for step, state in self.states.items():
            if state == "running":
                self.states[step] = "cancelled" if cancelled else "failed"
        self.states[Step.ROLLBACK] = "running"
        self.rolling_back = True
        self._sync()

    def gate(self, event: Event) -> None:
        """A poll, healthy or stable event: move the bar, show the probe's answer."""
        if event.elapsed is None or event.timeout is None:
            return
        self.gate_event = event
        self._rollback_gate = self.rolling_back
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
            info = _gate_info(event)
            if self._rollback_gate:  # the old configuration's gate, not the change's
                info = f"rollback: {info}"
            self.query_one(".gate-info", Static).update(Content(info), layout=False)
        if self.outcome is not None:
            self.add_class("-done")
            self.query_one(".file-outcome", Static).update(
                outcome_line(self.outcome, self.outcome_message)
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
    if event.stability and detail.startswith(event.stability):  # the stable event says it
        stability = ""
    return f"{event.elapsed:5.1f} s / {event.timeout:.0f} s  {stability}{detail}"
