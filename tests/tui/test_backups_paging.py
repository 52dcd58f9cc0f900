"""The backups screen with thousands of backups: a page at a time, read once (issue 17)."""

from __future__ import annotations

from cis_tui.engine.backups import BackupStore
from cis_tui.tui.screens.backups import PAGE, BackupsScreen
from cis_tui.tui.widgets.backup_table import BackupTable
from tests.tui.conftest import press_into, screen_text, settle, wait_until

SCHEDULER = "etc/kubernetes/manifests/kube-scheduler.yaml"


def make_backups(settings, tree, count: int) -> list[str]:
    store = BackupStore(settings.state_dir, settings.layout)
    made = [
        store.create_file_backup(tree / SCHEDULER, "kube-scheduler", ("1.4.1",), {})
        for _ in range(count)
    ]
    for backup in made:
        store.set_outcome(backup, "committed")
    return [b.id for b in reversed(made)]  # newest first


async def test_a_page_at_a_time_newest_first(make_app, tree, offline_settings):
    ids = make_backups(offline_settings, tree, PAGE + 30)
    app = make_app()
    async with app.run_test(size=(100, 30)) as pilot:
        await settle(pilot)
        await press_into(pilot, "b", "BackupsScreen")
        screen = app.screen
        assert isinstance(screen, BackupsScreen)
        table = screen.query_one(BackupTable)
        assert [b.id for b in table.backups] == ids[:PAGE]
        assert f"{PAGE + 30} backups" in screen_text(app)
        assert f"the newest {PAGE} shown" in screen_text(app)
        await pilot.press("ctrl+end")  # the cursor reaches the last row read: the next page
        await wait_until(pilot, lambda: len(table.backups) == PAGE + 30, what="the next page")
        assert [b.id for b in table.backups] == ids
        assert "shown" not in screen_text(app)


async def test_a_closed_dialog_rebuilds_nothing(make_app, tree, offline_settings):
    make_backups(offline_settings, tree, 3)
    app = make_app()
    async with app.run_test(size=(100, 30)) as pilot:
        await settle(pilot)
        await press_into(pilot, "b", "BackupsScreen")
        screen = app.screen
        table = screen.query_one(BackupTable)
        rows = table.backups
        await pilot.press("r")
        await wait_until(pilot, lambda: app.screen is not screen, what="the confirmation")
        await pilot.press("n")
        await wait_until(pilot, lambda: app.screen is screen, what="the backups again")
        await pilot.pause()
        assert table.backups is rows  # the same rows, not read again
        # A backup whose outcome changed elsewhere is redrawn on its own row.
        store = BackupStore(offline_settings.state_dir, offline_settings.layout)
        store.set_outcome(store.get(rows[1].id), "restored")
        await pilot.press("r")
        await wait_until(pilot, lambda: app.screen is not screen, what="the confirmation")
        await pilot.press("n")
        await wait_until(pilot, lambda: app.screen is screen, what="the backups again")
        await pilot.pause()
        assert table.backups[1].outcome == "restored" and len(table.backups) == 3


async def test_an_unreadable_backup_is_counted_not_hidden(make_app, tree, offline_settings):
    ids = make_backups(offline_settings, tree, 3)
    meta = BackupStore(offline_settings.state_dir, offline_settings.layout).root / ids[1]
    (meta / "meta.json").write_text("{not json")
    app = make_app()
    async with app.run_test(size=(120, 30)) as pilot:
        await settle(pilot)
        await press_into(pilot, "b", "BackupsScreen")
        table = app.screen.query_one(BackupTable)
        assert [b.id for b in table.backups] == [ids[0], ids[2]]
        assert "1 unreadable, not shown" in screen_text(app)
