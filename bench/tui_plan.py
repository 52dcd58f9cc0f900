"""tui_plan_ms: the wizard plans 40 checks on the insecure demo node, from the key press to the
first frame that paints the plan (every file laid out in the pager), target <= 300 ms.

Also measured: how much of that is planning (build_plan in the screen's worker), and End (key
to the frame that shows the last file and the not-planned list).

    python bench/tui_plan.py [--rounds N]     # prints one JSON line

For bench/run.py: `figures.update(bench_tui_plan(rounds))`; it starts its own sandbox node and
measures in a fresh process, as tui_probe.py does.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
SIZE = (120, 36)
CHECKS = 40
TARGET_MS = 300.0


def measure(config: Path, rounds: int, checks: int = CHECKS) -> dict[str, float]:
    """In this process: open the wizard on the node, select `checks` fixable checks and time
    `p` (plan) and then `End` in the plan screen, `rounds` times."""
    from textual import events
    from textual.message import Message
    from textual.screen import Screen
    from textual.worker import Worker, WorkerState

    from cis_tui.benchmarks.catalog import load_catalog
    from cis_tui.layout import load_settings
    from cis_tui.remediate.edits import _parse_pod
    from cis_tui.tui.app import CisTuiApp, scan_node
    from cis_tui.tui.filters import why_not_selectable
    from cis_tui.tui.screens.checks import ChecksScreen
    from cis_tui.tui.screens.plan import PlanScreen
    from cis_tui.tui.widgets.diff_pager import RowKind

    settings = load_settings(config=config)
    catalog = load_catalog(settings.benchmark)
    first = scan_node(settings, catalog)
    ids = [r.id for r in first.results if why_not_selectable(r) is None][:checks]
    if len(ids) < checks:
        raise RuntimeError(f"only {len(ids)} fixable checks on this node")
    app = CisTuiApp(settings, catalog, first_scan=first, display_root=config.parent)
    Reached = Callable[[Screen[object]], bool]
    watch: dict[str, object] = {"reached": None, "painted": None, "planned": None}

    def hook(message: Message) -> None:
        if (
            isinstance(message, Worker.StateChanged)
            and message.state is WorkerState.SUCCESS
            and message.worker.group == "plan"
        ):
            watch["planned"] = time.perf_counter()

    def plan_shown(screen: Screen[object]) -> bool:
        return isinstance(screen, PlanScreen) and screen.plan is not None

    def end_shown(screen: Screen[object]) -> bool:
        if not isinstance(screen, PlanScreen):
            return False
        return any(row.kind is RowKind.END for row in screen.pager.visible_rows())

    async def key_to_paint(key: str, reached: Reached) -> tuple[float, float]:
        """Send a key as the terminal would; the time to the first painted frame for which
        `reached` holds, and the time it was planned (0 if no plan was built)."""
        driver = app._driver
        assert driver is not None
        watch.update(painted=None, planned=None, reached=reached)
        began = time.perf_counter()
        driver.send_message(events.Key(key, key if len(key) == 1 else None))
        deadline = began + 30
        while watch["painted"] is None and time.perf_counter() < deadline:
            await asyncio.sleep(0.0005)
        watch["reached"] = None
        painted, planned = watch["painted"], watch["planned"]
        if painted is None:
            raise RuntimeError(f"{key}: no frame within 30 s")
        plan_ms = (planned - began) * 1000 if planned is not None else 0.0  # type: ignore[operator]
        return (painted - began) * 1000, plan_ms  # type: ignore[operator]

    async def run() -> dict[str, list[float]]:
        found: dict[str, list[float]] = {"plan": [], "build": [], "end": []}
        async with app.run_test(size=SIZE, message_hook=hook) as pilot:
            real_display = app._display

            def display(screen: Screen[object], renderable: object) -> None:
                # The compositor hands each frame to the terminal here (headless or not).
                real_display(screen, renderable)  # type: ignore[arg-type]
                reached: Reached | None = watch["reached"]  # type: ignore[assignment]
                waiting = renderable is not None and watch["painted"] is None
                if waiting and reached is not None and reached(screen):
                    watch["painted"] = time.perf_counter()

            app._display = display  # type: ignore[method-assign]
            await pilot.pause()
            for _ in range(rounds):
                checks_screen = app.screen
                assert isinstance(checks_screen, ChecksScreen)
                checks_screen.selected = set(ids)
                checks_screen.show_results(checks_screen.results, checks_screen.live)
                _parse_pod.cache_clear()  # every round plans from cold, like a first plan
                await pilot.pause()
                total, build = await key_to_paint("p", plan_shown)
                end, _ = await key_to_paint("end", end_shown)
                found["plan"].append(total)
                found["build"].append(build)
                found["end"].append(end)
                await pilot.press("escape")
                while not isinstance(app.screen, ChecksScreen):
                    await pilot.pause(0.01)
                await pilot.pause(0.1)
        return found

    found = asyncio.run(run())
    return {
        "tui_plan_ms": statistics.median(found["plan"]),
        "tui_plan_ms_max": max(found["plan"]),
        "tui_plan_build_ms": statistics.median(found["build"]),
        "tui_plan_paint_ms": statistics.median(
            p - b for p, b in zip(found["plan"], found["build"], strict=True)
        ),
        "tui_plan_end_ms": statistics.median(found["end"]),
        "checks": float(len(ids)),
    }


def bench_tui_plan(rounds: int = 7) -> dict[str, float]:
    """Start an insecure sandbox node and measure in a fresh process (as a user starts it)."""
    sys.path.insert(0, str(REPO))
    from cis_tui.sandbox import create_sandbox
    from cis_tui.sandbox.harness import SandboxRun

    directory = Path(tempfile.mkdtemp(prefix="cis-tui-bench-plan-"))
    try:
        create_sandbox(directory, "insecure", reuse_keys=True)
        run = SandboxRun.start(directory, wait=True, timeout=60)
        try:
            done = subprocess.run(
                [sys.executable, __file__, "--child", str(run.config), "--rounds", str(rounds)],
                capture_output=True,
                text=True,
                timeout=600,
                cwd=REPO,
            )
        finally:
            run.stop()
    finally:
        shutil.rmtree(directory, ignore_errors=True)
    if done.returncode != 0:
        raise RuntimeError(done.stderr[-3000:])
    return json.loads(done.stdout.strip().splitlines()[-1])


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--child", metavar="CONFIG", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        sys.path.insert(0, str(REPO))
        print(json.dumps(measure(Path(args.child), args.rounds)))
        return 0
    figures = bench_tui_plan(args.rounds)
    print(
        f"tui_plan_ms (p to the plan painted, {figures['checks']:.0f} checks): "
        f"{figures['tui_plan_ms']:.0f} ms (target <= {TARGET_MS:.0f}); of which planning "
        f"{figures['tui_plan_build_ms']:.0f} ms; End to the last file: "
        f"{figures['tui_plan_end_ms']:.1f} ms",
        file=sys.stderr,
    )
    print(json.dumps({k: round(v, 1) for k, v in figures.items()}))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
