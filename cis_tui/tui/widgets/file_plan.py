"""One file of a plan: what it fixes, what restarts, notes, risk notes and the diff."""

from __future__ import annotations

from textual.app import ComposeResult
from textual.containers import Vertical
from textual.content import Content
from textual.widgets import Static

from cis_tui.remediate.plan import FilePlan
from cis_tui.tui.display import NodePaths
from cis_tui.tui.widgets.diff_view import DiffView


def file_summary(file: FilePlan, paths: NodePaths, index: int, total: int) -> Content:
    restarts = (
        Content.assemble(" · restarts ", (", ".join(file.restarts), "bold $text-warning"))
        if file.restarts
        else Content.styled(" · no restart", "$text-muted")
    )
    lines = [
        Content.assemble((f"[{index}/{total}] ", "$text-muted"), (paths.path(file.path), "bold")),
        Content.assemble("fixes ", (", ".join(file.checks), "bold"), restarts),
    ]
    lines.extend(Content.assemble(("note  ", "$text-accent"), paths.show(n)) for n in file.notes)
    lines.extend(Content.assemble(("risk  ", "bold $text-warning"), r) for r in file.risks)
    return Content("\n").join(lines)


class FilePlanView(Vertical):
    """A file's change as an admin reviews it."""

    DEFAULT_CSS = """
    FilePlanView { height: auto; margin: 1 0 0 0; border-top: solid $primary; }
    FilePlanView > .file-summary { padding: 0 1; }
    FilePlanView > DiffView { margin: 1 0 0 0; }
    """

    def __init__(self, file: FilePlan, paths: NodePaths, index: int, total: int) -> None:
        super().__init__(classes="file-plan")
        self.file = file
        self.paths = paths
        self.index = index
        self.total = total

    def compose(self) -> ComposeResult:
        yield Static(
            file_summary(self.file, self.paths, self.index, self.total), classes="file-summary"
        )
        yield DiffView(self.paths.show(self.file.diff))
