"""A modal asking for a whole number (how many backups to keep)."""

from __future__ import annotations

from typing import ClassVar

from textual import on
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Vertical
from textual.content import Content
from textual.screen import ModalScreen
from textual.widgets import Input, Static


class NumberPrompt(ModalScreen[int | None]):
    """Dismisses with the number entered (enter), or None (escape)."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape", "cancel", "Cancel", tooltip="Close; nothing changes", id="close")
    ]

    DEFAULT_CSS = """
    NumberPrompt { align: center middle; }
    NumberPrompt > Vertical {
        width: 64; max-width: 100%; height: auto; border: thick $primary;
        background: $surface; padding: 1 2;
    }
    NumberPrompt .prompt-title { text-style: bold; margin: 0 0 1 0; }
    NumberPrompt .prompt-error { color: $text-error; }
    """

    def __init__(self, title: str, body: str, default: int, minimum: int = 0) -> None:
        super().__init__()
        self.title_text = title
        self.body = body
        self.default = default
        self.minimum = minimum

    def compose(self) -> ComposeResult:
        with Vertical():
            yield Static(Content(self.title_text), classes="prompt-title")
            yield Static(Content(self.body))
            yield Input(str(self.default), type="integer", id="number")
            yield Static("", classes="prompt-error")

    @on(Input.Submitted)
    def _submitted(self, event: Input.Submitted) -> None:
        try:
            number = int(event.value)
        except ValueError:
            number = self.minimum - 1
        if number < self.minimum:
            message = f"enter a whole number of at least {self.minimum}"
            self.query_one(".prompt-error", Static).update(Content(message))
            return
        self.dismiss(number)

    def action_cancel(self) -> None:
        self.dismiss(None)
