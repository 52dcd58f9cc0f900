"""What a `kill -9` after cis-tui wrote a manifest leaves behind: a backup, an open journal
transaction and the changed file (for recover tests)."""

from __future__ import annotations

import os

from cis_tui.engine.backups import BackupStore
from cis_tui.engine.journal import Journal
from cis_tui.layout import Settings

#: A flag no component knows: the interrupted write's change.
ADDED = b"    - --x\n"


def interrupted_write(
    settings: Settings, component: str, checks: tuple[str, ...], step: str = "written"
) -> tuple[Journal, str, bytes]:
    """Back up *component*'s manifest, open a transaction up to *step*, add ADDED to its
    command; return the journal, the transaction id and the original bytes."""
    path = settings.layout.manifest(component)
    original = path.read_bytes()
    backup = BackupStore(settings.state_dir, settings.layout).create_file_backup(
        path, component, checks, {}
    )
    journal = Journal(settings.state_dir)
    txid = journal.new_txid()
    journal.record(
        txid,
        "intent",
        backup_id=backup.id,
        path=str(path),
        component=component,
        pid=os.getpid(),
        checks=list(checks),
    )
    journal.record(txid, "writing")
    head = f"- {component}\n".encode()
    path.write_bytes(original.replace(head, head + ADDED, 1))
    if step == "written":
        journal.record(txid, "written")
    return journal, txid, original
