"""The apply screen keeps up with a job at 80x24: the file in flight stays in view, the log
follows its tail unless the admin scrolled up, and cancel and rollback say what they do."""

from __future__ import annotations

import asyncio
import errno
import json
import os
import signal
from pathlib import Path

import pytest
from textual.content import Content
from textual.widgets import ProgressBar

from cis_tui.audit.evaluate import Status
from cis_tui.engine.events import Event, Kind, Outcome, Step
from cis_tui.engine.restore import Recovered
from cis_tui.engine.transaction import ApplyResult, FileResult
from cis_tui.remediate.plan import FilePlan
from cis_tui.tui.engine_runner import EngineJob
from cis_tui.tui.exit_summary import exit_summary, print_to_terminal
from cis_tui.tui.messages import EngineEvent
from cis_tui.tui.screens.apply import ApplyScreen
from cis_tui.tui.widgets.file_progress import FileProgress
from cis_tui.tui.widgets.follow_log import FollowLog
from tests.tui.conftest import screen_text, settle, wait_until

SIZE = (80, 24)
MANIFESTS = Path("/etc/kubernetes/manifests")
#: A six-file apply in the engine's order: attributes, etcd, the three control-plane
#: components, the kubelet.
SIX_FILES = (
    FilePlan("attributes", "node", None, None, None, ("1.1.1",)),
    FilePlan("manifest", "etcd", MANIFESTS / "etcd.yaml", "a", "b", ("2.2",)),
    FilePlan(
        "manifest", "kube-apiserver", MANIFESTS / "kube-apiserver.yaml", "a", "b", ("1.2.15",)
    ),
    FilePlan(
        "manifest",
        "kube-controller-manager",
        MANIFESTS / "kube-controller-manager.yaml",
        "a",
        "b",
        ("1.3.2",),
    ),
    FilePlan("manifest", "kube-scheduler", MANIFESTS / "kube-scheduler.yaml", "a", "b", ("1.4.1",)),
    FilePlan(
        "kubelet-config", "kubelet", Path("/var/lib/kubelet/config.yaml"), "a", "b", ("4.2.1",)
    ),
)
SCHEDULER = SIX_FILES[4]


def _label(file: FilePlan) -> str:
    return str(file.path) if file.path else "file modes and owners"


def steps_until_the_gate(file: FilePlan) -> list[Event]:
    label, comp = _label(file), file.component
    events = []
    for step in (Step.SNAPSHOT, Step.BACKUP, Step.JOURNAL, Step.WRITE):
        events.append(Event(Kind.STEP, label, comp, step, None))
        events.append(Event(Kind.STEP, label, comp, step, True))
    if comp == "kubelet":
        events.append(Event(Kind.STEP, label, comp, Step.RESTART, True))
    if comp != "node":
        events.append(Event(Kind.STEP, label, comp, Step.RESTART_EVIDENCE, True, "new PID"))
        events.append(Event(Kind.STEP, label, comp, Step.HEALTH, None, "https://127.0.0.1/livez"))
    return events


def poll(file: FilePlan, elapsed: float, ok: bool = True) -> Event:
    url = "https://127.0.0.1:6443/livez"
    return Event(
        Kind.POLL,
        _label(file),
        file.component,
        Step.HEALTH,
        ok,
        f"{url} {'200' if ok else 'connection refused'} (TLS verified, a long answer to widen)",
        latency_ms=2.0,
        elapsed=elapsed,
        timeout=120.0,
        stable=elapsed / 2,
        window=20.0,
        data={"url": url},
    )


def the_end(file: FilePlan) -> list[Event]:
    label, comp = _label(file), file.component
    return [
        Event(Kind.STEP, label, comp, Step.HEALTH, True, "stable"),
        Event(Kind.STEP, label, comp, Step.AUDIT, True),
        Event(Kind.STEP, label, comp, Step.COMMIT, True),
        Event(Kind.OUTCOME, label, comp, outcome=Outcome.COMMITTED, message="fixed 1.x"),
    ]


def in_view(screen: ApplyScreen, section: FileProgress) -> bool:
    """The whole section lies inside the visible part of the file list."""
    files = screen.query_one("#apply-files")
    region = section.virtual_region
    top = files.scroll_offset.y
    return top <= region.y and region.bottom <= top + files.scrollable_content_region.height


def at_tail(log: FollowLog) -> bool:
    return log.scroll_offset.y == log.max_scroll_y


async def feed(pilot, screen: ApplyScreen, events: list[Event]) -> None:
    """Events as the engine posts them to the App, then the log's batch, then a frame."""
    for event in events:
        pilot.app.post_message(EngineEvent(event))
    await pilot.pause()
    screen.flush_log()
    await pilot.pause()


async def open_apply(pilot, files: tuple[FilePlan, ...] = SIX_FILES) -> ApplyScreen:
    await settle(pilot)
    screen = ApplyScreen(EngineJob("apply", f"Applying {len(files)} file changes", _never, files))
    screen.autostart = False  # the test plays the engine
    await pilot.app.push_screen(screen)
    pilot.app.apply_screen = screen
    await pilot.pause()
    return screen


async def _never(engine):  # pragma: no cover - never started
    raise AssertionError


@pytest.mark.parametrize(
    "planned",
    [
        pytest.param(SIX_FILES, id="six files: the list scrolls"),
        # three sections grow (gate bars, outcomes) until the list reaches its maximum height:
        # the log shrinks under lines it already holds, which stopped Log.auto_scroll for good
        pytest.param(SIX_FILES[3:], id="three files: the log shrinks"),
    ],
)
async def test_the_file_in_flight_stays_in_view_and_the_log_follows(make_app, planned):
    app = make_app(health_gate=True)
    async with app.run_test(size=SIZE) as pilot:
        screen = await open_apply(pilot, planned)
        log = screen.log_view
        files = screen.query_one("#apply-files")
        await feed(pilot, screen, [Event(Kind.STEP, step=Step.LOCK, ok=True, message="4242")])
        for file in planned:
            section = screen.sections[_label(file)]
            await feed(pilot, screen, steps_until_the_gate(file))
            assert screen.active is section
            for elapsed in (0.5, 1.5, 2.5):
                await feed(pilot, screen, [poll(file, elapsed, ok=elapsed > 1)])
                assert in_view(screen, section), (file.component, files.scroll_offset)
                assert at_tail(log), "the log stopped following its tail"
                text = screen_text(app)
                assert f"{elapsed:5.1f} s / 120 s" in text  # the gate line of the file in flight
                # the newest line, wrapped at 80 columns, just above the footer
                rows = text.splitlines()[-4:-2]
                newest = " ".join(row.strip() for row in rows)
                assert "probe https://127.0.0.1:6443/livez" in newest, rows
                assert newest.endswith(" s / 20 s") or newest.endswith(" ms"), rows
            await feed(pilot, screen, the_end(file))
            assert in_view(screen, section)
            assert at_tail(log)
            last = f"{file.component}: COMMITTED: fixed 1.x"
            assert last in screen_text(app), f"the log's newest line is not on screen: {last}"
        assert files.max_scroll_y > 0, "the sections overflow 80x24: the test proves the scrolling"


async def test_scrolled_up_the_log_stays_put_then_end_or_g_follows_again(make_app):
    app = make_app(health_gate=True)
    async with app.run_test(size=SIZE) as pilot:
        screen = await open_apply(pilot)
        log = screen.log_view
        for file in SIX_FILES[:3]:
            await feed(pilot, screen, steps_until_the_gate(file) + the_end(file))
        assert at_tail(log) and log.max_scroll_y > 3
        assert "Follow log" not in screen_text(app)  # nothing to resume while following

        assert app.focused is log
        await pilot.press("up", "up")
        assert not log.following
        where = log.scroll_offset.y
        await feed(pilot, screen, steps_until_the_gate(SIX_FILES[3]))
        assert log.scroll_offset.y == where, "a new line moved a log the admin scrolled up"
        text = screen_text(app)
        assert "new lines below · End or G follows the log" in text
        assert "G Follow log" in text  # the footer offers it too
        assert "kube-controller-manager: health …" not in text

        await pilot.press("G")
        assert log.following and at_tail(log)
        await pilot.pause()
        text = screen_text(app)
        assert "new lines below" not in text
        assert "kube-controller-manager: health …" in text

        await pilot.press("pageup")
        assert not log.following
        await pilot.press("end")  # End, with the log focused, is the log's own key: follows too
        await feed(pilot, screen, [poll(SIX_FILES[3], 1.0)])
        assert log.following and at_tail(log)


async def test_the_active_section_returns_to_view_after_the_admin_scrolls_the_files(make_app):
    app = make_app(health_gate=True)
    async with app.run_test(size=SIZE) as pilot:
        screen = await open_apply(pilot)
        for file in SIX_FILES[:5]:
            await feed(pilot, screen, steps_until_the_gate(file) + the_end(file))
        kubelet = SIX_FILES[5]
        await feed(pilot, screen, steps_until_the_gate(kubelet))
        files = screen.query_one("#apply-files")
        files.scroll_home(animate=False)
        await pilot.pause()
        section = screen.sections[_label(kubelet)]
        assert not in_view(screen, section)
        await feed(pilot, screen, [poll(kubelet, 0.5)])  # the gate's bar appears
        assert in_view(screen, section)


def waiting_job(
    release: asyncio.Event,
    *,
    kind: str = "apply",
    file: FilePlan = SCHEDULER,
    seen: dict[str, bool] | None = None,
) -> EngineJob:
    """A job in its health gate until cancelled; then a rollback with its own gate (whose
    health ✓ is the old configuration's), held until `release`. Like the engine, the rollback
    clears the cancel, and a cancel during it would cut its gate short (`seen["recancelled"]`)."""
    label, comp = _label(file), file.component
    seen = {} if seen is None else seen

    async def run(engine) -> object:
        for event in steps_until_the_gate(file):
            engine.emit(event)
        engine.emit(poll(file, 0.5))
        await engine.cancel.wait()
        why = "cancelled by the admin"
        engine.emit(Event(Kind.ROLLBACK, label, comp, Step.ROLLBACK, None, f"rolling back: {why}"))
        engine.cancel.clear()  # a rollback runs to its end
        engine.emit(Event(Kind.STEP, label, comp, Step.HEALTH, None, "the old configuration"))
        engine.emit(poll(file, 0.7))
        engine.emit(Event(Kind.STEP, label, comp, Step.HEALTH, True, "stable"))
        await release.wait()
        seen["recancelled"] = engine.cancel.is_set()
        engine.emit(Event(Kind.STEP, label, comp, Step.ROLLBACK, True, "original restored"))
        engine.emit(
            Event(
                Kind.OUTCOME,
                label,
                comp,
                outcome=Outcome.ROLLED_BACK,
                message=f"rolled back: {why}",
            )
        )
        backup = "20260101-120000-kube-scheduler-000000"
        return ApplyResult(
            (FileResult(file, Outcome.ROLLED_BACK, f"rolled back: {why}", backup),), True
        )

    return EngineJob(kind, "Applying 1 file change for 1.4.1", run, (file,))


def notices(app) -> list[str]:
    return [str(n.message) for n in app._notifications]


async def test_cancel_hint_goes_during_the_rollback_and_the_health_step_is_not_done(make_app):
    app = make_app(health_gate=True)
    release = asyncio.Event()
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        screen = ApplyScreen(waiting_job(release))
        app._start(screen, ("1.4.1",))
        await wait_until(pilot, lambda: _label(SCHEDULER) in screen.sections, what="the screen")
        section = screen.sections[_label(SCHEDULER)]
        await wait_until(pilot, lambda: section.gate_event is not None, what="the gate")
        await pilot.pause()
        text = screen_text(app)
        assert "x cancels (rolls back)" in text and "Cancel: roll back" in text

        await pilot.press("ctrl+c")  # Textual's "press ctrl+q to quit" would be untrue now
        assert notices(app)[-1] == (
            "A change is in flight: x cancels it (it rolls back); quit once it has finished."
        )
        assert not any("ctrl+q" in n for n in notices(app))

        await pilot.press("x")
        await wait_until(pilot, lambda: section.rolling_back, what="the rollback")
        await pilot.pause()
        text = screen_text(app)
        assert "x cancels" not in text and "Cancel: roll back" not in text
        assert "rolling back" in text
        assert section.states[Step.HEALTH] == "cancelled"  # the rollback's own gate passed
        assert "✗ health (cancelled)" in text and "✓ health" not in text
        assert "rollback:" in text  # the gate line now follows the old configuration

        for key in ("ctrl+c", "ctrl+q", "x"):
            await pilot.press(key)
        assert notices(app)[-1] == "Rolling back: quit once it has finished."
        assert app.is_running and app.runner.busy

        release.set()
        await wait_until(pilot, lambda: not app.runner.busy, what="the end of the job")
        await settle(pilot)
        text = screen_text(app)
        assert section.states[Step.HEALTH] == "cancelled"
        assert section.states[Step.ROLLBACK] == "ok"
        assert "rolled back: cancelled by the admin" in text
        assert "rolled-back: rolled back" not in text and "rolled back: rolled back" not in text
        assert "ROLLED BACK: cancelled by the admin" in text  # the log says it once too
        assert "cancelled and rolled back" in text


async def test_a_signal_during_the_rollback_waits_for_it_without_cancelling_again(make_app):
    """x, then SIGTERM (or SIGHUP and the lost terminal, both) while the rollback's gate runs:
    the rollback is not cancelled a second time; the app exits once it has finished."""
    app = make_app(health_gate=True, handle_signals=True)
    release = asyncio.Event()
    seen: dict[str, bool] = {}
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        screen = ApplyScreen(waiting_job(release, seen=seen))
        app._start(screen, ("1.4.1",))
        await wait_until(pilot, lambda: _label(SCHEDULER) in screen.sections, what="the screen")
        section = screen.sections[_label(SCHEDULER)]
        await wait_until(pilot, lambda: section.gate_event is not None, what="the gate")
        await pilot.press("x")
        await wait_until(pilot, lambda: section.rolling_back, what="the rollback")
        os.kill(os.getpid(), signal.SIGTERM)
        app.on_terminal_lost()  # and the dropped session's own report
        await pilot.pause()
        assert app.is_running, "the app waits for the rollback"
        release.set()
        await wait_until(pilot, lambda: not app.is_running, what="the exit")
    assert seen == {"recancelled": False}
    assert app.exit_summary is not None
    # whichever came first names the stop: SIGTERM or the lost terminal
    assert ": kube-scheduler.yaml rolled back (backup " in app.exit_summary


@pytest.mark.parametrize("size", [SIZE, (120, 40)], ids=["80x24", "120x40"])
async def test_the_gate_figures_are_whole_at_80_columns(make_app, size):
    """The gate line keeps elapsed-of-timeout and the stability window whole at 80 columns,
    even with the rollback's prefix (the bar shrinks on a narrow screen, not the figures)."""
    app = make_app(health_gate=True)
    async with app.run_test(size=size) as pilot:
        screen = await open_apply(pilot, (SCHEDULER,))
        section = screen.sections[_label(SCHEDULER)]
        await feed(pilot, screen, [*steps_until_the_gate(SCHEDULER), poll(SCHEDULER, 104.6)])
        assert "104.6 s / 120 s  stable 52.3 s / 20 s" in screen_text(app)
        section.roll_back(cancelled=True)
        await feed(pilot, screen, [poll(SCHEDULER, 100.8)])
        assert "rollback: 100.8 s / 120 s  stable 50.4 s / 20 s" in screen_text(app)
        bar = section.query_one(ProgressBar).region.width
        assert bar == (14 if size == SIZE else 34)


async def test_a_recovery_offers_no_cancel(make_app):
    app = make_app(health_gate=True)
    release = asyncio.Event()

    async def recover(engine) -> object:
        await release.wait()
        return []

    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        app._start(ApplyScreen(EngineJob("recover", "Recovering 1 transaction", recover)), ())
        await wait_until(pilot, lambda: app.runner.busy, what="the recovery")
        await pilot.pause()
        text = screen_text(app)
        assert "recovering" in text
        assert "x cancels" not in text and "Cancel: roll back" not in text
        await pilot.press("ctrl+q")
        assert notices(app)[-1] == "A recovery is in flight: quit once it has finished."
        release.set()
        await wait_until(pilot, lambda: not app.runner.busy, what="the recovery's end")


async def test_sigterm_mid_gate_leaves_a_summary_for_the_terminal_and_the_log(make_app, tree):
    app = make_app(health_gate=True, handle_signals=True)
    release = asyncio.Event()
    release.set()  # the rollback runs through
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        screen = ApplyScreen(waiting_job(release))
        app._start(screen, ("1.4.1",))
        await wait_until(pilot, lambda: _label(SCHEDULER) in screen.sections, what="the screen")
        await wait_until(pilot, lambda: screen.sections[_label(SCHEDULER)].gate_event is not None)
        os.kill(os.getpid(), signal.SIGTERM)
        await wait_until(pilot, lambda: not app.is_running, what="the exit")
    assert screen.cancel_requested, "the signal cancelled the change: it rolled back"
    summary = (
        "cis-tui: stopped by SIGTERM: kube-scheduler.yaml rolled back (backup "
        "20260101-120000-kube-scheduler-000000 in /var/lib/cis-tui/backups); nothing else changed"
    )
    assert app.exit_summary == summary
    assert app.return_value == 1
    logged = [json.loads(line) for line in app.runner.log.path.read_text().splitlines()]
    assert logged[-1] == {**logged[-1], "kind": "note", "message": summary}


async def test_sigterm_when_idle_says_nothing_was_in_flight(make_app):
    app = make_app(handle_signals=True)
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        os.kill(os.getpid(), signal.SIGTERM)
        await wait_until(pilot, lambda: not app.is_running, what="the exit")
    assert (
        app.exit_summary == "cis-tui: stopped by SIGTERM: no change was in flight; nothing changed"
    )


def test_exit_summary_of_a_multi_file_apply():
    files = (
        FileResult(SIX_FILES[2], Outcome.COMMITTED, "fixed", "b-api"),
        FileResult(SIX_FILES[3], Outcome.ROLLED_BACK, "rolled back: cancelled", "b-cm"),
        FileResult(SIX_FILES[4], Outcome.SKIPPED, "cancelled"),
    )
    assert exit_summary("SIGHUP", ApplyResult(files, True), "/var/lib/cis-tui/backups") == (
        "cis-tui: stopped by SIGHUP: kube-apiserver.yaml changed (backup b-api), "
        "kube-controller-manager.yaml rolled back (backup b-cm); backups in "
        "/var/lib/cis-tui/backups; nothing else changed"
    )
    skipped = (FileResult(SCHEDULER, Outcome.SKIPPED, "cancelled before any change"),)
    assert exit_summary("SIGTERM", ApplyResult(skipped, True), "D").endswith(": nothing changed")
    critical = (FileResult(SCHEDULER, Outcome.CRITICAL, "CRITICAL: down. Restore by hand: cmd"),)
    assert exit_summary("SIGTERM", ApplyResult(critical), "D") == (
        "cis-tui: stopped by SIGTERM: kube-scheduler.yaml CRITICAL: down. Restore by hand: cmd"
    )
    recovered = [Recovered("t", "b", str(SCHEDULER.path), "restored the original bytes", True)]
    assert exit_summary("SIGHUP", recovered, "D") == (
        "cis-tui: stopped by SIGHUP: kube-scheduler.yaml recovered: restored the original "
        "bytes; backups in D"
    )
    assert exit_summary("SIGTERM", "the node is locked: by PID 7", "D") == (
        "cis-tui: stopped by SIGTERM: the node is locked: by PID 7; nothing changed"
    )


class _DeadTerminal:
    """stderr after a dropped SSH session: every write fails with EIO."""

    def write(self, text: str) -> int:
        raise OSError(errno.EIO, "Input/output error")

    def flush(self) -> None:
        raise OSError(errno.EIO, "Input/output error")


def test_the_summary_is_not_an_error_on_a_dead_terminal(monkeypatch):
    monkeypatch.setattr("sys.stderr", _DeadTerminal())
    print_to_terminal("cis-tui: stopped by SIGHUP (the terminal was lost): nothing changed")


def test_run_tui_prints_the_summary_after_the_app_has_ended(monkeypatch, capsys, offline_settings):
    from cis_tui.benchmarks.catalog import load_catalog
    from cis_tui.tui import app as app_module

    def run(self, **kwargs) -> int:
        self.exit_summary = "cis-tui: stopped by SIGTERM: no change was in flight; nothing changed"
        return 1

    monkeypatch.setattr(app_module.CisTuiApp, "run", run)
    assert app_module.run_tui(offline_settings, load_catalog()) == 1
    assert capsys.readouterr().err == (
        "cis-tui: stopped by SIGTERM: no change was in flight; nothing changed\n"
    )


async def test_a_live_multi_file_apply_keeps_the_gate_and_the_log_in_view(sandbox_factory):
    """On a sandbox node with the real health gate: each file's section is on screen while
    its gate runs, and so is the log's newest line."""
    from cis_tui.audit.node import take_snapshot
    from cis_tui.benchmarks.catalog import load_catalog
    from cis_tui.layout import load_settings
    from cis_tui.remediate.plan import build_plan
    from cis_tui.tui.app import CisTuiApp
    from tests.tui.test_sandbox_gate import FAST_HEALTH

    run = sandbox_factory()
    with run.config.open("a") as config:
        config.write(FAST_HEALTH)
    settings = load_settings(config=run.config)
    catalog = load_catalog()
    app = CisTuiApp(settings, catalog, node_label="sandbox", display_root=run.dir)
    plan = build_plan(catalog, take_snapshot(settings), ["4.1.1", "1.2.15", "1.3.2", "1.4.1"])
    assert len(plan.files) == 4
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        app.start_apply(plan)
        await wait_until(pilot, lambda: isinstance(app.screen, ApplyScreen), what="the apply")
        screen = app.screen
        await wait_until(pilot, lambda: len(screen.sections) == 4, what="the file sections")
        log = screen.log_view
        for file in plan.files[1:]:  # the first, the file modes and owners, has no gate
            section = screen.sections[_label(file)]
            await wait_until(
                pilot,
                lambda section=section: (
                    section.states[Step.HEALTH] == "running" and section.gate_event is not None
                ),
                timeout=60,
                what=f"the gate of {file.component}",
            )
            await pilot.pause()
            screen.flush_log()
            await pilot.pause()
            assert in_view(screen, section), file.component
            assert at_tail(log)
            text = screen_text(app)
            assert str(section.shown) in text
            assert log.lines[-1][:70].rstrip() in text, "the log's newest line is off screen"
        await wait_until(pilot, lambda: not app.runner.busy, timeout=120, what="the apply")
        await settle(pilot)
        assert {s.outcome for s in screen.sections.values()} == {"committed"}
        assert screen.query_one("#apply-files").max_scroll_y > 0, "four files overflow 80x24"


async def test_long_log_lines_wrap_to_the_width_and_rewrap_when_it_changes(make_app):
    """At 80 columns a probe's answer is read whole (continuations indented), not cut at the
    edge; a wider terminal takes it back on one row."""
    line = (
        "kube-scheduler: probe https://127.0.0.1:10259/livez 500 (failing, TLS verified) "
        "in 3 ms: [-]poststarthook/start-kube-scheduler-informers failed: reason withheld"
    )
    app = make_app(health_gate=True)
    async with app.run_test(size=SIZE) as pilot:
        screen = await open_apply(pilot, (SCHEDULER,))
        screen.log_view.write_batch([line])
        await pilot.pause()
        rows = [r.strip() for r in screen_text(app).splitlines()]
        start = next(i for i, r in enumerate(rows) if r.startswith("kube-scheduler: probe https"))
        assert " ".join(rows[start : start + 3]).endswith("failed: reason withheld")
        assert " ".join(rows[start : start + 3]).startswith(line[:60])
        await pilot.resize_terminal(200, 40)
        await pilot.pause()
        assert line in screen_text(app)


async def test_the_stable_event_s_figures_are_said_once(make_app):
    app = make_app(health_gate=True)
    async with app.run_test(size=(120, 40)) as pilot:
        screen = await open_apply(pilot, (SCHEDULER,))
        stable = Event(
            Kind.STABLE,
            _label(SCHEDULER),
            SCHEDULER.component,
            Step.HEALTH,
            True,
            "stable 20.0 s / 20 s, 54 healthy answers in a row",
            elapsed=20.6,
            timeout=120.0,
            stable=20.0,
            window=20.0,
        )
        await feed(pilot, screen, [*steps_until_the_gate(SCHEDULER), stable])
        text = screen_text(app)
        assert "20.6 s / 120 s  stable 20.0 s / 20 s, 54 healthy answers in a row" in text
        assert text.count("stable 20.0 s / 20 s") == 2  # the gate line and the log's, once each


async def test_after_a_large_apply_the_statuses_are_counted_not_listed(make_app):
    """Up to NOW_EACH checks each gets its status; more are counted by status, naming only
    those that do not pass, so the log keeps its rows at 80x24."""
    app = make_app(health_gate=True)
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        results = app.results
        passing = [r.id for r in results if r.status is Status.PASS][:12]
        failing = [r.id for r in results if r.status is Status.FAIL][:2]
        assert len(passing) == 12 and len(failing) == 2
        screen = await open_apply(pilot, (SCHEDULER,))
        screen.final = Content("committed: 14 committed.")
        screen.show_statuses(results, passing + failing)
        await pilot.pause()
        text = screen_text(app)
        assert f"now: 12 PASS  2 FAIL ({', '.join(failing)})" in text
        screen.final = Content("committed: 2 committed.")
        screen.show_statuses(results, passing[:2])
        await pilot.pause()
        assert f"now: {passing[0]} PASS  {passing[1]} PASS" in screen_text(app)
