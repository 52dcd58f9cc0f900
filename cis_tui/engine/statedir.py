"""The state directory (backups, journal, lock), trusted the way sshd's StrictModes trusts a home.

cis-tui runs as root. A state directory that another user can write, or a symlink planted in
it, would let that user choose what cis-tui writes and where, or forge a backup that `recover`
then installs as a manifest. So the directory and each of its parents must be owned by the
effective user or root and must not be writable by group or others (a sticky parent such as
/tmp is accepted: nobody can replace in it what they do not own), and nothing inside it is
ever reached through a symlink: files are opened O_NOFOLLOW and checked on the open descriptor.
"""

from __future__ import annotations

import contextlib
import errno
import os
import stat
from pathlib import Path

from cis_tui.errors import UserError

_NOFOLLOW = os.O_NOFOLLOW | getattr(os, "O_CLOEXEC", 0)


def _who() -> str:
    euid = os.geteuid()
    if euid == 0:
        return "root"
    try:
        import pwd

        return f"{pwd.getpwuid(euid).pw_name} or root"
    except KeyError:
        return f"uid {euid} or root"


def _problem(st: os.stat_result, leaf: bool) -> str | None:
    """Why a path with this lstat may not be part of a trusted state directory."""
    if st.st_uid not in (0, os.geteuid()):
        return f"is owned by uid {st.st_uid}, not by {_who()}"
    if stat.S_ISLNK(st.st_mode):
        return None  # a link's own mode means nothing; its target is checked on the real path
    if st.st_mode & 0o022 and (leaf or not st.st_mode & stat.S_ISVTX):
        return "is writable by group or others"
    return None


def _chain(path: Path) -> list[Path]:
    return [*reversed(path.parents), path]


def check_trusted(path: Path, name: str = "state directory") -> None:
    """Refuse (UserError) a state directory (or another directory root's run relies on, called
    `name`) that another user could write or redirect.

    Every existing component is checked twice: as given (so a planted symlink counts against
    its owner) and with links resolved (so the place actually written is checked too).
    """
    if not path.is_absolute() or ".." in path.parts:
        raise UserError(f"the {name} must be an absolute path without '..'", path)
    real = Path(os.path.realpath(path))
    for chain in (_chain(path), _chain(real)):
        for part in chain:
            try:
                st = part.lstat()
            except FileNotFoundError:
                break  # created later, by us
            except OSError as exc:
                raise UserError(f"cannot check the {name}: {exc.strerror}", part) from None
            leaf = part in (path, real)
            why = _problem(st, leaf)
            if why:
                what = name if leaf else f"parent of the {name}"
                raise UserError(f"untrusted {what}: it {why}; refusing", part)
            if leaf and not stat.S_ISDIR(st.st_mode) and not stat.S_ISLNK(st.st_mode):
                raise UserError(f"the {name} is not a directory", part)


def ensure_state_dir(path: Path) -> Path:
    """The trusted state directory, created 0700 if missing; returns its real path.

    A state directory named through a symlink keeps its target's mode (never a chmod through a
    link: the link may point at a directory that is not cis-tui's alone); what cis-tui puts in
    it is private (0700 directories, 0600 files) either way.
    """
    check_trusted(path)
    real = Path(os.path.realpath(path))
    for part in _chain(real):
        if part.exists() or part.is_symlink():
            continue
        _mkdir(part, 0o700 if part == real else 0o755)  # a racing creator is judged below
    check_trusted(real)
    private_dir(real, chmod=not os.path.islink(path))
    return real


def _mkdir(path: Path, mode: int) -> None:
    """Create a directory unless it exists (whoever made it is judged by the caller)."""
    try:
        with contextlib.suppress(FileExistsError):
            os.mkdir(path, mode)
    except OSError as exc:
        raise UserError(f"cannot create the directory: {exc.strerror}", path) from None


def private_dir(path: Path, chmod: bool = True) -> Path:
    """A 0700 directory owned by us, never through a symlink (created if missing; an existing
    one is made 0700 unless `chmod` is False)."""
    _mkdir(path, 0o700)
    try:
        fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY | _NOFOLLOW)
    except OSError as exc:
        why = "is a symlink" if exc.errno in (errno.ELOOP, errno.ENOTDIR) else exc.strerror
        raise UserError(f"refusing the state directory entry: it {why}", path) from None
    try:
        st = os.fstat(fd)
        if st.st_uid not in (0, os.geteuid()):
            raise UserError(f"is owned by uid {st.st_uid}, not by {_who()}; refusing", path)
        if chmod and st.st_mode & 0o077:
            os.fchmod(fd, 0o700)
    finally:
        os.close(fd)
    return path


def open_private(path: Path, flags: int, mode: int = 0o600) -> int:
    """Open a file inside the state directory: never through a symlink, only a regular file
    owned by us or root. Returns the descriptor (the caller closes it)."""
    try:
        fd = os.open(path, flags | _NOFOLLOW, mode)
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            raise UserError("is a symlink inside the state directory; refusing", path) from None
        if exc.errno == errno.EISDIR:
            raise UserError("is a directory, not a file; refusing", path) from None
        raise
    try:
        st = os.fstat(fd)
        if stat.S_ISDIR(st.st_mode):
            raise UserError("is a directory, not a file; refusing", path)
        if not stat.S_ISREG(st.st_mode):
            raise UserError("is not a regular file; refusing", path)
        if st.st_uid not in (0, os.geteuid()):
            raise UserError(f"is owned by uid {st.st_uid}, not by {_who()}; refusing", path)
    except BaseException:
        os.close(fd)
        raise
    return fd


def read_private(path: Path, limit: int | None = None) -> bytes:
    """The bytes of a state file (see `open_private`), at most `limit` if given."""
    fd = open_private(path, os.O_RDONLY)
    try:
        chunks = []
        total = 0
        while True:
            chunk = os.read(fd, 1 << 20)
            if not chunk:
                break
            chunks.append(chunk)
            total += len(chunk)
            if limit is not None and total > limit:
                raise UserError(f"is larger than {limit} bytes; refusing", path)
        return b"".join(chunks)
    finally:
        os.close(fd)


def write_all(fd: int, data: bytes) -> None:
    """Write every byte (os.write may write fewer: a file size limit, a full disk)."""
    view = memoryview(data)
    while view:
        written = os.write(fd, view)
        if written <= 0:  # pragma: no cover - os.write raises rather than return 0
            raise OSError(errno.EIO, "short write")
        view = view[written:]


def fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
