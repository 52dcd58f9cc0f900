"""TUI figures for bench/run.py, each from fresh processes started the same way.

- start: wall time from process start to an interactive, populated table, for cis-tui's checks
  screen on a sandbox node and for a bare Textual app showing one 92-row table;
- key latency: key press to processed-and-repainted while a health gate runs;
- peak RSS of a session (scan, plan, apply through the gate, backups).

Prints one JSON line.
"""

from __future__ import annotations

import argparse
import asyncio
import compileall
import json
import os
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
SIZE = (120, 36)


def child_bare(start: float) -> float:
    from textual.app import App, ComposeResult
    from textual.widgets import DataTable

    class Bare(App[None]):
        def compose(self) -> ComposeResult:
            yield DataTable()

        def on_mount(self) -> None:
            table = self.query_one(DataTable)
            table.add_columns("status", "id", "component", "title")
            for n in range(92):
                table.add_row("PASS", f"1.{n}", "kube-apiserver", f"check number {n}")

    async def run() -> float:
        app = Bare()
        async with app.run_test(size=SIZE) as pilot:
            table = app.query_one(DataTable)
            while table.row_count == 0:
                await pilot.pause(0.001)
            await pilot.pause()
            return time.time() - start

    return asyncio.run(run())


def child_cis(start: float, config: str) -> float:
    from cis_tui.benchmarks.catalog import load_catalog
    from cis_tui.layout import load_settings
    from cis_tui.tui.app import CisTuiApp, scan_node
    from cis_tui.tui.widgets.check_table import CheckTable

    settings = load_settings(config=Path(config))
    catalog = load_catalog(settings.benchmark)
    # as run_tui starts it: the first scan, then the app
    app = CisTuiApp(settings, catalog, first_scan=scan_node(settings, catalog))

    async def run() -> float:
        async with app.run_test(size=SIZE) as pilot:
            table = app.screen.query_one(CheckTable)
            while table.row_count == 0:
                await pilot.pause(0.001)
            await pilot.pause()
            return time.time() - start

    return asyncio.run(run())


def child_session(config: str) -> dict[str, float]:
    """Key latency during a gate, and the peak RSS of the whole session."""
    from cis_tui.audit.node import take_snapshot
    from cis_tui.benchmarks.catalog import load_catalog
    from cis_tui.engine.events import Kind
    from cis_tui.layout import load_settings
    from cis_tui.remediate.plan import build_plan
    from cis_tui.tui.app import CisTuiApp
    from cis_tui.tui.messages import EngineDone, EngineEvent
    from cis_tui.tui.widgets.check_table import CheckTable

    settings = load_settings(config=Path(config))
    catalog = load_catalog(settings.benchmark)
    state = {"polling": False, "done": False}

    def hook(message: object) -> None:
        if isinstance(message, EngineEvent) and message.event.kind is Kind.POLL:
            state["polling"] = True
        if isinstance(message, EngineDone):
            state["done"] = True

    app = CisTuiApp(settings, catalog)

    #: the condition a key press waits for, and when the first frame showing it was painted
    watch: dict[str, object] = {"reached": None, "painted": None}

    async def key_to_repaint(pilot, key: str, reached) -> float:
        """Send a key as the terminal would; time until the first frame painted that shows its
        effect: `reached(painted_screen)` holds (an earlier frame does not show it, a later one
        may be another update's)."""
        from textual import events

        driver = app._driver
        assert driver is not None
        watch["painted"] = None
        watch["reached"] = reached
        began = time.perf_counter()
        driver.send_message(events.Key(key, None))
        deadline = time.perf_counter() + 5
        while watch["painted"] is None and time.perf_counter() < deadline:
            await asyncio.sleep(0.0005)
        watch["reached"] = None
        painted = watch["painted"]
        if painted is None:
            raise RuntimeError(f"{key}: no repaint within 5 s")
        return (painted - began) * 1000  # type: ignore[operator]

    help_latencies: list[float] = []

    async def run() -> list[float]:
        from cis_tui.tui.screens.help import HelpScreen

        latencies = []
        async with app.run_test(size=SIZE, message_hook=hook) as pilot:
            real_display = app._display

            def display(screen, renderable) -> None:
                # The compositor hands the terminal update over here (headless or not).
                reached = watch["reached"]
                real_display(screen, renderable)
                if (
                    renderable is not None
                    and reached is not None
                    and watch["painted"] is None
                    and reached(screen)  # type: ignore[operator]
                ):
                    watch["painted"] = time.perf_counter()

            app._display = display  # type: ignore[method-assign]
            table = app.screen.query_one(CheckTable)
            while table.row_count == 0:
                await pilot.pause(0.01)
            plan = build_plan(catalog, take_snapshot(settings), ["1.4.1", "1.3.2"], {})
            app.start_apply(plan)
            while not state["polling"]:
                await pilot.pause(0.01)
            while not state["done"] and len(latencies) < 200:
                before = app.focused
                latencies.append(
                    await key_to_repaint(
                        pilot, "tab", lambda _screen, before=before: app.focused is not before
                    )
                )
                help_latencies.append(
                    await key_to_repaint(pilot, "f1", lambda screen: isinstance(screen, HelpScreen))
                )
                await key_to_repaint(
                    pilot, "escape", lambda screen: not isinstance(screen, HelpScreen)
                )
                await asyncio.sleep(0.05)  # an admin's key rate, not a flood
            while not state["done"]:
                await pilot.pause(0.05)
            await pilot.press("escape")
            await pilot.press("b")
            await pilot.pause(0.2)
        return latencies

    latencies = asyncio.run(run())

    def p95(values: list[float]) -> float:
        return statistics.quantiles(values, n=20)[18] if len(values) > 1 else values[0]

    return {
        "tui_key_latency_ms_p95": p95(latencies),
        "help_key_latency_ms_p95": p95(help_latencies),
        "keys": len(latencies),
        "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
    }


def spawn(*args: str) -> str:
    env = {**os.environ, "CIS_TUI_PROBE_START": repr(time.time())}
    done = subprocess.run(
        [sys.executable, __file__, *args], capture_output=True, text=True, env=env, timeout=300
    )
    if done.returncode != 0:
        raise RuntimeError(done.stderr[-3000:])
    return done.stdout.strip().splitlines()[-1]


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--child", choices=("bare", "cis", "session"))
    parser.add_argument("--config")
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    if args.child:
        start = float(os.environ["CIS_TUI_PROBE_START"])
        if args.child == "bare":
            print(child_bare(start))
        elif args.child == "cis":
            print(child_cis(start, args.config))
        else:
            print(json.dumps(child_session(args.config)))
        return 0

    sys.path.insert(0, str(REPO))
    from bench.run import sandbox

    # Bytecode for cis-tui as `pip install` compiles it (and as Textual already has): an
    # editable checkout run with PYTHONDONTWRITEBYTECODE would otherwise compile every module
    # on every start, which no installed copy does.
    compileall.compile_dir(REPO / "cis_tui", quiet=1)

    # the default 5 s stability window: a gate long enough for many key presses
    with sandbox({}, 5.0) as run:
        config = str(run.config)
        spawn("--child", "cis", "--config", config)  # warm the caches a real node has
        bare, cis = [], []
        for _ in range(args.rounds):  # interleaved, so load affects both alike
            bare.append(float(spawn("--child", "bare")) * 1000)
            cis.append(float(spawn("--child", "cis", "--config", config)) * 1000)
        session = json.loads(spawn("--child", "session", "--config", config))
    print(
        json.dumps(
            {
                "tui_start_ms": statistics.median(cis),
                "bare_start_ms": statistics.median(bare),
                "tui_start_ratio": statistics.median(cis) / statistics.median(bare),
                **session,
            }
        )
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
