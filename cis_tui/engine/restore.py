"""Restoring a backup (health-gated, through the same transaction) and crash recovery."""

from __future__ import annotations

import asyncio
import contextlib
import stat
from dataclasses import dataclass
from pathlib import Path

from cis_tui.audit.node import owner_name, read_text_file
from cis_tui.audit.processes import LiveProcess
from cis_tui.engine.atomic import AtomicWriteError
from cis_tui.engine.attributes import check_recorded_attributes
from cis_tui.engine.backups import Backup
from cis_tui.engine.events import Event, Kind, Outcome
from cis_tui.engine.journal import OpenTransaction
from cis_tui.engine.lock import node_lock
from cis_tui.engine.transaction import (
    ApplyResult,
    Engine,
    FileResult,
    _Tx,
    foreign_edit,
    restore_backup_bytes,
)
from cis_tui.errors import UserError
from cis_tui.persist.apiclient import ApiError, Conflict
from cis_tui.persist.changes import NAMESPACE
from cis_tui.persist.planner import attach_persistence, stored_at
from cis_tui.persist.writes import ATTEMPTS, revert_text
from cis_tui.remediate.plan import AttributeChange, FilePlan, Plan


def restore_plan(engine: Engine, backup: Backup) -> Plan:
    """A one-file plan that puts a backup back (for `backups restore`)."""
    store = engine.store
    if backup.kind == "attributes":
        store.verify_target(backup)
        for r in backup.attributes:
            path = store.layout.confined(Path(r.path))
            try:
                current = path.lstat()
            except OSError as exc:
                raise UserError(f"cannot restore: {exc.strerror}", path) from None
            if stat.S_ISLNK(current.st_mode):
                raise UserError("is a symlink; refusing to change its mode or owner", path)
            check_recorded_attributes(r.path, r.mode, r.uid, r.gid, current)
        changes = tuple(
            AttributeChange(Path(r.path), mode=r.mode, owner=owner_name(r.uid, r.gid))
            for r in backup.attributes
        )
        file = FilePlan(
            "attributes",
            "node",
            None,
            None,
            None,
            (),
            attributes=changes,
            restores=backup.id,
            reverts=backup.checks,
        )
    else:
        data = store.original_bytes(backup)
        path = store.layout.confined(Path(backup.path))
        if path.is_symlink():
            raise UserError("is a symlink; refusing to restore through it", path)
        current = read_text_file(path, "file") if path.exists() else ""
        kind = "kubelet-config" if backup.component == "kubelet" else "manifest"
        try:
            text = data.decode("utf-8")
        except UnicodeDecodeError:
            raise UserError("backup is not UTF-8 text", Path(backup.directory)) from None
        if text == current:
            return Plan(engine.catalog.benchmark, (), {}, ())
        file = FilePlan(
            kind,
            backup.component,
            path,
            current,
            text,
            (),
            restores=backup.id,
            reverts=backup.checks,
        )
    return Plan(engine.catalog.benchmark, (), {}, (file,))


async def restore(engine: Engine, backup_id: str) -> ApplyResult:
    backup = engine.store.get(backup_id)
    if backup.kind == "configmap":
        return await asyncio.to_thread(_restore_configmap, engine, backup)
    # kubeadm's configuration follows: a restored fix must not come back at the next upgrade.
    plan = attach_persistence(restore_plan(engine, backup), engine.settings)
    if plan.empty:
        engine.emit(
            Event(Kind.DONE, message=f"{backup.path or 'attributes'} already match the backup")
        )
        return ApplyResult(())
    result = await engine.apply(plan)
    if result.files and result.files[0].outcome is Outcome.COMMITTED:
        engine.store.set_outcome(backup, "restored")
    return result


def _restore_configmap(engine: Engine, backup: Backup) -> ApplyResult:
    """Put a backed-up kubeadm configuration back (the ConfigMap as it is now is replaced, with
    its resourceVersion: a concurrent change is never overwritten unseen)."""
    name = backup.component
    store, key = stored_at(engine.settings, name, backup.path)
    old = engine.store.original_bytes(backup).decode("utf-8")
    file = FilePlan("configmap", name, None, None, old, (), restores=backup.id)
    with node_lock(engine.settings.state_dir), store as client:
        for _ in range(ATTEMPTS):
            found = client.get(name, NAMESPACE)
            if found.data.get(key) == old:
                message = f"{backup.path} already matches backup {backup.id}"
                engine.emit(Event(Kind.DONE, message=message))
                return ApplyResult(())
            try:
                client.replace(found, {**found.data, key: old})
            except Conflict:
                continue
            break
        else:
            raise UserError(f"{backup.path} kept changing: gave up after {ATTEMPTS} conflicts")
    engine.store.set_outcome(backup, "restored")
    message = f"restored {backup.path} from backup {backup.id}"
    engine.emit(Event(Kind.OUTCOME, backup.path, name, outcome=Outcome.COMMITTED, message=message))
    engine.emit(Event(Kind.DONE, message="restore finished: 1 committed"))
    return ApplyResult((FileResult(file, Outcome.COMMITTED, message, backup.id),))


def _recover_configmap(engine: Engine, tx: OpenTransaction) -> str | None:
    """Take back what an interrupted transaction wrote into kubeadm's configuration (None:
    done, or nothing was written); the problem in one line otherwise."""
    if not tx.persist_backup_id:
        return None
    try:
        backup = engine.store.get(tx.persist_backup_id)
        old = engine.store.original_bytes(backup).decode("utf-8")
        store, key = stored_at(engine.settings, backup.component, backup.path)
        with store as client:
            problem = revert_text(
                client, backup.component, key, old, tx.persist_sha256, label=backup.path
            )
    except (UserError, ApiError, OSError) as exc:
        problem = str(exc)
    if problem is None:
        _set_outcome(engine, tx.persist_backup_id, "recovered")
        return None
    return f"{problem}; put it back with: cis-tui backups restore {tx.persist_backup_id}"


def _set_outcome(engine: Engine, backup_id: str, outcome: str) -> None:
    with contextlib.suppress(OSError, UserError, AtomicWriteError):
        engine.store.set_outcome(engine.store.get(backup_id), outcome)


@dataclass(frozen=True)
class Recovered:
    txid: str
    backup_id: str
    path: str
    action: str  # what was done, in words
    ok: bool


async def recover(engine: Engine) -> list[Recovered]:
    """Finish every transaction the journal left open: restore the pre-change bytes (verified
    by sha256), then, on a live node, wait for the old configuration to be healthy."""
    done: list[Recovered] = []
    with node_lock(engine.settings.state_dir):
        pending = engine.journal.open_transactions()
        for note in await asyncio.to_thread(
            engine.store.clean_leftovers, {tx.backup_id for tx in pending}
        ):
            engine.emit(Event(Kind.NOTE, message=note))
        for tx in pending:
            try:
                backup = engine.store.get(tx.backup_id)
                theirs = None
                if backup.kind == "file":
                    theirs = await asyncio.to_thread(
                        foreign_edit, engine.store, backup, tx.new_sha256
                    )
                if theirs is not None:
                    problem = (
                        f"{backup.path} holds neither the original nor cis-tui's bytes: someone "
                        f"edited it, so it was left as it is; their version is backup {theirs.id}, "
                        f"the original backup {backup.id}"
                    )
                    _close_record(engine, tx.txid, backup, "critical", problem)
                    _done(engine, done, tx, Recovered(tx.txid, backup.id, tx.path, problem, False))
                    engine.emit(Event(Kind.NOTE, tx.path, tx.component, message=problem))
                    continue
                changed = await asyncio.to_thread(restore_backup_bytes, engine.store, backup)
            except (UserError, OSError, AtomicWriteError) as exc:
                failed = Recovered(tx.txid, tx.backup_id, tx.path, f"cannot restore: {exc}", False)
                _done(engine, done, tx, failed)
                engine.emit(
                    Event(Kind.NOTE, tx.path, tx.component, message=f"cannot restore: {exc}")
                )
                continue
            what = "restored the original bytes" if changed else "the file was already the original"
            problem = await asyncio.to_thread(_recover_configmap, engine, tx)
            if problem is None and tx.persist_backup_id:
                what += " and kubeadm's configuration"
            if problem is None and engine.gate and backup.kind == "file" and changed:
                problem = await _gate_restored(engine, backup)
            if problem:
                _close_record(engine, tx.txid, backup, "critical", problem)
                failed = Recovered(tx.txid, backup.id, tx.path, f"{what}, but {problem}", False)
                _done(engine, done, tx, failed)
                continue
            _close_record(engine, tx.txid, backup, "recovered")
            label = backup.path or "file modes and owners"
            engine.emit(
                Event(
                    Kind.OUTCOME,
                    label,
                    backup.component,
                    outcome=Outcome.ROLLED_BACK,
                    message=f"recovered: {what} (sha256 {backup.sha256[:12] or 'n/a'})",
                )
            )
            _done(engine, done, tx, Recovered(tx.txid, backup.id, label, what, True))
    return done


def _done(engine: Engine, done: list[Recovered], tx: OpenTransaction, result: Recovered) -> None:
    """Count a recovered transaction, and keep it in the change history (`cis-tui report`)."""
    done.append(result)
    outcome = "recovered" if result.ok else "critical"
    engine.history.recovered(
        tx.txid, result.backup_id, result.path, tx.component, tx.started, outcome, result.action
    )


def _close_record(
    engine: Engine, txid: str, backup: Backup, step: str, reason: str | None = None
) -> None:
    """Close a recovered transaction in the journal and the backup (errors become notes)."""
    try:
        engine.journal.record(txid, step, **({"reason": reason} if reason else {}))
        engine.store.set_outcome(backup, step)
    except (OSError, UserError, AtomicWriteError) as exc:
        engine.emit(Event(Kind.NOTE, backup.path, backup.component, message=f"{exc}"))


async def _gate_restored(engine: Engine, backup: Backup) -> str | None:
    """Wait for the restored configuration to run and answer healthy."""
    path = Path(backup.path)
    text = path.read_text(encoding="utf-8")
    kind = "kubelet-config" if backup.component == "kubelet" else "manifest"
    file = FilePlan(kind, backup.component, path, text, text, ())
    tx = _Tx(file, str(path))
    if kind == "manifest":
        from cis_tui.audit.node import parse_manifest

        args = parse_manifest(text, path, backup.component).argv
        tx.old_process = LiveProcess(backup.component, 0, args, 0.0)
    else:
        from cis_tui.engine.restart import find_process

        tx.old_process = await find_process(
            "kubelet", engine.settings.process_root, identity=engine.settings.identity
        )
    return await engine._gate_old(tx)
