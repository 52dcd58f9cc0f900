"""Backups in the state directory: original bytes, checksum, mode, owner, checks, outcome.

Never inside the manifests directory (the kubelet would run a stray copy as a second pod).
A backup is read back and its checksum compared before any change is made. A restore verifies
the checksum and writes only to the file of the backup's own component, inside the layout.
Everything in the store is read without following symlinks (see `statedir`).
"""

from __future__ import annotations

import datetime as dt
import errno
import hashlib
import json
import os
import secrets
import shutil
import stat
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
from cis_tui.layout import Layout

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
        }


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

    def _ensure_root(self) -> None:
        ensure_state_dir(self.state_dir)
        private_dir(self.root)

    def _new_id(self, component: str) -> str:
        stamp = dt.datetime.now(dt.timezone.utc).strftime("%Y%m%d-%H%M%S")
        return f"{stamp}-{component}-{secrets.token_hex(3)}"

    def create_file_backup(
        self, path: Path, component: str, checks: tuple[str, ...], plan: dict[str, Any]
    ) -> Backup:
        """Copy the file's bytes and attributes; durable (fsynced) and read back before it
        returns."""
        self._ensure_root()
        data, st = read_regular(path)
        backup = Backup(
            id=self._new_id(component),
            time=dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
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
        backup = Backup(
            id=self._new_id(component),
            time=dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
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
        backup = Backup(
            id=self._new_id("attributes"),
            time=dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
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
        tmp = self.root / f".{backup.id}.partial"
        tmp.mkdir(mode=0o700)
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
            raise
        return replace(backup, directory=str(directory))

    def set_outcome(self, backup: Backup, outcome: str) -> Backup:
        """Record a backup's outcome (OSError if the state directory refuses the write)."""
        updated = replace(backup, outcome=outcome)
        meta = Path(backup.directory) / "meta.json"
        atomic_write(meta, json.dumps(updated.to_dict(), indent=2).encode(), mode=0o600)
        return updated

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

    def list(self) -> list[Backup]:
        """Every backup, newest first; unreadable ones are reported by `get`, skipped here."""
        found = []
        for entry in self._entries():
            try:
                found.append(self._read(entry))
            except UserError:
                continue
        return sorted(found, key=lambda b: (b.time, b.id), reverse=True)

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

    def clean_leftovers(self, open_backup_ids: set[str]) -> list[str]:
        """After a crash: remove half-made backup directories, and close pending backups that
        no open transaction refers to (a kill -9 before the journal intent). Hold the lock."""
        cleaned = []
        try:
            entries = list(self.root.iterdir()) if self.root.is_dir() else []
        except OSError:
            entries = []
        for entry in entries:
            if entry.name.startswith(".") and entry.name.endswith(".partial"):
                shutil.rmtree(entry, ignore_errors=True)
                cleaned.append(f"removed the unfinished backup {entry.name}")
        for backup in self.list():
            if backup.outcome == "pending" and backup.id not in open_backup_ids:
                self.set_outcome(backup, "aborted")
                cleaned.append(f"backup {backup.id} was left pending by a crash: now aborted")
        return cleaned

    def prunable(self, keep: int) -> list[Backup]:
        """The finished backups beyond the newest `keep` (pending ones are never pruned)."""
        if keep < 0:
            raise UserError("--keep must be 0 or more")
        return [b for b in self.list() if b.outcome != "pending"][keep:]

    def remove(self, backups: list[Backup]) -> None:
        for backup in backups:
            shutil.rmtree(backup.directory)

    def prune(self, keep: int) -> list[Backup]:
        """Delete all but the newest `keep` finished backups; pending ones are never pruned."""
        removed = self.prunable(keep)
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
