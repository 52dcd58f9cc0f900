"""`sandbox upgrade` on a running node: the agent restarts what kubeadm's regeneration changed,
as a kubelet restarts a static pod whose manifest was replaced."""

from __future__ import annotations

import os
import time

from cis_tui.sandbox import events as ev
from cis_tui.sandbox import manifests as mf
from cis_tui.sandbox.upgrade import upgrade_sandbox
from tests.e2e.conftest import SandboxFactory, needs_etcd, sandbox_factory  # noqa: F401


@needs_etcd
def test_upgrade_reverts_a_hand_edit_and_the_agent_restarts_the_api_server(
    sandbox_factory: SandboxFactory,  # noqa: F811
) -> None:
    run = sandbox_factory()
    manifest = run.paths.manifest("kube-apiserver")
    regenerated = manifest.read_text()  # what kubeadm writes for this node
    # A hand edit, as an admin (or cis-tui without persistence) makes it: running with the flag.
    edited = time.time()
    tmp = manifest.with_name(".kube-apiserver.yaml.tmp")
    tmp.write_text(mf.set_flag(regenerated, "--profiling", "false"))
    os.chmod(tmp, 0o600)
    os.replace(tmp, manifest)
    started = run.wait_event("kube-apiserver", ev.STARTED, since=edited)
    run.wait_healthy("kube-apiserver", since=started.time)
    assert "--profiling=false" in run.args_of("kube-apiserver")
    others = {c: run.pid_of(c) for c in ("etcd", "kube-controller-manager", "kube-scheduler")}
    kubelet = run.pid_of("kubelet")

    upgraded = time.time()
    lines = upgrade_sandbox(run.dir, restart_kubelet=True)

    restarted = run.wait_event("kube-apiserver", ev.STARTED, since=upgraded)
    run.wait_healthy("kube-apiserver", since=restarted.time)
    args = run.args_of("kube-apiserver")
    assert "--profiling=false" not in args
    assert args == [
        f"{flag}={value}" if value is not None else flag
        for flag, value in mf.flags(regenerated).items()
    ]
    # The manifest was replaced in one rename: the agent saw a change, never a removal.
    assert not run.events("kube-apiserver", ev.REMOVED, since=upgraded)
    # Nothing else changed, so nothing else restarted; the kubelet was asked to.
    assert {c: run.pid_of(c) for c in others} == others
    assert run.wait_event("kubelet", ev.STARTED, since=upgraded).pid != kubelet
    assert "[kubelet] Restarted the kubelet (systemctl restart kubelet)" in lines
    run.wait_healthy("kubelet", since=upgraded)
