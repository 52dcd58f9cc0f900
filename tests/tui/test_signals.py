"""SIGTERM/SIGHUP (a dropped SSH session) and CRITICAL outcomes: how the wizard ends."""

from __future__ import annotations

import asyncio
import os
import signal

from cis_tui.engine.events import Outcome
from cis_tui.engine.transaction import ApplyResult, FileResult
from cis_tui.remediate.plan import FilePlan
from cis_tui.tui.engine_runner import EngineJob
from cis_tui.tui.screens.apply import ApplyScreen
from tests.tui.conftest import screen_text, settle, wait_until

FILE = FilePlan("manifest", "kube-scheduler", None, "a", "b", ("1.4.1",))


async def test_sigterm_when_idle_exits_and_restores_the_handler(make_app):
    before = signal.getsignal(signal.SIGTERM)
    app = make_app(handle_signals=True)
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(pilot)
        os.kill(os.getpid(), signal.SIGTERM)
        await wait_until(pilot, lambda: not app.is_running, what="the exit")
    assert signal.getsignal(signal.SIGTERM) is before


async def test_sighup_during_a_job_cancels_it_then_exits(make_app):
    app = make_app(handle_signals=True)

    async def job(engine):
        await engine.cancel.wait()  # a gate that only a cancel ends: roll back
        return ApplyResult((FileResult(FILE, Outcome.ROLLED_BACK, "rolled back: cancelled"),), True)

    async with app.run_test(size=(80, 24)) as pilot:
        await settle(pilot)
        app._start(ApplyScreen(EngineJob("apply", "slow", job)), ())
        await wait_until(pilot, lambda: app.runner.busy, what="the job")
        os.kill(os.getpid(), signal.SIGHUP)
        await wait_until(pilot, lambda: not app.is_running, what="the exit")
    assert app.return_value == 1  # cancelled and rolled back


async def test_critical_outcome_shows_the_manual_command(make_app):
    app = make_app()
    command = "cis-tui recover --yes  (or by hand: install -m 0600 ... && mv ...)"

    async def job(engine):
        await asyncio.sleep(0)
        message = f"CRITICAL: not healthy; rollback failed: down. Restore by hand: {command}"
        return ApplyResult((FileResult(FILE, Outcome.CRITICAL, message),))

    async with app.run_test(size=(120, 30)) as pilot:
        await settle(pilot)
        app._start(ApplyScreen(EngineJob("apply", "doomed", job)), ())
        await wait_until(pilot, lambda: not app.runner.busy and app.exit_code == 3)
        await settle(pilot)
        text = screen_text(app)
        assert "CRITICAL" in text and "cis-tui recover --yes" in text
