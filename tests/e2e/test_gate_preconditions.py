"""What the gate needs is checked before anything changes (issue 11, item 3)."""

from __future__ import annotations

import asyncio

from cis_tui.engine.events import Outcome
from cis_tui.layout import load_settings
from tests.e2e.test_engine import catalog_plan, engine_for, fast


def test_an_unloadable_cluster_ca_stops_the_apply_before_the_write(sandbox_node):
    settings = load_settings(config=fast(sandbox_node))
    manifest = settings.layout.manifest("kube-scheduler")
    before = manifest.read_bytes()
    ca = settings.layout.ca_cert
    plan = catalog_plan(sandbox_node, "1.4.1")
    pid = sandbox_node.pid_of("kube-scheduler")
    saved = ca.read_bytes()
    ca.write_text("not a certificate\n")
    try:
        result = asyncio.run(engine_for(sandbox_node, []).apply(plan))
    finally:
        ca.write_bytes(saved)
    (file,) = result.files
    assert file.outcome is Outcome.SKIPPED and result.exit_code == 1
    assert str(ca) in file.message and "nothing changed" in file.message
    assert manifest.read_bytes() == before
    assert sandbox_node.pid_of("kube-scheduler") == pid  # never restarted
