"""The write-ahead journal: enough for `recover` to undo a transaction from any later point.

An append-only JSON-lines file in the trusted state directory, fsynced after every record. A
transaction is open from its `intent` record until a `committed`, `rolled-back`, `critical`,
`recovered` or `aborted` record. A torn last line (a crash mid-append) and lines that are not
journal records are ignored.

Only open transactions matter, so the journal is compacted each time one closes: the lines of
open transactions are written to a dot-prefixed file beside it, fsynced, renamed over it, and
the directory fsynced. A crash at any point leaves either the old journal or the new one, both
complete. The journal therefore holds a few lines whatever the history, and start-up and
`recover` read only those. Records (and so compaction) are written under the node lock.
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cis_tui.engine.faults import crash_point
from cis_tui.engine.statedir import (
    check_trusted,
    ensure_state_dir,
    fsync_dir,
    open_private,
    read_private,
    write_all,
)
from cis_tui.errors import UserError

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
    #: sha256 of the bytes cis-tui wrote ("" when not recorded): tells its write from an edit.
    new_sha256: str = ""
    #: The backup of kubeadm's configuration taken before the fix was mirrored into it, and
    #: the sha256 of the text written there ("" when nothing was).
    persist_backup_id: str = ""
    persist_sha256: str = ""


def _valid(rec: Any) -> bool:
    return (
        isinstance(rec, dict)
        and isinstance(rec.get("txid"), str)
        and isinstance(rec.get("step"), str)
        and isinstance(rec.get("time", 0.0), (int, float))
    )


def _text(value: Any) -> str:
    return value if isinstance(value, str) else ""


class Journal:
    def __init__(self, state_dir: Path) -> None:
        self.state_dir = state_dir
        self.path = state_dir / "journal.jsonl"

    def new_txid(self) -> str:
        return f"{int(time.time())}-{secrets.token_hex(4)}"

    def record(self, txid: str, step: str, **fields: Any) -> None:
        """Append one record, durable before it returns (OSError if the disk refuses)."""
        ensure_state_dir(self.state_dir)
        line = json.dumps({"txid": txid, "step": step, "time": time.time(), **fields})
        fd = open_private(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT)
        try:
            write_all(fd, (line + "\n").encode())
            os.fsync(fd)
        finally:
            os.close(fd)
        if step in CLOSED:
            # The record above is durable: a compaction that fails only leaves more lines.
            with contextlib.suppress(OSError, UserError):
                self.compact()

    def _lines(self) -> list[tuple[str, dict[str, Any]]]:
        """Every valid record with its line as written."""
        check_trusted(self.state_dir)
        try:
            data = read_private(self.path)
        except FileNotFoundError:
            return []
        except OSError as exc:
            raise UserError(f"cannot read the journal: {exc.strerror}", self.path) from None
        out = []
        for line in data.decode("utf-8", errors="replace").splitlines():
            try:
                rec = json.loads(line)
            except ValueError:
                continue  # a torn write
            if _valid(rec):
                out.append((line, rec))
        return out

    def records(self) -> list[dict[str, Any]]:
        return [rec for _line, rec in self._lines()]

    def compact(self) -> int:
        """Drop the records of closed transactions (crash-safe); returns how many lines went.

        The caller holds the node lock: nobody appends meanwhile.
        """
        lines = self._lines()
        closed = {rec["txid"] for _line, rec in lines if rec["step"] in CLOSED}
        kept = [line for line, rec in lines if rec["txid"] not in closed]
        size = self.path.lstat().st_size if lines else 0
        if len(kept) == len(lines) and size == sum(len(f"{line}\n".encode()) for line in kept):
            return 0  # nothing closed, nothing torn: leave the file alone
        tmp = self.state_dir / f".{self.path.name}.compact"
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()  # left by a crash during an earlier compaction
        fd = open_private(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL)
        try:
            write_all(fd, "".join(line + "\n" for line in kept).encode())
            os.fsync(fd)
        finally:
            os.close(fd)
        crash_point("journal-compact-written")
        os.replace(tmp, self.path)
        crash_point("journal-compact-replaced")
        fsync_dir(self.state_dir)
        return len(lines) - len(kept)

    def open_transactions(self) -> list[OpenTransaction]:
        """Transactions with an intent and no closing record, oldest first."""
        state: dict[str, dict[str, Any]] = {}
        for rec in self.records():
            tx = state.setdefault(rec["txid"], {})
            if rec["step"] == "intent":
                tx.update(rec, first=float(rec.get("time", 0.0)))
            elif rec["step"] == "persisting":
                tx["persist_backup_id"] = rec.get("persist_backup_id")
                tx["persist_sha256"] = rec.get("persist_sha256")
            tx["last"] = rec["step"]
        out = []
        for txid, tx in state.items():
            if "first" not in tx or tx["last"] in CLOSED:
                continue
            pid = tx.get("pid", 0)
            out.append(
                OpenTransaction(
                    txid=txid,
                    backup_id=_text(tx.get("backup_id")),
                    path=_text(tx.get("path")),
                    component=_text(tx.get("component")),
                    last_step=str(tx["last"]),
                    pid=pid if isinstance(pid, int) and not isinstance(pid, bool) else 0,
                    started=tx["first"],
                    new_sha256=_text(tx.get("new_sha256")),
                    persist_backup_id=_text(tx.get("persist_backup_id")),
                    persist_sha256=_text(tx.get("persist_sha256")),
                )
            )
        return out
