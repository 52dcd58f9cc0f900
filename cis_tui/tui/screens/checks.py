"""The checks screen: every check, failing first, with filters, search, details and selection."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import replace
from typing import TYPE_CHECKING, ClassVar

from textual import on
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.command import Provider
from textual.content import Content
from textual.screen import Screen
from textual.widgets import DataTable, Header, Input, Static

from cis_tui.audit.evaluate import Result, Status, summarize
from cis_tui.audit.strays import StrayFile
from cis_tui.tui.check_commands import CheckCommands
from cis_tui.tui.display import STATUS_STYLE, NodePaths
from cis_tui.tui.filters import Filters, visible, why_not_selectable
from cis_tui.tui.messages import ScanDone
from cis_tui.tui.widgets.check_details import CheckDetails
from cis_tui.tui.widgets.check_table import REVERTED_BY_UPGRADE, CheckTable
from cis_tui.tui.widgets.key_footer import KeyFooter

if TYPE_CHECKING:
    from cis_tui.tui.app import CisTuiApp


class SearchInput(Input):
    """The search box; enter hands the keyboard back to the table at once."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding(
            "enter",
            "done",
            "Done",
            tooltip="Keep the search and go back to the table",
            id="search_done",
        )
    ]

    def action_done(self) -> None:
        # A binding runs as the key is read, so the next key already goes to the table
        # (a Submitted message would arrive after keys typed quickly behind it).
        screen = self.screen
        if isinstance(screen, ChecksScreen):
            screen.search_done()


class ChecksScreen(Screen[None]):
    """The wizard's home: pick failing checks to fix."""

    BINDING_GROUP_TITLE = "Checks"
    AUTO_FOCUS = "#check-table"
    #: Left out of a narrow footer first (help and the palette still list them).
    FOOTER_OPTIONAL = ("export", "scored", "component", "clear_search", "failing", "select_all")
    COMMANDS: ClassVar[set[type[Provider] | Callable[[], type[Provider]]]] = {CheckCommands}
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding(
            "space",
            "toggle",
            "Select",
            tooltip="Select (or unselect) the highlighted check for a plan, then move down",
            id="select",
        ),
        Binding(
            "p", "plan", "Plan", tooltip="Plan the selected checks (enter works too)", id="plan"
        ),
        Binding(
            "a",
            "select_all",
            "Select all",
            tooltip="Select every fixable scored failure the filters show (again: unselect)",
            id="select_all",
        ),
        Binding(
            "f", "failing", "Failing/all", tooltip="Show only failing checks, or all", id="failing"
        ),
        Binding(
            "c", "component", "Component", tooltip="Cycle the component filter", id="component"
        ),
        Binding(
            "s",
            "scored",
            "Scored",
            tooltip="Show only scored (Automated) checks, or all",
            id="scored",
        ),
        Binding("slash", "search", "Search", tooltip="Filter by id or title", id="search"),
        Binding(
            "escape", "clear_search", "Clear search", tooltip="Clear the search", id="clear_search"
        ),
        Binding("r", "rescan", "Rescan", tooltip="Read the node again", id="rescan"),
        Binding(
            "b",
            "backups",
            "Backups",
            tooltip="Review, diff, restore and prune backups",
            id="backups",
        ),
        Binding(
            "e",
            "export",
            "Export",
            tooltip="Write this scan to a file (JSON, JUnit) or the auditor's report (HTML, "
            "Markdown, with the change history)",
            id="export",
        ),
    ]

    def __init__(self, first_scan: ScanDone | None = None) -> None:
        super().__init__(id="checks")
        self._first_scan = first_scan
        self.results: list[Result] = []
        self.filters = Filters()
        self.selected: set[str] = set()
        self.live = True
        self.scanned = False
        self.scanned_at = ""  # wall-clock time of the scan shown, HH:MM:SS
        #: check id -> whether the next kubeadm upgrade keeps its pass (absent: unknown).
        self.persisted: dict[str, bool] = {}
        #: check id -> its status in the scan the wizard saved before (changed checks only).
        self.changed: dict[str, str] = {}

    @property
    def cis_app(self) -> CisTuiApp:
        return self.app  # type: ignore[return-value]

    @property
    def paths(self) -> NodePaths:
        return self.cis_app.paths

    def compose(self) -> ComposeResult:
        yield Header()
        yield Static(Content.styled("scanning the node…", "$text-muted"), id="filter-bar")
        yield SearchInput(placeholder="search id or title (enter: done, esc: clear)", id="search")
        yield Static(id="strays")  # files the kubelet runs besides the components' own
        yield CheckTable(id="check-table")
        yield CheckDetails(id="details")
        yield KeyFooter()

    def on_mount(self) -> None:
        if self._first_scan is not None:  # scanned before the app started: rows in frame one
            first = self._first_scan
            self.show_results(first.results, first.live, first.strays)
            self._first_scan = None

    @property
    def table(self) -> CheckTable:
        return self.query_one(CheckTable)

    # -- data ------------------------------------------------------------------------------
    def show_results(
        self, results: Sequence[Result], live: bool, strays: Sequence[StrayFile] = ()
    ) -> None:
        """A new scan: keep filters, drop selections that can no longer be fixed."""
        self.results = list(results)
        self.live = live
        self._show_strays(strays)
        self.scanned = True
        self.scanned_at = self.cis_app.wall_clock().strftime("%H:%M:%S")
        by_id = {r.id: r for r in self.results}
        self.selected = {
            i for i in self.selected if i in by_id and why_not_selectable(by_id[i]) is None
        }
        self._refresh()

    def _show_strays(self, strays: Sequence[StrayFile]) -> None:
        """One line per file the kubelet runs besides the components' own, with the way out."""
        bar = self.query_one("#strays", Static)
        bar.display = bool(strays)
        lines = [
            Content.assemble(
                ("⚠ " if s.serious else "· ", "bold $text-warning" if s.serious else "$text-muted"),
                (self.paths.path(s.path), "bold"),
                f": {s.message}. ",
                (_sentence(self.paths.show(s.remedy)), "$text-muted"),
            )
            for s in strays
        ]
        bar.update(Content("\n").join(lines))

    def _refresh(self) -> None:
        shown = visible(self.results, self.filters)
        self.table.persisted = self.persisted
        self.table.changed = self.changed
        self.table.show(shown, self.selected, self.paths)
        self._update_bar(len(shown))
        self._update_details()

    def _update_bar(self, shown: int) -> None:
        counts = summarize(self.results)
        parts: list[Content | str | tuple[str, str]] = [f"{shown}/{len(self.results)} checks"]
        f = self.filters
        parts.append(" · failing" if f.failing_only else " · all")
        if f.component:
            parts.append(f" · {f.component}")
        if f.scored_only:
            parts.append(" · scored")
        if f.search:
            parts.extend([" · search “", (f.search, "bold"), "”"])
        if self.selected:
            parts.append((f" · {len(self.selected)} selected", "bold $text-accent"))
        reverted = sum(1 for kept in self.persisted.values() if kept is False)
        if reverted:
            parts.append(
                (f" · {REVERTED_BY_UPGRADE} {reverted} kubeadm upgrade reverts", "$text-warning")
            )
        if self.changed:
            count = len(self.changed)
            parts.append((f" · {count} changed since the last scan", "bold $text-warning"))
        if not self.live:
            parts.append((" · offline tree", "$text-muted"))
        if self.scanned_at:
            parts.append((f" · scanned {self.scanned_at}", "$text-muted"))
        parts.append("  ")
        for status in Status:
            if counts[status.value]:
                parts.extend([(status.value, STATUS_STYLE[status]), f" {counts[status.value]} "])
        self.query_one("#filter-bar", Static).update(Content.assemble(*parts))

    def show_changed(self, changed: dict[str, str]) -> None:
        """Mark the checks whose status differs from the scan the wizard saved before."""
        self.changed = dict(changed)
        if self.is_mounted and self.scanned:
            self._refresh()

    def show_persisted(self, persisted: dict[str, bool]) -> None:
        """Which passes the next kubeadm upgrade keeps: a mark in the table, the reason in
        the details pane."""
        self.persisted = persisted
        if self.is_mounted:
            self.table.show_persisted(persisted)
            self._update_bar(self.table.row_count)
            self._update_details()

    def _update_details(self) -> None:
        layout = self.cis_app.settings.layout
        current = self.table.current
        kept = self.persisted.get(current.id) if current is not None else None
        was = self.changed.get(current.id) if current is not None else None
        self.query_one(CheckDetails).show(current, self.paths, layout, kept, was)

    @on(DataTable.RowHighlighted)
    def _highlighted(self) -> None:
        self._update_details()

    @on(DataTable.RowSelected)
    def _row_selected(self) -> None:
        self.action_plan()

    # -- actions ---------------------------------------------------------------------------
    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        if action == "clear_search":
            return bool(self.filters.search) or self.query_one("#search", Input).display
        return True

    def action_toggle(self) -> None:
        result = self.table.current
        if result is None:
            return
        if result.id in self.selected:
            self.selected.discard(result.id)
        else:
            reason = why_not_selectable(result)
            if reason is not None:
                self.notify(reason, markup=False, title="Cannot select", severity="warning")
                return
            self.selected.add(result.id)
        self.table.refresh_mark(result.id)
        self.table.action_cursor_down()
        self._update_bar(self.table.row_count)

    def action_select_all(self) -> None:
        shown = visible(self.results, self.filters)
        # Scored failures only: a manual (WARN) check, such as 1.2.1 --anonymous-auth, is a
        # human's decision and is selected only by name (space).
        fixable = [
            r.id
            for r in shown
            if r.status is Status.FAIL and r.check.scored and why_not_selectable(r) is None
        ]
        if not fixable:
            self.notify(
                "No scored failing check the filters show can be fixed automatically.",
                severity="warning",
            )
            return
        if all(i in self.selected for i in fixable):
            self.selected.difference_update(fixable)
            message = f"Unselected {len(fixable)} check(s)."
        else:
            self.selected.update(fixable)
            left = len(shown) - len(fixable)
            message = f"Selected {len(fixable)} scored failing check(s)" + (
                f"; {left} shown are manual, pass already or need a human (space selects one)."
                if left
                else "."
            )
        for check_id in fixable:
            self.table.refresh_mark(check_id)
        self._update_bar(self.table.row_count)
        self.notify(message, markup=False)

    def go_to(self, check_id: str) -> None:
        """Put the cursor on a check, clearing the filters if they hide it."""
        if not any(r.id == check_id for r in visible(self.results, self.filters)):
            search = self.query_one("#search", Input)
            search.value = ""
            search.display = False
            self.filters = Filters()
            self._refresh()
        self.table.move_cursor(row=self.table.get_row_index(check_id), animate=False)
        self.set_focus(self.table)

    def action_plan(self) -> None:
        if not self.scanned:
            return
        ids = [r.id for r in self.results if r.id in self.selected]
        if not ids:
            current = self.table.current
            if current is None:
                return
            reason = why_not_selectable(current)
            if reason is not None:
                self.notify(reason, markup=False, title="Nothing to plan", severity="warning")
                return
            ids = [current.id]
        self.cis_app.open_plan(ids)

    def action_failing(self) -> None:
        self.filters = replace(self.filters, failing_only=not self.filters.failing_only)
        self._refresh()

    def action_component(self) -> None:
        self.filters = self.filters.next_component(self.results)
        self._refresh()

    def action_scored(self) -> None:
        self.filters = replace(self.filters, scored_only=not self.filters.scored_only)
        self._refresh()

    def action_search(self) -> None:
        search = self.query_one("#search", Input)
        search.display = True
        self.set_focus(search)
        self.refresh_bindings()

    def action_clear_search(self) -> None:
        search = self.query_one("#search", Input)
        search.value = ""
        search.display = False
        self.filters = replace(self.filters, search="")
        self._refresh()
        self.set_focus(self.table)
        self.refresh_bindings()

    @on(Input.Changed, "#search")
    def _search_changed(self, event: Input.Changed) -> None:
        self.filters = replace(self.filters, search=event.value)
        self._refresh()

    def search_done(self) -> None:
        if not self.filters.search:
            self.query_one("#search", Input).display = False
        self.set_focus(self.table)
        self.refresh_bindings()

    def action_rescan(self) -> None:
        self.cis_app.rescan()

    def action_backups(self) -> None:
        self.cis_app.open_backups()

    def action_export(self) -> None:
        if not self.scanned:
            self.notify("Nothing to export until the node has been scanned.", severity="warning")
            return
        from cis_tui.tui.screens.export import ExportScreen  # loaded on first use

        app = self.cis_app
        self.app.push_screen(ExportScreen(app.current_scan(), app.wall_clock()))


def _sentence(text: str) -> str:
    """`compare it …` as the start of a sentence (it follows the finding's own sentence)."""
    return text[:1].upper() + text[1:]
