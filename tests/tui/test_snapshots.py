"""SVG snapshots of every screen at 80x24 (offline tree: no clocks, no tmp paths, no PIDs).

Update with `pytest tests/tui/test_snapshots.py --snapshot-update` and review the SVGs.
"""

from __future__ import annotations

import json

import pytest

from cis_tui.audit.node import take_snapshot
from cis_tui.benchmarks.catalog import load_catalog
from cis_tui.engine.events import Event, Kind, Outcome, Step
from cis_tui.remediate.plan import build_plan
from cis_tui.tui.engine_runner import apply_job
from cis_tui.tui.screens.apply import ApplyScreen
from tests.tui.conftest import as_root, pin_backups, select_checks, settle, wait_until
from tests.tui.test_backups_recovery import apply_offline

pytestmark = as_root
SIZE = (80, 24)


def test_checks_screen(snap_compare, make_app):
    async def run_before(pilot):
        await settle(pilot)
        await select_checks(pilot, "1.2.15")

    assert snap_compare(make_app(), run_before=run_before, terminal_size=SIZE)


def test_checks_screen_filtered(snap_compare, make_app):
    async def run_before(pilot):
        await settle(pilot)
        await pilot.press("f", "c", "s")
        await pilot.pause()

    assert snap_compare(make_app(), run_before=run_before, terminal_size=SIZE)


def test_plan_screen_with_parameters(snap_compare, make_app):
    async def run_before(pilot):
        await settle(pilot)
        await select_checks(pilot, "1.2.17", "1.4.1")
        await pilot.press("p")
        await settle(pilot)

    assert snap_compare(make_app(), run_before=run_before, terminal_size=SIZE)


def test_apply_confirmation(snap_compare, make_app):
    async def run_before(pilot):
        await settle(pilot)
        await select_checks(pilot, "1.2.15", "1.4.1")
        await pilot.press("p")
        await settle(pilot)
        await pilot.press("a")
        await pilot.pause()

    assert snap_compare(make_app(health_gate=True), run_before=run_before, terminal_size=SIZE)


def gate_events(label: str) -> list[Event]:
    comp = "kube-apiserver"
    events = [Event(Kind.STEP, step=Step.LOCK, ok=True, message="4242")]
    for step in (Step.SNAPSHOT, Step.BACKUP, Step.JOURNAL, Step.WRITE, Step.RESTART_EVIDENCE):
        events.append(Event(Kind.STEP, label, comp, step, None))
        events.append(Event(Kind.STEP, label, comp, step, True))
    events.append(Event(Kind.STEP, label, comp, Step.HEALTH, None, "https://127.0.0.1:6443/livez"))
    url = "https://127.0.0.1:6443/livez"
    for elapsed, detail, ok, latency in (
        (9.8, "connection refused", False, 0.4),
        (10.9, "500 (etcd not ready)", False, 3.1),
        (12.4, "200", True, 2.7),
    ):
        state = "ok" if ok else "failing"
        events.append(
            Event(
                Kind.POLL,
                label,
                comp,
                Step.HEALTH,
                ok,
                f"{url} {detail} ({state}, TLS verified)",
                latency_ms=latency,
                elapsed=elapsed,
                timeout=180.0,
                data={"url": url},
            )
        )
    return events


def test_apply_screen_health_gate_in_progress(snap_compare, make_app, offline_settings):
    plan = build_plan(load_catalog(), take_snapshot(offline_settings), ["1.2.15"])

    async def run_before(pilot):
        await settle(pilot)
        screen = ApplyScreen(apply_job(plan), start=False)
        await pilot.app.push_screen(screen)
        await pilot.pause()
        for event in gate_events(str(plan.files[0].path)):
            screen.record(event)
        screen.flush_log()  # log lines are written in batches; show them all now
        await pilot.pause()

    assert snap_compare(make_app(health_gate=True), run_before=run_before, terminal_size=SIZE)


def test_apply_screen_rolled_back(snap_compare, make_app, offline_settings):
    plan = build_plan(load_catalog(), take_snapshot(offline_settings), ["1.2.15"])

    async def run_before(pilot):
        await settle(pilot)
        screen = ApplyScreen(apply_job(plan), start=False)
        await pilot.app.push_screen(screen)
        await pilot.pause()
        label = str(plan.files[0].path)
        comp = "kube-apiserver"
        for event in [
            *gate_events(label)[:-1],
            Event(Kind.STEP, label, comp, Step.HEALTH, False, "not healthy within 180 s"),
            Event(Kind.ROLLBACK, label, comp, Step.ROLLBACK, None, "rolling back: not healthy"),
            Event(Kind.STEP, label, comp, Step.ROLLBACK, True, "original restored"),
            Event(
                Kind.OUTCOME,
                label,
                comp,
                outcome=Outcome.ROLLED_BACK,
                message="rolled back: not healthy within 180 s",
            ),
        ]:
            screen.record(event)
        from cis_tui.engine.transaction import ApplyResult, FileResult

        screen.finish(
            ApplyResult((FileResult(plan.files[0], Outcome.ROLLED_BACK, "rolled back", None),))
        )
        await pilot.pause()

    assert snap_compare(make_app(health_gate=True), run_before=run_before, terminal_size=SIZE)


@pytest.fixture
def with_backups(offline_settings):
    import asyncio

    asyncio.run(apply_offline(offline_settings, "1.4.1"))
    asyncio.run(apply_offline(offline_settings, "1.2.15", "1.2.17"))
    pin_backups(offline_settings.state_dir)


def test_backups_screen_with_diff(snap_compare, make_app, with_backups):
    async def run_before(pilot):
        await settle(pilot)
        await pilot.press("b")
        await wait_until(pilot, lambda: type(pilot.app.screen).__name__ == "BackupsScreen")
        await pilot.pause()
        await pilot.press("down", "d")
        await pilot.pause()

    assert snap_compare(make_app(), run_before=run_before, terminal_size=SIZE)


def test_help_screen(snap_compare, make_app):
    async def run_before(pilot):
        await settle(pilot)
        await pilot.press("f1")
        await pilot.pause()

    assert snap_compare(make_app(), run_before=run_before, terminal_size=SIZE)


def test_recovery_dialog(snap_compare, make_app, offline_settings, tree):
    state = offline_settings.state_dir
    state.mkdir(parents=True)
    path = tree / "etc/kubernetes/manifests/kube-apiserver.yaml"
    (state / "journal.jsonl").write_text(
        json.dumps(
            {
                "txid": "1767268800-0000abcd",
                "step": "intent",
                "time": 1767268800.0,
                "backup_id": "20260101-120000-kube-apiserver-000000",
                "path": str(path),
                "component": "kube-apiserver",
                "pid": 4242,
                "checks": ["1.2.15"],
            }
        )
        + "\n"
        + json.dumps({"txid": "1767268800-0000abcd", "step": "written", "time": 1767268801.0})
        + "\n"
    )

    async def run_before(pilot):
        await settle(pilot)

    assert snap_compare(make_app(), run_before=run_before, terminal_size=SIZE)
