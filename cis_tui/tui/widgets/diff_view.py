"""A unified diff, coloured with the app theme (added lines success, removed lines error)."""

from __future__ import annotations

from typing import ClassVar

from pygments.token import Token
from textual.content import Content
from textual.highlight import HighlightTheme, TokenType, highlight
from textual.widgets import Static


class DiffTheme(HighlightTheme):
    """The default highlight theme plus the diff tokens it leaves uncoloured."""

    STYLES: ClassVar[dict[TokenType, str]] = {
        **HighlightTheme.STYLES,
        Token.Generic.Inserted: "$text-success",
        Token.Generic.Deleted: "$text-error",
        Token.Generic.Heading: "bold",
        Token.Generic.Subheading: "$text-accent",
    }


def diff_content(diff: str) -> Content:
    """The diff as theme-aware Content (never parsed as markup)."""
    if not diff:
        return Content.styled("(no changes)", "$text-muted")
    return highlight(diff.rstrip("\n"), language="diff", theme=DiffTheme)


class DiffView(Static):
    """A read-only, colourised unified diff."""

    DEFAULT_CSS = """
    DiffView { width: 1fr; height: auto; padding: 0 1; }
    """

    def __init__(self, diff: str = "", *, id: str | None = None, classes: str = "") -> None:
        super().__init__(diff_content(diff), id=id, classes=classes)
        self.diff = diff

    def show(self, diff: str) -> None:
        self.diff = diff
        self.update(diff_content(diff))
