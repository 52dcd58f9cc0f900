"""The details pane: audit evidence from the file and the live process, the fix, its risks."""

from __future__ import annotations

from textual.app import ComposeResult
from textual.containers import VerticalScroll
from textual.content import Content
from textual.widgets import Static

from cis_tui.audit.evaluate import Result
from cis_tui.layout import Layout
from cis_tui.remediate.params import fill, layout_values
from cis_tui.tui.display import NodePaths, short_component, status_content
from cis_tui.tui.filters import why_not_selectable

LABEL_WIDTH = 13


def details_content(
    result: Result,
    paths: NodePaths,
    layout: Layout | None = None,
    width: int = 0,
    persisted: bool | None = None,
    was: str | None = None,
) -> Content:
    """Everything an admin reads before selecting a check, as Content; with a `width`, wrapped
    values continue under their value, not under the label. `was`: the check's status in the
    scan saved before this session, when it differs."""

    def _row(label: str, text: str, style: str = "") -> Content:
        value = Content.styled(text, style) if style else Content(text)
        parts = value.wrap(width - LABEL_WIDTH) if width > LABEL_WIDTH + 10 else [value]
        indent = Content(" " * LABEL_WIDTH)
        return Content("\n").join(
            Content.assemble((f"{label:<{LABEL_WIDTH}}", "$text-muted") if i == 0 else indent, part)
            for i, part in enumerate(parts)
        )

    marks = layout_values(layout) if layout is not None else {}
    check = result.check
    rem = check.remediation
    kind = "scored" if check.scored else "manual"
    lines = [
        Content.assemble(
            status_content(result.status),
            " ",
            (check.id, "bold"),
            "  ",
            (check.title, "bold"),
            (f"  ({short_component(check.component)}, {kind})", "$text-muted"),
        ),
        _row("expected", paths.show(result.expected)),
        _row("file", paths.show(result.file_value or "—")),
        _row("live process", paths.show(result.live_value or "—")),
    ]
    if result.disagreement:
        lines.append(_row("disagreement", paths.show(result.disagreement), "$text-warning"))
    lines.append(_row("reason", paths.show(result.reason)))
    if was is not None:
        lines.append(
            _row("changed", f"was {was} in the last scan saved before this session", "bold")
        )
    if persisted is False:
        text = (
            "kubeadm upgrade will revert this: it is only in the node's files "
            f"(cis-tui persist {result.check.id} keeps it)"
        )
        lines.append(_row("upgrade", text, "bold $text-warning"))
    elif persisted is True:
        lines.append(_row("upgrade", "kept by kubeadm upgrade (in kubeadm's configuration)"))
    fix = f"{rem.summary} ({rem.kind})" if rem.available else f"by hand: {rem.summary}"
    lines.append(_row("fix", fix))
    for param in rem.params:
        rule = f", at least {param.min:g}" if param.min is not None else ""
        choices = f", one of {', '.join(param.choices)}" if param.choices else ""
        default = param.default if not isinstance(param.default, list) else ",".join(param.default)
        default = paths.show(fill(str(default), marks))
        spec = f"{param.name} = {default} ({param.type}{rule}{choices})"
        lines.append(_row("parameter", f"{spec} {param.help}"))
    for risk in rem.risks:
        lines.append(_row("risk", risk, "$text-warning"))
    if check.rationale:
        lines.append(_row("why", check.rationale))
    blocked = why_not_selectable(result)
    if blocked is None:
        lines.append(Content.styled("space selects this check, enter plans it", "$text-accent"))
    return Content("\n").join(lines)


class CheckDetails(VerticalScroll):
    """A scrollable pane showing the highlighted check."""

    DEFAULT_CSS = """
    CheckDetails {
        height: 40%; min-height: 7; border-top: solid $primary-darken-2; padding: 0 1;
        scrollbar-gutter: stable;
    }
    CheckDetails > Static { width: 1fr; }
    """

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self.can_focus = True
        self._shown: (
            tuple[Result | None, NodePaths, Layout | None, bool | None, str | None] | None
        ) = None

    def compose(self) -> ComposeResult:
        yield Static(Content.styled("scanning the node…", "$text-muted"), id="details-text")

    def show(
        self,
        result: Result | None,
        paths: NodePaths,
        layout: Layout | None = None,
        persisted: bool | None = None,
        was: str | None = None,
    ) -> None:
        self._shown = (result, paths, layout, persisted, was)
        text = self.query_one("#details-text", Static)
        if result is None:
            text.update(Content.styled("no check matches the filters", "$text-muted"))
        else:
            # The outer width, less padding and a scrollbar always reserved (scrollbar-gutter:
            # stable): wrapping must not depend on whether the wrapped text needs a scrollbar.
            outer = self.size.width or self.app.size.width
            width = outer - 2 - self.styles.scrollbar_size_vertical
            text.update(details_content(result, paths, layout, width, persisted, was))
        self.scroll_home(animate=False)

    def on_resize(self) -> None:
        if self._shown is not None and self._shown[0] is not None and self.size.width:
            self.show(*self._shown)
