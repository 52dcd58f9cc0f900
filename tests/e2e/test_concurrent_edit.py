"""An administrator edits a manifest while cis-tui's health gate runs (issue 11, item 8).

The rollback must not overwrite their edit: it backs their version up, leaves the file alone
and ends CRITICAL naming both backups.
"""

from __future__ import annotations

import asyncio

from cis_tui.engine.backups import BackupStore
from cis_tui.engine.events import Event, Kind, Outcome
from cis_tui.layout import load_settings
from cis_tui.sandbox.settings import Fault
from tests.e2e.test_engine import catalog_plan, engine_for, fast


def test_a_rollback_never_overwrites_an_edit_made_during_the_gate(sandbox_factory):
    # The fixed scheduler never answers healthy, so the gate fails and a rollback is due.
    run = sandbox_factory(
        faults=[
            Fault(component="kube-scheduler", argv_contains="--profiling=false", never_ready=True)
        ]
    )
    settings = load_settings(config=fast(run))
    path = settings.layout.manifest("kube-scheduler")
    original = path.read_bytes()
    edited: list[bytes] = []

    def sink(event: Event) -> None:
        events.append(event)
        if event.kind is Kind.RESTART and not edited:
            # The admin keeps the fix and raises the log level, while the gate still runs.
            theirs = path.read_bytes().replace(
                b"    - --profiling=false\n", b"    - --profiling=false\n    - --v=4\n", 1
            )
            assert theirs != path.read_bytes()
            path.write_bytes(theirs)
            edited.append(theirs)

    events: list[Event] = []
    engine = engine_for(run, [], timeout=6)
    engine.sink = sink
    result = asyncio.run(engine.apply(catalog_plan(run, "1.4.1")))
    assert edited, "the gate never started"
    (file,) = result.files
    assert file.outcome is Outcome.CRITICAL and result.exit_code == 3
    assert path.read_bytes() == edited[0]  # their edit stands
    store = BackupStore(settings.state_dir, settings.layout)
    theirs = [b for b in store.list() if b.outcome == "edited-by-someone-else"]
    assert len(theirs) == 1 and store.original_bytes(theirs[0]) == edited[0]
    assert theirs[0].id in file.message and file.backup_id in file.message
    assert store.original_bytes(store.get(file.backup_id)) == original
    assert not any(
        e.kind is Kind.STEP and e.ok and "original restored" in e.message for e in events
    )
