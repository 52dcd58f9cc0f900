"""File modes and owners: set without following symlinks, restored only when plausible.

Every change goes through one descriptor opened O_NOFOLLOW, so a symlink planted at a recorded
path is refused instead of followed. Recorded values (from a backup) are checked before use:
a control-plane file is never handed to a regular user's account or made world-writable,
whatever a backup's metadata says.
"""

from __future__ import annotations

import errno
import os
import stat
from pathlib import Path

from cis_tui.errors import UserError

#: Accounts below this uid are system accounts (login.defs SYS_UID_MAX is 999).
FIRST_REGULAR_ID = 1000


def open_nofollow(path: Path, refusing: str) -> int:
    """A read-only descriptor of `path` itself: a symlink there is refused (UserError saying
    what is refused), a FIFO does not block."""
    flags = os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_NOCTTY | getattr(os, "O_CLOEXEC", 0)
    try:
        return os.open(path, flags)
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            raise UserError(f"is a symlink; refusing to {refusing}", path) from None
        raise


def set_attributes(path: Path, mode: int | None, uid: int = -1, gid: int = -1) -> None:
    """chown/chmod a regular file or directory through one O_NOFOLLOW descriptor."""
    fd = open_nofollow(path, "change its mode or owner")
    try:
        st = os.fstat(fd)
        if not (stat.S_ISREG(st.st_mode) or stat.S_ISDIR(st.st_mode)):
            raise UserError("is not a regular file or directory; refusing", path)
        if (uid, gid) != (-1, -1):
            os.fchown(fd, uid, gid)
        if mode is not None:
            os.fchmod(fd, mode)  # after chown, which may clear setuid/setgid bits
    finally:
        os.close(fd)


def check_recorded_attributes(
    path: str, mode: int, uid: int, gid: int, current: os.stat_result | None
) -> None:
    """Refuse recorded attributes that no control-plane file should get.

    An owner is acceptable when it is root, the file's current owner, the effective user, or
    a system account; a mode must not be writable by others nor set-id.
    """
    if mode & (stat.S_ISUID | stat.S_ISGID | stat.S_IWOTH):
        raise UserError(
            f"backup records mode {mode:04o} (set-id or world-writable); refusing", path
        )
    for kind, value, now, own in (
        ("owner", uid, current.st_uid if current else None, os.geteuid()),
        ("group", gid, current.st_gid if current else None, os.getegid()),
    ):
        if value in (0, now, own) or 0 < value < FIRST_REGULAR_ID:
            continue
        raise UserError(
            f"backup records {kind} id {value}, a regular account that does not own it now; "
            "refusing",
            path,
        )
