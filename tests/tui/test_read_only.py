"""`--read-only` (issue 12 item 14a): scan, plan, diff and backups, but no apply, restore,
prune or recover; their keys are hidden, the palette does not offer them, an attempt says
"read-only mode", and the engine never starts."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from cis_tui.cli import build_parser
from cis_tui.engine.journal import Journal
from cis_tui.tui.screens.backups import BackupsScreen
from cis_tui.tui.screens.checks import ChecksScreen
from cis_tui.tui.screens.help import HelpScreen
from cis_tui.tui.screens.plan import PlanScreen
from cis_tui.tui.screens.recovery import RecoveryScreen
from cis_tui.tui.widgets.diff_view import DiffView
from tests.tui.conftest import backups_of, press_into, screen_text, settle, wait_until
from tests.tui.test_backups_recovery import APISERVER, apply_offline, interrupted_transaction

READ_ONLY = "read-only mode"


@pytest.fixture(autouse=True)
def started(monkeypatch) -> Iterator[list[object]]:
    """Every engine job the wizard starts (the test asserts there is none)."""
    jobs: list[object] = []
    monkeypatch.setattr(
        "cis_tui.tui.engine_runner.EngineRunner.start", lambda self, job: jobs.append(job)
    )
    yield jobs
    assert jobs == [], "the engine was started in read-only mode"


def footer_actions(app) -> set[str]:
    return {b.binding.action for b in app.screen.active_bindings.values()}


def palette_titles(app) -> set[str]:
    return {c.title for c in app.get_system_commands(app.screen)}


def refusals(app) -> list[str]:
    return [str(n.message) for n in app._notifications if "read-only" in str(n.message)]


@pytest.mark.parametrize(
    ("argv", "expected"),
    [
        ([], False),
        (["--read-only"], True),
        (["tui", "--read-only"], True),
        (["--read-only", "tui"], True),
        (["demo", "--read-only"], True),
        (["--read-only", "demo"], True),
        (["demo"], False),
    ],
)
def test_the_flag_for_the_wizard_and_the_demo(argv, expected):
    assert build_parser().parse_args(argv).read_only is expected


def test_cis_tui_read_only_reaches_the_wizard(monkeypatch, kubeadm_node):
    from cis_tui import cli

    seen = {}

    def fake_run_tui(settings, catalog, *, mouse, read_only, snapshot=None):
        seen["read_only"] = read_only
        return 0

    monkeypatch.setattr("cis_tui.tui.app.run_tui", fake_run_tui)
    assert cli.main(["--root", str(kubeadm_node), "--read-only"]) == 0
    assert seen == {"read_only": True}


async def test_plan_shows_the_diff_but_apply_is_hidden_and_refused(make_app):
    app = make_app(read_only=True)
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(pilot)
        assert "read-only" in app.sub_title
        assert "read-only" in screen_text(app).splitlines()[0]
        await pilot.press("slash", *"1.4.1", "enter", "p")
        await wait_until(pilot, lambda: isinstance(app.screen, PlanScreen), what="the plan")
        await settle(pilot)
        assert "+    - --profiling=false" in screen_text(app)
        assert "apply" not in footer_actions(app)
        assert "Apply" not in palette_titles(app)
        assert "Parameters" in palette_titles(app)

        await pilot.press("a")
        await pilot.pause()
        assert isinstance(app.screen, PlanScreen)  # no confirmation dialog
        assert refusals(app) and READ_ONLY in refusals(app)[-1]
        assert app.runner.worker is None

        await pilot.press("f1")
        await pilot.pause()
        assert isinstance(app.screen, HelpScreen)
        assert "Apply" not in screen_text(app)


async def test_the_app_refuses_every_job_even_when_asked_directly(make_app, offline_settings):
    from cis_tui.audit.node import take_snapshot
    from cis_tui.benchmarks.catalog import load_catalog
    from cis_tui.remediate.plan import build_plan

    await apply_offline(offline_settings, "1.4.1")
    plan = build_plan(load_catalog(), take_snapshot(offline_settings), ["1.2.15"])
    app = make_app(read_only=True)
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(pilot)
        app.start_apply(plan)
        app.start_restore(backups_of(offline_settings)[0])
        app._recover([], True)
        await settle(pilot)
        assert isinstance(app.screen, ChecksScreen)
        assert app.runner.worker is None and app.runner.engine is None
        assert len(refusals(app)) == 3


async def test_backups_list_and_diff_but_no_restore_or_prune(make_app, offline_settings):
    await apply_offline(offline_settings, "1.4.1")
    before = backups_of(offline_settings)
    app = make_app(read_only=True)
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(pilot)
        await press_into(pilot, "b", "BackupsScreen")
        screen = app.screen
        assert isinstance(screen, BackupsScreen)
        actions = footer_actions(app)
        assert {"diff", "back"} <= actions and not {"restore", "prune"} & actions
        assert not {"Restore", "Prune"} & palette_titles(app)
        assert "r: restore" not in screen_text(app)

        await pilot.press("d")
        await pilot.pause()
        assert "+    - --profiling=false" in screen.query_one(DiffView).diff

        for key in ("r", "P"):
            await pilot.press(key)
            await pilot.pause()
            assert isinstance(app.screen, BackupsScreen), key  # no dialog
        assert len(refusals(app)) == 2
        assert all(READ_ONLY in m for m in refusals(app))
    assert backups_of(offline_settings) == before


async def test_the_recovery_dialog_only_informs(make_app, tree, offline_settings):
    interrupted_transaction(offline_settings, tree)
    changed = (tree / APISERVER).read_bytes()
    state_files = sorted(p.name for p in offline_settings.state_dir.iterdir())
    app = make_app(read_only=True)
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(pilot)
        assert isinstance(app.screen, RecoveryScreen)
        text = screen_text(app)
        assert "1 unfinished transaction" in text
        assert "Read-only mode" in text and "cis-tui recover" in text
        assert "Recover (r)" not in text
        assert "answer(True)" not in footer_actions(app)

        await pilot.press("r")
        await pilot.pause()
        assert isinstance(app.screen, RecoveryScreen)
        assert refusals(app)
        await pilot.press("escape")
        await pilot.pause()
        assert isinstance(app.screen, ChecksScreen)
        assert app.runner.worker is None
    assert (tree / APISERVER).read_bytes() == changed
    assert len(Journal(offline_settings.state_dir).open_transactions()) == 1
    # not even the node lock was taken: nothing new in the state directory
    assert sorted(p.name for p in offline_settings.state_dir.iterdir()) == state_files
