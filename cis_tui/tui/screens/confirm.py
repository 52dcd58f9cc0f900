"""A yes/no modal with single-key answers (y / n or escape)."""

from __future__ import annotations

from typing import ClassVar

from textual import on
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal, Vertical
from textual.content import Content
from textual.screen import ModalScreen
from textual.widgets import Button, Static

from cis_tui.tui.widgets.key_footer import KeyFooter


class ConfirmScreen(ModalScreen[bool]):
    """Asks one question; dismisses with True (y) or False (n, escape)."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("y", "answer(True)", "Yes", tooltip="Confirm", id="yes"),
        Binding("n,escape", "answer(False)", "No", tooltip="Cancel; nothing changes", id="no"),
    ]

    DEFAULT_CSS = """
    ConfirmScreen { align: center middle; }
    ConfirmScreen > Vertical {
        width: 76; max-width: 100%; height: auto; max-height: 90%;
        border: thick $warning; background: $surface; padding: 1 2;
    }
    ConfirmScreen .confirm-title { text-style: bold; margin: 0 0 1 0; }
    ConfirmScreen Horizontal { height: auto; margin: 1 0 0 0; align: right middle; }
    ConfirmScreen Button { margin: 0 0 0 2; }
    """

    def __init__(self, title: str, body: Content, yes: str = "Yes (y)", no: str = "No (n)") -> None:
        super().__init__()
        self.title_text = title
        self.body = body
        self.yes = yes
        self.no = no

    def compose(self) -> ComposeResult:
        with Vertical():
            yield Static(Content(self.title_text), classes="confirm-title")
            yield Static(self.body, classes="confirm-body")
            with Horizontal():
                yield Button(self.no, id="no", compact=True)
                yield Button(self.yes, id="yes", variant="warning", compact=True)
        yield KeyFooter()  # this dialog's keys, not those of the screen below

    def on_mount(self) -> None:
        self.set_focus(self.query_one("#no", Button))

    def action_answer(self, answer: bool) -> None:
        self.dismiss(answer)

    @on(Button.Pressed)
    def _pressed(self, event: Button.Pressed) -> None:
        self.dismiss(event.button.id == "yes")
