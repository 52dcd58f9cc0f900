"""A cancel that arrives while a rollback waits for the old configuration is not heard: the
rollback runs to its end (a second ctrl+c must not turn a clean rollback into CRITICAL)."""

from __future__ import annotations

import asyncio

from cis_tui.engine.events import Event, Kind, Outcome
from tests.e2e.test_engine import add_flag, engine_for, hand_plan


def test_a_cancel_during_the_rollback_gate_still_ends_rolled_back(sandbox_node):
    plan = hand_plan(sandbox_node, "kube-scheduler", add_flag("--no-such-flag=1"))
    events: list[Event] = []
    engine = engine_for(sandbox_node, [], timeout=8)

    def sink(event: Event) -> None:
        events.append(event)
        rolling_back = any(e.kind is Kind.ROLLBACK for e in events)
        if rolling_back and event.kind is Kind.POLL:
            engine.cancel.set()  # ctrl+c again, while the old configuration is being probed

    engine.sink = sink
    result = asyncio.run(engine.apply(plan))
    (file,) = result.files
    assert any(e.kind is Kind.POLL for e in events[[e.kind for e in events].index(Kind.ROLLBACK) :])
    assert file.outcome is Outcome.ROLLED_BACK, file.message
    assert "--no-such-flag=1" not in sandbox_node.args_of("kube-scheduler")
