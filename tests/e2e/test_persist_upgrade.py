"""Issue 14's promise, end to end on a running sandbox: harden with `cis-tui apply`, run what
`kubeadm upgrade apply` does (`cis-tui sandbox upgrade`), scan again. With persistence the
fixes are still there (the audit volumes too); without it they are gone, as scan had said."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

from cis_tui.audit.node import parse_manifest
from cis_tui.sandbox import events as ev
from cis_tui.sandbox.upgrade import upgrade_sandbox
from tests.e2e.conftest import FAST_HEALTH, SandboxFactory, needs_etcd, sandbox_factory  # noqa: F401

FIXES = ("1.2.15", "1.2.16", "4.2.14")


def cis_tui(config: Path, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "cis_tui", "--config", str(config), *args],
        capture_output=True,
        text=True,
        timeout=300,
    )


def scan(config: Path) -> dict[str, tuple[str, bool | None]]:
    out = cis_tui(config, "scan", "--format", "json", "--check", ",".join(FIXES))
    assert out.stdout.startswith("{"), out.stderr
    return {r["id"]: (r["status"], r["persisted"]) for r in json.loads(out.stdout)["results"]}


def harden_then_upgrade(run, config: Path) -> tuple[dict, dict, str]:
    applied = cis_tui(config, "apply", *FIXES, "--yes")
    assert applied.returncode in (0, 1), applied.stdout + applied.stderr
    before = scan(config)
    upgraded = time.time()
    lines = upgrade_sandbox(run.dir, restart_kubelet=True)
    # kubeadm replaces only a manifest that differs from what it generates; the agent restarts
    # the components whose file was replaced, and the kubelet was asked to restart.
    replaced = [
        c
        for c in ("kube-apiserver", "kube-controller-manager", "kube-scheduler")
        if any("Moving new manifest to" in line and f"{c}.yaml" in line for line in lines)
    ]
    for component in (*replaced, "kubelet"):
        started = run.wait_event(component, ev.STARTED, since=upgraded)
        run.wait_healthy(component, since=started.time)
    return before, scan(config), applied.stdout


@needs_etcd
def test_persisted_fixes_survive_kubeadm_upgrade(sandbox_factory: SandboxFactory) -> None:  # noqa: F811
    run = sandbox_factory()
    config = run.config
    config.write_text(config.read_text() + FAST_HEALTH)
    before, after, out = harden_then_upgrade(run, config)
    assert "persisted in configmap kube-system/kubeadm-config ClusterConfiguration" in out
    assert "persisted in configmap kube-system/kubelet-config kubelet" in out
    assert before == {check: ("PASS", True) for check in FIXES}
    assert after == {check: ("PASS", True) for check in FIXES}
    path = run.paths.manifest("kube-apiserver")
    manifest = parse_manifest(path.read_text(), path, "kube-apiserver")
    assert {"audit-log", "audit-policy"} <= {v.name for v in manifest.volumes}  # volumes intact
    assert {"audit-log", "audit-policy"} <= {m.name for m in manifest.mounts}
    args = run.args_of("kube-apiserver")
    assert "--profiling=false" in args
    assert any(a.startswith("--audit-log-path=") for a in args)


@needs_etcd
def test_without_persistence_the_upgrade_reverts_them_as_scan_said(
    sandbox_factory: SandboxFactory,  # noqa: F811
) -> None:
    run = sandbox_factory()
    config = run.config
    text = config.read_text().replace("[persist]\n", '[persist]\nmode = "off"\n')
    config.write_text(text + FAST_HEALTH)
    before, after, out = harden_then_upgrade(run, config)
    assert "Persistence: off ([persist] mode = off" in out
    assert before == {check: ("PASS", False) for check in FIXES}  # said beforehand
    assert {check: status for check, (status, _) in after.items()} == {
        "1.2.15": "FAIL",
        "1.2.16": "FAIL",
        "4.2.14": "WARN",  # a manual check
    }
    assert "--profiling=false" not in run.args_of("kube-apiserver")


@needs_etcd
def test_a_health_gate_failure_leaves_kubeadm_config_as_it_was(
    sandbox_factory: SandboxFactory,  # noqa: F811
) -> None:
    """A change that crash-loops the scheduler is rolled back before anything reaches the
    stored configuration: the next upgrade cannot bring it back."""
    from cis_tui.sandbox.configmaps import read_configmap

    run = sandbox_factory()
    config = run.config
    config.write_text(config.read_text() + FAST_HEALTH)
    before = read_configmap(run.paths, "kube-system", "kubeadm-config")
    roll_back_a_crashing_scheduler(config)
    assert read_configmap(run.paths, "kube-system", "kubeadm-config") == before


def roll_back_a_crashing_scheduler(config: Path) -> None:
    """Apply a scheduler flag it refuses, persisted as the config says: it is rolled back."""
    import asyncio

    from cis_tui.benchmarks.catalog import load_catalog
    from cis_tui.engine.events import Outcome
    from cis_tui.engine.transaction import Engine
    from cis_tui.layout import load_settings
    from cis_tui.persist.planner import attach_persistence
    from cis_tui.remediate.plan import FilePlan, Plan

    settings = load_settings(config=config)
    path = settings.layout.manifest("kube-scheduler")
    old = path.read_text()
    new = old.replace(
        "    - --leader-elect=true\n",
        "    - --leader-elect=true\n    - --leader-elect-retry-period=bogus\n",
    )
    plan = attach_persistence(
        Plan("cis-1.12", (), {}, (FilePlan("manifest", "kube-scheduler", path, old, new, ()),)),
        settings,
    )
    (file,) = plan.files
    assert file.persist is not None and "bogus" in file.persist.new_text  # planned
    result = asyncio.run(
        Engine(settings, load_catalog("cis-1.12"), lambda e: None, timeout=10).apply(plan)
    )
    assert result.files[0].outcome is Outcome.ROLLED_BACK, result.files[0].message
    assert path.read_text() == old
