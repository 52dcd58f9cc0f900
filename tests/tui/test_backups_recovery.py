"""Backups (list, diff, restore, prune) and the start-up recovery dialog, on offline trees."""

from __future__ import annotations

import json
import os

from cis_tui.benchmarks.catalog import load_catalog
from cis_tui.engine.journal import Journal
from cis_tui.engine.transaction import Engine
from cis_tui.remediate.plan import build_plan
from cis_tui.tui.screens.apply import ApplyScreen
from cis_tui.tui.screens.backups import BackupsScreen
from cis_tui.tui.screens.prompt import NumberPrompt
from cis_tui.tui.screens.recovery import RecoveryScreen
from cis_tui.tui.widgets.backup_table import BackupTable
from cis_tui.tui.widgets.diff_view import DiffView
from tests.crashstate import interrupted_write
from tests.tui.conftest import backups_of, press_into, screen_text, settle, wait_until

SCHEDULER = "etc/kubernetes/manifests/kube-scheduler.yaml"
APISERVER = "etc/kubernetes/manifests/kube-apiserver.yaml"


async def apply_offline(settings, *ids: str) -> None:
    """Apply fixes with the engine directly (what an earlier session did)."""
    from cis_tui.audit.node import take_snapshot

    catalog = load_catalog()
    engine = Engine(settings, catalog, lambda event: None, health_gate=False)
    result = await engine.apply(build_plan(catalog, take_snapshot(settings), ids))
    assert result.exit_code == 0


async def test_backups_diff_and_restore(make_app, tree, offline_settings):
    original = (tree / SCHEDULER).read_bytes()
    await apply_offline(offline_settings, "1.4.1")
    app = make_app()
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(pilot)
        await pilot.press("b")
        await pilot.pause()
        screen = app.screen
        assert isinstance(screen, BackupsScreen)
        assert len(screen.query_one(BackupTable).backups) == 1
        text = screen_text(app)
        assert "kube-scheduler.yaml" in text and "committed" in text and "1.4.1" in text

        await pilot.press("d")
        await pilot.pause()
        assert "+    - --profiling=false" in screen.query_one(DiffView).diff
        assert "backup → current" in screen_text(app).replace("  ", " ")

        await pilot.press("r")
        await pilot.pause()
        assert "Restore this backup?" in screen_text(app)
        await pilot.press("y")
        await wait_until(pilot, lambda: not app.runner.busy, what="the restore")
        await settle(pilot)
        assert isinstance(app.screen, ApplyScreen)
        assert "committed" in screen_text(app)
        assert (tree / SCHEDULER).read_bytes() == original

        await pilot.press("enter")  # back to the backups, reloaded
        await settle(pilot)
        assert isinstance(app.screen, BackupsScreen)
        outcomes = sorted(b.outcome for b in backups_of(offline_settings))
        assert outcomes == ["committed", "restored"]
        assert "restored" in screen_text(app)


async def test_prune_asks_how_many_to_keep(make_app, offline_settings):
    await apply_offline(offline_settings, "1.4.1")
    await apply_offline(offline_settings, "1.3.2")
    await apply_offline(offline_settings, "1.2.15")
    app = make_app()
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(pilot)
        await press_into(pilot, "b", "BackupsScreen", "P")
        await pilot.pause()
        prompt = app.screen
        assert isinstance(prompt, NumberPrompt)
        prompt.query_one("#number").value = ""
        await pilot.press("enter")  # empty: refused with a message
        assert isinstance(app.screen, NumberPrompt)
        await pilot.press("1", "enter")
        await pilot.pause()
        assert isinstance(app.screen, BackupsScreen)
        assert len(backups_of(offline_settings)) == 1
        assert len(app.screen.query_one(BackupTable).backups) == 1


def interrupted_transaction(settings, tree) -> bytes:
    """What a `kill -9` right after the write leaves: a journal intent and a changed file."""
    return interrupted_write(settings, "kube-apiserver", ("1.2.15",))[2]


async def test_recovery_dialog_recovers(make_app, tree, offline_settings):
    original = interrupted_transaction(offline_settings, tree)
    app = make_app()
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(pilot)
        assert isinstance(app.screen, RecoveryScreen)
        text = screen_text(app)
        assert "1 unfinished transaction" in text
        assert "/etc/kubernetes/manifests/kube-apiserver.yaml" in text
        assert "'written'" in text
        await pilot.press("r")
        await wait_until(pilot, lambda: not app.runner.busy, what="the recovery")
        await settle(pilot)
        assert isinstance(app.screen, ApplyScreen)
        assert "recovered: 1 file(s) restored" in screen_text(app)
    assert (tree / APISERVER).read_bytes() == original
    assert Journal(offline_settings.state_dir).open_transactions() == []


async def test_recovery_later_changes_nothing(make_app, tree, offline_settings):
    interrupted_transaction(offline_settings, tree)
    changed = (tree / APISERVER).read_bytes()
    app = make_app()
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(pilot)
        assert isinstance(app.screen, RecoveryScreen)
        await pilot.press("l")
        await pilot.pause()
        assert not isinstance(app.screen, RecoveryScreen)
    assert (tree / APISERVER).read_bytes() == changed
    assert len(Journal(offline_settings.state_dir).open_transactions()) == 1


async def test_tampered_backup_is_refused_in_the_diff(make_app, tree, offline_settings):
    await apply_offline(offline_settings, "1.4.1")
    (backup,) = backups_of(offline_settings)
    original = os.path.join(backup.directory, "original")
    with open(original, "ab") as handle:
        handle.write(b"# tampered\n")
    app = make_app()
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(pilot)
        await press_into(pilot, "b", "BackupsScreen", "d")
        await pilot.pause()
        messages = [str(n.message) for n in app._notifications]
        assert any("does not match its recorded sha256" in m for m in messages), messages
    assert json.loads((tree / "var/lib/cis-tui/backups" / backup.id / "meta.json").read_text())


async def test_no_recovery_offered_while_another_cis_tui_holds_the_lock(
    make_app, tree, offline_settings
):
    from cis_tui.engine.lock import node_lock

    interrupted_transaction(offline_settings, tree)
    app = make_app()
    with node_lock(offline_settings.state_dir):
        async with app.run_test(size=(80, 24)) as pilot:
            await settle(pilot)
            assert not isinstance(app.screen, RecoveryScreen)
            assert any("holds the node lock" in str(n.message) for n in app._notifications)
