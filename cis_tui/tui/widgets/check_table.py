"""The checks table: selection mark, status, id, component, title, found vs expected."""

from __future__ import annotations

from collections.abc import Sequence
from typing import ClassVar

from rich.text import Text
from textual.binding import Binding, BindingType
from textual.content import Content
from textual.events import Resize
from textual.widgets import DataTable

from cis_tui.audit.evaluate import Result
from cis_tui.tui.display import NodePaths, clip, found_text, short_component, status_content
from cis_tui.tui.filters import why_not_selectable

SELECTED = "●"
SELECTABLE = "○"
#: After PASS: the next `kubeadm upgrade` reverts this pass (its setting is not persisted).
REVERTED_BY_UPGRADE = "↺"

#: Fixed column widths; title and "found → expected" share the rest.
_FIXED = {"sel": 1, "status": 6, "id": 6, "component": 10}


def _plain(text: str) -> Text:
    """An unstyled cell: literal text (never markup), as Rich text, which the table measures
    and draws without the conversion a Content cell costs on every measure and paint."""
    return Text(text, no_wrap=True, end="")


class CheckTable(DataTable[Content | Text]):
    """A DataTable of results, keyed by check id; cells are Content or Rich Text, never markup."""

    DEFAULT_CSS = """
    CheckTable { height: 1fr; }
    """
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("home,g", "scroll_top", "First row", show=False, id="top"),
        Binding("end,G", "scroll_bottom", "Last row", show=False, id="bottom"),
    ]

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__(id=id, cursor_type="row", zebra_stripes=True)
        self.results: list[Result] = []
        self.selected: set[str] = set()
        self.paths = NodePaths()
        #: check id -> whether its pass survives `kubeadm upgrade` (cis_tui.persist.status)
        self.persisted: dict[str, bool] = {}
        #: check id -> its status in the scan the wizard saved last (only checks that changed)
        self.changed: dict[str, str] = {}
        self._width = 0

    def _widths(self, width: int) -> tuple[int, int]:
        # Each column has one cell of padding on both sides; keep room for the scrollbar.
        usable = max(width, 80) - 2 - 2 * (len(_FIXED) + 2) - sum(_FIXED.values())
        title = max(16, usable * 11 // 20)
        return title, max(16, usable - title)

    def show(self, results: Sequence[Result], selected: set[str], paths: NodePaths) -> None:
        """Replace the rows, keeping the cursor on the same check when it is still shown."""
        current = self.current_id
        self.results = list(results)
        self.selected = selected
        self.paths = paths
        self._rebuild(current)

    def _rebuild(self, keep: str | None) -> None:
        # Before the first layout the table has no size yet: it spans the screen's width.
        self._width = self.size.width or self.app.size.width
        title_w, found_w = self._widths(self._width)
        self.clear(columns=True)
        self.add_column("", key="sel", width=_FIXED["sel"])
        self.add_column("status", key="status", width=_FIXED["status"])
        self.add_column("id", key="id", width=_FIXED["id"])
        self.add_column("component", key="component", width=_FIXED["component"])
        self.add_column("title", key="title", width=title_w)
        self.add_column("found → expected", key="found", width=found_w)
        for result in self.results:
            found = self.paths.show(found_text(result))
            self.add_row(
                self._mark(result),
                self._status(result),
                _plain(result.id),
                _plain(clip(short_component(result.check.component), _FIXED["component"])),
                self._title(result, title_w),
                _plain(clip(f"{found} → {self.paths.show(result.expected)}", found_w)),
                key=result.id,
            )
        if keep is not None and keep in {r.id for r in self.results}:
            self.move_cursor(row=self.get_row_index(keep), animate=False)

    def _mark(self, result: Result) -> Content:
        if result.id in self.selected:
            return Content.styled(SELECTED, "bold $text-accent")
        if why_not_selectable(result) is None:
            # The shape says it, in the terminal's own foreground: a muted colour vanished on
            # the zebra rows in 256 colours and under NO_COLOR.
            return Content(SELECTABLE)
        return Content("")

    def _status(self, result: Result) -> Content:
        status = status_content(result.status)
        if self.persisted.get(result.id) is False:
            return Content.assemble(status, (f" {REVERTED_BY_UPGRADE}", "bold $text-warning"))
        return status

    def show_persisted(self, persisted: dict[str, bool]) -> None:
        """Mark the passes the next `kubeadm upgrade` reverts (a glyph, not a colour only)."""
        before, self.persisted = self.persisted, dict(persisted)
        shown = {r.id: r for r in self.results}
        for check_id in persisted.keys() | before.keys():
            if check_id in shown and before.get(check_id) != persisted.get(check_id):
                self.update_cell(check_id, "status", self._status(shown[check_id]))

    def _title(self, result: Result, width: int) -> Content | Text:
        """The title, after `was FAIL ·` when the status changed since the last saved scan."""
        was = self.changed.get(result.id)
        if was is None:
            return _plain(clip(result.check.title, width))
        mark = f"was {was} · "
        return Content.assemble(
            (mark, "bold $text-warning"), clip(result.check.title, max(width - len(mark), 1))
        )

    def refresh_mark(self, check_id: str) -> None:
        result = next(r for r in self.results if r.id == check_id)
        self.update_cell(check_id, "sel", self._mark(result))

    @property
    def current_id(self) -> str | None:
        """The check under the cursor."""
        if not self.row_count:
            return None
        row_key, _ = self.coordinate_to_cell_key(self.cursor_coordinate)
        return row_key.value

    @property
    def current(self) -> Result | None:
        check_id = self.current_id
        return next((r for r in self.results if r.id == check_id), None)

    def on_resize(self, event: Resize) -> None:
        if self.results and event.size.width != self._width:
            self._rebuild(self.current_id)
