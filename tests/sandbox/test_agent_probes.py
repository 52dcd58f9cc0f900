"""The sandbox agent probes like the kubelet: startup gates liveness and readiness, a failing
startup or liveness probe gets the container killed and restarted, all anonymously."""

from __future__ import annotations

import os
import re
import time
from pathlib import Path

import psutil

from cis_tui.sandbox import events as ev
from cis_tui.sandbox import manifests as mf
from cis_tui.sandbox.harness import SandboxRun
from cis_tui.sandbox.pods import load_pod, pod_from_data
from cis_tui.sandbox.settings import Fault
from tests.e2e import conftest as e2e
from tests.e2e.conftest import SandboxFactory

KUBEADM = Path(__file__).resolve().parents[2] / "cis_tui" / "sandbox" / "kubeadm"
sandbox_factory = e2e.sandbox_factory  # the e2e fixture: real agents, checked at teardown
TIMINGS = ("initialDelaySeconds", "periodSeconds", "timeoutSeconds", "failureThreshold")


def set_probe(text: str, kind: str, **timings: int) -> str:
    """The manifest with `kind`'s timing fields replaced by `timings` (its httpGet kept)."""
    m = re.search(rf"^    {kind}:\n((?:      .*\n)+)", text, re.M)
    assert m is not None, kind
    kept = [
        line
        for line in m.group(1).splitlines(keepends=True)
        if not line.startswith(tuple(f"      {t}:" for t in TIMINGS))
    ]
    added = "".join(f"      {k}: {v}\n" for k, v in timings.items())
    return f"{text[: m.start()]}    {kind}:\n{added}{''.join(kept)}{text[m.end() :]}"


def drop_probe(text: str, kind: str) -> str:
    return re.sub(rf"^    {kind}:\n(?:      .*\n)+", "", text, count=1, flags=re.M)


def rewrite(path: Path, text: str) -> float:
    """Replace a manifest atomically (a dot-file, then rename); the time just before."""
    before = time.time()
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(text)
    os.chmod(tmp, 0o600)
    os.replace(tmp, path)
    return before


def probe_events(run: SandboxRun, component: str, since: float) -> list[ev.Event]:
    kinds = {ev.PROBE_FAILED, ev.PROBE_SUCCEEDED, ev.READY, ev.NOT_READY}
    return [e for e in run.events(component, since=since) if e.event in kinds]


def test_probe_timings_are_read_with_kubernetes_defaults(tmp_path: Path) -> None:
    pod = load_pod(KUBEADM / "kube-apiserver.yaml")
    by_kind = {p.kind: p for p in pod.probes}
    live, ready, start = (
        by_kind["livenessProbe"],
        by_kind["readinessProbe"],
        by_kind["startupProbe"],
    )
    assert (live.initial_delay, live.period, live.timeout, live.failure_threshold) == (
        10,
        10,
        15,
        8,
    )
    assert (ready.initial_delay, ready.period, ready.failure_threshold) == (0, 1, 3)
    assert (start.initial_delay, start.period, start.failure_threshold) == (10, 10, 24)
    bare = {
        "kind": "Pod",
        "metadata": {"name": "p"},
        "spec": {
            "containers": [
                {
                    "command": ["kube-scheduler"],
                    "livenessProbe": {
                        "httpGet": {
                            "port": 1,
                            "path": "/livez",
                            "httpHeaders": [{"name": "X-Probe", "value": "1"}],
                        }
                    },
                }
            ]
        },
    }
    (probe,) = pod_from_data(bare, tmp_path / "p.yaml").probes
    assert (probe.initial_delay, probe.period, probe.timeout) == (0, 10, 1)
    assert (probe.failure_threshold, probe.success_threshold) == (3, 1)
    assert probe.headers == (("X-Probe", "1"),) and probe.name == "liveness"


def test_a_failing_liveness_probe_gets_the_container_killed_and_restarted(
    sandbox_factory: SandboxFactory,
) -> None:
    """The scheduler serves but never answers healthy once started with --v=3: with no
    startup probe, liveness (1 s, twice) fails it and the agent restarts it, with back-off."""
    fault = Fault(component="kube-scheduler", argv_contains="--v=3", never_ready=True)
    run = sandbox_factory(faults=[fault])
    path = run.paths.manifest("kube-scheduler")
    text = drop_probe(mf.set_flag(path.read_text(), "--v", "3"), "startupProbe")
    text = set_probe(text, "livenessProbe", initialDelaySeconds=1, periodSeconds=1, failureThreshold=2)  # fmt: skip
    since = rewrite(path, text)
    started = run.wait_for(
        lambda e: e.component == "kube-scheduler" and e.event == ev.STARTED and e.time >= since
    )
    killed = run.wait_for(
        lambda e: (
            e.component == "kube-scheduler"
            and e.event == ev.RESTARTING
            and e.pid == started.pid
            and "failed liveness probe" in str(e.get("reason"))
        ),
        timeout=20,
    )
    failures = [
        e
        for e in probe_events(run, "kube-scheduler", since)
        if e.event == ev.PROBE_FAILED and e.pid == started.pid
    ]
    assert [(e.get("probe"), e.get("failures"), e.get("threshold")) for e in failures] == [
        ("liveness", 1, 2),
        ("liveness", 2, 2),
    ]
    assert "HTTP probe failed with statuscode: 500" in failures[0].get("message")
    # the first probe waited initialDelaySeconds, the second came periodSeconds later
    assert failures[0].time - started.time >= 0.9
    assert 0.8 <= failures[1].time - failures[0].time <= 2.0
    backoff = run.wait_event("kube-scheduler", ev.BACKOFF, since=killed.time)
    again = run.wait_event("kube-scheduler", ev.STARTED, since=backoff.time)
    assert again.pid != started.pid
    assert not psutil.pid_exists(started.pid) or psutil.Process(started.pid).status() == "zombie"


def test_anonymous_auth_off_fails_the_startup_probe_as_on_a_kubeadm_node(
    sandbox_factory: SandboxFactory,
) -> None:
    """kubeadm#798 on the sandbox: every probe of the API server now gets 401; the startup
    probe fails failureThreshold times and the container is restarted; liveness and readiness
    never ran, since the startup probe gates them."""
    run = sandbox_factory()
    path = run.paths.manifest("kube-apiserver")
    text = mf.set_flag(path.read_text(), "--anonymous-auth", "false")
    text = set_probe(text, "startupProbe", initialDelaySeconds=1, periodSeconds=1, failureThreshold=3)  # fmt: skip
    text = set_probe(text, "livenessProbe", initialDelaySeconds=1, periodSeconds=1, failureThreshold=1)  # fmt: skip
    since = rewrite(path, text)
    started = run.wait_for(
        lambda e: (
            e.component == "kube-apiserver"
            and e.event == ev.STARTED
            and e.time >= since
            and "--anonymous-auth=false" in e.get("argv", [])
        )
    )
    killed = run.wait_for(
        lambda e: (
            e.component == "kube-apiserver"
            and e.event == ev.RESTARTING
            and e.pid == started.pid
            and "failed startup probe" in str(e.get("reason"))
        ),
        timeout=20,
    )
    seen = [e for e in probe_events(run, "kube-apiserver", since) if e.pid == started.pid]
    assert [e.get("probe") for e in seen] == ["startup"] * 3
    assert all("statuscode: 401" in e.get("message") for e in seen)
    assert run.wait_event("kube-apiserver", ev.BACKOFF, since=killed.time)


def test_a_healthy_node_is_probed_cheaply_and_never_killed(sandbox_factory: SandboxFactory) -> None:
    """Short probe periods on every pod: each passes its startup probe, turns ready, is never
    restarted, and the agent stays nearly idle while it probes (the loops sleep)."""
    run = sandbox_factory()
    since = time.time()
    for comp in ("kube-scheduler", "kube-controller-manager"):
        path = run.paths.manifest(comp)
        text = path.read_text()
        for kind in ("startupProbe", "livenessProbe", "readinessProbe"):
            if f"    {kind}:" in text:  # the controller-manager has no readiness probe
                text = set_probe(text, kind, periodSeconds=1)
        rewrite(path, text)
    for comp in ("kube-scheduler", "kube-controller-manager"):
        run.wait_for(
            lambda e, c=comp: (
                e.component == c and e.event == ev.PROBE_SUCCEEDED and e.time >= since
            ),
            timeout=20,
        )
    run.wait_for(
        lambda e: e.component == "kube-scheduler" and e.event == ev.READY and e.time >= since
    )
    agent = psutil.Process(run.process.pid)
    before = agent.cpu_times()
    t0 = time.monotonic()
    deadline = t0 + 3.0
    while time.monotonic() < deadline:  # three seconds of probing: 3 probes a second
        time.sleep(0.5)
    after = agent.cpu_times()
    busy = (after.user + after.system - before.user - before.system) / (time.monotonic() - t0)
    print(f"agent CPU while probing: {busy:.1%} of a core")
    assert busy < 0.15, f"the agent used {busy:.0%} of a core"
    for comp in ("kube-scheduler", "kube-controller-manager"):
        events = run.events(comp, since=since)
        # (a startup probe may fail while the process is still binding its port)
        failed = [e for e in events if e.event == ev.PROBE_FAILED and e.get("probe") != "startup"]
        assert not failed and not [e for e in events if e.event == ev.NOT_READY], comp
        assert len([e for e in events if e.event == ev.STARTED]) == 1, comp


def test_the_probes_stop_with_the_container(sandbox_factory: SandboxFactory) -> None:
    """A replaced pod's old process, and every process after the agent stopped, is probed no
    more (a probe after its container's exit would be an orphaned loop)."""
    run = sandbox_factory()
    path = run.paths.manifest("kube-scheduler")
    text = set_probe(path.read_text(), "startupProbe", periodSeconds=1)
    text = set_probe(text, "readinessProbe", periodSeconds=1)
    since = rewrite(path, text)
    first = run.wait_for(
        lambda e: e.component == "kube-scheduler" and e.event == ev.READY and e.time >= since
    )
    since2 = rewrite(path, mf.set_flag(text, "--v", "2"))
    exited = run.wait_for(
        lambda e: e.component == "kube-scheduler" and e.event == ev.EXITED and e.pid == first.pid
    )
    run.wait_for(
        lambda e: e.component == "kube-scheduler" and e.event == ev.READY and e.time >= since2
    )
    assert run.stop() == 0
    events = run.events(since=since)
    kinds = {ev.PROBE_FAILED, ev.PROBE_SUCCEEDED, ev.READY, ev.NOT_READY}
    assert not [
        e for e in events if e.pid == first.pid and e.event in kinds and e.time > exited.time
    ]
    stopped = next(e for e in events if e.event == ev.AGENT_STOPPED)
    assert not [e for e in events if e.event in kinds and e.time > stopped.time]
