"""The wizard and issue 16: waived checks shown WAIVED and never selectable, checks whose status
changed since the scan it saved last are marked, and the report is offered by the export."""

from __future__ import annotations

import dataclasses
import datetime as dt
from pathlib import Path

from textual.widgets import Input, RadioButton

from cis_tui.drift import LAST_SCAN_FILE
from cis_tui.tui.screens.checks import ChecksScreen
from cis_tui.tui.widgets.check_table import CheckTable
from cis_tui.waivers import Waiver
from tests.reporting.htmlcheck import check_html
from tests.tui.conftest import press_into, screen_text, settle, wait_until
from tests.tui.test_backups_recovery import apply_offline


def toasts(app) -> list[str]:
    return [n.message for n in app._notifications]


async def test_a_waived_check_is_shown_and_never_selected(make_app, offline_settings):
    soon = dt.date.today() + dt.timedelta(days=3)
    settings = dataclasses.replace(
        offline_settings,
        waivers=(Waiver("1.4.1", "accepted by the CAB", "alice", soon, index=1),),
    )
    app = make_app(settings)
    async with app.run_test(size=(120, 30)) as pilot:
        await settle(pilot)
        screen = app.screen
        assert isinstance(screen, ChecksScreen)
        result = next(r for r in screen.results if r.id == "1.4.1")
        assert result.status.value == "WAIVED"
        assert any("1.4.1: the waiver by alice expires in 3 days" in t for t in toasts(app))
        screen.go_to("1.4.1")
        await pilot.press("space")
        await pilot.pause()
        assert "1.4.1" not in screen.selected
        assert any("1.4.1 is waived by alice" in t for t in toasts(app))
        await pilot.press("a")  # select every fixable scored failure: not the waived one
        await pilot.pause()
        assert screen.selected and "1.4.1" not in screen.selected
        assert "WAIVED" in screen_text(app)


async def test_checks_changed_since_the_last_saved_scan_are_marked(make_app, offline_settings):
    state = offline_settings.state_dir
    app = make_app()
    async with app.run_test(size=(120, 30)) as pilot:
        await settle(pilot)
        await wait_until(pilot, lambda: (state / LAST_SCAN_FILE).exists(), what="saved scan")
        assert app.checks_screen.changed == {}  # nothing saved before: nothing marked
    await apply_offline(offline_settings, "1.4.1")  # the node changes between two sessions

    app = make_app()
    async with app.run_test(size=(120, 30)) as pilot:
        await settle(pilot)
        screen = app.checks_screen
        assert screen.changed == {"1.4.1": "FAIL"}
        text = screen_text(app)
        assert "1 changed since the last scan" in text
        screen.go_to("1.4.1")
        await pilot.pause()
        text = " ".join(screen_text(app).split())
        assert "was FAIL ·" in text  # in the table row
        assert "changed was FAIL in the last scan saved before this session" in text  # details
        table = screen.query_one(CheckTable)
        assert table.changed == {"1.4.1": "FAIL"}


async def test_read_only_saves_no_scan(make_app, offline_settings):
    app = make_app(read_only=True)
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(pilot)
    assert not (offline_settings.state_dir / LAST_SCAN_FILE).exists()


async def test_the_export_offers_the_html_report(make_app, offline_settings, tmp_path, monkeypatch):
    await apply_offline(offline_settings, "1.4.1")
    cwd = tmp_path / "cwd"
    cwd.mkdir()
    monkeypatch.chdir(cwd)
    app = make_app()
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(pilot)
        await press_into(pilot, "e", "ExportScreen")
        dialog = app.screen
        names = [b.name for b in dialog.query(RadioButton)]
        assert names == ["json", "junit", "html", "markdown"]
        path_input = dialog.query_one("#export-path", Input)
        next(b for b in dialog.query(RadioButton) if b.name == "html").value = True
        await wait_until(pilot, lambda: path_input.value.endswith(".html"), what="suffix")
        target = Path(path_input.value)
        path_input.focus()
        await pilot.press("enter")
        await wait_until(pilot, lambda: isinstance(app.screen, ChecksScreen), what="written")
    text = check_html(target.read_text())
    assert "1 transaction(s) recorded" in text and "1.4.1" in text
