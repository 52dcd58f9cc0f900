"""State growth for bench/run.py (issue 17): does start-up cost grow with years of history?

`state_start_ratio`: the wizard's first paint (process start to an interactive checks table,
measured as bench/tui_probe.py measures it) with a state directory holding 5000 backups and a
journal of 20,000 closed transactions, divided by the same with an empty state directory;
`state_recover_ratio`: the same for `cis-tui recover --yes`. Both on one live sandbox node,
rounds interleaved so that load affects both alike; medians.

The history is written in the formats cis-tui writes (each backup a directory with `original`
and `meta.json`; the journal as JSON lines, four records per transaction, as cis-tui before
compaction left it), then one `recover` run handles it as the first run after an upgrade does
(it compacts the journal and marks the store as checked for crash leftovers); that one-time
cost is reported too. Writing 20,000 transactions through the engine (every record fsynced)
would take minutes for the same end state.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
PROBE = REPO / "bench" / "tui_probe.py"
BACKUPS = 5000
TRANSACTIONS = 20_000


def build_history(state: Path, manifest: Path) -> None:
    """5000 committed backups of `manifest` (one a minute, newest now) and a journal of
    20,000 closed transactions."""
    state.mkdir(mode=0o700, parents=True, exist_ok=True)
    root = state / "backups"
    root.mkdir(mode=0o700)
    data = manifest.read_bytes()
    digest = hashlib.sha256(data).hexdigest()
    now = dt.datetime.now(dt.timezone.utc)
    for n in range(BACKUPS):
        when = now - dt.timedelta(minutes=BACKUPS - n)
        backup_id = f"{when:%Y%m%d-%H%M%S}-kube-scheduler-{n:06x}"
        directory = root / backup_id
        directory.mkdir(mode=0o700)
        meta = {
            "id": backup_id,
            "time": when.isoformat(timespec="microseconds"),
            "kind": "file",
            "path": str(manifest),
            "component": "kube-scheduler",
            "sha256": digest,
            "size": len(data),
            "mode": 0o600,
            "uid": os.geteuid(),
            "gid": os.getegid(),
            "checks": ["1.4.1"],
            "plan": {"benchmark": "cis-1.12", "checks": ["1.4.1"], "params": {}},
            "outcome": "committed",
            "attributes": [],
            "seq": n + 1,
        }
        for name, content in (("original", data), ("meta.json", json.dumps(meta).encode())):
            fd = os.open(directory / name, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            os.write(fd, content)
            os.close(fd)
    (state / "backup-sequence").write_text(f"{BACKUPS} {int(now.timestamp() * 1e6)}\n")
    (state / "backup-sequence").chmod(0o600)
    lines = []
    start = now.timestamp() - TRANSACTIONS * 60
    for n in range(TRANSACTIONS):
        txid = f"{int(start) + n * 60}-{n:08x}"
        stamp = start + n * 60
        lines.append(
            json.dumps(
                {
                    "txid": txid,
                    "step": "intent",
                    "time": stamp,
                    "backup_id": f"old-{n}",
                    "path": str(manifest),
                    "component": "kube-scheduler",
                    "pid": 4242,
                    "checks": ["1.4.1"],
                    "new_sha256": digest,
                }
            )
        )
        for step in ("writing", "written", "committed"):
            lines.append(json.dumps({"txid": txid, "step": step, "time": stamp + 1}))
    journal = state / "journal.jsonl"
    journal.write_text("\n".join(lines) + "\n")
    journal.chmod(0o600)


def _first_paint(config: Path, state: Path) -> float:
    """Seconds from process start to the wizard's interactive checks table."""
    env = {
        **os.environ,
        "CIS_TUI_STATE_DIR": str(state),
        "CIS_TUI_PROBE_START": repr(time.time()),
    }
    done = subprocess.run(
        [sys.executable, str(PROBE), "--child", "cis", "--config", str(config)],
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
    )
    if done.returncode != 0:
        raise RuntimeError(done.stderr[-3000:])
    return float(done.stdout.strip().splitlines()[-1])


def _recover(config: Path, state: Path) -> float:
    env = {**os.environ, "CIS_TUI_STATE_DIR": str(state)}
    started = time.perf_counter()
    done = subprocess.run(
        [sys.executable, "-m", "cis_tui", "--config", str(config), "recover", "--yes"],
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
        cwd=REPO,
    )
    elapsed = time.perf_counter() - started
    if done.returncode != 0:
        raise RuntimeError(done.stdout[-2000:] + done.stderr[-2000:])
    return elapsed


def bench_state_growth(config: Path, manifest: Path, rounds: int) -> dict[str, float]:
    with tempfile.TemporaryDirectory(prefix="cis-tui-state-") as tmp:
        empty, full = Path(tmp) / "empty", Path(tmp) / "full"
        empty.mkdir(mode=0o700)
        Path(tmp).chmod(0o700)
        build_history(full, manifest)
        journal_mb = (full / "journal.jsonl").stat().st_size / 1e6
        first_run = _recover(config, full)  # the first run after an upgrade: compacts once
        _first_paint(config, empty)  # warm the caches a real node has
        paint_empty, paint_full, rec_empty, rec_full = [], [], [], []
        for _ in range(rounds):
            paint_empty.append(_first_paint(config, empty))
            paint_full.append(_first_paint(config, full))
            rec_empty.append(_recover(config, empty))
            rec_full.append(_recover(config, full))
        backups_left = sum(1 for p in (full / "backups").iterdir() if not p.name.startswith("."))
    med = statistics.median
    return {
        "state_start_ratio": med(paint_full) / med(paint_empty),
        "state_recover_ratio": med(rec_full) / med(rec_empty),
        "paint_empty_ms": med(paint_empty) * 1000,
        "paint_full_ms": med(paint_full) * 1000,
        "recover_empty_ms": med(rec_empty) * 1000,
        "recover_full_ms": med(rec_full) * 1000,
        "first_run_ms": first_run * 1000,
        "journal_mb": journal_mb,
        "backups": backups_left,
    }
