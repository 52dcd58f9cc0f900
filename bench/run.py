"""cis-tui benchmarks: each figure is a ratio against a baseline measured in the same run.

    python bench/run.py [--quick]

Runs on sandbox nodes, prints a table, and ends with one line of JSON:
scan_speedup, batch_speedup, gate_detect_ms_p50, tui_start_ratio, tui_key_latency_ms_p95,
tui_plan_ms, peak_rss_mb (DESIGN section 10), state_start_ratio and state_recover_ratio
(issue 17: start-up with years of history against an empty state directory).

The health gate's stability window is what a real apply waits after each restart (the API
server's liveness probe: 20 s on kubeadm). The full run measures the batch with it; `--quick`
shortens it to 1 s, and the gate-detection rounds to 0.2 s (the window comes after the first
healthy answer, so it cannot change that figure); the table says which window each row used.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from bench.baseline import per_check_subprocess_scan  # noqa: E402
from bench.state_growth import BACKUPS, TRANSACTIONS, bench_state_growth  # noqa: E402
from bench.tui_plan import bench_tui_plan  # noqa: E402
from cis_tui.audit.evaluate import evaluate  # noqa: E402
from cis_tui.audit.node import read_manifest, take_snapshot  # noqa: E402
from cis_tui.benchmarks.catalog import load_catalog  # noqa: E402
from cis_tui.engine.events import Event, Kind  # noqa: E402
from cis_tui.engine.health import manifest_endpoints, stability_window  # noqa: E402
from cis_tui.engine.transaction import Engine  # noqa: E402
from cis_tui.layout import load_settings  # noqa: E402
from cis_tui.remediate.plan import FilePlan, Plan, build_plan  # noqa: E402
from cis_tui.sandbox import create_sandbox  # noqa: E402
from cis_tui.sandbox.harness import SandboxRun  # noqa: E402
from cis_tui.sandbox.settings import update_sandbox_settings  # noqa: E402

CATALOG = load_catalog("cis-1.12")
# Not 1.2.1: --anonymous-auth=false fails the kubelet's anonymous probes and is rolled back.
TEN_FIXES = ["1.2.3", "1.2.5", "1.2.11", "1.2.15", "1.2.16", "1.2.17", "1.2.18", "1.2.19",
             "1.2.29", "1.2.30"]  # fmt: skip


@contextlib.contextmanager
def sandbox(ready: dict[str, float], stable_seconds: float | None) -> Iterator[SandboxRun]:
    """A started sandbox node with the given readiness delays and stability window (None: the
    default, from each manifest's liveness probe); removed afterwards."""
    directory = Path(tempfile.mkdtemp(prefix="cis-tui-bench-"))
    try:
        create_sandbox(directory, "default", reuse_keys=True)
        update_sandbox_settings(directory, ready_delay=ready, backoff_initial_seconds=0.2)
        config = directory / "cis-tui.toml"
        if stable_seconds is not None:
            config.write_text(
                config.read_text() + f"\n[health]\nstable_seconds = {stable_seconds}\n"
            )
        run = SandboxRun.start(directory, wait=True, timeout=60)
        try:
            yield run
        finally:
            run.stop()
    finally:
        shutil.rmtree(directory, ignore_errors=True)


def timed(fn, repeat: int) -> float:
    """Median wall time of fn() in seconds."""
    samples = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        samples.append(time.perf_counter() - start)
    return statistics.median(samples)


# ---- scan ----------------------------------------------------------------------------


def bench_scan(run: SandboxRun, repeat: int) -> dict[str, float]:
    settings = load_settings(config=run.config)

    def ours() -> None:
        evaluate(CATALOG, take_snapshot(settings))

    def baseline() -> None:
        per_check_subprocess_scan(CATALOG, settings)

    ours()  # warm the catalog cache, as every run after the first has it
    t_ours = timed(ours, repeat)
    t_base = timed(baseline, max(1, repeat // 3))
    return {"scan_ms": t_ours * 1000, "baseline_ms": t_base * 1000, "scan_speedup": t_base / t_ours}


# ---- batch ----------------------------------------------------------------------------


def apply_checks(run: SandboxRun, ids: list[str], events: list[Event] | None = None) -> float:
    settings = load_settings(config=run.config)
    plan = build_plan(CATALOG, take_snapshot(settings), ids, {})
    engine = Engine(settings, CATALOG, (events.append if events is not None else lambda e: None))
    start = time.perf_counter()
    result = asyncio.run(engine.apply(plan))
    elapsed = time.perf_counter() - start
    if result.exit_code != 0:
        raise RuntimeError(f"apply {ids} failed: {[f.message for f in result.files]}")
    return elapsed


def default_window(run: SandboxRun, component: str) -> float:
    """The stability window a real apply uses for `component` on this node."""
    settings = load_settings(config=run.config)
    manifest = read_manifest(settings.layout.manifest(component), component)
    return stability_window(settings.health, component, manifest_endpoints(manifest))[0]


def bench_batch(apiserver_delay: float, stable_seconds: float | None) -> dict[str, float]:
    ready = {"kube-apiserver": apiserver_delay}
    with sandbox(ready, stable_seconds) as run:
        window = default_window(run, "kube-apiserver")
        serial = sum(apply_checks(run, [check]) for check in TEN_FIXES)
    with sandbox(ready, stable_seconds) as run:
        batched = apply_checks(run, TEN_FIXES)
    return {
        "serial_s": serial,
        "batched_s": batched,
        "batch_speedup": serial / batched,
        "window_s": window,
    }


# ---- gate detection -------------------------------------------------------------------


def bench_gate(rounds: int, stable_seconds: float) -> dict[str, float]:
    """Engine's first-healthy event minus the moment the component really answered healthy."""
    latencies = []
    with sandbox({"kube-scheduler": 0.5}, stable_seconds) as run:
        settings = load_settings(config=run.config)
        path = settings.layout.manifest("kube-scheduler")
        for n in range(rounds):
            events: list[Event] = []
            since = time.time()
            old = path.read_text()
            # flip a harmless flag so that every round restarts the scheduler
            new = old.replace(
                *(
                    ("--leader-elect=true", "--leader-elect=false")
                    if n % 2 == 0
                    else ("--leader-elect=false", "--leader-elect=true")
                )
            )
            file = FilePlan("manifest", "kube-scheduler", path, old, new, ())
            engine = Engine(settings, CATALOG, events.append)
            result = asyncio.run(engine.apply(Plan("cis-1.12", (), {}, (file,))))
            if result.exit_code != 0:
                raise RuntimeError(result.files[0].message)
            engine_seen = next(e.time for e in events if e.kind is Kind.HEALTHY)
            truth = run.wait_healthy("kube-scheduler", since).time
            latencies.append((engine_seen - truth) * 1000)
    return {
        "gate_detect_ms_p50": statistics.median(latencies),
        "gate_detect_ms_max": max(latencies),
        "rounds": rounds,
    }


# ---- TUI ------------------------------------------------------------------------------


def bench_tui(quick: bool) -> dict[str, float]:
    script = REPO / "bench" / "tui_probe.py"
    out = subprocess.run(
        [sys.executable, str(script), "--rounds", "7" if quick else "15"],
        capture_output=True,
        text=True,
        timeout=600,
        cwd=REPO,
    )
    if out.returncode != 0:
        raise RuntimeError(out.stderr[-2000:])
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer rounds, under 5 minutes")
    args = parser.parse_args()
    quick = args.quick
    stable = 1.0 if quick else None  # None: the real window, from the manifests
    gate_stable = 0.2
    started = time.perf_counter()
    rows: list[tuple[str, str, str]] = []
    figures: dict[str, float] = {}

    with sandbox({}, stable) as run:
        scan = bench_scan(run, 5 if quick else 15)
    figures["scan_speedup"] = scan["scan_speedup"]
    rows.append(("scan: in-process, full catalog", f"{scan['scan_ms']:.1f} ms", ""))
    rows.append(("scan: per-check subprocess pipelines", f"{scan['baseline_ms']:.0f} ms", ""))
    rows.append(("scan_speedup", f"{scan['scan_speedup']:.1f}x", ">= 20"))

    batch = bench_batch(2.0 if quick else 5.0, stable)
    figures["batch_speedup"] = batch["batch_speedup"]
    window = f"{batch['window_s']:g} s window" + (
        ", shortened by --quick" if stable is not None else ", the default"
    )
    rows.append((f"10 fixes as 10 transactions ({window})", f"{batch['serial_s']:.1f} s", ""))
    rows.append((f"10 fixes as 1 transaction ({window})", f"{batch['batched_s']:.1f} s", ""))
    rows.append(("batch_speedup", f"{batch['batch_speedup']:.1f}x", ">= 8"))

    gate = bench_gate(5 if quick else 15, gate_stable)
    figures["gate_detect_ms_p50"] = gate["gate_detect_ms_p50"]
    rows.append(
        (
            f"gate_detect_ms_p50 ({gate_stable:g} s window: detection comes before it)",
            f"{gate['gate_detect_ms_p50']:.0f} ms",
            "<= 150",
        )
    )
    rows.append(("gate detection, worst", f"{gate['gate_detect_ms_max']:.0f} ms", ""))

    tui = bench_tui(quick)
    figures.update(
        {k: tui[k] for k in ("tui_start_ratio", "tui_key_latency_ms_p95", "peak_rss_mb")}
    )
    rows.append(("tui start: cis-tui checks table", f"{tui['tui_start_ms']:.0f} ms", ""))
    rows.append(("tui start: bare Textual table app", f"{tui['bare_start_ms']:.0f} ms", ""))
    rows.append(("tui_start_ratio", f"{tui['tui_start_ratio']:.2f}", "<= 1.5"))
    key = tui["tui_key_latency_ms_p95"]
    rows.append(("tui_key_latency_ms_p95 (tab, during a gate)", f"{key:.1f} ms", "<= 50"))
    key_help = tui["help_key_latency_ms_p95"]
    rows.append(("key latency p95, F1 opens help, during a gate", f"{key_help:.1f} ms", ""))
    rows.append(("peak_rss_mb (TUI session)", f"{tui['peak_rss_mb']:.0f} MB", "<= 100"))

    with sandbox({}, stable) as run:
        manifest = load_settings(config=run.config).layout.manifest("kube-scheduler")
        growth = bench_state_growth(run.config, manifest, 5 if quick else 9)
    figures["state_start_ratio"] = growth["state_start_ratio"]
    figures["state_recover_ratio"] = growth["state_recover_ratio"]
    history = f"{BACKUPS} backups, {TRANSACTIONS} closed transactions"
    rows.append(("wizard first paint, empty state", f"{growth['paint_empty_ms']:.0f} ms", ""))
    rows.append((f"wizard first paint, {history}", f"{growth['paint_full_ms']:.0f} ms", ""))
    rows.append(("state_start_ratio", f"{growth['state_start_ratio']:.2f}", "<= 1.2"))
    rows.append(("recover, empty state", f"{growth['recover_empty_ms']:.0f} ms", ""))
    rows.append((f"recover, {history}", f"{growth['recover_full_ms']:.0f} ms", ""))
    rows.append(("state_recover_ratio", f"{growth['state_recover_ratio']:.2f}", "<= 1.2"))
    rows.append(
        (
            f"  once, after an upgrade: recover compacts a {growth['journal_mb']:.0f} MB journal",
            f"{growth['first_run_ms']:.0f} ms",
            "",
        )
    )

    plan = bench_tui_plan(7 if quick else 15)
    figures["tui_plan_ms"] = plan["tui_plan_ms"]
    rows.append(
        ("tui_plan_ms (40 checks, key to plan painted)", f"{plan['tui_plan_ms']:.0f} ms", "<= 300")
    )
    rows.append(
        ("  of which planning (build_plan, cold)", f"{plan['tui_plan_build_ms']:.0f} ms", "")
    )
    rows.append(("tui plan: End to the last file painted", f"{plan['tui_plan_end_ms']:.0f} ms", ""))

    width = max(len(r[0]) for r in rows)
    print(
        f"cis-tui benchmarks ({'quick' if quick else 'full'}), "
        f"{os.cpu_count()} cores, Python {platform.python_version()}"
    )
    for name, value, target in rows:
        print(f"  {name:<{width}}  {value:>10}  {target}")
    print(f"  total time {time.perf_counter() - started:.0f} s")
    print(json.dumps({k: round(v, 2) for k, v in figures.items()}))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
