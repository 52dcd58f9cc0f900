"""The transaction engine on live sandbox nodes: restarts, health gates, rollbacks, crashes."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from cis_tui.audit.evaluate import Status, evaluate
from cis_tui.audit.node import take_snapshot
from cis_tui.benchmarks.catalog import load_catalog
from cis_tui.engine.events import Event, Kind, Outcome
from cis_tui.engine.journal import Journal
from cis_tui.engine.transaction import Engine
from cis_tui.layout import load_settings
from cis_tui.remediate.plan import FilePlan, Plan, build_plan
from cis_tui.sandbox.settings import Fault

CATALOG = load_catalog("cis-1.12")
#: Tests shorten the stability window (by default the liveness probe's first judgement: 20 s for
#: kubeadm's API server) and the gate timeouts.
FAST_HEALTH = """
[health]
stable_successes = 3
stable_seconds = 1.0
[health.timeouts]
etcd = 30
kube-apiserver = 30
kube-controller-manager = 20
kube-scheduler = 20
kubelet = 20
"""


def fast(run) -> Path:
    config = run.config
    if "[health]" not in config.read_text():
        config.write_text(config.read_text() + FAST_HEALTH)
    return config


def engine_for(run, events: list[Event], timeout: float | None = None) -> Engine:
    settings = load_settings(config=fast(run))
    return Engine(settings, CATALOG, events.append, timeout=timeout)


def catalog_plan(run, *ids: str) -> Plan:
    settings = load_settings(config=fast(run))
    return build_plan(CATALOG, take_snapshot(settings), list(ids), {})


def hand_plan(run, component: str, edit) -> Plan:
    """A plan whose new content is `edit(old)` (for changes the catalog would never make)."""
    settings = load_settings(config=fast(run))
    path = settings.layout.manifest(component)
    old = path.read_text()
    file = FilePlan("manifest", component, path, old, edit(old), ())
    return Plan("cis-1.12", (), {}, (file,))


def add_flag(flag: str):
    return lambda text: text.replace(
        "    - --bind-address=127.0.0.1\n", f"    - --bind-address=127.0.0.1\n    - {flag}\n", 1
    )


def status_of(run, check_id: str) -> tuple[Status, str | None]:
    snap = take_snapshot(load_settings(config=run.config))
    (result,) = evaluate(CATALOG, snap, [check_id])
    return result.status, result.live_value


def test_success_restarts_once_and_the_live_process_has_the_flag(sandbox_node):
    events: list[Event] = []
    old_pid = sandbox_node.pid_of("kube-scheduler")
    result = asyncio.run(
        engine_for(sandbox_node, events).apply(catalog_plan(sandbox_node, "1.4.1"))
    )
    assert result.exit_code == 0, [f.message for f in result.files]
    new_pid = sandbox_node.pid_of("kube-scheduler")
    assert new_pid != old_pid
    assert "--profiling=false" in sandbox_node.args_of("kube-scheduler")
    assert status_of(sandbox_node, "1.4.1") == (Status.PASS, "--profiling=false")
    kinds = [e.kind for e in events]
    assert kinds.index(Kind.RESTART) < kinds.index(Kind.HEALTHY) < kinds.index(Kind.STABLE)
    assert any(e.kind is Kind.POLL and e.latency_ms is not None for e in events)
    assert [e.outcome for e in events if e.kind is Kind.OUTCOME] == [Outcome.COMMITTED]


def test_ten_fixes_to_one_manifest_restart_it_exactly_once(sandbox_node):
    # Not 1.2.1: --anonymous-auth=false fails the kubelet's anonymous probes and is rolled
    # back (tests/e2e/test_kubelet_probes.py).
    ids = ["1.2.3", "1.2.5", "1.2.11", "1.2.15", "1.2.16", "1.2.17", "1.2.18", "1.2.19",
           "1.2.29", "1.2.30"]  # fmt: skip
    plan = catalog_plan(sandbox_node, *ids)
    assert [f.component for f in plan.files] == ["kube-apiserver"]
    since = time.time()
    events: list[Event] = []
    result = asyncio.run(engine_for(sandbox_node, events).apply(plan))
    assert result.exit_code == 0, [f.message for f in result.files]
    assert len(sandbox_node.events("kube-apiserver", "started", since=since)) == 1
    snap = take_snapshot(load_settings(config=sandbox_node.config))
    assert {r.id: r.status for r in evaluate(CATALOG, snap, ids)} == dict.fromkeys(ids, Status.PASS)


def test_a_flag_the_component_refuses_is_rolled_back(sandbox_node):
    path = load_settings(config=sandbox_node.config).layout.manifest("kube-scheduler")
    original = path.read_bytes()
    old_pid = sandbox_node.pid_of("kube-scheduler")
    events: list[Event] = []
    plan = hand_plan(sandbox_node, "kube-scheduler", add_flag("--no-such-flag=1"))
    result = asyncio.run(engine_for(sandbox_node, events, timeout=8).apply(plan))
    assert result.exit_code == 1
    (file,) = result.files
    assert file.outcome is Outcome.ROLLED_BACK
    assert path.read_bytes() == original
    assert sandbox_node.pid_of("kube-scheduler") != old_pid  # restarted on the old config
    assert "--no-such-flag=1" not in sandbox_node.args_of("kube-scheduler")
    assert any(e.kind is Kind.ROLLBACK for e in events)


def test_an_unmounted_file_is_rolled_back(sandbox_node):
    settings = load_settings(config=fast(sandbox_node))
    policy = settings.layout.audit_policy_file
    policy.write_text("apiVersion: audit.k8s.io/v1\nkind: Policy\nrules:\n- level: Metadata\n")
    path = settings.layout.manifest("kube-apiserver")
    original = path.read_bytes()

    def without_mount(text: str) -> str:  # the classic outage: the flag, no volume
        return text.replace(
            "    - --allow-privileged=true\n",
            f"    - --allow-privileged=true\n    - --audit-policy-file={policy}\n",
            1,
        )

    result = asyncio.run(
        engine_for(sandbox_node, [], timeout=8).apply(
            hand_plan(sandbox_node, "kube-apiserver", without_mount)
        )
    )
    assert result.files[0].outcome is Outcome.ROLLED_BACK
    assert path.read_bytes() == original
    # the stand-in refused to start, as the real API server does, naming the file
    assert any(str(policy) in str(e) for e in sandbox_node.events("kube-apiserver", "exited"))


def test_crash_loop_after_a_first_healthy_answer_is_rolled_back(sandbox_factory):
    run = sandbox_factory(
        faults=[
            Fault(
                component="kube-scheduler",
                argv_contains="--profiling=false",
                crash_after_healthy=0.3,
            )
        ]
    )
    events: list[Event] = []
    result = asyncio.run(engine_for(run, events, timeout=10).apply(catalog_plan(run, "1.4.1")))
    assert result.files[0].outcome is Outcome.ROLLED_BACK
    assert any(e.kind is Kind.HEALTHY for e in events)  # it did answer healthy once
    assert "--profiling=false" not in run.args_of("kube-scheduler")
    assert status_of(run, "1.4.1")[0] is Status.FAIL


def test_an_audit_failure_is_rolled_back(sandbox_node):
    """The change takes effect and is healthy, but the checks it claims to fix still fail."""
    settings = load_settings(config=fast(sandbox_node))
    path = settings.layout.manifest("kube-scheduler")
    original = path.read_bytes()
    file = FilePlan(
        "manifest",
        "kube-scheduler",
        path,
        original.decode(),
        add_flag("--profiling=true")(original.decode()),
        ("1.4.1",),
    )
    result = asyncio.run(
        engine_for(sandbox_node, []).apply(Plan("cis-1.12", ("1.4.1",), {}, (file,)))
    )
    assert result.files[0].outcome is Outcome.ROLLED_BACK
    assert "audit re-check failed: 1.4.1 FAIL" in result.files[0].message
    assert path.read_bytes() == original


def test_old_configuration_also_broken_is_critical(sandbox_node):
    """The running scheduler loaded its kubeconfig long ago; remove it so the old config cannot
    start again either: the rollback cannot restore health."""
    settings = load_settings(config=fast(sandbox_node))
    conf = settings.layout.scheduler_conf
    hidden = conf.with_name(".scheduler.conf.moved")
    conf.rename(hidden)
    try:
        plan = hand_plan(sandbox_node, "kube-scheduler", add_flag("--no-such-flag=1"))
        result = asyncio.run(engine_for(sandbox_node, [], timeout=5).apply(plan))
        assert result.exit_code == 3
        (file,) = result.files
        assert file.outcome is Outcome.CRITICAL
        assert "Restore by hand: cis-tui recover --yes" in file.message
        assert "install -m 0600" in file.message
    finally:
        restored = time.time()
        hidden.rename(conf)
    sandbox_node.wait_healthy("kube-scheduler", since=restored, timeout=30)


def test_etcd_change_waits_for_the_apiserver_too(sandbox_node):
    events: list[Event] = []
    plan = hand_plan(
        sandbox_node,
        "etcd",
        lambda t: t.replace("    - --snapshot-count=10000\n", "    - --snapshot-count=20000\n"),
    )
    result = asyncio.run(engine_for(sandbox_node, events).apply(plan))
    assert result.exit_code == 0, [f.message for f in result.files]
    assert {e.component for e in events if e.kind is Kind.STABLE} == {"etcd", "kube-apiserver"}


# ---- the CLI as an admin runs it: signals, kill -9, concurrency ----


def cli(run, *args: str) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-m", "cis_tui", "--config", str(fast(run)), *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )


def read_events_until(proc: subprocess.Popen, predicate, timeout: float = 60) -> list[dict]:
    seen = []
    deadline = time.monotonic() + timeout
    assert proc.stdout is not None
    while time.monotonic() < deadline:
        line = proc.stdout.readline()
        if not line:
            break
        event = json.loads(line)
        seen.append(event)
        if predicate(event):
            return seen
    raise AssertionError(f"event not seen; last: {seen[-3:]}")


@pytest.mark.parametrize("sig", [signal.SIGHUP, signal.SIGTERM, signal.SIGINT])
def test_signal_during_the_gate_rolls_back(sandbox_node, sig):
    path = load_settings(config=sandbox_node.config).layout.manifest("kube-scheduler")
    original = path.read_bytes()
    proc = cli(sandbox_node, "apply", "1.4.1", "--yes", "--format", "json")
    read_events_until(proc, lambda e: e["kind"] == "poll")
    proc.send_signal(sig)
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 1, err
    events = [json.loads(line) for line in out.splitlines()]
    (rolled,) = [e for e in events if e.get("outcome") == "rolled-back"]
    assert rolled["message"].endswith(f"stopped by {sig.name}")  # not "cancelled by the admin"
    assert path.read_bytes() == original


def test_two_concurrent_applies_one_gets_exit_4(sandbox_node):
    first = cli(sandbox_node, "apply", "1.4.1", "--yes", "--format", "json")
    read_events_until(first, lambda e: e.get("step") == "lock")
    second = cli(sandbox_node, "apply", "1.3.2", "--yes", "--format", "json")
    _, err = second.communicate(timeout=60)
    assert second.returncode == 4
    assert f"(PID {first.pid}) holds the node lock" in err
    first.communicate(timeout=120)
    assert first.returncode == 0


STEPS = ["backup", "journal", "write", "restart-evidence", "health", "audit"]


@pytest.mark.parametrize("step", STEPS)
def test_kill_9_after_each_step_then_recover(sandbox_node, step):
    settings = load_settings(config=fast(sandbox_node))
    path = settings.layout.manifest("kube-scheduler")
    original = path.read_bytes()
    (planned,) = catalog_plan(sandbox_node, "1.4.1").files
    proc = cli(sandbox_node, "apply", "1.4.1", "--yes", "--format", "json")
    read_events_until(
        proc, lambda e: e["kind"] == "step" and e.get("step") == step and e.get("ok") is True
    )
    os.killpg(proc.pid, signal.SIGKILL)
    proc.communicate(timeout=30)
    assert path.read_bytes() in (original, planned.new_text.encode())  # never half-written
    open_tx = Journal(settings.state_dir).open_transactions()
    rec = subprocess.run(
        [sys.executable, "-m", "cis_tui", "--config", str(sandbox_node.config), "recover", "--yes"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert rec.returncode == 0, rec.stdout + rec.stderr
    if open_tx:
        assert "recovered" in rec.stdout
        assert path.read_bytes() == original
    else:
        assert "Nothing to recover" in rec.stdout
    assert Journal(settings.state_dir).open_transactions() == []
