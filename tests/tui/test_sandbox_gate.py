"""The wizard on a live sandbox node, with the real health gate: commit, cancel, rollback."""

from __future__ import annotations

import time

import pytest

from cis_tui.benchmarks.catalog import load_catalog
from cis_tui.engine.events import Step
from cis_tui.layout import load_settings
from cis_tui.sandbox.settings import Fault
from cis_tui.tui.app import CisTuiApp
from cis_tui.tui.screens.apply import ApplyScreen
from cis_tui.tui.screens.help import HelpScreen
from cis_tui.tui.widgets.param_field import ParamField
from tests.tui.conftest import press_into, screen_text, select_checks, settle, wait_until

#: A shorter stability window than the default (the liveness probe's first judgement, 20 s
#: for the API server) keeps these tests quick.
FAST_HEALTH = "\n[health]\nstable_successes = 2\nstable_seconds = 1.0\n"


@pytest.fixture
def live_app(sandbox_factory):
    """A started sandbox and the wizard on it (through its cis-tui.toml, like the demo)."""

    def make(timeout: float | None = None, **sandbox) -> tuple[object, CisTuiApp]:
        run = sandbox_factory(**sandbox)
        with run.config.open("a") as config:
            config.write(FAST_HEALTH)
        settings = load_settings(config=run.config)
        app = CisTuiApp(
            settings,
            load_catalog(),
            node_label="sandbox",
            display_root=run.dir,
            timeout=timeout,
        )
        return run, app

    return make


async def plan_and_apply(pilot, *ids: str) -> ApplyScreen:
    await settle(pilot)
    await select_checks(pilot, *ids)
    await pilot.press("p")
    await settle(pilot)
    await press_into(pilot, "a", "ConfirmScreen", "y")
    await wait_until(pilot, lambda: isinstance(pilot.app.screen, ApplyScreen), what="apply")
    return pilot.app.screen


async def test_apply_passes_the_real_health_gate(live_app):
    run, app = live_app()
    manifest = run.dir / "etc/kubernetes/manifests/kube-scheduler.yaml"
    async with app.run_test(size=(100, 30)) as pilot:
        screen = await plan_and_apply(pilot, "1.4.1")
        await wait_until(pilot, lambda: not app.runner.busy, timeout=60, what="the gate")
        await settle(pilot)
        (section,) = screen.sections.values()
        assert section.outcome == "committed"
        assert section.states[Step.HEALTH] == "ok"
        assert section.states[Step.RESTART_EVIDENCE] == "ok"
        text = screen_text(app)
        assert "committed: 1 committed" in text
        assert "now: 1.4.1 PASS" in text
        assert "probe https://127.0.0.1:" in text  # every poll, with its latency
    assert "--profiling=false" in run.args_of("kube-scheduler")
    assert "--profiling=false" in manifest.read_text()


async def test_cancel_during_the_gate_rolls_back(live_app):
    slow = Fault(component="kube-scheduler", argv_contains="--profiling=false", ready_delay=60)
    run, app = live_app(faults=[slow])
    manifest = run.dir / "etc/kubernetes/manifests/kube-scheduler.yaml"
    original = manifest.read_bytes()
    async with app.run_test(size=(100, 30)) as pilot:
        screen = await plan_and_apply(pilot, "1.4.1")
        (section,) = screen.sections.values()
        await wait_until(
            pilot,
            lambda: section.states[Step.HEALTH] == "running" and section.gate_event is not None,
            timeout=30,
            what="the health gate polling",
        )
        # The UI stays responsive while the gate runs: help opens and closes at once.
        started = time.monotonic()
        await pilot.press("question_mark")
        assert isinstance(app.screen, HelpScreen)
        await pilot.press("escape")
        assert app.screen is screen
        assert time.monotonic() - started < 2.0

        await pilot.press("x")
        assert "rolling back" in screen_text(app)
        await wait_until(pilot, lambda: not app.runner.busy, timeout=60, what="the rollback")
        await settle(pilot)
        assert section.outcome == "rolled-back"
        assert "cancelled and rolled back" in screen_text(app)
    assert manifest.read_bytes() == original
    assert "--profiling=false" not in run.args_of("kube-scheduler")


async def test_a_flag_the_component_refuses_is_rolled_back(live_app):
    run, app = live_app(timeout=4)
    manifest = run.dir / "etc/kubernetes/manifests/kube-apiserver.yaml"
    original = manifest.read_bytes()
    async with app.run_test(size=(100, 30)) as pilot:
        await settle(pilot)
        await select_checks(pilot, "1.2.5")
        await pilot.press("p")
        await settle(pilot)
        plan_screen = app.screen
        (field,) = plan_screen.query(ParamField)
        # A directory: it exists and is mounted (so it is planned), but it is not a CA file.
        not_a_file = f"--kubelet-certificate-authority={run.paths.pki}\n"
        field.input.value = str(run.paths.pki)

        def replanned() -> bool:
            plan = plan_screen.plan
            return bool(plan and plan.files and not_a_file in (plan.files[0].new_text or ""))

        await wait_until(pilot, replanned, what="the replan")
        await press_into(pilot, "a", "ConfirmScreen", "y")
        await wait_until(pilot, lambda: app.runner.busy, what="the apply")
        await wait_until(pilot, lambda: not app.runner.busy, timeout=60, what="the rollback")
        await settle(pilot)
        screen = app.screen
        assert isinstance(screen, ApplyScreen)
        (section,) = screen.sections.values()
        assert section.outcome == "rolled-back"
        assert section.states[Step.ROLLBACK] == "ok"
        assert "rolled back" in screen_text(app)
    assert manifest.read_bytes() == original
