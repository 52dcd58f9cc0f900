"""The benchmark script runs and ends with its JSON line (no timing is asserted here)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
KEYS = {
    "scan_speedup",
    "batch_speedup",
    "gate_detect_ms_p50",
    "tui_start_ratio",
    "tui_key_latency_ms_p95",
    "tui_plan_ms",
    "peak_rss_mb",
    "state_start_ratio",
    "state_recover_ratio",
}


@pytest.mark.timeout(600)
def test_bench_quick_prints_the_json_line(tmp_path):
    env = {**os.environ, "XDG_CACHE_HOME": str(tmp_path / "cache")}
    done = subprocess.run(
        [sys.executable, str(REPO / "bench" / "run.py"), "--quick"],
        capture_output=True,
        text=True,
        timeout=600,
        env=env,
        cwd=REPO,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    lines = done.stdout.strip().splitlines()
    figures = json.loads(lines[-1])
    assert set(figures) == KEYS
    assert all(isinstance(v, (int, float)) and v > 0 for v in figures.values())
    assert any("scan_speedup" in line for line in lines[:-1])  # the readable table
