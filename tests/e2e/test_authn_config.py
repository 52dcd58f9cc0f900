"""CIS 1.2.1 on a live sandbox (kubeadm v1.35 manifests): the AuthenticationConfiguration fix
goes through the health gate and commits, because the kubelet's anonymous probes still get
200 while every other anonymous request gets 401 (issue 13 item 10)."""

from __future__ import annotations

import asyncio
import urllib.parse

from cis_tui.audit.evaluate import Status, evaluate
from cis_tui.audit.node import take_snapshot
from cis_tui.benchmarks.catalog import load_catalog
from cis_tui.engine.events import Event, Kind, Outcome
from cis_tui.engine.transaction import Engine
from cis_tui.layout import load_settings
from cis_tui.remediate.plan import build_plan
from cis_tui.sandbox import events as ev
from cis_tui.sandbox.harness import SandboxRun
from tests.e2e.test_engine import fast
from tests.e2e.test_sandbox import client_cert, get, probe_url

CATALOG = load_catalog("cis-1.12")
CLUSTER_INFO = "/api/v1/namespaces/kube-public/configmaps/cluster-info"


def test_anonymous_allow_list_commits_and_keeps_the_probes_healthy(sandbox_node: SandboxRun):
    run = sandbox_node
    settings = load_settings(config=fast(run))
    assert "--anonymous-auth" not in " ".join(run.args_of("kube-apiserver"))
    plan = build_plan(CATALOG, take_snapshot(settings), ["1.2.1"], {})
    assert plan.checks == ("1.2.1",), plan.skipped
    (file,) = plan.files
    (companion,) = file.companions
    assert companion.mode == 0o600 and b"kind: AuthenticationConfiguration" in companion.content
    old_pid = run.pid_of("kube-apiserver")

    events: list[Event] = []
    result = asyncio.run(Engine(settings, CATALOG, events.append).apply(plan))

    assert result.exit_code == 0, [f.message for f in result.files]
    assert [e.outcome for e in events if e.kind is Kind.OUTCOME] == [Outcome.COMMITTED]
    assert companion.path.stat().st_mode & 0o777 == 0o600
    args = run.args_of("kube-apiserver")
    assert run.pid_of("kube-apiserver") != old_pid
    assert f"--authentication-config={companion.node_path}" in args
    assert not any(a.startswith("--anonymous-auth") for a in args)
    # The kubelet's probes (anonymous, like these requests) still pass; nothing else does.
    url = urllib.parse.urlsplit(probe_url(run, "kube-apiserver"))
    base = f"https://{url.netloc}"
    for path in ("/livez", "/readyz", "/healthz", CLUSTER_INFO):
        assert get(base + path) == 200, path
    assert get(base + "/api/v1/namespaces") == 401
    assert get(base + "/version") == 401
    assert get(base + "/api/v1/namespaces", cert=client_cert(run)) != 401
    healthy = run.events("kube-apiserver", ev.HEALTHY)
    assert healthy and healthy[-1].pid == run.pid_of("kube-apiserver")
    # A re-scan judges the node as the API server runs it: 1.2.1 passes, saying why.
    (after,) = evaluate(CATALOG, take_snapshot(load_settings(config=run.config)), ["1.2.1"])
    assert after.status is Status.PASS, after.reason
    assert after.live_value is not None and after.disagreement is None
    assert "kubeadm's probes and join discovery keep working" in after.reason
    assert "/api/v1/namespaces/kube-public/configmaps/cluster-info" in after.reason
