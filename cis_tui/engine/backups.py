"""Backups in the state directory: original bytes, checksum, mode, owner, checks, outcome.

Never inside the manifests directory (the kubelet would run a stray copy as a second pod).
A backup is read back and its checksum compared before any change is made. A restore verifies
the checksum and writes only to the file of the backup's own component, inside the layout.
Everything in the store is read without following symlinks (see `statedir`).

Order: every backup records its time to the microsecond and a sequence number drawn from
`backup-sequence` (under a lock of its own), and the time is never earlier than the previous
backup's, so (time, seq) is the order backups were taken in, whatever the clock did. Metadata
from before it (second-resolution times, no seq) still reads and sorts by its time. An id
starts with its time to the second, so the newest backups are found from the directory names
without reading every meta.json.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import errno
import fcntl
import hashlib
import itertools
import json
import os
import re
import secrets
import shutil
import stat
from collections.abc import Collection, Iterator
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

from cis_tui.engine.atomic import atomic_write
from cis_tui.engine.attributes import open_nofollow
from cis_tui.engine.statedir import (
    check_trusted,
    ensure_state_dir,
    fsync_dir,
    open_private,
    private_dir,
    read_private,
    write_all,
)
from cis_tui.errors import UserError
from cis_tui.layout import Layout, RetentionSettings
from cis_tui.persist.patchnames import PATCHES, is_own_file

#: meta.json is a few KB; anything far larger was not written by cis-tui.
META_LIMIT = 1 << 20
#: The ConfigMap data keys a `configmap` backup may hold, by the backup's component.
CONFIGMAP_LABELS = {
    "kubeadm-config": "configmap kube-system/kubeadm-config ClusterConfiguration",
    "kubelet-config": "configmap kube-system/kubelet-config kubelet",
}


@dataclass(frozen=True)
class AttributeRecord:
    path: str
    mode: int
    uid: int
    gid: int


@dataclass(frozen=True)
class Backup:
    id: str
    time: str  # ISO 8601, UTC
    kind: str  # "file" | "attributes"
    path: str  # the file backed up ("" for attributes)
    component: str
    sha256: str  # of the original bytes ("" for attributes)
    size: int
    mode: int
    uid: int
    gid: int
    checks: tuple[str, ...] = ()
    plan: dict[str, Any] = field(default_factory=dict)
    outcome: str = "pending"
    attributes: tuple[AttributeRecord, ...] = ()
    #: The order of creation in this store (0: written before sequence numbers existed).
    seq: int = 0
    directory: str = ""  # where the backup lives (not stored)

    def to_dict(self) -> dict[str, Any]:
        raw = asdict(self)
        raw.pop("directory")
        raw["checks"] = list(self.checks)
        return raw

    def public(self) -> dict[str, Any]:
        """The documented JSON object of `backups list --format json`."""
        return {
            "id": self.id,
            "time": self.time,
            "kind": self.kind,
            "path": self.path or None,
            "component": self.component,
            "sha256": self.sha256 or None,
            "mode": f"{self.mode:04o}" if self.kind == "file" else None,
            "checks": list(self.checks),
            "outcome": self.outcome,
            "files": [a.path for a in self.attributes] if self.kind == "attributes" else None,
            "seq": self.seq,
        }

    @property
    def order(self) -> tuple[float, int, str]:
        """Sort key: older first (time to the microsecond, then sequence, then id)."""
        return (instant(self.time), self.seq, self.id)

    @property
    def group(self) -> str:
        """What retention counts per: the file (or ConfigMap key) backed up."""
        return f"{self.kind}:{self.path}"


def instant(iso: str) -> float:
    """Seconds since the epoch of an ISO 8601 time (naive: UTC); 0 when unreadable."""
    try:
        when = dt.datetime.fromisoformat(iso)
    except (TypeError, ValueError):
        return 0.0
    if when.tzinfo is None:
        when = when.replace(tzinfo=dt.timezone.utc)
    return when.timestamp()


#: An id's leading time, to the second: `YYYYmmdd-HHMMSS-`.
_STAMP = re.compile(r"^\d{8}-\d{6}-")
#: A half-made backup directory: `.ID.PID.partial` (`.ID.partial` before PIDs were recorded).
_PARTIAL = re.compile(r"^\.(?P<id>.+?)(?:\.(?P<pid>\d+))?\.partial$")
#: Beside `backups/` in the state directory: one empty file per backup still pending.
PENDING_DIR = "pending-backups"
#: The last sequence number and time (µs) given to a backup.
SEQUENCE_FILE = "backup-sequence"
#: Present once every legacy backup was checked for a crash's `pending` (see clean_leftovers).
_SCANNED = ".scanned"


def pid_alive(pid: int) -> bool:
    """Whether a process with this PID exists (one we may not signal counts as alive)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def sha256_bytes(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _write_private(path: Path, data: bytes) -> None:
    fd = open_private(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL)
    try:
        write_all(fd, data)
        os.fsync(fd)
    finally:
        os.close(fd)


def read_regular(path: Path) -> tuple[bytes, os.stat_result]:
    """A target file's bytes and attributes, read through one descriptor, never via a link."""
    fd = open_nofollow(path, "read or replace it")
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            raise UserError("is not a regular file; refusing", path)
        chunks = []
        while chunk := os.read(fd, 1 << 20):
            chunks.append(chunk)
        return b"".join(chunks), st
    finally:
        os.close(fd)


def _int(raw: dict[str, Any], key: str, meta: Path) -> int:
    value = raw.get(key, 0)
    if isinstance(value, bool) or not isinstance(value, int):
        raise UserError(f"backup metadata field {key!r} is not a number; refusing", meta)
    return value


def _str(raw: dict[str, Any], key: str, meta: Path) -> str:
    value = raw.get(key, "")
    if not isinstance(value, str):
        raise UserError(f"backup metadata field {key!r} is not a string; refusing", meta)
    return value


class BackupStore:
    """The backups directory of a node's state dir."""

    def __init__(self, state_dir: Path, layout: Layout) -> None:
        self.state_dir = state_dir
        self.root = state_dir / "backups"
        self.layout = layout
        #: Backup directories whose metadata could not be read while listing: name -> why.
        self.unreadable: dict[str, str] = {}

    def _ensure_root(self) -> None:
        ensure_state_dir(self.state_dir)
        private_dir(self.root)

    def _next(self) -> tuple[int, dt.datetime]:
        """The next sequence number and a time no earlier than the previous backup's."""
        path = self.state_dir / SEQUENCE_FILE
        fd = open_private(path, os.O_RDWR | os.O_CREAT)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            raw = os.pread(fd, 64, 0).decode("ascii", errors="replace").split()
            if len(raw) == 2 and all(r.isdigit() for r in raw):
                seq, last_us = int(raw[0]), int(raw[1])
            else:  # new, or lost: continue after what the store holds
                seq, last_us = self._highest()
            now = dt.datetime.now(dt.timezone.utc)
            now_us = int(now.timestamp()) * 1_000_000 + now.microsecond
            when_us = max(now_us, last_us + 1)
            seq += 1
            os.ftruncate(fd, 0)
            os.pwrite(fd, f"{seq} {when_us}\n".encode(), 0)
            os.fsync(fd)
        finally:
            os.close(fd)  # releases the lock
        epoch = dt.datetime(1970, 1, 1, tzinfo=dt.timezone.utc)
        return seq, epoch + dt.timedelta(microseconds=when_us)

    def _highest(self) -> tuple[int, int]:
        """The highest sequence number and time (µs) in the store (a lost counter)."""
        seq, when = 0, 0.0
        for backup in self.iter_newest():
            seq, when = max(seq, backup.seq), max(when, instant(backup.time))
        return seq, int(when * 1_000_000)

    def _identity(self, component: str) -> tuple[str, str, int]:
        """A new backup's id, time (ISO 8601, microseconds) and sequence number."""
        seq, when = self._next()
        stamp = when.strftime("%Y%m%d-%H%M%S")
        return (
            f"{stamp}-{component}-{secrets.token_hex(3)}",
            when.isoformat("T", "microseconds"),
            seq,
        )

    def create_file_backup(
        self, path: Path, component: str, checks: tuple[str, ...], plan: dict[str, Any]
    ) -> Backup:
        """Copy the file's bytes and attributes; durable (fsynced) and read back before it
        returns."""
        self._ensure_root()
        data, st = read_regular(path)
        backup_id, when, seq = self._identity(component)
        backup = Backup(
            id=backup_id,
            time=when,
            seq=seq,
            kind="file",
            path=str(path),
            component=component,
            sha256=sha256_bytes(data),
            size=len(data),
            mode=stat.S_IMODE(st.st_mode),
            uid=st.st_uid,
            gid=st.st_gid,
            checks=checks,
            plan=plan,
        )
        return self._store(backup, data)

    def create_configmap_backup(
        self, label: str, component: str, text: str, checks: tuple[str, ...], plan: dict[str, Any]
    ) -> Backup:
        """A ConfigMap data key's text as it was before a fix was mirrored into it (`label`:
        `configmap kube-system/kubeadm-config ClusterConfiguration`)."""
        self._ensure_root()
        data = text.encode("utf-8")
        backup_id, when, seq = self._identity(component)
        backup = Backup(
            id=backup_id,
            time=when,
            seq=seq,
            kind="configmap",
            path=label,
            component=component,
            sha256=sha256_bytes(data),
            size=len(data),
            mode=0,
            uid=0,
            gid=0,
            checks=checks,
            plan=plan,
        )
        return self._store(backup, data)

    def create_attribute_backup(
        self, paths: list[Path], checks: tuple[str, ...], plan: dict[str, Any]
    ) -> Backup:
        self._ensure_root()
        records = []
        for p in paths:
            st = p.lstat()
            records.append(AttributeRecord(str(p), stat.S_IMODE(st.st_mode), st.st_uid, st.st_gid))
        backup_id, when, seq = self._identity("attributes")
        backup = Backup(
            id=backup_id,
            time=when,
            seq=seq,
            kind="attributes",
            path="",
            component="node",
            sha256="",
            size=0,
            mode=0,
            uid=0,
            gid=0,
            checks=checks,
            plan=plan,
            attributes=tuple(records),
        )
        return self._store(backup, None)

    def _store(self, backup: Backup, data: bytes | None) -> Backup:
        directory = self.root / backup.id
        # The PID tells a later run whether the maker is gone (then it is a crash's leftover).
        tmp = self.root / f".{backup.id}.{os.getpid()}.partial"
        # Durable before the backup is: whatever a crash leaves pending, a marker names it.
        pending = private_dir(self.state_dir / PENDING_DIR)
        os.close(open_private(pending / backup.id, os.O_WRONLY | os.O_CREAT | os.O_EXCL))
        try:
            fsync_dir(pending)
            tmp.mkdir(mode=0o700)
        except BaseException:
            self._unmark(backup.id)
            raise
        try:
            meta = json.dumps(backup.to_dict(), indent=2).encode()
            if data is not None:
                _write_private(tmp / "original", data)
                # A short write (file size limit, full disk) must never pass for a backup.
                if sha256_bytes(read_private(tmp / "original")) != backup.sha256:
                    raise OSError(errno.EIO, "the backup read back differs from the original")
            _write_private(tmp / "meta.json", meta)
            if json.loads(read_private(tmp / "meta.json")) != json.loads(meta):
                raise OSError(errno.EIO, "the backup metadata read back differs")
            fsync_dir(tmp)
            os.replace(tmp, directory)
            fsync_dir(self.root)
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            if not os.path.lexists(directory):
                self._unmark(backup.id)
            raise
        return replace(backup, directory=str(directory))

    def set_outcome(self, backup: Backup, outcome: str) -> Backup:
        """Record a backup's outcome (OSError if the state directory refuses the write)."""
        updated = replace(backup, outcome=outcome)
        meta = Path(backup.directory) / "meta.json"
        atomic_write(meta, json.dumps(updated.to_dict(), indent=2).encode(), mode=0o600)
        if outcome != "pending":
            self._unmark(backup.id)
        return updated

    def _unmark(self, backup_id: str) -> None:
        with contextlib.suppress(FileNotFoundError, NotADirectoryError):
            (self.state_dir / PENDING_DIR / backup_id).unlink()

    # -- reading ---------------------------------------------------------------------------
    def _entries(self) -> list[Path]:
        check_trusted(self.state_dir)
        try:
            st = self.root.lstat()
        except FileNotFoundError:
            return []
        if not stat.S_ISDIR(st.st_mode):
            raise UserError("is not a directory (a symlink?); refusing", self.root)
        return [e for e in self.root.iterdir() if not e.name.startswith(".")]

    def names(self) -> list[str]:
        """Every backup directory name, newest first by the second its id starts with
        (one directory listing; no metadata read)."""
        return sorted(
            (e.name for e in self._entries()),
            key=lambda n: (bool(_STAMP.match(n)), n[:15]),
            reverse=True,
        )

    def iter_newest(self, names: list[str] | None = None) -> Iterator[Backup]:
        """Backups newest first, reading metadata only as far as the caller goes: the names
        that share an id's second (and any that does not start with a time) are read and
        ordered together. Unreadable ones are skipped and kept in `unreadable`."""
        ordered = self.names() if names is None else names
        # Names without a time (not made by cis-tui) are rare: read them first and merge them
        # in where their metadata says they go.
        loose = self._read_all([n for n in ordered if not _STAMP.match(n)])
        stamped = [n for n in ordered if _STAMP.match(n)]
        for _second, group in itertools.groupby(stamped, key=lambda n: n[:15]):
            batch = self._read_all(list(group))
            if not batch:
                continue
            while loose and loose[0].order > batch[0].order:
                yield loose.pop(0)
            inside = [b for b in loose if b.order >= batch[-1].order]
            loose = loose[len(inside) :]
            yield from sorted(batch + inside, key=lambda b: b.order, reverse=True)
        yield from loose

    def _read_all(self, names: list[str]) -> list[Backup]:
        found = []
        for name in names:
            try:
                found.append(self._read(self.root / name))
            except UserError as exc:
                self.unreadable[name] = str(exc)
            except OSError as exc:
                self.unreadable[name] = f"{self.root / name}: {exc.strerror or exc}"
        return sorted(found, key=lambda b: b.order, reverse=True)

    def newest(self, count: int) -> list[Backup]:
        """The newest `count` backups, newest first (reads about `count` meta.json files)."""
        return list(itertools.islice(self.iter_newest(), count))

    def list(self) -> list[Backup]:
        """Every backup, newest first; unreadable ones are skipped and kept in `unreadable`."""
        return sorted(self.iter_newest(), key=lambda b: b.order, reverse=True)

    def get(self, backup_id: str) -> Backup:
        if "/" in backup_id or backup_id.startswith(".") or not backup_id:
            raise UserError(f"invalid backup id {backup_id!r}")
        check_trusted(self.state_dir)
        directory = self.root / backup_id
        try:
            st = directory.lstat()
        except OSError:
            raise UserError(f"no backup {backup_id!r} in {self.root}") from None
        if not stat.S_ISDIR(st.st_mode):
            raise UserError(f"no backup {backup_id!r} in {self.root} (not a directory)")
        return self._read(directory)

    def _read(self, directory: Path) -> Backup:
        meta = directory / "meta.json"
        if not stat.S_ISDIR(directory.lstat().st_mode):
            raise UserError("is not a backup directory; refusing", directory)
        try:
            raw = json.loads(read_private(meta, META_LIMIT))
            if not isinstance(raw, dict):
                raise ValueError("not a JSON object")
            attributes = tuple(
                AttributeRecord(
                    _str(a, "path", meta),
                    _int(a, "mode", meta),
                    _int(a, "uid", meta),
                    _int(a, "gid", meta),
                )
                for a in raw.pop("attributes", [])
            )
            checks = raw.get("checks", ())
            if not isinstance(checks, (list, tuple)) or not all(isinstance(c, str) for c in checks):
                raise UserError("backup metadata field 'checks' is not a list of ids", meta)
            plan = raw.get("plan", {})
            return Backup(
                id=_str(raw, "id", meta),
                time=_str(raw, "time", meta),
                kind=_str(raw, "kind", meta),
                path=_str(raw, "path", meta),
                component=_str(raw, "component", meta),
                sha256=_str(raw, "sha256", meta),
                size=_int(raw, "size", meta),
                mode=_int(raw, "mode", meta),
                uid=_int(raw, "uid", meta),
                gid=_int(raw, "gid", meta),
                checks=tuple(checks),
                plan=plan if isinstance(plan, dict) else {},
                outcome=_str(raw, "outcome", meta) or "pending",
                attributes=attributes,
                seq=_int(raw, "seq", meta),
                directory=str(directory),
            )
        except (OSError, ValueError, TypeError, AttributeError) as exc:
            raise UserError(f"unreadable backup metadata: {exc}", meta) from None

    def original_bytes(self, backup: Backup) -> bytes:
        """The backed-up bytes, verified against the recorded checksum and the layout."""
        self.verify_target(backup)
        if backup.kind not in {"file", "configmap"}:
            return b""
        data_path = Path(backup.directory) / "original"
        try:
            data = read_private(data_path)
        except OSError as exc:
            raise UserError(f"cannot read backup: {exc.strerror}", data_path) from None
        if sha256_bytes(data) != backup.sha256:
            raise UserError(
                "backup does not match its recorded sha256 (tampered or corrupt); refusing",
                data_path,
            )
        return data

    def verify_target(self, backup: Backup) -> None:
        """Tampered metadata must not make a restore write outside the node layout, nor into
        another component's file."""
        meta = Path(backup.directory) / "meta.json"
        if backup.kind == "configmap":
            if backup.component == PATCHES:  # a kubeadm patch file cis-tui owns
                path = Path(backup.path)
                if not path.is_absolute() or not is_own_file(path.name) or ".." in path.parts:
                    raise UserError(
                        f"backup names {backup.path!r}, not a cis-tui patch file; refusing", meta
                    )
                return
            if CONFIGMAP_LABELS.get(backup.component) != backup.path:
                raise UserError(
                    f"backup of {backup.component or 'no ConfigMap'} names {backup.path!r}, not "
                    "a kubeadm configuration; refusing",
                    meta,
                )
            return
        paths = [backup.path] if backup.kind == "file" else [a.path for a in backup.attributes]
        if backup.kind not in {"file", "attributes"} or not paths:
            raise UserError("backup metadata names no target; refusing", meta)
        for p in paths:
            if not inside_layout(Path(p), self.layout, files_only=backup.kind == "file"):
                raise UserError(f"backup target {p} is outside the node layout; refusing", meta)
        if backup.kind == "file":
            own = component_file(self.layout, backup.component)
            if own is None or Path(backup.path) != own:
                raise UserError(
                    f"backup of {backup.component or 'no component'} names {backup.path}, "
                    "not that component's file; refusing",
                    meta,
                )
        modes = [backup.mode] if backup.kind == "file" else [a.mode for a in backup.attributes]
        if any(not (0 <= m <= 0o7777) for m in modes):
            raise UserError("backup metadata has an invalid mode; refusing", meta)

    def _hidden(self) -> list[str]:
        try:
            st = self.root.lstat()
        except FileNotFoundError:
            return []
        if not stat.S_ISDIR(st.st_mode):
            return []
        return [n for n in os.listdir(self.root) if n.startswith(".")]

    def clean_partials(self, locked: bool = False) -> list[str]:
        """Remove half-made backup directories whose maker is gone (a crash, kill -9). Safe
        without the node lock: a live maker's PID is in the name. With the lock held
        (`locked`), an old-style `.ID.partial` without a PID goes too."""
        check_trusted(self.state_dir)
        cleaned = []
        for name in self._hidden():
            m = _PARTIAL.match(name)
            if m is None:
                continue
            pid = m.group("pid")
            if (pid is None and not locked) or (pid is not None and pid_alive(int(pid))):
                continue
            entry = self.root / name
            if not stat.S_ISDIR(entry.lstat().st_mode):
                continue  # never follow or remove what cis-tui did not make
            shutil.rmtree(entry, ignore_errors=True)
            cleaned.append(f"removed the unfinished backup {name}")
        return cleaned

    def clean_leftovers(self, open_backup_ids: set[str]) -> list[str]:
        """After a crash: remove half-made backup directories, and close pending backups that
        no open transaction refers to (a kill -9 before the journal intent). Hold the lock.

        Pending backups are found by their markers in `pending-backups` (one directory
        listing); a store from before markers is read in full once."""
        cleaned = self.clean_partials(locked=True)
        markers = self.state_dir / PENDING_DIR
        if not markers.is_dir() or markers.is_symlink() or not (markers / _SCANNED).exists():
            candidates = [b.id for b in self.list() if b.outcome == "pending"]
            if self.root.is_dir():
                private_dir(markers)
                os.close(open_private(markers / _SCANNED, os.O_WRONLY | os.O_CREAT))
        else:
            candidates = [n for n in os.listdir(markers) if not n.startswith(".")]
        for backup_id in candidates:
            if backup_id in open_backup_ids:
                continue
            try:
                backup = self.get(backup_id)
            except UserError:
                self._unmark(backup_id)  # its backup was never made, or is gone
                continue
            if backup.outcome == "pending":
                self.set_outcome(backup, "aborted")
                cleaned.append(f"backup {backup.id} was left pending by a crash: now aborted")
            else:
                self._unmark(backup_id)
        return cleaned

    def prunable(self, keep: int, protected: Collection[str] = ()) -> list[Backup]:
        """The finished backups beyond the newest `keep` (pending ones, and those `protected`
        (an open transaction's), are never pruned)."""
        if keep < 0:
            raise UserError("--keep must be 0 or more")
        finished = [b for b in self.list() if b.outcome != "pending" and b.id not in protected]
        return finished[keep:]

    def expired(
        self,
        policy: RetentionSettings,
        protected: Collection[str] = (),
        now: float | None = None,
    ) -> list[Backup]:
        """What the retention policy removes, oldest first: per file, everything beyond the
        newest `keep_per_file` that is older than `keep_days`; never a pending backup, one
        of an open transaction (`protected`), or the newest committed one of its file."""
        now = dt.datetime.now(dt.timezone.utc).timestamp() if now is None else now
        horizon = now - policy.keep_days * 86400
        seen: dict[str, int] = {}
        committed: set[str] = set()
        doomed = []
        for backup in self.list():  # newest first
            group = backup.group
            seen[group] = seen.get(group, 0) + 1
            last_committed = backup.outcome == "committed" and group not in committed
            if backup.outcome == "committed":
                committed.add(group)
            if (
                seen[group] <= policy.keep_per_file
                or backup.outcome == "pending"
                or backup.id in protected
                or last_committed
                or instant(backup.time) > horizon
            ):
                continue
            doomed.append(backup)
        return doomed[::-1]

    def remove(self, backups: list[Backup]) -> None:
        for backup in backups:
            shutil.rmtree(backup.directory)
            self._unmark(backup.id)

    def prune(self, keep: int, protected: Collection[str] = ()) -> list[Backup]:
        """Delete all but the newest `keep` finished backups; pending ones are never pruned."""
        removed = self.prunable(keep, protected)
        self.remove(removed)
        return removed


def component_file(layout: Layout, component: str) -> Path | None:
    """The one file a component's backups may be restored to."""
    if component == "kubelet":
        return layout.kubelet_config
    if component in layout.manifest_names:
        return layout.manifest(component)
    return None


def inside_layout(path: Path, layout: Layout, files_only: bool) -> bool:
    """Whether a path is one cis-tui may write: a manifest or kubelet config, or (attributes)
    a file the layout names or that lies under its directories."""
    if ".." in path.parts or not path.is_absolute():
        return False
    editable = {layout.manifest(c) for c in layout.manifest_names} | {layout.kubelet_config}
    if files_only:
        return path in editable
    named = editable | {
        layout.kubelet_kubeconfig,
        layout.kubelet_service,
        layout.admin_conf,
        layout.super_admin_conf,
        layout.scheduler_conf,
        layout.controller_manager_conf,
        layout.proxy_kubeconfig,
    }
    trees = (layout.pki_dir, layout.etcd_data_dir, layout.cni_conf_dir, layout.cni_networks_dir)
    return path in named or any(path == t or path.is_relative_to(t) for t in trees)
