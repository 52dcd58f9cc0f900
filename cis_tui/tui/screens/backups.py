"""The backups screen: every backup, its diff against the current file, restore and prune."""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, ClassVar

from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import VerticalScroll
from textual.content import Content
from textual.screen import Screen
from textual.widgets import DataTable, Header, Static

from cis_tui.engine.backups import Backup, BackupStore
from cis_tui.errors import NodeLocked, UserError
from cis_tui.tui.display import NodePaths, short_time
from cis_tui.tui.screens.confirm import ConfirmScreen
from cis_tui.tui.screens.help import bindings_of, key_list
from cis_tui.tui.screens.prompt import NumberPrompt
from cis_tui.tui.widgets.backup_table import BackupTable
from cis_tui.tui.widgets.diff_view import DiffView
from cis_tui.tui.widgets.key_footer import KeyFooter

if TYPE_CHECKING:
    from cis_tui.tui.app import CisTuiApp

#: Backups read at a time: the screen opens in the same time with 10 or 10,000 of them.
PAGE = 100
#: How close to the last loaded row the cursor comes before the next page is read.
NEAR_END = 10


def backup_details(
    backup: Backup, paths: NodePaths, hint: str = "d: diff against the current file · r: restore"
) -> Content:
    """The metadata of a backup, as Content, and a hint at what the keys do with it."""
    rows = [
        ("id", backup.id),
        ("time", f"{short_time(backup.time)} UTC"),
        ("outcome", backup.outcome),
        ("checks", ", ".join(backup.checks) or "—"),
    ]
    if backup.kind == "file":
        rows += [
            ("file", paths.path(backup.path)),
            ("sha256", backup.sha256),
            ("mode", f"{backup.mode:04o}  uid {backup.uid}  gid {backup.gid}"),
        ]
    elif backup.kind == "configmap":  # kubeadm's stored configuration: a ConfigMap or patch file
        rows += [("of", paths.show(backup.path)), ("sha256", backup.sha256)]
    else:
        rows += [(f"{r.mode:04o}", paths.show(r.path)) for r in backup.attributes]
    lines = [Content.assemble((f"{k:<9}", "$text-muted"), v) for k, v in rows]
    lines.append(Content.styled(hint, "$text-accent"))
    return Content("\n").join(lines)


class BackupsScreen(Screen[None]):
    """Review and restore what cis-tui changed."""

    BINDING_GROUP_TITLE = "Backups"
    AUTO_FOCUS = "#backup-table"
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("d", "diff", "Diff", tooltip="Diff the backup against the current file", id="diff"),
        Binding(
            "r", "restore", "Restore", tooltip="Put the backup back (health-gated)", id="restore"
        ),
        Binding(
            "P",
            "prune",
            "Prune",
            tooltip="Delete all but the newest N finished backups",
            id="prune",
        ),
        Binding("escape", "back", "Back", tooltip="Back to the checks", id="back"),
    ]

    def __init__(self) -> None:
        super().__init__(id="backups")
        self._pages: Iterator[Backup] | None = None
        self._listing: BackupStore | None = None
        self._exhausted = False
        self._total = 0
        self._signature_seen: tuple[int, int] = (0, 0)
        self._stamps: dict[str, int] = {}

    @property
    def cis_app(self) -> CisTuiApp:
        return self.app  # type: ignore[return-value]

    @property
    def store(self) -> BackupStore:
        settings = self.cis_app.settings
        return BackupStore(settings.state_dir, settings.layout)

    def compose(self) -> ComposeResult:
        yield Header()
        yield Static("", id="backups-summary")
        yield BackupTable(id="backup-table")
        with VerticalScroll(id="backup-pane"):
            yield Static("", id="backup-info")
            yield DiffView(id="backup-diff")
        yield KeyFooter()

    def on_mount(self) -> None:
        self.watch(self.query_one(BackupTable), "scroll_y", self._scrolled, init=False)

    def on_screen_resume(self) -> None:
        # Also the first time the screen shows: load once, then only what changed.
        if self._pages is None:
            self.reload()
        else:
            self.refresh_changed()

    def _signature(self) -> tuple[int, int]:
        """Changes when backups are added or removed (the backups directory's mtime)."""
        try:
            st = self.store.root.lstat()
        except OSError:
            return (0, 0)
        return (st.st_ino, st.st_mtime_ns)

    def _meta_stamp(self, backup: Backup) -> int:
        try:
            return (Path(backup.directory) / "meta.json").lstat().st_mtime_ns
        except OSError:
            return 0

    def reload(self, count: int = PAGE) -> None:
        """Read the newest `count` backups (at least a page) and build the table."""
        store = self.store
        try:
            names = store.names()
        except UserError as exc:
            self.notify(str(exc), markup=False, title="Backups", severity="error")
            names = []
        self._signature_seen = self._signature()
        self._total = len(names)
        self._pages = store.iter_newest(names)
        self._listing = store  # collects the unreadable backups as the pages are read
        self._exhausted = False
        backups = self._take(max(count, PAGE))
        self._stamps = {b.id: self._meta_stamp(b) for b in backups}
        self.query_one(BackupTable).show(backups)
        self._summary()
        self._show_info()

    def _take(self, count: int) -> list[Backup]:
        if self._pages is None or self._exhausted:
            return []
        taken = list(itertools.islice(self._pages, count))
        self._exhausted = len(taken) < count
        return taken

    def load_more(self, count: int = PAGE) -> int:
        """Append the next `count` older backups; how many came."""
        more = self._take(count)
        if more:
            self._stamps.update({b.id: self._meta_stamp(b) for b in more})
            self.query_one(BackupTable).append(more)
            self._summary()
        return len(more)

    def refresh_changed(self) -> None:
        """After a dialog or a job: nothing if nothing changed; changed outcomes redraw their
        row; added or removed backups rebuild the rows loaded so far."""
        table = self.query_one(BackupTable)
        if self._signature() != self._signature_seen:
            self.reload(len(table.backups))
            return
        changed = False
        for backup in list(table.backups):
            stamp = self._meta_stamp(backup)
            if stamp == self._stamps.get(backup.id):
                continue
            self._stamps[backup.id] = stamp
            try:
                table.update(self.store.get(backup.id))
            except UserError:
                continue
            changed = True
        if changed:
            self._show_info()

    def _summary(self) -> None:
        shown = len(self.query_one(BackupTable).backups)
        where = self.cis_app.paths.show(str(self.store.root))
        count = f"{self._total} backup{'s' if self._total != 1 else ''}"
        more = "" if self._exhausted or shown >= self._total else f"; the newest {shown} shown"
        bad = len(self._listing.unreadable) if self._listing is not None else 0
        unreadable = (
            (f"; {bad} unreadable, not shown (cis-tui backups list says why)", "$warning")
            if bad
            else ""
        )
        self.query_one("#backups-summary", Static).update(
            Content.assemble((count, "bold"), f" in {where}, newest first{more}", unreadable)
        )

    def _scrolled(self, _old: float, new: float) -> None:
        table = self.query_one(BackupTable)
        if not self._exhausted and new >= table.max_scroll_y - table.size.height:
            self.load_more()

    @property
    def current(self) -> Backup | None:
        return self.query_one(BackupTable).current

    def _show_info(self) -> None:
        backup = self.current
        info = self.query_one("#backup-info", Static)
        diff = self.query_one(DiffView)
        diff.display = False
        if backup is None:
            info.update(Content.styled("No backups yet: every apply leaves one.", "$text-muted"))
        else:
            info.update(backup_details(backup, self.cis_app.paths, self._hint()))

    def _hint(self) -> str:
        """What the keys do with a backup, naming the keys as bound now (`[keys]`)."""
        app = self.cis_app
        hint = f"{self._key('diff')}: diff against the current file"
        return hint if not app.allows("restore") else f"{hint} · {self._key('restore')}: restore"

    def _key(self, binding_id: str) -> str:
        binding = next(b for b in bindings_of(self) if b.id == binding_id)
        return key_list(self.app, binding).split(", ")[0]

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        if action in ("restore", "prune"):  # read-only mode hides them
            return self.cis_app.allows(action)
        return True

    @on(DataTable.RowHighlighted)
    def _highlighted(self, event: DataTable.RowHighlighted) -> None:
        table = self.query_one(BackupTable)
        if not self._exhausted and event.cursor_row >= table.row_count - NEAR_END:
            self.load_more()  # more on the way down, a page at a time
        self._show_info()

    def action_diff(self) -> None:
        backup = self.current
        if backup is None:
            return
        if backup.kind == "configmap":  # asks the API server: never on the UI thread
            self._diff_in_thread(backup)
            return
        self._show_diff(backup, *self._diff(backup))

    def _diff(self, backup: Backup) -> tuple[str | None, str]:
        """(the diff, or None when it cannot be made; the problem)."""
        from cis_tui.engine.backupdiff import backup_diff

        try:
            return backup_diff(self.cis_app.settings, self.store, backup), ""
        except UserError as exc:
            return None, str(exc)

    @work(thread=True, group="backup-diff", exclusive=True, exit_on_error=False)
    def _diff_in_thread(self, backup: Backup) -> None:
        diff, problem = self._diff(backup)
        self.app.call_from_thread(self._show_diff, backup, diff, problem)

    def _show_diff(self, backup: Backup, diff: str | None, problem: str) -> None:
        if diff is None:
            self.notify(problem, markup=False, title="Cannot diff", severity="error")
            return
        if self.current is None or self.current.id != backup.id:
            return  # the cursor moved on meanwhile
        paths = self.cis_app.paths
        what = paths.show(backup.path) if backup.kind != "attributes" else "file modes and owners"
        self.query_one("#backup-info", Static).update(
            Content.assemble(
                ("backup → current ", "bold"),
                what,
                (" (no difference)" if not diff else "", "$text-muted"),
            )
        )
        view = self.query_one(DiffView)
        view.show(paths.show(diff))
        view.display = bool(diff)

    def action_restore(self) -> None:
        backup = self.current
        if backup is None:
            return
        if self.cis_app.runner.busy:
            self.notify("An apply is still running.", severity="warning")
            return
        paths = self.cis_app.paths
        what = {"file": paths.path(backup.path), "configmap": paths.show(backup.path)}.get(
            backup.kind, "the recorded modes and owners"
        )
        restart = (
            f"restarts {backup.component}; health-gated, rolled back if it does not come back"
            if backup.kind == "file" and self.cis_app.runner.health_gate
            else "no restart"
        )
        body = Content.assemble(
            "Put back ",
            (what, "bold"),
            f" as it was at {short_time(backup.time)} UTC ",
            f"(backup {backup.id}).\n\nThe current file is backed up first; this ",
            (restart, "bold $text-warning"),
            ".",
        )
        self.app.push_screen(
            ConfirmScreen("Restore this backup?", body, "Restore (y)"),
            callback=lambda yes: self._restore(backup, yes),
        )

    def _restore(self, backup: Backup, yes: bool | None) -> None:
        if yes:  # the App refuses it in read-only mode
            self.cis_app.start_restore(backup)

    def action_prune(self) -> None:
        count = self._total
        prompt = NumberPrompt(
            "Prune backups",
            "Keep the newest N finished backups and delete the rest "
            "(backups of unfinished transactions are never deleted).",
            default=min(count, 10),
        )
        self.app.push_screen(prompt, callback=self._prune)

    def _prune(self, keep: int | None) -> None:
        if keep is None or self.cis_app.refuse_in_read_only("Prune"):
            return
        try:
            from cis_tui.engine.journal import Journal
            from cis_tui.engine.lock import node_lock

            settings = self.cis_app.settings
            with node_lock(settings.state_dir):
                pending = Journal(settings.state_dir).open_transactions()
                protected = {t.backup_id for t in pending} | {t.persist_backup_id for t in pending}
                removed = self.store.prune(keep, protected)
        except (UserError, NodeLocked, OSError) as exc:
            self.notify(str(exc), markup=False, title="Prune failed", severity="error")
            return
        self.notify(f"Removed {len(removed)} backup(s); kept the newest {keep}.", title="Pruned")
        self.query_one(BackupTable).remove({b.id for b in removed})
        self._total -= len(removed)
        self._signature_seen = self._signature()
        if len(self.query_one(BackupTable).backups) < PAGE:
            self.load_more(PAGE - len(self.query_one(BackupTable).backups))
        self._summary()
        self._show_info()

    def action_back(self) -> None:
        self.dismiss()
