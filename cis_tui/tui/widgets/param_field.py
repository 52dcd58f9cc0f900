"""One remediation parameter: its input, validated with the catalog's rules as it is typed."""

from __future__ import annotations

from textual import on
from textual.app import ComposeResult
from textual.containers import Horizontal, Vertical
from textual.content import Content
from textual.message import Message
from textual.widgets import Input, Static

from cis_tui.benchmarks.catalog import Check, Param
from cis_tui.errors import UserError
from cis_tui.remediate.params import validate


class ParamField(Vertical):
    """Label, input and error line for `check.param`; posts `ParamField.Changed` on edits."""

    DEFAULT_CSS = """
    ParamField { height: auto; }
    ParamField > Horizontal { height: auto; }
    ParamField .param-label { width: 24; padding: 0 1 0 0; }
    ParamField Input { width: 1fr; }
    ParamField .param-help { color: $text-muted; padding: 0 0 0 24; }
    ParamField .param-error { color: $text-error; padding: 0 0 0 24; display: none; }
    ParamField.-invalid .param-error { display: block; }
    ParamField.-invalid Input { background: $error 30%; }
    """

    class Changed(Message):
        """A parameter was edited: `value` is normalised, or `error` says why it is invalid."""

        def __init__(self, field: ParamField, value: str | None, error: str | None) -> None:
            super().__init__()
            self.field = field
            self.value = value
            self.error = error

        @property
        def control(self) -> ParamField:
            return self.field

    def __init__(self, check: Check, param: Param, value: str) -> None:
        super().__init__(classes="param-field")
        self.check = check
        self.param = param
        self.initial = value
        self.error: str | None = None

    def compose(self) -> ComposeResult:
        with Horizontal():
            yield Static(Content(f"{self.check.id} {self.param.name}"), classes="param-label")
            yield Input(self.initial, compact=True)
        rule = f" (at least {self.param.min:g})" if self.param.min is not None else ""
        choices = f" (one of {', '.join(self.param.choices)})" if self.param.choices else ""
        yield Static(Content(f"{self.param.help}{rule}{choices}"), classes="param-help")
        yield Static("", classes="param-error")

    @property
    def input(self) -> Input:
        return self.query_one(Input)

    @on(Input.Changed)
    def _changed(self, event: Input.Changed) -> None:
        event.stop()
        try:
            value: str | None = validate(self.check, self.param, event.value)
            self.error = None
        except UserError as exc:
            value, self.error = None, str(exc)
        self.set_class(self.error is not None, "-invalid")
        self.query_one(".param-error", Static).update(Content(self.error or ""))
        self.post_message(self.Changed(self, value, self.error))
