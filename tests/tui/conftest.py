"""Fixtures for the wizard's tests: offline kubeadm trees, sandbox nodes, waiting helpers."""

from __future__ import annotations

import json
import os
import time
from collections.abc import Callable
from datetime import datetime
from pathlib import Path

import pytest
from textual.pilot import Pilot
from textual.widgets import Input

from cis_tui.audit.versions import read_node_versions, with_benchmark
from cis_tui.benchmarks.catalog import load_catalog
from cis_tui.engine.backups import BackupStore
from cis_tui.layout import Settings, load_settings
from cis_tui.tui.app import CisTuiApp
from tests.e2e.conftest import sandbox_factory  # noqa: F401 - shared fixture
from tests.nodetree import build_kubeadm_tree

AppFactory = Callable[..., CisTuiApp]

as_root = pytest.mark.skipif(
    os.geteuid() != 0,
    reason="snapshots are recorded as root: file owners (root:root) are part of the scan",
)


@pytest.fixture(autouse=True)
def _no_cursor_blink(monkeypatch):
    """A blinking cursor makes screenshots differ from run to run."""
    monkeypatch.setattr(Input, "_toggle_cursor", lambda self: None)


@pytest.fixture
def tree(tmp_path) -> Path:
    """A fresh kubeadm node's files (no processes)."""
    return build_kubeadm_tree(tmp_path / "node")


@pytest.fixture
def offline_settings(tree) -> Settings:
    return load_settings(root=tree)


@pytest.fixture
def make_app(offline_settings) -> AppFactory:
    """The wizard on the offline tree: no health gate, a frozen clock, a fixed node label."""

    def make(settings: Settings | None = None, **kwargs) -> CisTuiApp:
        kwargs.setdefault("node_label", "test-node")
        kwargs.setdefault("clock", lambda: 0.0)
        kwargs.setdefault("wall_clock", lambda: datetime(2026, 1, 1, 12, 0, 0))
        # the benchmark the node's version gets, as `cis-tui tui` chooses it
        chosen, _warning = with_benchmark(
            settings or offline_settings, read_node_versions(settings or offline_settings)
        )
        return CisTuiApp(chosen, load_catalog(chosen.benchmark), **kwargs)

    return make


async def settle(pilot: Pilot) -> None:
    """Let workers finish and the screen catch up with their messages."""
    for _ in range(3):
        await pilot.app.workers.wait_for_complete()
        await pilot.pause()


async def wait_until(
    pilot: Pilot, condition: Callable[[], bool], timeout: float = 30.0, what: str = "condition"
) -> None:
    """Poll a condition while the app runs, up to a deadline (no fixed sleeps)."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:g}s waiting for {what}")
        await pilot.pause(0.05)


async def select_checks(pilot: Pilot, *check_ids: str) -> None:
    """Put the cursor on each check (all filters off) and press space, as an admin would."""
    from cis_tui.tui.widgets.check_table import CheckTable

    table = pilot.app.screen.query_one(CheckTable)
    for check_id in check_ids:
        table.move_cursor(row=table.get_row_index(check_id), animate=False)
        await pilot.press("space")


def screen_text(app: CisTuiApp) -> str:
    """The text on the screen (from the SVG export: every character as rendered)."""
    import html
    import re

    svg = app.export_screenshot()
    rows: dict[float, list[tuple[float, str]]] = {}
    pattern = r'<text class="[^"]*" x="([\d.]+)" y="([\d.]+)"[^>]*>([^<]*)</text>'
    for m in re.finditer(pattern, svg):
        text = html.unescape(m.group(3)).replace("\xa0", " ")
        rows.setdefault(float(m.group(2)), []).append((float(m.group(1)), text))
    lines = []
    for y in sorted(rows):
        line = ""
        for x, text in sorted(rows[y]):
            column = round(x / 12.2)  # Textual's SVG cell width
            line = line.ljust(column)[:column] + text
        lines.append(line.rstrip())
    return "\n".join(lines)


def pin_backups(state_dir: Path) -> list[str]:
    """Give every backup a fixed id and time (oldest first), for deterministic screens."""
    root = state_dir / "backups"
    store_dirs = sorted(
        (p for p in root.iterdir() if not p.name.startswith(".")),
        # in the order they were taken: time (to the microsecond), then sequence number
        key=lambda p: BackupStore(state_dir, None).get(p.name).order,  # type: ignore[arg-type]
    )
    ids = []
    for index, directory in enumerate(store_dirs):
        meta = json.loads((directory / "meta.json").read_text())
        new_id = f"20260101-12000{index}-{meta['component']}-00000{index}"
        meta.update(id=new_id, time=f"2026-01-01T12:00:0{index}+00:00")
        (directory / "meta.json").write_text(json.dumps(meta, indent=2))
        directory.rename(root / new_id)
        ids.append(new_id)
    return ids


def backups_of(settings: Settings) -> list:
    return BackupStore(settings.state_dir, settings.layout).list()


async def press_into(pilot: Pilot, key: str, screen: str, *then: str) -> None:
    """Press a key that opens a screen, wait until it is active, then press the rest there
    (keys pressed before the switch completes would reach the screen below)."""
    await pilot.press(key)
    await wait_until(
        pilot, lambda: type(pilot.app.screen).__name__ == screen, what=f"{screen} to open"
    )
    await pilot.pause()
    if then:
        await pilot.press(*then)
