"""The backups table: time, outcome, checks and file of every backup."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import PurePath

from textual.content import Content
from textual.widgets import DataTable

from cis_tui.engine.backups import Backup
from cis_tui.tui.display import clip, outcome_content, short_time

_FIXED = {"time": 19, "outcome": 11, "checks": 12}
COLUMNS = ("time", "outcome", "checks", "file")


def backup_file(backup: Backup) -> str:
    """A short name for what was backed up (the details pane shows the full path)."""
    if backup.kind == "attributes":
        return f"{len(backup.attributes)} file modes/owners"
    if backup.kind == "configmap" and backup.path.startswith("configmap "):
        return f"configmap {backup.component}"  # kubeadm's, on the API server
    return PurePath(backup.path).name  # a file, or a kubeadm patch file


class BackupTable(DataTable[Content]):
    """Backups, newest first, keyed by backup id; filled a page at a time."""

    DEFAULT_CSS = """
    BackupTable { height: 1fr; }
    """

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__(id=id, cursor_type="row", zebra_stripes=True)
        self.backups: list[Backup] = []
        self._file_w = 20

    def _cells(self, b: Backup) -> tuple[Content, Content, Content, Content]:
        return (
            Content(short_time(b.time)),
            outcome_content(b.outcome),
            Content(clip(",".join(b.checks) or "—", _FIXED["checks"])),
            Content(clip(backup_file(b), self._file_w)),
        )

    def show(self, backups: Sequence[Backup]) -> None:
        """Build the table anew (the first page, or after backups were added)."""
        keep = self.current.id if self.current else None
        self.backups = list(backups)
        width = max(self.size.width, 80)
        self._file_w = max(20, width - 2 - 2 * (len(_FIXED) + 1) - sum(_FIXED.values()))
        self.clear(columns=True)
        self.add_column("time (UTC)", key="time", width=_FIXED["time"])
        self.add_column("outcome", key="outcome", width=_FIXED["outcome"])
        self.add_column("checks", key="checks", width=_FIXED["checks"])
        self.add_column("file", key="file", width=self._file_w)
        for b in self.backups:
            self.add_row(*self._cells(b), key=b.id)
        if keep is not None and keep in {b.id for b in self.backups}:
            self.move_cursor(row=self.get_row_index(keep), animate=False)

    def append(self, backups: Sequence[Backup]) -> None:
        """Older backups below the ones shown (the next page)."""
        for b in backups:
            self.backups.append(b)
            self.add_row(*self._cells(b), key=b.id)

    def remove(self, ids: set[str]) -> None:
        """Drop the rows of removed backups."""
        for b in [b for b in self.backups if b.id in ids]:
            self.remove_row(b.id)
        self.backups = [b for b in self.backups if b.id not in ids]

    def update(self, backup: Backup) -> None:
        """Redraw one backup's row (its outcome changed)."""
        index = next((i for i, b in enumerate(self.backups) if b.id == backup.id), None)
        if index is None:
            return
        self.backups[index] = backup
        for column, cell in zip(COLUMNS, self._cells(backup), strict=True):
            self.update_cell(backup.id, column, cell)

    @property
    def current(self) -> Backup | None:
        if not self.row_count:
            return None
        row_key, _ = self.coordinate_to_cell_key(self.cursor_coordinate)
        return next((b for b in self.backups if b.id == row_key.value), None)
