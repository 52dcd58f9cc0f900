"""A yes/no modal with single-key answers (y / n or escape)."""

from __future__ import annotations

from typing import ClassVar

from textual import events, on
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal, Vertical, VerticalScroll
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
    ConfirmScreen VerticalScroll { height: auto; }
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
            with VerticalScroll(id="confirm-scroll"):  # a long plan at 80x24 scrolls here
                yield Static(self.body, classes="confirm-body")
            with Horizontal():
                yield Button(self.no, id="no", compact=True)
                yield Button(self.yes, id="yes", variant="warning", compact=True)
        yield KeyFooter()  # this dialog's keys, not those of the screen below

    def on_mount(self) -> None:
        self._fit(self.app.size.height)
        self.set_focus(self.query_one("#no", Button))
        self.call_after_refresh(self._focus_a_long_body)

    def on_resize(self, event: events.Resize) -> None:
        self._fit(event.size.height)

    def _fit(self, height: int) -> None:
        """The body gets what the dialog's 90% (of the screen above the footer) leaves after
        its border, padding, title and buttons (8 rows): the buttons are always on screen."""
        room = int((height - 1) * 0.9) - 8
        self.query_one("#confirm-scroll").styles.max_height = max(3, room)

    def _focus_a_long_body(self) -> None:
        """A body taller than its room takes the focus: the arrows and page keys scroll it
        (y and n still answer; enter answers nothing until a button has the focus)."""
        scroll = self.query_one("#confirm-scroll", VerticalScroll)
        if scroll.max_scroll_y > 0:
            scroll.focus()

    def action_answer(self, answer: bool) -> None:
        self.dismiss(answer)

    @on(Button.Pressed)
    def _pressed(self, event: Button.Pressed) -> None:
        self.dismiss(event.button.id == "yes")
