"""The export dialog: the scan on screen, written to a file as `cis-tui scan --format` prints it.

The formats are report.SCAN_FORMATS, the CLI's own: `scan --format json|junit`, and the
auditor's report of `cis-tui report` (HTML, Markdown: the scan plus the change history).
Files are written atomically, mode 0600, and an existing file is replaced only after a
confirmation.
"""

from __future__ import annotations

import errno
import os
import re
import socket
from datetime import datetime
from pathlib import Path
from typing import ClassVar

from textual import on
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal, Vertical
from textual.content import Content
from textual.screen import ModalScreen
from textual.widgets import Button, Input, RadioButton, RadioSet, Static

from cis_tui.audit.evaluate import summarize
from cis_tui.engine.atomic import AtomicWriteError, atomic_write
from cis_tui.report import SCAN_FORMATS, Scan, ScanFormat, scan_document
from cis_tui.tui.screens.confirm import ConfirmScreen
from cis_tui.tui.widgets.key_footer import KeyFooter


class FormatChoice(RadioButton):
    """A radio button whose state reads without colour: ● chosen, ○ not (Textual draws ● for
    both and tells them apart by colour alone, lost in NO_COLOR and on a monochrome screen)."""

    @property  # type: ignore[override]
    def BUTTON_INNER(self) -> str:
        return "●" if self.value else "○"


def export_dir() -> Path:
    """Where an export goes by default: the current directory if writable, else home."""
    try:
        cwd = Path.cwd()
    except OSError:  # the directory was removed under us
        return Path.home()
    return cwd if os.access(cwd, os.W_OK | os.X_OK) else Path.home()


def default_path(
    fmt: ScanFormat, when: datetime, directory: Path | None = None, host: str | None = None
) -> Path:
    """`cis-tui-scan-<host>-<YYYYmmdd-HHMMSS>.<suffix>` in `directory` (default: export_dir)."""
    name = re.sub(r"[^A-Za-z0-9._-]+", "-", host or socket.gethostname()).strip("-.") or "node"
    return (directory or export_dir()) / f"cis-tui-scan-{name}-{when:%Y%m%d-%H%M%S}{fmt.suffix}"


def target_path(typed: str) -> Path:
    """A path as typed: `~` expanded, relative to the current directory."""
    path = Path(os.path.expanduser(typed))
    return path if path.is_absolute() else Path.cwd() / path


def write_scan(path: Path, fmt: str, scan: Scan, *, overwrite: bool = False) -> None:
    """Write the scan document atomically, mode 0600; an existing file only when `overwrite`.

    Raises OSError (FileExistsError for an existing file) or AtomicWriteError, naming the path.
    """
    if not overwrite and os.path.lexists(path):
        raise FileExistsError(errno.EEXIST, "the file exists", str(path))
    data = scan_document(fmt, scan).encode("utf-8")
    atomic_write(path, data, mode=0o600, uid=os.geteuid(), gid=os.getegid())


def _problem(path: Path, exc: Exception) -> str:
    if isinstance(exc, AtomicWriteError):
        return str(exc)  # names the path already
    if isinstance(exc, OSError):
        return f"{path}: {exc.strerror or exc}"
    return f"{path}: {exc}"


class ExportScreen(ModalScreen[Path | None]):
    """Asks for a format and a path; dismisses with the file written, or None."""

    AUTO_FOCUS = "#export-path"
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape", "close", "Cancel", tooltip="Close; nothing is written", id="close"),
    ]

    DEFAULT_CSS = """
    ExportScreen { align: center middle; }
    ExportScreen > Vertical {
        width: 76; max-width: 100%; height: auto; max-height: 90%;
        border: thick $primary; background: $surface; padding: 1 2;
    }
    ExportScreen .export-title { text-style: bold; margin: 0 0 1 0; }
    ExportScreen RadioSet { layout: horizontal; width: auto; margin: 1 0 0 0; }
    ExportScreen RadioSet > RadioButton { width: auto; margin: 0 1 0 0; }
    ExportScreen #export-error { color: $text-error; height: auto; }
    ExportScreen Horizontal { height: auto; margin: 1 0 0 0; align: right middle; }
    ExportScreen Button { margin: 0 0 0 2; }
    """

    def __init__(self, scan: Scan, when: datetime, directory: Path | None = None) -> None:
        super().__init__(id="export")
        self.scan = scan
        self.when = when
        self.directory = directory
        self.format: ScanFormat = next(iter(SCAN_FORMATS.values()))

    def compose(self) -> ComposeResult:
        counts = summarize(self.scan.results)
        tally = ", ".join(f"{n} {status}" for status, n in counts.items() if n)
        with Vertical():
            yield Static(Content("Export the scan"), classes="export-title")
            yield Static(
                Content(
                    f"{len(self.scan.results)} checks ({tally}), as `cis-tui scan --format` "
                    "prints them. Written atomically, readable by you only (0600); an existing "
                    "file is replaced only after you confirm."
                )
            )
            with RadioSet(id="export-format"):
                for fmt in SCAN_FORMATS.values():
                    yield FormatChoice(
                        Content(fmt.title), value=fmt is self.format, name=fmt.name, compact=True
                    )
            yield Input(
                str(default_path(self.format, self.when, self.directory)),
                id="export-path",
                placeholder="file to write (enter: export)",
            )
            yield Static("", id="export-error")
            with Horizontal():
                yield Button("Cancel (esc)", id="cancel", compact=True)
                yield Button("Export (enter)", id="export-button", variant="primary", compact=True)
        yield KeyFooter()

    @on(RadioSet.Changed)
    def _format_changed(self, event: RadioSet.Changed) -> None:
        old, self.format = self.format, SCAN_FORMATS[event.pressed.name or ""]
        path = self.query_one("#export-path", Input)
        if path.value.endswith(old.suffix):  # a name the user kept: follow the format
            path.value = path.value[: -len(old.suffix)] + self.format.suffix

    @on(Input.Submitted, "#export-path")
    def _submitted(self) -> None:
        self.export()

    @on(Button.Pressed)
    def _pressed(self, event: Button.Pressed) -> None:
        if event.button.id == "cancel":
            self.dismiss(None)
        else:
            self.export()

    def export(self) -> None:
        """Write to the typed path; an existing file asks first."""
        typed = self.query_one("#export-path", Input).value.strip()
        if not typed:
            self._failed("enter the file to write")
            return
        try:
            path = target_path(typed)
            exists = os.path.lexists(path)
        except (OSError, RuntimeError) as exc:  # no home for ~, a vanished current directory
            self._failed(f"{typed}: {exc}")
            return
        if not exists:
            self._write(path, overwrite=False)
            return
        body = Content.assemble(
            (str(path), "bold"), " exists. Replace it with this scan (", self.format.title, ")?"
        )
        self.app.push_screen(
            ConfirmScreen("Overwrite the file?", body, "Overwrite (y)"),
            callback=lambda yes: self._write(path, overwrite=True) if yes else None,
        )

    def _write(self, path: Path, *, overwrite: bool) -> None:
        try:
            write_scan(path, self.format.name, self.scan, overwrite=overwrite)
        except (OSError, AtomicWriteError) as exc:
            self._failed(_problem(path, exc))
            return
        self.notify(
            f"Wrote {len(self.scan.results)} checks as {self.format.title} to {path}",
            title="Scan exported",
            markup=False,
        )
        self.dismiss(path)

    def _failed(self, message: str) -> None:
        self.query_one("#export-error", Static).update(Content(message))
        self.notify(message, title="Export failed", severity="error", markup=False)

    def action_close(self) -> None:
        self.dismiss(None)
