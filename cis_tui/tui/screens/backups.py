"""The backups screen: every backup, its diff against the current file, restore and prune."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, ClassVar

from textual import on
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import VerticalScroll
from textual.content import Content
from textual.screen import Screen
from textual.widgets import DataTable, Header, Static

from cis_tui.engine.backups import Backup, BackupStore
from cis_tui.errors import UserError
from cis_tui.tui.display import NodePaths, short_time
from cis_tui.tui.screens.confirm import ConfirmScreen
from cis_tui.tui.screens.help import bindings_of, key_list
from cis_tui.tui.screens.prompt import NumberPrompt
from cis_tui.tui.widgets.backup_table import BackupTable
from cis_tui.tui.widgets.diff_view import DiffView
from cis_tui.tui.widgets.key_footer import KeyFooter

if TYPE_CHECKING:
    from cis_tui.tui.app import CisTuiApp


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
    else:
        rows += [(f"{r.mode:04o}", paths.show(r.path)) for r in backup.attributes]
    lines = [Content.assemble((f"{k:<9}", "$text-muted"), v) for k, v in rows]
    lines.append(Content.styled(hint, "$text-accent"))
    return Content("\n").join(lines)


def backup_diff(store: BackupStore, backup: Backup) -> str:
    """The backup against what is on disk now, as a unified diff (verified bytes only)."""
    if backup.kind != "file":
        lines = []
        for rec in backup.attributes:
            try:
                st = Path(rec.path).lstat()
                now = f"mode {st.st_mode & 0o7777:04o} uid {st.st_uid} gid {st.st_gid}"
            except OSError:
                now = "missing"
            lines.append(
                f"# {rec.path}: backup mode {rec.mode:04o} uid {rec.uid} gid {rec.gid}, now {now}\n"
            )
        return "".join(lines)
    old = store.original_bytes(backup).decode("utf-8", errors="replace")
    try:
        current = Path(backup.path).read_bytes().decode("utf-8", errors="replace")  # keeps CRLF
    except FileNotFoundError:
        current = ""
    from cis_tui.remediate.edits import unified_diff

    return unified_diff(old, current, backup.path)


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
        self.reload()

    def on_screen_resume(self) -> None:
        self.reload()

    def reload(self) -> None:
        backups = self.store.list()
        paths = self.cis_app.paths
        self.query_one(BackupTable).show(backups)
        where = paths.show(str(self.store.root))
        count = f"{len(backups)} backup{'s' if len(backups) != 1 else ''}"
        self.query_one("#backups-summary", Static).update(
            Content.assemble((count, "bold"), f" in {where}, newest first")
        )
        self._show_info()

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
    def _highlighted(self) -> None:
        self._show_info()

    def action_diff(self) -> None:
        backup = self.current
        if backup is None:
            return
        try:
            diff = backup_diff(self.store, backup)
        except UserError as exc:
            self.notify(str(exc), markup=False, title="Cannot diff", severity="error")
            return
        paths = self.cis_app.paths
        what = paths.path(backup.path) if backup.kind == "file" else "file modes and owners"
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
        what = paths.path(backup.path) if backup.kind == "file" else "the recorded modes and owners"
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
        count = len(self.query_one(BackupTable).backups)
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
            removed = self.store.prune(keep)
        except (UserError, OSError) as exc:
            self.notify(str(exc), markup=False, title="Prune failed", severity="error")
            return
        self.notify(f"Removed {len(removed)} backup(s); kept the newest {keep}.", title="Pruned")
        self.reload()

    def action_back(self) -> None:
        self.dismiss()
