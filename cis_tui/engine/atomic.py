"""Atomic file replacement: never a half-written manifest, never the wrong mode or owner.

The temporary file is dot-prefixed (the kubelet ignores hidden files in the manifests
directory), created O_EXCL|O_NOFOLLOW in the target's own directory with the target's mode and
owner, fsynced, renamed over the target, and the directory fsynced.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import stat
from pathlib import Path

from cis_tui.engine.statedir import fsync_dir, write_all


class AtomicWriteError(Exception):
    """The write failed. One line, names the file.

    `renamed` False: the target is untouched. True: the new bytes may already be in place (the
    rename happened, making it durable failed), so the caller must treat the file as written.
    """

    def __init__(self, path: Path, problem: str, renamed: bool = False) -> None:
        self.path = path
        self.renamed = renamed
        super().__init__(f"{path}: {problem}")


def _describe(exc: OSError) -> str:
    return exc.strerror or str(exc)


def temp_name(target: Path) -> Path:
    return target.with_name(f".{target.name}.cis-tui-{secrets.token_hex(4)}")


def atomic_write(
    target: Path,
    data: bytes,
    mode: int | None = None,
    uid: int | None = None,
    gid: int | None = None,
) -> None:
    """Replace `target` with `data` atomically.

    Mode and owner default to the current target's (which must then be a regular file, not a
    symlink); give them explicitly to create a file or to restore a backup's attributes.
    """
    try:
        current = target.lstat()
    except FileNotFoundError:
        current = None
    except OSError as exc:
        raise AtomicWriteError(target, f"cannot stat: {_describe(exc)}") from None
    if current is not None:
        if stat.S_ISLNK(current.st_mode):
            raise AtomicWriteError(target, "is a symlink; refusing to replace it")
        if not stat.S_ISREG(current.st_mode):
            raise AtomicWriteError(target, "is not a regular file")
    elif mode is None:
        raise AtomicWriteError(target, "does not exist")
    final_mode = mode if mode is not None else stat.S_IMODE(current.st_mode)  # type: ignore[union-attr]
    final_uid = uid if uid is not None else (current.st_uid if current else -1)
    final_gid = gid if gid is not None else (current.st_gid if current else -1)

    tmp = temp_name(target)
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | getattr(os, "O_CLOEXEC", 0)
    try:
        fd = os.open(tmp, flags, 0o600)
    except OSError as exc:
        raise AtomicWriteError(
            target, f"cannot create a temporary file: {_describe(exc)}"
        ) from None
    try:
        try:
            os.fchmod(fd, final_mode)
            if (final_uid, final_gid) != (-1, -1) and (
                final_uid != os.geteuid() or final_gid != os.getegid()
            ):
                os.fchown(fd, final_uid, final_gid)
            write_all(fd, data)
            os.fsync(fd)
        finally:
            os.close(fd)
        os.replace(tmp, target)
    except OSError as exc:
        with contextlib.suppress(OSError):
            tmp.unlink()
        raise AtomicWriteError(target, f"write failed: {_describe(exc)}") from None
    try:
        fsync_dir(target.parent)
    except OSError as exc:  # the data is in place; the rename may not yet be durable
        raise AtomicWriteError(
            target, f"written, but fsync of the directory failed: {_describe(exc)}", renamed=True
        ) from None


def create_new(path: Path, data: bytes | None, mode: int) -> bool:
    """Create a companion file (or directory, data None) that must not exist yet.

    Returns False, and changes nothing, when it already exists (never overwrite an admin's file).
    """
    if data is None:
        try:
            path.mkdir(mode=mode, parents=False)
        except FileExistsError:
            return False
        except FileNotFoundError:
            path.parent.mkdir(parents=True, exist_ok=True)
            return create_new(path, None, mode)
        fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW)
        try:
            os.fchmod(fd, mode)  # never through a link planted in the meantime
        finally:
            os.close(fd)
        fsync_dir(path.parent)
        return True
    path.parent.mkdir(parents=True, exist_ok=True)
    if os.path.lexists(path):
        return False
    atomic_write(path, data, mode=mode, uid=os.geteuid(), gid=os.getegid())
    return True
