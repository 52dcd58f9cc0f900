"""Apply a plan: one linear, health-gated transaction per file, with one rollback path.

Per file: snapshot, backup, journal intent, companion files, atomic write, restart, restart
evidence, health gate, audit re-check, commit — or roll back to the original bytes and wait for
the old configuration to come back healthy. The first failing file stops the apply; files
already committed stay; the rest are reported as skipped. Nothing here knows whether it talks to
a real node or a sandbox.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import time
from dataclasses import dataclass, field
from pathlib import Path

from cis_tui.audit.evaluate import Result, Status, evaluate
from cis_tui.audit.node import InputError, parse_manifest, read_text_file, take_snapshot
from cis_tui.audit.processes import LiveProcess
from cis_tui.benchmarks.catalog import Catalog
from cis_tui.engine.atomic import AtomicWriteError, atomic_write, create_new
from cis_tui.engine.attributes import check_recorded_attributes, set_attributes
from cis_tui.engine.backups import Backup, BackupStore, read_regular, sha256_bytes
from cis_tui.engine.events import Event, Kind, Outcome, Sink, Step
from cis_tui.engine.health import (
    Endpoint,
    GateSetupError,
    Prober,
    ProbeResult,
    Stability,
    health_gate,
    kubelet_endpoints,
    manifest_endpoints,
    stability_window,
)
from cis_tui.engine.history import HistoryRecorder
from cis_tui.engine.journal import Journal
from cis_tui.engine.lock import node_lock
from cis_tui.engine.restart import (
    find_process,
    pid_alive,
    port_problem,
    run_restart_command,
    wait_for_process,
)
from cis_tui.errors import UserError
from cis_tui.layout import Settings
from cis_tui.persist.apiclient import ApiError, ConfigStore
from cis_tui.persist.clusterconfig import ConfigEditError
from cis_tui.persist.planner import UPGRADE_REVERTS, Persistence, open_store
from cis_tui.persist.writes import Written, revert_change, sha256_text, write_change
from cis_tui.remediate.plan import FilePlan, Plan


@dataclass(frozen=True)
class FileResult:
    file: FilePlan
    outcome: Outcome
    message: str
    backup_id: str | None = None
    #: Committed, but not mirrored into kubeadm's configuration: why (the next `kubeadm
    #: upgrade` reverts the fix).
    not_persisted: str = ""


@dataclass(frozen=True)
class ApplyResult:
    files: tuple[FileResult, ...]
    cancelled: bool = False

    @property
    def exit_code(self) -> int:
        outcomes = {f.outcome for f in self.files}
        if Outcome.CRITICAL in outcomes:
            return 3
        if outcomes & {Outcome.ROLLED_BACK, Outcome.SKIPPED} or self.cancelled:
            return 1
        if any(f.not_persisted for f in self.files):
            return 1
        return 0


class _Failed(Exception):
    """A step failed: roll back (message says why)."""


class _Cancelled(Exception):
    """The admin asked to stop: roll back if anything changed."""


@dataclass
class _Tx:
    """State of one file's transaction."""

    file: FilePlan
    label: str
    txid: str = ""
    backup: Backup | None = None
    written: bool = False
    old_process: LiveProcess | None = None
    old_healthy: bool | None = None
    #: The process restart evidence proved (with its start time: a reused PID is not it).
    new_process: LiveProcess | None = None
    created: list[str] = field(default_factory=list)
    new_sha256: str = ""  # of the bytes this transaction writes
    audit_summary: str = ""
    persisted: Written | None = None  # the kubeadm configuration change written
    persist_backup: Backup | None = None
    not_persisted: str = ""


def _label(file: FilePlan) -> str:
    return str(file.path) if file.path else "file modes and owners"


class Engine:
    """Applies plans and restores backups on one node; async, never blocks its event loop."""

    def __init__(
        self,
        settings: Settings,
        catalog: Catalog,
        sink: Sink,
        *,
        health_gate: bool = True,
        timeout: float | None = None,
    ) -> None:
        self.settings = settings
        self.catalog = catalog
        self.sink = sink
        self.gate = health_gate
        self.timeout = timeout
        self.store = BackupStore(settings.state_dir, settings.layout)
        self.journal = Journal(settings.state_dir)
        #: The proof of each finished transaction, for `cis-tui report` (engine.history).
        self.history = HistoryRecorder(settings.state_dir)
        self.cancel = asyncio.Event()
        #: Why the change in flight is rolled back when `cancel` is set (see `stop`).
        self.cancel_reason = "cancelled by the admin"
        self._rolling_back = False
        self.persistence: Persistence | None = None
        self._client: ConfigStore | None = None

    # -- events -------------------------------------------------------------------------
    def emit(self, event: Event) -> None:
        # A broken terminal (SSH dropped) must not stop a transaction half-way.
        with contextlib.suppress(Exception):
            self.sink(event)
        with contextlib.suppress(Exception):
            self.history.observe(event)

    def _step(self, tx: _Tx, step: Step, ok: bool | None = None, message: str = "") -> None:
        self.emit(Event(Kind.STEP, tx.label, tx.file.component, step, ok, message))

    def stop(self, reason: str) -> None:
        """Cancel for `reason` (a signal, a lost terminal): the first reason given is kept."""
        if not self.cancel.is_set():
            self.cancel_reason = reason
        self.cancel.set()

    def _cancelled(self) -> bool:
        return self.cancel.is_set() and not self._rolling_back

    def _timeout_for(self, component: str) -> float:
        return self.timeout or self.settings.health.timeout_for(component)

    # -- public -------------------------------------------------------------------------
    async def apply(self, plan: Plan) -> ApplyResult:
        if self.gate and self.settings.has_root_override:
            raise UserError("a --root tree has no live processes to gate on; add --no-health-gate")
        results: list[FileResult] = []
        plan_doc = {"benchmark": plan.benchmark, "checks": list(plan.checks), "params": plan.params}
        for file in plan.files:
            self._confine(file)  # exit 2 before anything is touched
        self.persistence = plan.persistence
        try:
            return await self._apply_locked(plan, plan_doc, results)
        finally:
            if self._client is not None:
                self._client.close()
                self._client = None

    async def _apply_locked(
        self, plan: Plan, plan_doc: dict, results: list[FileResult]
    ) -> ApplyResult:
        with node_lock(self.settings.state_dir):
            self.emit(Event(Kind.STEP, step=Step.LOCK, ok=True, message=str(os.getpid())))
            with contextlib.suppress(OSError, UserError):  # a crash's half-made backups
                for note in await asyncio.to_thread(self.store.clean_partials):
                    self.emit(Event(Kind.NOTE, message=note))
            failed = False
            for file in plan.files:
                label = _label(file)
                if failed or self._cancelled():
                    why = "cancelled" if self._cancelled() else "an earlier file failed"
                    self.emit(Event(Kind.SKIPPED, label, file.component, message=why))
                    results.append(FileResult(file, Outcome.SKIPPED, why))
                    continue
                result = await self._transaction(_Tx(file, label), plan_doc)
                results.append(result)
                failed = result.outcome is not Outcome.COMMITTED
            if any(r.outcome is Outcome.COMMITTED for r in results):
                await self._retain(plan)
        outcome = ApplyResult(tuple(results), cancelled=self._cancelled())
        self.emit(Event(Kind.DONE, message=_summary(outcome)))
        return outcome

    async def _retain(self, plan: Plan) -> None:
        """The `[backups]` retention policy, after a commit (the lock is held). Never the
        backup being restored, nor one an open transaction needs."""
        if not self.settings.retention.prune_after_commit:
            return
        try:
            protected = {f.restores for f in plan.files if f.restores}
            for open_tx in self.journal.open_transactions():
                protected |= {open_tx.backup_id, open_tx.persist_backup_id}
            doomed = await asyncio.to_thread(self.store.expired, self.settings.retention, protected)
            await asyncio.to_thread(self.store.remove, doomed)
        except (OSError, UserError) as exc:
            self.emit(Event(Kind.NOTE, message=f"backup retention not applied: {exc}"))
            return
        if doomed:
            listed = ", ".join(b.id for b in doomed)
            self.emit(
                Event(Kind.NOTE, message=f"retention removed {len(doomed)} backup(s): {listed}")
            )

    # -- one file -------------------------------------------------------------------------
    async def _transaction(self, tx: _Tx, plan_doc: dict) -> FileResult:
        file = tx.file
        self.history.begin(tx.label, file, time.time())
        try:
            await self._snapshot(tx)
            await self._backup(tx, plan_doc)
            if self._cancelled():
                raise _Cancelled()
            await self._write(tx)
            if self.gate:
                await self._restart_and_gate(tx)
            # After the gate: a restarted API server can take the write (and it is known good).
            await self._persist(tx)
            await self._audit(tx)
        except _Cancelled:
            if not tx.written:
                return self._close(tx, Outcome.SKIPPED, "cancelled before any change", "aborted")
            return await self._rollback(tx, self.cancel_reason, cancelled=True)
        except _Failed as exc:
            if not tx.written:
                return self._close(tx, Outcome.SKIPPED, f"nothing changed: {exc}", "aborted")
            return await self._rollback(tx, str(exc))
        except asyncio.CancelledError:
            # The task itself was cancelled (e.g. the UI is closing): still never half-way.
            self.cancel.set()
            if tx.written:
                result = await asyncio.shield(self._rollback(tx, "interrupted"))
                return result
            raise
        self._step(tx, Step.COMMIT, None)
        try:
            self.journal.record(tx.txid, "committed")
        except (OSError, UserError) as exc:
            # The journal would have `recover` undo this change later: undo it now instead.
            why = f"cannot record the commit in the journal: {_os_problem(exc)}"
            return await self._rollback(tx, why)
        if tx.backup:
            tx.backup = self._record_outcome(tx, tx.backup, "committed")
        self._step(tx, Step.COMMIT, True)
        if tx.persist_backup:
            tx.persist_backup = self._record_outcome(tx, tx.persist_backup, "committed")
        if file.restores:
            message = f"restored {tx.label} from backup {file.restores}; {tx.audit_summary}"
        elif file.checks:
            message = f"fixed {', '.join(file.checks)}"
        else:
            message = f"wrote {tx.label}"
        if tx.persisted:
            message += f"; persisted in {tx.persisted.change.label}"
        elif tx.not_persisted:
            message += f"; NOT persisted ({tx.not_persisted}): {UPGRADE_REVERTS}"
        self.emit(
            Event(
                Kind.OUTCOME, tx.label, file.component, outcome=Outcome.COMMITTED, message=message
            )
        )
        backup_id = tx.backup.id if tx.backup else None
        return FileResult(file, Outcome.COMMITTED, message, backup_id, tx.not_persisted)

    def _close(self, tx: _Tx, outcome: Outcome, message: str, journal_step: str) -> FileResult:
        if tx.txid:
            try:
                self.journal.record(tx.txid, journal_step)
            except (OSError, UserError) as exc:
                self._note(tx, f"could not record {journal_step!r} in the journal: {exc}")
        if tx.backup:
            tx.backup = self._record_outcome(tx, tx.backup, outcome.value)
        self.emit(
            Event(Kind.OUTCOME, tx.label, tx.file.component, outcome=outcome, message=message)
        )
        return FileResult(tx.file, outcome, message, tx.backup.id if tx.backup else None)

    def _note(self, tx: _Tx, message: str) -> None:
        self.emit(Event(Kind.NOTE, tx.label, tx.file.component, message=message))

    def _record_outcome(self, tx: _Tx, backup: Backup, outcome: str) -> Backup:
        """Best effort: the journal is the record that counts; a refused metadata write is
        reported, never a traceback."""
        try:
            return self.store.set_outcome(backup, outcome)
        except (OSError, AtomicWriteError, UserError) as exc:
            self._note(tx, f"could not record outcome {outcome!r} in backup {backup.id}: {exc}")
            return backup

    def _confine(self, file: FilePlan) -> None:
        """Under --root, no read or write may follow a symlink out of the tree."""
        layout = self.settings.layout
        paths = [a.path for a in file.attributes] if file.kind == "attributes" else [file.path]
        paths += [c.path for c in file.companions]
        for path in paths:
            if path is not None:
                layout.confined(path)

    async def _snapshot(self, tx: _Tx) -> None:
        file = tx.file
        self._step(tx, Step.SNAPSHOT)
        if file.kind == "attributes" or not self.gate:
            self._step(tx, Step.SNAPSHOT, True, "no process to watch")
            return
        if file.kind == "manifest":
            # Probes verify TLS with the cluster CA: without it no gate can pass, and the
            # rollback's gate would fail too. Find out before anything changes.
            try:
                await asyncio.to_thread(Prober(self.settings.layout.ca_cert).check_ca)
            except GateSetupError as exc:
                self._step(tx, Step.SNAPSHOT, False, str(exc))
                raise _Failed(str(exc)) from None
        tx.old_process = await find_process(
            file.component, self.settings.process_root, identity=self.settings.identity
        )
        pid = f"PID {tx.old_process.pid}" if tx.old_process else "not running"
        data = {"pid": tx.old_process.pid} if tx.old_process else {}
        self.emit(Event(Kind.STEP, tx.label, file.component, Step.SNAPSHOT, True, pid, data=data))

    async def _backup(self, tx: _Tx, plan_doc: dict) -> None:
        file = tx.file
        self._step(tx, Step.BACKUP)
        try:
            self._confine(file)
            if file.kind == "attributes":
                paths = [a.path for a in file.attributes]
                tx.backup = await asyncio.to_thread(
                    self.store.create_attribute_backup, paths, file.checks, plan_doc
                )
            else:
                assert file.path is not None
                # Bytes, not universal-newline text: a CRLF file must compare equal to itself.
                current = await asyncio.to_thread(file.path.read_bytes)
                if current != (file.old_text or "").encode("utf-8"):
                    raise _Failed(f"{file.path} changed since the plan was made; plan again")
                tx.backup = await asyncio.to_thread(
                    self.store.create_file_backup, file.path, file.component, file.checks, plan_doc
                )
        except OSError as exc:
            raise _Failed(f"backup failed: {exc.strerror or exc}") from None
        except UserError as exc:
            raise _Failed(str(exc)) from None
        self._step(tx, Step.BACKUP, True, tx.backup.id)
        tx.txid = self.journal.new_txid()
        self._step(tx, Step.JOURNAL)
        if file.new_text is not None:
            tx.new_sha256 = sha256_bytes(file.new_text.encode())
        try:
            self.journal.record(
                tx.txid,
                "intent",
                backup_id=tx.backup.id,
                path=str(file.path or ""),
                component=file.component,
                pid=os.getpid(),
                checks=list(file.checks),
                new_sha256=tx.new_sha256,
            )
        except (OSError, UserError) as exc:
            tx.txid = ""  # nothing is journaled, and nothing changed
            raise _Failed(f"cannot write the journal: {_os_problem(exc)}") from None
        self._step(tx, Step.JOURNAL, True, tx.txid)

    async def _write(self, tx: _Tx) -> None:
        file = tx.file
        self._step(tx, Step.WRITE)
        try:
            self.journal.record(tx.txid, "writing")
        except (OSError, UserError) as exc:
            raise _Failed(f"cannot write the journal: {_os_problem(exc)}") from None
        try:
            for comp in file.companions:
                made = await asyncio.to_thread(create_new, comp.path, comp.content, comp.mode)
                if made:
                    tx.created.append(str(comp.path))
                    self.journal.record(tx.txid, "companion", created=str(comp.path))
                elif comp.shared and not await asyncio.to_thread(_holds, comp.path, comp.content):
                    # Appeared since the plan: never overwritten, and not the bundle's bytes.
                    raise _Failed(f"{comp.path} exists and differs from the companion bundle's")
                else:
                    self.emit(
                        Event(
                            Kind.NOTE,
                            tx.label,
                            file.component,
                            message=f"{comp.path} already exists; left as it is",
                        )
                    )
            if file.kind == "attributes":
                tx.written = True  # from the first chmod on, a rollback is due
                for change in file.attributes:
                    await asyncio.to_thread(
                        _apply_attribute, change.path, change.mode, change.owner
                    )
            else:
                assert file.path is not None and file.new_text is not None
                tx.written = True
                await asyncio.to_thread(atomic_write, file.path, file.new_text.encode())
        except (AtomicWriteError, OSError, UserError) as exc:
            if file.kind != "attributes" and not getattr(exc, "renamed", False):
                # atomic_write failed before its rename: the target is untouched.
                tx.written = False
            raise _Failed(_os_problem(exc)) from None
        try:
            self.journal.record(tx.txid, "written")
        except (OSError, UserError) as exc:
            raise _Failed(f"cannot write the journal: {_os_problem(exc)}") from None
        self._step(tx, Step.WRITE, True)

    async def _persist(self, tx: _Tx) -> None:
        """Mirror the fix into kubeadm's stored configuration (after a backup of it), so that
        `kubeadm upgrade` keeps it. A refusal leaves the fix in place, reported not persisted;
        a rollback later takes the configuration back too."""
        file, persistence = tx.file, self.persistence
        change = file.persist
        if change is None:
            if persistence is not None and persistence.failed and _persistable(file):
                tx.not_persisted = persistence.failed
            return
        assert persistence is not None and tx.backup
        self._step(tx, Step.PERSIST, None, change.label)
        plan_doc = tx.backup.plan

        def backup_old(old: str, new: str) -> None:
            same = tx.persist_backup is not None and tx.persist_backup.sha256 == sha256_bytes(
                old.encode()
            )
            if not same:
                tx.persist_backup = self.store.create_configmap_backup(
                    change.label, change.name, old, file.checks, plan_doc
                )
            assert tx.persist_backup is not None
            # Before the write: `recover` can then take it back after a kill -9.
            self.journal.record(
                tx.txid,
                "persisting",
                persist_backup_id=tx.persist_backup.id,
                persist_sha256=sha256_text(new),
            )

        try:
            if self._client is None:
                self._client = open_store(persistence, change)
            tx.persisted = await asyncio.to_thread(write_change, self._client, change, backup_old)
        except (ApiError, ConfigEditError, OSError, UserError) as exc:
            tx.not_persisted = f"{change.label}: {exc}"
            self._step(tx, Step.PERSIST, False, tx.not_persisted)
            self._note(tx, f"not persisted: {tx.not_persisted}; {UPGRADE_REVERTS}")
            return
        if tx.persisted is None:
            self._step(tx, Step.PERSIST, True, f"{change.label} already holds it")
            return
        with contextlib.suppress(OSError, UserError):  # the backup is the record that counts
            self.journal.record(tx.txid, "persisted")
        self._step(tx, Step.PERSIST, True, change.label)

    async def _unpersist(self, tx: _Tx) -> str | None:
        """Take a written configuration change back (None: done, or nothing to take back)."""
        if tx.persisted is None or self._client is None:
            return None
        wait = self._timeout_for(tx.file.component)
        problem = await asyncio.to_thread(revert_change, self._client, tx.persisted, wait)
        if problem is None:
            self._note(tx, f"{tx.persisted.change.label} restored")
            if tx.persist_backup:
                tx.persist_backup = self._record_outcome(tx, tx.persist_backup, "rolled-back")
            return None
        backup = tx.persist_backup.id if tx.persist_backup else "?"
        return f"{problem}; put it back by hand: cis-tui backups restore {backup}"

    async def _restart_and_gate(self, tx: _Tx) -> None:
        file = tx.file
        if file.kind == "attributes":
            return
        timeout = self._timeout_for(file.component)
        started = time.monotonic()
        deadline = started + timeout
        expected = await asyncio.to_thread(self._expected_args, tx)
        if file.kind == "kubelet-config":
            self._step(tx, Step.RESTART, None, " ".join(self.settings.kubelet_restart_command))
            problem = await run_restart_command(
                self.settings.kubelet_restart_command, min(timeout, 60)
            )
            if problem:
                self._step(tx, Step.RESTART, False, problem)
                raise _Failed(problem)
            self._step(tx, Step.RESTART, True)
        self._step(tx, Step.RESTART_EVIDENCE)
        old_pid = tx.old_process.pid if tx.old_process else None
        evidence = await wait_for_process(
            file.component,
            self.settings.process_root,
            expected,
            old_pid,
            deadline,
            self._cancelled,
            identity=self.settings.identity,
        )
        if self._cancelled():
            raise _Cancelled()
        if evidence.process is None:
            self._step(tx, Step.RESTART_EVIDENCE, False, evidence.message)
            raise _Failed(evidence.message)
        tx.new_process = evidence.process
        self._step(tx, Step.RESTART_EVIDENCE, True, evidence.message)
        self.emit(
            Event(
                Kind.RESTART,
                tx.label,
                file.component,
                message=evidence.message,
                elapsed=time.monotonic() - started,
                data={"pid": evidence.process.pid},
            )
        )
        await self._gate(tx, self._endpoints(tx, new=True), started, timeout, expected)
        if file.component == "etcd":
            await self._gate_apiserver_after_etcd(tx, started, timeout)

    def _expected_args(self, tx: _Tx) -> tuple[str, ...] | None:
        file = tx.file
        if file.kind == "manifest" and file.new_text is not None and file.path is not None:
            return parse_manifest(file.new_text, file.path, file.component).argv
        if tx.old_process is not None:
            return tx.old_process.args  # the kubelet's command line does not change
        return None

    def _endpoints(self, tx: _Tx, new: bool) -> list[Endpoint]:
        file = tx.file
        text = file.new_text if new else file.old_text
        assert text is not None and file.path is not None
        if file.kind == "kubelet-config":
            from cis_tui.safeyaml import load

            return kubelet_endpoints(load(text))
        return manifest_endpoints(parse_manifest(text, file.path, file.component))

    async def _gate(
        self,
        tx: _Tx,
        endpoints: list[Endpoint],
        started: float,
        timeout: float,
        expected: tuple[str, ...] | None,
        component: str | None = None,
    ) -> None:
        comp = component or tx.file.component
        health = self.settings.health
        prober = Prober(self.settings.layout.ca_cert)
        window, window_source = stability_window(health, comp, endpoints)
        # Never another process (what replaces it is unproven), nor one that reuses its PID.
        watched = tx.new_process

        async def alive() -> str | None:
            if watched is None:
                return f"no {comp} process to watch"
            if not await asyncio.to_thread(pid_alive, watched.pid, watched.create_time):
                message = f"{comp} PID {watched.pid} exited"
                self._step(tx, Step.HEALTH, False, message)
                raise _Failed(message)
            urls = [e.url for e in endpoints]
            return await asyncio.to_thread(port_problem, comp, watched.pid, urls)

        def on_poll(
            endpoint: Endpoint, result: ProbeResult, elapsed: float, stable: Stability
        ) -> None:
            state = "ok" if result.ok else "failing"
            self.emit(
                Event(
                    Kind.POLL,
                    tx.label,
                    comp,
                    Step.HEALTH,
                    result.ok,
                    f"{endpoint.url} {result.detail} ({state}, TLS {result.tls})",
                    latency_ms=result.latency_ms,
                    elapsed=elapsed,
                    timeout=timeout,
                    data={"url": endpoint.url, "tls": result.tls, "status": result.status},
                    stable=round(stable.seconds, 3),
                    window=window,
                )
            )

        def on_first(when: float) -> None:
            self.emit(
                Event(
                    Kind.HEALTHY,
                    tx.label,
                    comp,
                    Step.HEALTH,
                    True,
                    f"{comp} answers healthy",
                    elapsed=time.monotonic() - started,
                    timeout=timeout,
                    data={"time": when},
                    stable=0.0,
                    window=window,
                )
            )

        urls = ", ".join(e.url for e in endpoints)
        self._step(tx, Step.HEALTH, None, f"{urls}; stable for {window:g} s ({window_source})")
        try:
            result = await health_gate(
                endpoints,
                prober,
                health,
                timeout,
                started,
                on_poll,
                on_first,
                alive,
                self._cancelled,
                window=window,
            )
        finally:
            await prober.aclose()
        if prober.unverified_used:
            self.emit(
                Event(
                    Kind.NOTE,
                    tx.label,
                    comp,
                    message=(
                        "the serving certificate does not chain to the cluster CA; probed without "
                        "verification on loopback, as the kubelet does"
                    ),
                )
            )
        if self._cancelled():
            raise _Cancelled()
        if not result.healthy:
            self._step(tx, Step.HEALTH, False, result.message)
            raise _Failed(result.message)
        self.emit(
            Event(
                Kind.STABLE,
                tx.label,
                comp,
                Step.HEALTH,
                True,
                result.message,
                elapsed=time.monotonic() - started,
                timeout=timeout,
                stable=result.stable,
                window=window,
            )
        )
        self._step(tx, Step.HEALTH, True, result.message)

    async def _gate_apiserver_after_etcd(self, tx: _Tx, started: float, timeout: float) -> None:
        """kube-apiserver cannot serve without etcd: it must answer healthy again too."""
        path = self.settings.layout.manifest("kube-apiserver")
        try:
            manifest = await asyncio.to_thread(
                lambda: parse_manifest(read_text_file(path, "manifest"), path, "kube-apiserver")
            )
        except (OSError, InputError):
            return
        saved = tx.new_process
        proc = await find_process(
            "kube-apiserver", self.settings.process_root, identity=self.settings.identity
        )
        tx.new_process = proc
        try:
            await self._gate(
                tx, manifest_endpoints(manifest), started, timeout, None, component="kube-apiserver"
            )
        finally:
            tx.new_process = saved

    async def _audit(self, tx: _Tx) -> None:
        file = tx.file
        self._step(tx, Step.AUDIT)
        snap = await asyncio.to_thread(
            take_snapshot, self.settings, self.gate and file.kind != "attributes"
        )
        if file.restores:
            self._audit_restore(tx, evaluate(self.catalog, snap, file.reverts))
            return
        results = evaluate(self.catalog, snap, file.checks)
        failed = []
        for r in results:
            ok = r.status is Status.PASS
            self.emit(
                Event(
                    Kind.AUDIT,
                    tx.label,
                    file.component,
                    Step.AUDIT,
                    ok,
                    f"{r.id} {r.status.value}: {r.reason}",
                    data={"check": r.id},
                )
            )
            if not ok:
                failed.append(f"{r.id} {r.status.value} ({r.reason})")
        if failed:
            self._step(tx, Step.AUDIT, False, "; ".join(failed))
            raise _Failed(f"audit re-check failed: {'; '.join(failed)}")
        self._step(tx, Step.AUDIT, True, f"{len(results)} checks pass")

    def _audit_restore(self, tx: _Tx, results: list[Result]) -> None:
        """After a restore the checks its backup's change had fixed are expected to fail
        again: report each, never roll back for it."""
        file = tx.file
        again = [r.id for r in results if r.status is not Status.PASS]
        for r in results:
            self.emit(
                Event(
                    Kind.AUDIT,
                    tx.label,
                    file.component,
                    Step.AUDIT,
                    None,
                    f"{r.id} {r.status.value}: {r.reason}",
                    data={"check": r.id},
                )
            )
        tx.audit_summary = (
            (f"failing again: {', '.join(again)}" if again else "no check fails again")
            if results
            else "the backup recorded no checks"
        )
        self._step(tx, Step.AUDIT, True, tx.audit_summary)

    # -- rollback ---------------------------------------------------------------------------
    async def _rollback(self, tx: _Tx, why: str, cancelled: bool = False) -> FileResult:
        """Restore the original; `cancelled`: asked for (a cancel, a signal), not a failure."""
        file = tx.file
        self.emit(
            Event(
                Kind.ROLLBACK,
                tx.label,
                file.component,
                Step.ROLLBACK,
                None,
                f"rolling back: {why}",
                data={"cancelled": True} if cancelled else {},
            )
        )
        try:
            self.journal.record(tx.txid, "rolling-back", reason=why)
        except (OSError, UserError) as exc:
            self._note(tx, f"could not record the rollback in the journal: {exc}")
        assert tx.backup is not None
        if tx.file.kind != "attributes":
            try:
                theirs = await asyncio.to_thread(foreign_edit, self.store, tx.backup, tx.new_sha256)
            except (UserError, OSError) as exc:
                return self._critical(tx, why, f"could not check the file before restoring: {exc}")
            if theirs is not None:
                return self._foreign(tx, why, theirs)
        try:
            await asyncio.to_thread(restore_backup_bytes, self.store, tx.backup)
        except (UserError, AtomicWriteError, OSError) as exc:
            return self._critical(tx, why, f"could not restore the backup: {exc}")
        if tx.created:
            self.emit(
                Event(
                    Kind.NOTE,
                    tx.label,
                    file.component,
                    message=(
                        "left in place (unused now, and may hold a key that encrypted data): "
                        + ", ".join(tx.created)
                    ),
                )
            )
        if self.gate and file.kind != "attributes":
            problem = await self._gate_old(tx)
            if problem:
                return self._critical(tx, why, problem)
        # Once the old configuration runs (the API server answers again): the next kubeadm
        # upgrade must not bring back the fix that just failed.
        unpersisted = await self._unpersist(tx)
        if unpersisted is not None:
            return self._critical(tx, why, f"kubeadm configuration not restored: {unpersisted}")
        self._step(tx, Step.ROLLBACK, True, "original restored")
        return self._close(tx, Outcome.ROLLED_BACK, f"rolled back: {why}", "rolled-back")

    async def _gate_old(self, tx: _Tx) -> str | None:
        """After a restore: the old configuration must run and answer healthy again."""
        file = tx.file
        timeout = self._timeout_for(file.component)
        started = time.monotonic()
        if file.kind == "kubelet-config":
            problem = await run_restart_command(
                self.settings.kubelet_restart_command, min(timeout, 60)
            )
            if problem:
                return problem
        if tx.old_process is None:
            return None  # it was not running before the change either: nothing to wait for
        old_args = tx.old_process.args
        evidence = await wait_for_process(
            file.component,
            self.settings.process_root,
            old_args,
            tx.new_process.pid if tx.new_process and file.kind == "kubelet-config" else None,
            started + timeout,
            lambda: False,
            identity=self.settings.identity,
        )
        if evidence.process is None:
            return evidence.message
        tx.new_process = evidence.process
        # A rollback runs to its end: a cancel (a second ctrl+c, a signal) is not heard here.
        self._rolling_back = True
        try:
            await self._gate(tx, self._endpoints(tx, new=False), started, timeout, old_args)
        except _Failed as exc:
            return f"the old configuration did not come back healthy: {exc}"
        finally:
            self._rolling_back = False
        return None

    def _foreign(self, tx: _Tx, why: str, theirs: Backup) -> FileResult:
        """Someone else changed the file during the transaction: keep their version."""
        assert tx.backup is not None
        problem = (
            f"{tx.backup.path} was changed by someone else during the transaction, so it was not "
            f"overwritten; their version is in backup {theirs.id}, the original in backup "
            f"{tx.backup.id}"
        )
        self._step(tx, Step.ROLLBACK, False, problem)
        message = (
            f"CRITICAL: {why}; {problem}. Review the file, then restore one: "
            f"cis-tui backups restore {tx.backup.id} (or {theirs.id})"
        )
        return self._close(tx, Outcome.CRITICAL, message, "critical")

    def _critical(self, tx: _Tx, why: str, problem: str) -> FileResult:
        backup = tx.backup
        assert backup is not None
        command = manual_recovery_command(backup)
        message = f"CRITICAL: {why}; rollback failed: {problem}. Restore by hand: {command}"
        self._step(tx, Step.ROLLBACK, False, problem)
        return self._close(tx, Outcome.CRITICAL, message, "critical")


def _persistable(file: FilePlan) -> bool:
    """Whether `kubeadm upgrade` regenerates this file (a fix to it needs persisting)."""
    return file.kind in {"manifest", "kubelet-config"}


def _holds(path: Path, content: bytes | None) -> bool:
    """Whether the regular file `path` holds exactly `content`."""
    try:
        return content is not None and read_regular(path)[0] == content
    except (OSError, UserError):
        return False


def _apply_attribute(path: Path, mode: int | None, owner: str | None) -> None:
    import grp
    import pwd

    uid = gid = -1
    if owner is not None:
        user, _, group = owner.partition(":")
        uid, gid = pwd.getpwnam(user).pw_uid, grp.getgrnam(group or user).gr_gid
    set_attributes(path, mode, uid, gid)


def restore_backup_bytes(store: BackupStore, backup: Backup) -> bool:
    """Put a backup's bytes (or attributes) back, verified; False if nothing differed.

    A file keeps its current owner and mode (cis-tui never changes them when it writes); the
    recorded ones are used only to recreate a missing file, and only if they are safe.
    """
    if backup.kind == "attributes":
        store.verify_target(backup)
        changed = False
        for rec in backup.attributes:
            p = store.layout.confined(Path(rec.path))
            st = p.lstat()
            check_recorded_attributes(rec.path, rec.mode, rec.uid, rec.gid, st)
            if (st.st_mode & 0o7777, st.st_uid, st.st_gid) != (rec.mode, rec.uid, rec.gid):
                set_attributes(p, rec.mode, rec.uid, rec.gid)
                changed = True
        return changed
    data = store.original_bytes(backup)
    target = store.layout.confined(Path(backup.path))
    try:
        current, _ = read_regular(target)
    except FileNotFoundError:
        check_recorded_attributes(backup.path, backup.mode, backup.uid, backup.gid, None)
        atomic_write(target, data, mode=backup.mode, uid=backup.uid, gid=backup.gid)
        return True
    if current == data:
        return False
    atomic_write(target, data)
    return True


def foreign_edit(store: BackupStore, backup: Backup, written_sha256: str) -> Backup | None:
    """Before a rollback: if the file holds neither the original nor the bytes cis-tui wrote,
    somebody else edited it. Back their version up and return that backup (else None)."""
    target = Path(backup.path)
    try:
        current, _ = read_regular(target)
    except FileNotFoundError:
        return None
    digest = sha256_bytes(current)
    if digest == backup.sha256 or not written_sha256 or digest == written_sha256:
        return None
    theirs = store.create_file_backup(target, backup.component, backup.checks, {"edited": True})
    return store.set_outcome(theirs, "edited-by-someone-else")


def manual_recovery_command(backup: Backup) -> str:
    """The exact command an admin runs when cis-tui could not restore health itself."""
    if backup.kind == "attributes":
        return "cis-tui recover --yes (restores the recorded modes and owners)"
    original = Path(backup.directory) / "original"
    target = Path(backup.path)
    tmp = target.with_name(f".{target.name}.restore")  # hidden: the kubelet ignores it
    return (
        f"cis-tui recover --yes  (or by hand: install -m {backup.mode:04o} -o {backup.uid} "
        f"-g {backup.gid} {original} {tmp} && mv {tmp} {target})"
    )


def _os_problem(exc: BaseException) -> str:
    if isinstance(exc, OSError) and exc.strerror:
        return f"{exc.filename}: {exc.strerror}" if exc.filename else exc.strerror
    return str(exc)


def _summary(result: ApplyResult) -> str:
    counts: dict[str, int] = {}
    for f in result.files:
        counts[f.outcome.value] = counts.get(f.outcome.value, 0) + 1
    parts = ", ".join(f"{n} {k}" for k, n in counts.items()) or "nothing to do"
    lost = sum(1 for f in result.files if f.not_persisted)
    if lost:
        parts += f" ({lost} not persisted: {UPGRADE_REVERTS})"
    return f"apply finished: {parts}"
