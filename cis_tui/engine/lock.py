"""The node lock: one cis-tui transaction per node at a time."""

from __future__ import annotations

import contextlib
import fcntl
import os
from collections.abc import Iterator
from pathlib import Path

from cis_tui.errors import NodeLocked


def ensure_private_dir(path: Path) -> Path:
    """A 0700 directory (created with its parents if needed)."""
    path.mkdir(mode=0o700, parents=True, exist_ok=True)
    if path.stat().st_mode & 0o077:
        path.chmod(0o700)
    return path


@contextlib.contextmanager
def node_lock(state_dir: Path) -> Iterator[Path]:
    """Hold the node lock; NodeLocked (exit 4) names the holder's PID when it is taken."""
    ensure_private_dir(state_dir)
    path = state_dir / "lock"
    fd = os.open(path, os.O_RDWR | os.O_CREAT | getattr(os, "O_CLOEXEC", 0), 0o600)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.pread(fd, 64, 0).decode(errors="replace").strip() or "unknown"
            raise NodeLocked(
                f"another cis-tui transaction (PID {holder}) holds the node lock {path}"
            ) from None
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
        os.fsync(fd)
        try:
            yield path
        finally:
            os.ftruncate(fd, 0)
            fcntl.flock(fd, fcntl.LOCK_UN)
    finally:
        os.close(fd)
