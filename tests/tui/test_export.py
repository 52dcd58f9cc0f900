"""Export the scan from the wizard (issue 12 item 12): the file holds exactly what
`cis-tui scan --format json|junit` prints for the same node, mode 0600, and an existing file is
replaced only after a confirmation."""

from __future__ import annotations

import stat
from datetime import datetime
from pathlib import Path

import pytest
from textual.widgets import Input, RadioButton

from cis_tui.cli import main
from cis_tui.report import SCAN_FORMATS
from cis_tui.tui.screens.checks import ChecksScreen
from cis_tui.tui.screens.confirm import ConfirmScreen
from cis_tui.tui.screens.export import ExportScreen, default_path
from tests.tui.conftest import press_into, screen_text, settle, wait_until

WHEN = datetime(2026, 1, 1, 12, 0, 0)  # the app's pinned wall clock (conftest.make_app)


def cli_scan(capsys, tree: Path, fmt: str) -> str:
    capsys.readouterr()
    main(["--root", str(tree), "scan", "--format", fmt])
    out, _err = capsys.readouterr()
    return out


def toasts(app) -> list[str]:
    return [n.message for n in app._notifications]


@pytest.fixture
def in_tmp(tmp_path, monkeypatch) -> Path:
    """The wizard runs in an empty, writable current directory (the default export place)."""
    cwd = tmp_path / "cwd"
    cwd.mkdir()
    monkeypatch.chdir(cwd)
    return cwd


@pytest.mark.parametrize("fmt", ["json", "junit"])
async def test_export_writes_what_cli_scan_prints(make_app, tree, in_tmp, capsys, fmt):
    app = make_app()
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(pilot)
        await press_into(pilot, "e", "ExportScreen")
        dialog = app.screen
        assert isinstance(dialog, ExportScreen)
        path_input = dialog.query_one("#export-path", Input)
        expected = default_path(SCAN_FORMATS["json"], WHEN, in_tmp)
        assert path_input.value == str(expected)
        assert expected.name.startswith("cis-tui-scan-") and "-20260101-120000" in expected.name
        if fmt == "junit":  # choose the format: the file name follows it
            button = next(b for b in dialog.query(RadioButton) if b.name == "junit")
            button.value = True
            await wait_until(pilot, lambda: path_input.value.endswith(".xml"), what="suffix")
        target = Path(path_input.value)
        path_input.focus()
        await pilot.press("enter")
        await wait_until(pilot, lambda: isinstance(app.screen, ChecksScreen), what="dismissed")
        assert any(str(target) in t and "Wrote 92 checks" in t for t in toasts(app))

    assert target.read_text() == cli_scan(capsys, tree, fmt)
    assert stat.S_IMODE(target.stat().st_mode) == 0o600
    assert [p.name for p in in_tmp.iterdir()] == [target.name]  # no temporary file left


async def test_an_existing_file_is_replaced_only_after_confirmation(make_app, tree, in_tmp, capsys):
    target = in_tmp / "scan.json"
    target.write_text("keep me\n")
    target.chmod(0o644)
    app = make_app()
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(pilot)
        await press_into(pilot, "e", "ExportScreen")
        path_input = app.screen.query_one("#export-path", Input)
        path_input.value = "scan.json"  # relative: the current directory
        path_input.focus()
        await pilot.press("enter")
        await wait_until(pilot, lambda: isinstance(app.screen, ConfirmScreen), what="confirm")
        await pilot.press("n")
        await wait_until(pilot, lambda: isinstance(app.screen, ExportScreen), what="back")
        assert target.read_text() == "keep me\n"

        await pilot.press("enter")
        await wait_until(pilot, lambda: isinstance(app.screen, ConfirmScreen), what="confirm")
        await pilot.press("y")
        await wait_until(pilot, lambda: isinstance(app.screen, ChecksScreen), what="written")
    assert target.read_text() == cli_scan(capsys, tree, "json")
    assert stat.S_IMODE(target.stat().st_mode) == 0o600


async def test_a_write_error_is_a_toast_naming_the_path(make_app, in_tmp):
    app = make_app()
    missing = in_tmp / "no-such-dir" / "scan.json"
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(pilot)
        await press_into(pilot, "e", "ExportScreen")
        path_input = app.screen.query_one("#export-path", Input)
        path_input.value = str(missing)
        path_input.focus()
        await pilot.press("enter")
        await pilot.pause()
        assert isinstance(app.screen, ExportScreen)  # still open: fix the path and retry
        errors = [n for n in app._notifications if n.severity == "error"]
        assert errors and str(missing) in errors[-1].message
        assert "Traceback" not in errors[-1].message
        await pilot.press("escape")
        await wait_until(pilot, lambda: isinstance(app.screen, ChecksScreen), what="closed")
    assert not missing.parent.exists()
    assert list(in_tmp.iterdir()) == []


async def test_a_symlink_is_never_written_through(make_app, in_tmp, tmp_path):
    victim = tmp_path / "victim"
    victim.write_text("precious\n")
    (in_tmp / "scan.json").symlink_to(victim)
    app = make_app()
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(pilot)
        await press_into(pilot, "e", "ExportScreen")
        path_input = app.screen.query_one("#export-path", Input)
        path_input.value = "scan.json"
        path_input.focus()
        await pilot.press("enter")
        await wait_until(pilot, lambda: isinstance(app.screen, ConfirmScreen), what="confirm")
        await pilot.press("y")
        await pilot.pause()
        assert isinstance(app.screen, ExportScreen)
        assert any("symlink" in t for t in toasts(app))
    assert victim.read_text() == "precious\n"


def test_the_default_place_is_home_when_the_current_directory_is_not_writable(
    tmp_path, monkeypatch
):
    from cis_tui.tui.screens import export

    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    monkeypatch.setattr(export.os, "access", lambda path, mode: Path(path) != tmp_path)
    path = default_path(SCAN_FORMATS["junit"], WHEN, host="cp 1/a")
    assert path == tmp_path / "home" / "cis-tui-scan-cp-1-a-20260101-120000.xml"


def test_the_export_key_is_the_first_to_leave_a_narrow_footer():
    assert ChecksScreen.FOOTER_OPTIONAL[0] == "export"


def _format_row(app) -> str:
    row = next(line for line in screen_text(app).splitlines() if "JUnit" in line)
    return row[row.index("JSON") - 4 :]  # the radio buttons, not the checks table beneath


async def test_the_chosen_format_reads_without_colour(make_app, in_tmp):
    """● marks the chosen format and ○ the others (not one glyph in two colours)."""
    app = make_app()
    async with app.run_test(size=(100, 30)) as pilot:
        await settle(pilot)
        await press_into(pilot, "e", "ExportScreen")
        row = _format_row(app)
        assert row.count("●") == 1 and row.count("○") == len(SCAN_FORMATS) - 1
        assert "●▌ JSON" in row
        button = next(b for b in app.screen.query(RadioButton) if b.name == "junit")
        button.value = True
        await pilot.pause()
        row = _format_row(app)
        assert "●▌ JUnit" in row and "○▌ JSON" in row and row.count("●") == 1


async def test_every_format_title_is_whole(make_app, in_tmp):
    """At 80x24 each format's title is whole (equal-width buttons cut "Markdown report")."""
    app = make_app()
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(pilot)
        await press_into(pilot, "e", "ExportScreen")
        row = _format_row(app)
        assert all(fmt.title in row for fmt in SCAN_FORMATS.values()), row
