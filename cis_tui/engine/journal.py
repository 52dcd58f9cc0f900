"""The write-ahead journal: enough for `recover` to undo a transaction from any later point.

An append-only JSON-lines file, fsynced after every record. A transaction is open from its
`intent` record until a `committed`, `rolled-back`, `critical` or `recovered` record. A torn
last line (a crash mid-append) is ignored.
"""

from __future__ import annotations

import json
import os
import secrets
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cis_tui.engine.lock import ensure_private_dir

CLOSED = {"committed", "rolled-back", "critical", "recovered", "aborted"}


@dataclass(frozen=True)
class OpenTransaction:
    """A transaction the journal says was started and never finished."""

    txid: str
    backup_id: str
    path: str
    component: str
    last_step: str
    pid: int
    started: float


class Journal:
    def __init__(self, state_dir: Path) -> None:
        self.state_dir = state_dir
        self.path = state_dir / "journal.jsonl"

    def new_txid(self) -> str:
        return f"{int(time.time())}-{secrets.token_hex(4)}"

    def record(self, txid: str, step: str, **fields: Any) -> None:
        ensure_private_dir(self.state_dir)
        line = json.dumps({"txid": txid, "step": step, "time": time.time(), **fields})
        fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_NOFOLLOW, 0o600)
        try:
            os.write(fd, (line + "\n").encode())
            os.fsync(fd)
        finally:
            os.close(fd)

    def records(self) -> list[dict[str, Any]]:
        try:
            text = self.path.read_text(encoding="utf-8", errors="replace")
        except FileNotFoundError:
            return []
        out = []
        for line in text.splitlines():
            try:
                rec = json.loads(line)
            except ValueError:
                continue  # a torn write
            if isinstance(rec, dict) and "txid" in rec:
                out.append(rec)
        return out

    def open_transactions(self) -> list[OpenTransaction]:
        """Transactions with an intent and no closing record, oldest first."""
        state: dict[str, dict[str, Any]] = {}
        for rec in self.records():
            tx = state.setdefault(rec["txid"], {})
            if rec["step"] == "intent":
                tx.update(rec, first=rec["time"])
            tx["last"] = rec["step"]
        return [
            OpenTransaction(
                txid=txid,
                backup_id=str(tx.get("backup_id", "")),
                path=str(tx.get("path", "")),
                component=str(tx.get("component", "")),
                last_step=str(tx["last"]),
                pid=int(tx.get("pid", 0)),
                started=float(tx.get("first", 0.0)),
            )
            for txid, tx in state.items()
            if "first" in tx and tx["last"] not in CLOSED
        ]
