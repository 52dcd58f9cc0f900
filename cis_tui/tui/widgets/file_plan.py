"""One file of a plan in a line or two: what it fixes, what restarts, its notes and risks."""

from __future__ import annotations

from textual.content import Content

from cis_tui.remediate.plan import FilePlan
from cis_tui.tui.display import NodePaths


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
