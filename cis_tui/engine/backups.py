"""Backups in the state directory: original bytes, checksum, mode, owner, checks, outcome.

Never inside the manifests directory (the kubelet would run a stray copy as a second pod).
A restore verifies the checksum and writes only to the recorded path, only inside the layout.
"""

from __future__ import annotations

import datetime as dt
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
from cis_tui.engine.lock import ensure_private_dir
from cis_tui.errors import UserError
from cis_tui.layout import Layout


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
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600)
    try:
        os.write(fd, data)
        os.fsync(fd)
    finally:
        os.close(fd)


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


class BackupStore:
    """The backups directory of a node's state dir."""

    def __init__(self, state_dir: Path, layout: Layout) -> None:
        self.root = state_dir / "backups"
        self.layout = layout

    def _new_id(self, component: str) -> str:
        stamp = dt.datetime.now(dt.timezone.utc).strftime("%Y%m%d-%H%M%S")
        return f"{stamp}-{component}-{secrets.token_hex(3)}"

    def create_file_backup(
        self, path: Path, component: str, checks: tuple[str, ...], plan: dict[str, Any]
    ) -> Backup:
        """Copy the file's bytes and attributes; durable (fsynced) before it returns."""
        ensure_private_dir(self.root)
        st = path.lstat()
        if not stat.S_ISREG(st.st_mode):
            raise UserError("is not a regular file; refusing to back it up", path)
        data = path.read_bytes()
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

    def create_attribute_backup(
        self, paths: list[Path], checks: tuple[str, ...], plan: dict[str, Any]
    ) -> Backup:
        ensure_private_dir(self.root)
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
        if data is not None:
            _write_private(tmp / "original", data)
        _write_private(tmp / "meta.json", json.dumps(backup.to_dict(), indent=2).encode())
        _fsync_dir(tmp)
        os.replace(tmp, directory)
        _fsync_dir(self.root)
        return replace(backup, directory=str(directory))

    def set_outcome(self, backup: Backup, outcome: str) -> Backup:
        updated = replace(backup, outcome=outcome)
        meta = Path(backup.directory) / "meta.json"
        atomic_write(meta, json.dumps(updated.to_dict(), indent=2).encode(), mode=0o600)
        return updated

    # -- reading ---------------------------------------------------------------------------
    def list(self) -> list[Backup]:
        """Every backup, newest first; unreadable ones are reported by `get`, skipped here."""
        if not self.root.is_dir():
            return []
        found = []
        for entry in self.root.iterdir():
            if entry.name.startswith("."):
                continue
            try:
                found.append(self._read(entry))
            except UserError:
                continue
        return sorted(found, key=lambda b: (b.time, b.id), reverse=True)

    def get(self, backup_id: str) -> Backup:
        if "/" in backup_id or backup_id.startswith(".") or not backup_id:
            raise UserError(f"invalid backup id {backup_id!r}")
        directory = self.root / backup_id
        if not directory.is_dir():
            raise UserError(f"no backup {backup_id!r} in {self.root}")
        return self._read(directory)

    def _read(self, directory: Path) -> Backup:
        meta = directory / "meta.json"
        try:
            raw = json.loads(meta.read_text(encoding="utf-8"))
            attributes = tuple(AttributeRecord(**a) for a in raw.pop("attributes", []))
            raw["checks"] = tuple(raw.get("checks", ()))
            return Backup(**raw, attributes=attributes, directory=str(directory))
        except (OSError, ValueError, TypeError) as exc:
            raise UserError(f"unreadable backup metadata: {exc}", meta) from None

    def original_bytes(self, backup: Backup) -> bytes:
        """The backed-up bytes, verified against the recorded checksum and the layout."""
        self.verify_target(backup)
        if backup.kind != "file":
            return b""
        data_path = Path(backup.directory) / "original"
        try:
            data = data_path.read_bytes()
        except OSError as exc:
            raise UserError(f"cannot read backup: {exc.strerror}", data_path) from None
        if sha256_bytes(data) != backup.sha256:
            raise UserError(
                "backup does not match its recorded sha256 (tampered or corrupt); refusing",
                data_path,
            )
        return data

    def verify_target(self, backup: Backup) -> None:
        """Tampered metadata must not make a restore write outside the node layout."""
        meta = Path(backup.directory) / "meta.json"
        paths = [backup.path] if backup.kind == "file" else [a.path for a in backup.attributes]
        if backup.kind not in {"file", "attributes"} or not paths:
            raise UserError("backup metadata names no target; refusing", meta)
        for p in paths:
            if not inside_layout(Path(p), self.layout, files_only=backup.kind == "file"):
                raise UserError(f"backup target {p} is outside the node layout; refusing", meta)
        if backup.kind == "file" and not (0 <= backup.mode <= 0o7777):
            raise UserError("backup metadata has an invalid mode; refusing", meta)

    def prune(self, keep: int) -> list[Backup]:
        """Delete all but the newest `keep` finished backups; pending ones are never pruned."""
        if keep < 0:
            raise UserError("--keep must be 0 or more")
        finished = [b for b in self.list() if b.outcome != "pending"]
        removed = finished[keep:]
        for backup in removed:
            shutil.rmtree(backup.directory)
        return removed


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
