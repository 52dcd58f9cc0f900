"""The health gate on live sandbox nodes judges as the kubelet will: no credentials, and a
stability window that covers the kubelet's first liveness judgement of the new process."""

from __future__ import annotations

import asyncio
import re
import time
from pathlib import Path

from cis_tui.benchmarks.catalog import load_catalog
from cis_tui.engine.events import Event, Kind, Outcome, Step, format_event
from cis_tui.engine.transaction import Engine
from cis_tui.layout import load_settings
from cis_tui.remediate.plan import FilePlan, Plan
from cis_tui.sandbox import events as ev
from cis_tui.sandbox import manifests as mf
from cis_tui.sandbox.harness import SandboxRun
from cis_tui.sandbox.settings import Fault
from tests.e2e.conftest import SandboxFactory
from tests.sandbox.test_agent_probes import rewrite, set_probe

CATALOG = load_catalog("cis-1.12")
TIMEOUTS = """
[health.timeouts]
etcd = 30
kube-apiserver = 30
kube-controller-manager = 20
kube-scheduler = 14
kubelet = 20
"""


def configure(run: SandboxRun, health: str) -> Path:
    config = run.config
    text = config.read_text()
    assert "[health" not in text
    config.write_text(text + health)
    return config


def test_anonymous_auth_false_alone_is_rolled_back(sandbox_node: SandboxRun) -> None:
    """A bare `--anonymous-auth=false` on kubeadm's defaults (what `apply 1.2.1` planned before
    it offered the AuthenticationConfiguration allow-list, tests/e2e/test_authn_config.py):
    every anonymous probe of the API server now gets 401, so the kubelet would restart it in a
    loop (kubeadm#798). Before: the gate retried with the client certificate that the sandbox's
    config names, passed, and committed."""
    run = sandbox_node
    config = configure(run, "\n[health]\nstable_seconds = 1.0\n" + TIMEOUTS)
    settings = load_settings(config=config)
    assert settings.health.client_cert is not None and settings.health.client_cert.is_file()
    manifest = settings.layout.manifest("kube-apiserver")
    original = manifest.read_bytes()
    old = original.decode()
    new = mf.set_flag(old, "--anonymous-auth", "false")
    plan = Plan("cis-1.12", (), {}, (FilePlan("manifest", "kube-apiserver", manifest, old, new, ("1.2.1",)),))  # fmt: skip
    events: list[Event] = []
    started = time.monotonic()
    result = asyncio.run(Engine(settings, CATALOG, events.append).apply(plan))
    took = time.monotonic() - started
    assert result.exit_code == 1, [f.message for f in result.files]
    out = "\n".join(line for line in map(format_event, events) if line is not None)
    assert re.search(r"answered 401 to an anonymous request \d+ times in a row over", out), out
    assert "kubeadm#798" in out and "ROLLED-BACK" in out
    assert manifest.read_bytes() == original
    assert took < 30, took  # failed fast: not the 30 s gate timeout
    # The API server runs the old arguments again, healthy to an anonymous probe.
    assert "--anonymous-auth=false" not in run.args_of("kube-apiserver")
    assert re.search(r"kube-apiserver: probe \S+/livez 200 .*stable \d+\.\d s / 1 s", out), out
    healthy = run.events("kube-apiserver", ev.HEALTHY)
    assert healthy and healthy[-1].pid == run.pid_of("kube-apiserver")


def test_a_crash_inside_the_liveness_window_is_rolled_back(sandbox_factory: SandboxFactory) -> None:
    """The new scheduler crashes 7 s after answering healthy. Its liveness probe (4 s initial
    delay + 4 s period) makes the window 8 s: the gate is still watching at 7 s and rolls back.
    Before: the fixed 5 s window had passed and the change was committed."""
    fault = Fault(component="kube-scheduler", argv_contains="--v=3", crash_after_healthy=7.0)
    run = sandbox_factory(faults=[fault])
    config = configure(run, "\n[health]\npoll_max = 0.5\n" + TIMEOUTS)
    settings = load_settings(config=config)
    path = settings.layout.manifest("kube-scheduler")
    # The running configuration: a 1 s + 2 s liveness probe, so its own window is 3 s.
    old = set_probe(path.read_text(), "livenessProbe", initialDelaySeconds=1, periodSeconds=2)
    since = rewrite(path, old)
    run.wait_healthy("kube-scheduler", since=since)
    run.wait_for(
        lambda e: e.event == ev.STARTED and e.time >= since and e.component == "kube-scheduler"
    )
    new = set_probe(mf.set_flag(old, "--v", "3"), "livenessProbe", initialDelaySeconds=4, periodSeconds=4)  # fmt: skip
    plan = Plan("cis-1.12", (), {}, (FilePlan("manifest", "kube-scheduler", path, old, new, ()),))
    events: list[Event] = []
    began = time.monotonic()
    result = asyncio.run(Engine(settings, CATALOG, events.append).apply(plan))
    took = time.monotonic() - began
    (file,) = result.files
    assert file.outcome is Outcome.ROLLED_BACK, file.message
    assert path.read_text() == old
    assert took < 25, took
    gates = [
        e.message for e in events if e.kind is Kind.STEP and e.step is Step.HEALTH and e.ok is None
    ]
    assert gates[0].endswith("stable for 8 s (livenessProbe initialDelaySeconds + periodSeconds)")
    assert gates[-1].endswith("stable for 3 s (livenessProbe initialDelaySeconds + periodSeconds)")
    crash = run.wait_event("kube-scheduler", ev.FAULT, since=since)
    assert crash.get("fault") == "crash_after_healthy"
    polls = [e for e in events if e.kind is Kind.POLL and e.window == 8.0]
    assert polls and max(e.stable or 0.0 for e in polls) >= 6.0  # it was healthy ~7 s ...
    assert all((e.stable or 0.0) < 8.0 for e in polls)  # ... never for the whole window
    stable = [e for e in events if e.kind is Kind.STABLE]
    assert [e.window for e in stable] == [3.0]  # only the rollback's gate passed
    assert "--v=3" not in run.args_of("kube-scheduler")
