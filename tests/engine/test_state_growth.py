"""Years of use (issue 17): a compacted journal, ordered and retained backups, crash leftovers
cleaned, a bounded event log. Real files in temporary directories, real subprocesses."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from cis_tui.engine.backups import PENDING_DIR, BackupStore
from cis_tui.engine.eventlog import RotatingLog, rotated
from cis_tui.engine.faults import CRASH_ENV
from cis_tui.engine.journal import Journal
from cis_tui.layout import EventLogSettings, RetentionSettings, load_settings
from tests.conftest import run_cli
from tests.crashstate import interrupted_write

SCHEDULER = "etc/kubernetes/manifests/kube-scheduler.yaml"
APISERVER = "etc/kubernetes/manifests/kube-apiserver.yaml"
CLI = [sys.executable, "-m", "cis_tui"]


def apply(capsys, root: Path, *ids: str) -> tuple[int, str, str]:
    return run_cli(capsys, "--root", str(root), "apply", "--yes", "--no-health-gate", *ids)


def interrupted(root: Path) -> tuple[Journal, str, bytes]:
    """What a kill -9 right after writing the API server manifest leaves behind."""
    return interrupted_write(load_settings(root=root), "kube-apiserver", ("1.2.15",))


def dead_pid() -> int:
    done = subprocess.Popen(["true"])
    done.wait()
    return done.pid


# ---- the journal ------------------------------------------------------------------------


def test_a_closed_transaction_leaves_no_journal_lines(capsys, kubeadm_node):
    for check in ("1.4.1", "1.3.2", "1.2.15"):
        assert apply(capsys, kubeadm_node, check)[0] == 0
    journal = kubeadm_node / "var/lib/cis-tui/journal.jsonl"
    assert journal.read_text() == ""
    assert Journal(journal.parent).open_transactions() == []


def test_compaction_keeps_open_transactions_byte_for_byte(capsys, kubeadm_node):
    journal, txid, _ = interrupted(kubeadm_node)
    before = journal.path.read_bytes()
    assert apply(capsys, kubeadm_node, "1.4.1")[0] == 0
    assert journal.path.read_bytes() == before  # the scheduler's records came and went
    (open_tx,) = journal.open_transactions()
    assert open_tx.txid == txid


def test_a_journal_from_before_compaction_is_trimmed_by_recover(capsys, kubeadm_node):
    state = kubeadm_node / "var/lib/cis-tui"
    state.mkdir(parents=True, mode=0o700)
    lines = []
    for n in range(2000):
        for step in ("intent", "writing", "written", "committed"):
            lines.append(json.dumps({"txid": f"{n}-old", "step": step, "time": float(n)}))
    (state / "journal.jsonl").write_text("\n".join(lines) + "\n")
    code, out, _ = run_cli(capsys, "--root", str(kubeadm_node), "recover", "--yes")
    assert code == 0 and "Nothing to recover" in out
    assert (state / "journal.jsonl").read_text() == ""


@pytest.mark.parametrize("point", ["journal-compact-written", "journal-compact-replaced"])
def test_kill_9_during_compaction_loses_nothing(kubeadm_node, point):
    journal, txid, original = interrupted(kubeadm_node)
    scheduler = kubeadm_node / SCHEDULER
    done = subprocess.run(
        [*CLI, "--root", str(kubeadm_node), "apply", "--yes", "--no-health-gate", "1.4.1"],
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, CRASH_ENV: point},
    )
    assert done.returncode == -9, done.stdout + done.stderr  # killed at that very point
    assert b"--profiling=false" in scheduler.read_bytes()
    # The committed scheduler transaction is closed, the API server's is still open, intact.
    (open_tx,) = journal.open_transactions()
    assert (open_tx.txid, open_tx.last_step) == (txid, "written")
    rec = subprocess.run(
        [sys.executable, "-m", "cis_tui", "--root", str(kubeadm_node), "recover", "--yes"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert rec.returncode == 0, rec.stdout + rec.stderr
    assert (kubeadm_node / APISERVER).read_bytes() == original
    assert journal.open_transactions() == []
    assert journal.path.read_text() == ""
    assert not (journal.path.parent / ".journal.jsonl.compact").exists()


# ---- backup order -----------------------------------------------------------------------


def test_backups_taken_in_one_second_list_in_the_order_taken(kubeadm_node):
    settings = load_settings(root=kubeadm_node)
    store = BackupStore(settings.state_dir, settings.layout)
    path = kubeadm_node / SCHEDULER
    made = [store.create_file_backup(path, "kube-scheduler", (), {}) for _ in range(12)]
    assert [b.seq for b in made] == list(range(1, 13))
    assert all("." in b.time for b in made)  # microseconds
    listed = store.list()
    assert [b.id for b in listed] == [b.id for b in reversed(made)]
    assert [b.id for b in store.newest(5)] == [b.id for b in listed[:5]]
    assert json.loads(json.dumps(listed[0].public()))["seq"] == 12


def test_old_second_resolution_metadata_still_reads_and_sorts(kubeadm_node):
    settings = load_settings(root=kubeadm_node)
    store = BackupStore(settings.state_dir, settings.layout)
    path = kubeadm_node / SCHEDULER
    old = store.create_file_backup(path, "kube-scheduler", (), {})
    meta = Path(old.directory) / "meta.json"
    doc = json.loads(meta.read_text())
    del doc["seq"]
    doc["time"] = "2020-01-01T00:00:00+00:00"
    meta.write_text(json.dumps(doc))
    new = store.create_file_backup(path, "kube-scheduler", (), {})
    listed = store.list()
    assert [b.id for b in listed] == [new.id, old.id]
    assert listed[1].seq == 0 and listed[1].time == "2020-01-01T00:00:00+00:00"


def test_list_json_first_is_the_restore_just_made(capsys, kubeadm_node):
    assert apply(capsys, kubeadm_node, "1.4.1")[0] == 0
    code, out, _ = run_cli(
        capsys, "--root", str(kubeadm_node), "backups", "list", "--format", "json"
    )
    (first,) = json.loads(out)
    code, out, _ = run_cli(
        capsys, "--root", str(kubeadm_node), "backups", "restore", first["id"], "--yes",
        "--no-health-gate",
    )  # fmt: skip
    assert code == 0, out
    code, out, _ = run_cli(
        capsys, "--root", str(kubeadm_node), "backups", "list", "--format", "json"
    )
    newest, restored = json.loads(out)
    assert restored["id"] == first["id"] and restored["outcome"] == "restored"
    assert newest["outcome"] == "committed" and newest["seq"] > restored["seq"]


# ---- retention --------------------------------------------------------------------------


def _age(store: BackupStore, backup_id: str, days: float) -> None:
    import datetime as dt

    meta = store.root / backup_id / "meta.json"
    doc = json.loads(meta.read_text())
    when = dt.datetime.now(dt.timezone.utc) - dt.timedelta(days=days)
    doc["time"] = when.isoformat(timespec="microseconds")
    meta.write_text(json.dumps(doc))


def test_retention_keeps_newest_per_file_young_and_last_committed(kubeadm_node):
    settings = load_settings(root=kubeadm_node)
    store = BackupStore(settings.state_dir, settings.layout)
    sched, api = kubeadm_node / SCHEDULER, kubeadm_node / APISERVER
    s = [store.create_file_backup(sched, "kube-scheduler", (), {}) for _ in range(5)]
    a = [store.create_file_backup(api, "kube-apiserver", (), {}) for _ in range(3)]
    for b in s[:4]:
        store.set_outcome(b, "rolled-back")
    store.set_outcome(s[4], "rolled-back")
    store.set_outcome(s[0], "committed")  # the file's last committed: never removed
    for b in a:
        store.set_outcome(b, "committed")
    for b in s + a:
        _age(store, b.id, 40 - (s + a).index(b) * 0.01)  # all old, still in order
    _age(store, s[3].id, 1)  # young: kept, though not the newest
    _age(store, s[4].id, 0.5)
    policy = RetentionSettings(keep_per_file=1, keep_days=30)
    doomed = {b.id for b in store.expired(policy, protected={s[2].id})}
    # s4 newest of its file; s3 young; s2 protected (an open transaction); s0 last committed
    assert doomed == {s[1].id, a[0].id, a[1].id}
    assert {b.id for b in store.expired(RetentionSettings(keep_per_file=10))} == set()


def test_prune_without_keep_applies_the_config_and_lists_what_goes(capsys, kubeadm_node, tmp_path):
    config = tmp_path / "cis-tui.toml"
    config.write_text("[backups]\nkeep_per_file = 1\nkeep_days = 0\nprune_after_commit = false\n")
    root = ["--config", str(config), "--root", str(kubeadm_node)]
    for _ in range(3):
        code, _, err = run_cli(capsys, *root, "backups", "list")  # settle the config
        assert code == 0, err
        code, out, err = run_cli(capsys, *root, "apply", "--yes", "--no-health-gate", "1.4.1")
        assert code == 0, err
        run_cli(capsys, *root, "backups", "restore", _newest(capsys, root), "--yes",
                "--no-health-gate")  # fmt: skip
    ids = [b["id"] for b in _list(capsys, root)]
    assert len(ids) == 6
    code, out, _ = run_cli(capsys, *root, "backups", "prune", "--yes")
    assert code == 0 and "would be deleted" in out and "[backups]" in out
    left = [b["id"] for b in _list(capsys, root)]
    assert ids[0] in left  # the newest of the file
    removed = set(ids) - set(left)
    assert removed and all(r in out for r in removed)


def test_retention_runs_after_a_commit(capsys, kubeadm_node, tmp_path):
    config = tmp_path / "cis-tui.toml"
    config.write_text("[backups]\nkeep_per_file = 1\nkeep_days = 0\n")
    root = ["--config", str(config), "--root", str(kubeadm_node)]
    code, out, err = run_cli(capsys, *root, "apply", "--yes", "--no-health-gate", "1.4.1")
    assert code == 0, err
    first = _newest(capsys, root)
    run_cli(capsys, *root, "backups", "restore", first, "--yes", "--no-health-gate")
    code, out, err = run_cli(capsys, *root, "apply", "--yes", "--no-health-gate", "1.4.1")
    assert code == 0, err
    assert "retention removed" in out
    assert len(_list(capsys, root)) <= 2  # the newest, and the last committed one


def _list(capsys, root: list[str]) -> list[dict]:
    code, out, _ = run_cli(capsys, *root, "backups", "list", "--format", "json")
    assert code == 0
    return json.loads(out)


def _newest(capsys, root: list[str]) -> str:
    return _list(capsys, root)[0]["id"]


# ---- crash leftovers --------------------------------------------------------------------


def test_stale_partial_backups_go_live_ones_stay(kubeadm_node):
    settings = load_settings(root=kubeadm_node)
    store = BackupStore(settings.state_dir, settings.layout)
    store.create_file_backup(kubeadm_node / SCHEDULER, "kube-scheduler", (), {})
    stale = store.root / f".20260101-000000-kube-scheduler-aaaaaa.{dead_pid()}.partial"
    live = store.root / f".20260101-000000-kube-scheduler-bbbbbb.{os.getpid()}.partial"
    legacy = store.root / ".20260101-000000-kube-scheduler-cccccc.partial"
    for d in (stale, live, legacy):
        d.mkdir(mode=0o700)
        (d / "original").write_bytes(b"half")
    notes = store.clean_partials()
    assert not stale.exists() and live.exists() and legacy.exists()
    assert notes == [f"removed the unfinished backup {stale.name}"]
    store.clean_partials(locked=True)  # with the lock: an old-style one without a PID too
    assert not legacy.exists() and live.exists()


def test_an_apply_cleans_a_crashed_apply_s_partial(capsys, kubeadm_node):
    settings = load_settings(root=kubeadm_node)
    root = settings.state_dir / "backups"
    root.mkdir(parents=True)
    stale = root / f".20260101-000000-kube-scheduler-aaaaaa.{dead_pid()}.partial"
    stale.mkdir(mode=0o700)
    code, out, _ = apply(capsys, kubeadm_node, "1.4.1")
    assert code == 0 and not stale.exists()
    assert "removed the unfinished backup" in out


def test_pending_markers_find_a_crash_s_backup_without_reading_all(capsys, kubeadm_node):
    settings = load_settings(root=kubeadm_node)
    store = BackupStore(settings.state_dir, settings.layout)
    stuck = store.create_file_backup(kubeadm_node / SCHEDULER, "kube-scheduler", (), {})
    assert (settings.state_dir / PENDING_DIR / stuck.id).exists()
    code, out, _ = run_cli(capsys, "--root", str(kubeadm_node), "recover", "--yes")
    assert code == 0 and "left pending by a crash" in out
    assert store.get(stuck.id).outcome == "aborted"
    assert not (settings.state_dir / PENDING_DIR / stuck.id).exists()


def test_cache_temporaries_of_dead_writers_are_removed(tmp_path, monkeypatch):
    from cis_tui.audit import yamlcache

    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    directory = yamlcache._cache_dir()
    directory.mkdir(parents=True)
    key = "a" * 64
    dead = directory / f".{key}.{dead_pid()}"
    mine = directory / f".{key}.{os.getpid()}"
    dead.write_text("{")
    mine.write_text("{")
    yamlcache._cleaned.discard(directory)
    yamlcache.load_all_cached("a: 1\n")
    assert not dead.exists() and mine.exists()


# ---- the event log ----------------------------------------------------------------------


def test_the_event_log_is_rotated_and_bounded(tmp_path):
    path = tmp_path / "log" / "events.jsonl"
    settings = EventLogSettings(max_bytes=4096, keep=2)
    log = RotatingLog(path, settings)
    line = json.dumps({"kind": "poll", "message": "x" * 100})
    for _ in range(500):
        log.write(line)
    log.close()
    files = sorted(p.name for p in path.parent.iterdir())
    assert files == ["events.jsonl", "events.jsonl.1", "events.jsonl.2"]
    assert all(p.stat().st_size <= 4096 for p in path.parent.iterdir())
    assert path.stat().st_mode & 0o777 == 0o600
    # another writer that rotated the file is followed, not written past
    other = RotatingLog(path, settings)
    other.write(line)
    os.replace(path, rotated(path, 1))
    other.write(line)
    assert path.read_text() == line + "\n"


def test_event_log_and_retention_settings_load_from_the_config(capsys, tmp_path, kubeadm_node):
    config = tmp_path / "cis-tui.toml"
    config.write_text(
        "[events]\nmax_bytes = 65536\nkeep = 1\n"
        "[backups]\nkeep_per_file = 3\nkeep_days = 7\nprune_after_commit = false\n"
    )
    settings = load_settings(config=config)
    assert settings.events == EventLogSettings(max_bytes=65536, keep=1)
    assert settings.retention == RetentionSettings(3, 7.0, False)
    config.write_text("[backups]\nkeep_forever = true\n")
    code, _, err = run_cli(capsys, "--config", str(config), "--root", str(kubeadm_node), "scan")
    assert code == 2 and "keep_forever" in err


def test_recover_records_what_it_did_in_the_change_history(capsys, kubeadm_node):
    """The report's history holds the transaction a crash interrupted, closed by recover."""
    from cis_tui.engine.history import read_history

    _, txid, original = interrupted(kubeadm_node)
    code, out, err = run_cli(capsys, "--root", str(kubeadm_node), "recover", "--yes")
    assert code == 0, out + err
    assert (kubeadm_node / APISERVER).read_bytes() == original
    (record,) = [r for r in read_history(kubeadm_node / "var/lib/cis-tui") if r["txid"] == txid]
    assert (record["kind"], record["outcome"]) == ("recover", "recovered")
    assert "restored the original bytes" in record["message"]
    code, out, _ = run_cli(capsys, "--root", str(kubeadm_node), "report", "--format", "markdown")
    assert code == 0 and txid in out
