"""Regenerate screenshots/*.svg: the wizard rendering itself on the demo sandbox.

    python scripts/screenshots.py [--out screenshots]

Fixed theme and size; paths are shown inside the sandbox (no temporary directory in the
pictures). Poll latencies, ports and backup ids come from the live sandbox and vary per run.
"""

from __future__ import annotations

import argparse
import asyncio
import time
from collections.abc import Callable
from pathlib import Path

from textual.pilot import Pilot

from cis_tui.audit.versions import read_node_versions, with_benchmark
from cis_tui.benchmarks.catalog import load_catalog
from cis_tui.demo import sandbox_node
from cis_tui.engine.events import Step
from cis_tui.layout import load_settings
from cis_tui.sandbox.settings import update_sandbox_settings
from cis_tui.tui.app import CisTuiApp
from cis_tui.tui.screens.apply import ApplyScreen
from cis_tui.tui.widgets.check_table import CheckTable

SIZE = (100, 30)
THEME = "textual-dark"


async def until(pilot: Pilot, condition: Callable[[], bool], timeout: float = 90.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise TimeoutError("the demo node did not get there in time")
        await pilot.pause(0.05)


async def settle(pilot: Pilot) -> None:
    for _ in range(3):
        await pilot.app.workers.wait_for_complete()
        await pilot.pause()


async def shoot(config: Path, out: Path) -> list[Path]:
    # A slow API server start makes the health gate visible: failing polls, then healthy.
    update_sandbox_settings(config.parent, ready_delay={"kube-apiserver": 4.0})
    # The benchmark the demo would choose for this node's Kubernetes version.
    settings, _ = with_benchmark(
        load_settings(config=config), read_node_versions(load_settings(config=config))
    )
    app = CisTuiApp(
        settings,
        load_catalog(settings.benchmark),
        node_label="demo sandbox (default), paths inside it",
        display_root=config.parent,
    )
    saved: list[Path] = []

    def save(name: str) -> None:
        saved.append(Path(app.save_screenshot(filename=f"{name}.svg", path=str(out))))

    async with app.run_test(size=SIZE) as pilot:
        app.theme = THEME
        await settle(pilot)
        table = app.screen.query_one(CheckTable)
        for check_id in ("1.2.15", "1.2.17"):
            table.move_cursor(row=table.get_row_index(check_id), animate=False)
            await pilot.press("space")
        table.move_cursor(row=table.get_row_index("1.2.16"), animate=False)
        await pilot.pause()
        save("checks")

        await pilot.press("p")
        await settle(pilot)
        save("plan")
        await pilot.press("s")  # the plan for every control-plane node (apply --plan)
        await pilot.pause()
        save("save-plan")
        await pilot.press("escape")
        await pilot.pause()
        await pilot.press("a")
        await pilot.pause()
        save("confirm")

        await pilot.press("y")
        await until(pilot, lambda: isinstance(app.screen, ApplyScreen))
        screen = app.screen
        assert isinstance(screen, ApplyScreen)

        def gate_running() -> bool:
            return any(
                s.states.get(Step.HEALTH) == "running"
                and s.gate_event is not None
                and (s.gate_event.elapsed or 0) > 2.5
                for s in screen.sections.values()
            )

        await until(pilot, gate_running)
        save("health-gate")
        await until(pilot, lambda: not app.runner.busy)
        await settle(pilot)
        save("committed")

        await pilot.press("enter", "b")
        await pilot.pause()
        await pilot.press("d")
        await pilot.pause()
        save("backups")

    # The plan pager at 80x24: every scored failure selected with one key, a few pages in.
    small = CisTuiApp(
        settings,
        load_catalog(settings.benchmark),
        node_label="demo sandbox (default)",
        display_root=config.parent,
    )
    async with small.run_test(size=(80, 24)) as pilot:
        small.theme = THEME
        await settle(pilot)
        await pilot.press("a", "p")
        await settle(pilot)
        await pilot.press("]", "]")
        await pilot.pause()
        saved.append(Path(small.save_screenshot(filename="plan-80x24.svg", path=str(out))))
    return saved


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path(__file__).parent.parent / "screenshots")
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    with sandbox_node("default", notice=True) as config:
        for path in asyncio.run(shoot(config, args.out)):
            print(f"wrote {path}")


if __name__ == "__main__":
    main()
