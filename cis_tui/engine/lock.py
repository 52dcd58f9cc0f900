"""The node lock: one cis-tui transaction per node at a time."""

from __future__ import annotations

import contextlib
import fcntl
import os
from collections.abc import Iterator
from pathlib import Path

from cis_tui.engine.statedir import ensure_state_dir, open_private, write_all
from cis_tui.errors import NodeLocked, UserError


@contextlib.contextmanager
def node_lock(state_dir: Path) -> Iterator[Path]:
    """Hold the node lock; NodeLocked (exit 4) names the holder's PID when it is taken.

    The state directory must be trusted, and the lock file is never opened through a symlink
    nor truncated before the lock is held (a planted link must not make root truncate a file).
    """
    path = ensure_state_dir(state_dir) / "lock"
    try:
        fd = open_private(path, os.O_RDWR | os.O_CREAT)
    except OSError as exc:
        raise UserError(f"cannot open the node lock: {exc.strerror}", path) from None
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.pread(fd, 64, 0).decode(errors="replace").strip() or "unknown"
            raise NodeLocked(
                f"another cis-tui transaction (PID {holder}) holds the node lock {path}"
            ) from None
        try:
            os.ftruncate(fd, 0)
            write_all(fd, f"{os.getpid()}\n".encode())
            os.fsync(fd)
        except OSError as exc:
            fcntl.flock(fd, fcntl.LOCK_UN)
            raise UserError(
                f"cannot record the lock holder (nothing changed): {exc.strerror}", path
            ) from None
        try:
            yield path
        finally:
            with contextlib.suppress(OSError):
                os.ftruncate(fd, 0)
            fcntl.flock(fd, fcntl.LOCK_UN)
    finally:
        os.close(fd)
