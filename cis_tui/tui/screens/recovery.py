"""The start-up dialog shown when the journal holds transactions a crash left unfinished."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from typing import ClassVar

from textual import on
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal, Vertical
from textual.content import Content
from textual.screen import ModalScreen
from textual.widgets import Button, Static

from cis_tui.engine.journal import OpenTransaction
from cis_tui.tui.display import NodePaths


def recovery_text(
    pending: Sequence[OpenTransaction], paths: NodePaths, *, read_only: bool = False
) -> Content:
    """What is unfinished, and what each choice does (read-only: what to run instead)."""
    lines = [
        Content(
            "A previous cis-tui run stopped in the middle of a change (a crash, kill -9 or a "
            "power loss). These files may hold a change that was never health-checked:"
        ),
        Content(""),
    ]
    for tx in pending:
        started = dt.datetime.fromtimestamp(tx.started, dt.timezone.utc).strftime("%Y-%m-%d %H:%M")
        lines.append(
            Content.assemble(
                ("• ", "$text-warning"),
                (paths.path(tx.path), "bold"),
                f"  ({tx.component}; stopped after {tx.last_step!r} at {started} UTC; ",
                f"backup {tx.backup_id})",
            )
        )
    if read_only:
        lines += [
            Content(""),
            Content.assemble(
                ("Read-only mode: ", "bold"),
                "nothing is recovered from here, and nothing has been changed. To restore the "
                "pre-change state, run `cis-tui recover` (or the wizard without --read-only).",
            ),
        ]
        return Content("\n").join(lines)
    lines += [
        Content(""),
        Content.assemble(
            ("Recover", "bold"),
            " puts back the pre-change bytes (verified by sha256) and waits for each component "
            "to be healthy again. ",
            ("Later", "bold"),
            " leaves everything as it is; run `cis-tui recover` when you are ready.",
        ),
    ]
    return Content("\n").join(lines)


class RecoveryScreen(ModalScreen[bool]):
    """Dismisses with True to recover now, False for later."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding(
            "r",
            "answer(True)",
            "Recover",
            tooltip="Restore the pre-change state now",
            id="recover",
        ),
        Binding(
            "l,escape", "answer(False)", "Later", tooltip="Leave it; recover later", id="later"
        ),
    ]

    DEFAULT_CSS = """
    RecoveryScreen { align: center middle; }
    RecoveryScreen > Vertical {
        width: 90; max-width: 100%; height: auto; max-height: 90%;
        border: thick $error; background: $surface; padding: 1 2;
    }
    RecoveryScreen .recovery-title { text-style: bold; color: $text-error; margin: 0 0 1 0; }
    RecoveryScreen Horizontal { height: auto; margin: 1 0 0 0; align: right middle; }
    RecoveryScreen Button { margin: 0 0 0 2; }
    """

    def __init__(
        self, pending: Sequence[OpenTransaction], paths: NodePaths, *, read_only: bool = False
    ) -> None:
        super().__init__()
        self.pending = tuple(pending)
        self.paths = paths
        #: Only inform: no recover key or button (the App refuses a recovery too).
        self.read_only = read_only

    def compose(self) -> ComposeResult:
        count = len(self.pending)
        with Vertical():
            yield Static(
                f"{count} unfinished transaction{'s' if count != 1 else ''}",
                classes="recovery-title",
            )
            yield Static(recovery_text(self.pending, self.paths, read_only=self.read_only))
            with Horizontal():
                yield Button("Later (l)", id="later", compact=True)
                if not self.read_only:
                    yield Button("Recover (r)", id="recover", variant="error", compact=True)

    def on_mount(self) -> None:
        self.set_focus(self.query_one("#later" if self.read_only else "#recover", Button))

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        return not (self.read_only and action == "answer" and parameters == (True,))

    def action_answer(self, answer: bool) -> None:
        self.dismiss(answer)

    @on(Button.Pressed)
    def _pressed(self, event: Button.Pressed) -> None:
        self.dismiss(event.button.id == "recover")
