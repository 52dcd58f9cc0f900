"""Select, plan, apply on an offline tree (no health gate): success, parameters, rollback."""

from __future__ import annotations

import asyncio

from cis_tui.audit.evaluate import Result, Status
from cis_tui.engine.events import Event, Kind
from cis_tui.remediate.plan import Plan
from cis_tui.tui.engine_runner import EngineJob
from cis_tui.tui.screens.apply import ApplyScreen
from cis_tui.tui.screens.checks import ChecksScreen
from cis_tui.tui.screens.confirm import ConfirmScreen
from cis_tui.tui.screens.plan import PlanScreen
from cis_tui.tui.widgets.param_field import ParamField
from tests.tui.conftest import press_into, screen_text, select_checks, settle, wait_until

APISERVER = "etc/kubernetes/manifests/kube-apiserver.yaml"
SCHEDULER = "etc/kubernetes/manifests/kube-scheduler.yaml"


def status_of(app, check_id: str) -> Status:
    return next(r.status for r in app.results if r.id == check_id)


async def test_select_plan_apply_and_rescan(make_app, tree):
    app = make_app()
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(pilot)
        await select_checks(pilot, "1.2.15", "1.4.1")
        await pilot.press("enter")
        await settle(pilot)
        plan_screen = app.screen
        assert isinstance(plan_screen, PlanScreen)
        assert plan_screen.check_ids == ("1.2.15", "1.4.1")
        assert len(plan_screen.pager.sections) == 2  # one per file
        text = screen_text(app)
        assert "restarts kube-apiserver, kube-scheduler" in text
        assert "+    - --profiling=false" in text

        await pilot.press("a")
        await pilot.pause()
        assert isinstance(app.screen, ConfirmScreen)
        assert "Components that will restart: kube-apiserver, kube-scheduler" in screen_text(app)
        await pilot.press("y")
        await wait_until(pilot, lambda: not app.runner.busy, what="the apply")
        await settle(pilot)
        screen = app.screen
        assert isinstance(screen, ApplyScreen)
        assert {s.outcome for s in screen.sections.values()} == {"committed"}
        text = screen_text(app)
        assert "committed: 2 committed" in text
        assert "now: 1.2.15 PASS  1.4.1 PASS" in text
        assert "--profiling=false" in (tree / APISERVER).read_text()
        assert "--profiling=false" in (tree / SCHEDULER).read_text()

        await pilot.press("enter")  # back to the checks, rescanned
        assert isinstance(app.screen, ChecksScreen)
        assert status_of(app, "1.2.15") is Status.PASS
        assert app.screen.selected == set(), "fixed checks are no longer selected"


async def test_enter_plans_the_highlighted_check(make_app):
    app = make_app()
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(pilot)
        await pilot.press("slash", *"1.3.2", "enter", "enter")
        await settle(pilot)
        assert isinstance(app.screen, PlanScreen)
        assert app.screen.check_ids == ("1.3.2",)
        await pilot.press("escape")
        assert isinstance(app.screen, ChecksScreen)


async def test_parameters_are_validated_and_replan(make_app, tree):
    app = make_app()
    async with app.run_test(size=(100, 40)) as pilot:
        await settle(pilot)
        await select_checks(pilot, "1.2.17")
        await pilot.press("p")
        await settle(pilot)
        screen = app.screen
        assert isinstance(screen, PlanScreen)
        assert "--audit-log-maxage=30" in screen_text(app)
        (field,) = screen.query(ParamField)
        await pilot.press("e")
        assert app.focused is field.input
        field.input.value = "29"
        await pilot.pause()
        assert "1.2.17.maxage: must be at least 30 (got 29)" in screen_text(app)
        await pilot.press("escape", "a")  # leave the input, try to apply
        await pilot.pause()
        assert not isinstance(app.screen, ConfirmScreen), "an invalid parameter blocks apply"
        assert any("must be at least 30" in str(n.message) for n in app._notifications)

        field.input.value = "60"
        await wait_until(pilot, lambda: "--audit-log-maxage=60" in screen_text(app), what="replan")
        await press_into(pilot, "a", "ConfirmScreen", "y")
        await wait_until(pilot, lambda: not app.runner.busy, what="the apply")
        assert "--audit-log-maxage=60" in (tree / APISERVER).read_text()


async def test_nothing_to_apply_is_explained(make_app):
    app = make_app()
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(pilot)
        app.open_plan(["1.1.1"])  # passes already
        await settle(pilot)
        assert "Nothing to change" in screen_text(app)
        assert "1.1.1: already passes" in screen_text(app)
        await pilot.press("a")
        assert isinstance(app.screen, PlanScreen)


async def test_failed_audit_rolls_back(make_app, tree, monkeypatch):
    import cis_tui.engine.transaction as transaction

    def failing_audit(catalog, snap, ids=None):
        return [
            Result(catalog.get(i), Status.FAIL, "x", "still wrong", None, "file: still wrong")
            for i in ids
        ]

    monkeypatch.setattr(transaction, "evaluate", failing_audit)
    original = (tree / SCHEDULER).read_bytes()
    app = make_app()
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(pilot)
        await select_checks(pilot, "1.4.1")
        await pilot.press("p")
        await settle(pilot)
        await press_into(pilot, "a", "ConfirmScreen", "y")
        await wait_until(pilot, lambda: not app.runner.busy, what="the rollback")
        await settle(pilot)
        screen = app.screen
        assert isinstance(screen, ApplyScreen)
        (section,) = screen.sections.values()
        assert section.outcome == "rolled-back"
        assert "rolled back: 1 rolled-back" in screen_text(app)
        assert "audit re-check failed" in screen_text(app)
    assert (tree / SCHEDULER).read_bytes() == original


async def test_quit_is_blocked_while_a_change_is_in_flight(make_app):
    app = make_app()
    release = asyncio.Event()

    async def slow(engine):
        engine.emit(Event(Kind.STEP, "/etc/x.yaml", "kube-scheduler", message="started"))
        await release.wait()
        return await engine.apply(Plan("cis-1.12", (), {}, ()))

    async with app.run_test(size=(80, 24)) as pilot:
        await settle(pilot)
        app._start(ApplyScreen(EngineJob("apply", "slow job", slow)), ())
        await wait_until(pilot, lambda: app.runner.busy, what="the job")
        await pilot.press("q")
        await pilot.press("ctrl+q")
        await pilot.pause()
        assert app.is_running
        assert any("Cannot quit now" in (n.title or "") for n in app._notifications)
        release.set()
        await wait_until(pilot, lambda: not app.runner.busy, what="the job")
        await pilot.press("q")
        await pilot.pause()
        assert not app.is_running
