"""The wizard saves a plan and its companion bundle (issue 15): the same files `cis-tui plan
--save PLAN --companions DIR` writes, and the plan on screen keeps the saved key."""

from __future__ import annotations

from pathlib import Path

from cis_tui.benchmarks.catalog import load_catalog
from cis_tui.remediate.planfile import load_plan
from cis_tui.tui.screens.plan import PlanScreen
from cis_tui.tui.screens.save_plan import SavePlanScreen
from tests.tui.conftest import settle, wait_until

ENC = "etc/kubernetes/enc/encryption-config.yaml"


async def test_s_saves_the_plan_and_its_companions_and_apply_uses_that_key(
    make_app, tree, tmp_path
):
    app = make_app()
    target = tmp_path / "out" / "fleet-plan.yaml"
    async with app.run_test(size=(100, 40)) as pilot:
        await settle(pilot)
        app.open_plan(["1.2.15", "1.2.27"])
        await settle(pilot)
        assert isinstance(app.screen, PlanScreen)
        await pilot.press("s")
        await wait_until(pilot, lambda: isinstance(app.screen, SavePlanScreen), what="dialog")
        dialog_input = app.screen.query_one("#save-path")
        dialog_input.value = str(target)
        await pilot.press("enter")
        await wait_until(pilot, lambda: isinstance(app.screen, PlanScreen), what="saved")
        bundle = tmp_path / "out" / "fleet-plan-companions"
        key = (bundle / "encryption-config.yaml").read_bytes()
        assert (bundle / "encryption-config.yaml").stat().st_mode & 0o777 == 0o600
        saved = load_plan(target, load_catalog(app.catalog.benchmark))
        assert saved.checks == ("1.2.15", "1.2.27")
        assert [c.file for c in saved.secrets] == ["encryption-config.yaml"]
        assert any("cis-tui apply --plan" in str(n.message) for n in app._notifications)
        # The plan on screen holds the saved key: applying it here matches every other node.
        screen = app.screen
        (comp,) = [c for f in screen.plan.files for c in f.companions]
        assert comp.content == key
        screen.replan()
        await settle(pilot)
        (comp,) = [c for f in screen.plan.files for c in f.companions]
        assert comp.content == key and comp.shared


async def test_save_with_nothing_planned_says_so(make_app, tmp_path: Path):
    app = make_app()
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(pilot)
        app.open_plan(["1.1.1"])  # passes already
        await settle(pilot)
        await pilot.press("s")
        await pilot.pause()
        assert isinstance(app.screen, PlanScreen)
        assert any("Nothing to save" in str(n.message) for n in app._notifications)


async def test_an_existing_plan_file_is_replaced_only_after_a_yes(make_app, tmp_path: Path):
    from cis_tui.tui.screens.confirm import ConfirmScreen

    app = make_app()
    target = tmp_path / "plan.yaml"
    target.write_text("mine\n")
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(pilot)
        app.open_plan(["1.2.15"])
        await settle(pilot)
        await pilot.press("s")
        await wait_until(pilot, lambda: isinstance(app.screen, SavePlanScreen), what="dialog")
        app.screen.query_one("#save-path").value = str(target)
        await pilot.press("enter")
        await wait_until(pilot, lambda: isinstance(app.screen, ConfirmScreen), what="confirm")
        await pilot.press("n")
        await wait_until(pilot, lambda: isinstance(app.screen, SavePlanScreen), what="back")
        assert target.read_text() == "mine\n"
        await pilot.press("enter")
        await wait_until(pilot, lambda: isinstance(app.screen, ConfirmScreen), what="confirm")
        await pilot.press("y")
        await wait_until(pilot, lambda: isinstance(app.screen, PlanScreen), what="saved")
        assert load_plan(target, load_catalog(app.catalog.benchmark)).checks == ("1.2.15",)
        await pilot.press("s")
        await wait_until(pilot, lambda: isinstance(app.screen, SavePlanScreen), what="dialog")
        await pilot.press("escape")
        await wait_until(pilot, lambda: isinstance(app.screen, PlanScreen), what="cancelled")
