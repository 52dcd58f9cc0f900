"""The Textual wizard: scan, select, preview, apply with a live health gate, restore backups.

`run_tui(settings, catalog)` is what `cis-tui` and `cis-tui tui` call.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import signal
import socket
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import replace
from datetime import datetime
from functools import partial
from pathlib import Path
from types import FrameType
from typing import TYPE_CHECKING, ClassVar

from textual import events
from textual.app import App, SystemCommand
from textual.binding import Binding, BindingType
from textual.content import Content
from textual.driver import Driver
from textual.screen import Screen

from cis_tui.audit.evaluate import Result, Status, evaluate
from cis_tui.audit.node import NodeSnapshot, take_snapshot
from cis_tui.audit.strays import StrayFile
from cis_tui.audit.versions import NodeVersions
from cis_tui.benchmarks.catalog import Catalog
from cis_tui.drift import read_last_scan
from cis_tui.engine.backups import Backup, BackupStore
from cis_tui.engine.events import Kind, Outcome
from cis_tui.engine.journal import Journal, OpenTransaction
from cis_tui.engine.lock import node_lock
from cis_tui.engine.statedir import check_trusted
from cis_tui.errors import NodeLocked, UserError
from cis_tui.keymap import WRITE_IDS
from cis_tui.layout import Settings
from cis_tui.tui.display import NodePaths
from cis_tui.tui.engine_runner import (
    EngineJob,
    EngineRunner,
    apply_job,
    recover_job,
    restore_job,
)
from cis_tui.tui.messages import (
    EngineDone,
    EngineEvent,
    EngineFailed,
    PersistedKnown,
    ScanDone,
    ScanFailed,
)
from cis_tui.tui.screens.checks import ChecksScreen
from cis_tui.tui.screens.help import HelpScreen, bindings_of, key_clashes, key_list, keys_of
from cis_tui.tui.textual_fixes import stop_style_cache_leak

if TYPE_CHECKING:
    from cis_tui.remediate.plan import Plan
    from cis_tui.report import Scan
    from cis_tui.tui.screens.apply import ApplyScreen

EXIT_CRITICAL = 3

#: What `signal.getsignal` returns and `signal.signal` takes.
SignalHandler = Callable[[int, FrameType | None], object] | int | None


def default_node_label(settings: Settings) -> str:
    if settings.has_root_override:
        return f"tree {settings.layout.root}"
    if settings.config_path is not None:
        return str(settings.config_path)
    return socket.gethostname()


#: Seconds after start before the API server is asked which passes kubeadm upgrade keeps: the
#: admin's first keys come before that work (regenerating the node takes a quarter second).
PERSISTED_DELAY = 2.0


class CisTuiApp(App[int]):
    """The wizard. Screens hold views; the App owns the scan, the engine job and their state."""

    TITLE = "cis-tui"
    CSS_PATH = "app.tcss"
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding(
            "q,ctrl+q",
            "quit",
            "Quit",
            tooltip="Quit (blocked while a change is in flight)",
            id="quit",
        ),
        Binding(
            "f1,question_mark", "help", "Help", tooltip="Every key, on every screen", id="help"
        ),
    ]

    def __init__(
        self,
        settings: Settings,
        catalog: Catalog,
        *,
        health_gate: bool | None = None,
        timeout: float | None = None,
        node_label: str | None = None,
        display_root: Path | None = None,
        handle_signals: bool = False,
        clock: Callable[[], float] = time.monotonic,
        wall_clock: Callable[[], datetime] = datetime.now,
        first_scan: ScanDone | None = None,
        on_signal_exit: Callable[[], None] | None = None,
        read_only: bool = False,
        backups_where: str | None = None,
    ) -> None:
        super().__init__()
        #: Where the exit summary says the backups are, when not in the state directory the
        #: node keeps (the demo's are removed with its sandbox).
        self.backups_where = backups_where
        #: Scan, plan, diff and review backups only: no apply, restore, prune or recover.
        self.read_only = read_only
        self.set_keymap(settings.keys)
        stop_style_cache_leak()
        #: Called when a signal makes the app exit (the demo arms a cleanup watchdog with it).
        self.on_signal_exit = on_signal_exit
        self.settings = settings
        self.catalog = catalog
        self.paths = NodePaths(display_root or settings.layout.root)
        self.clock = clock
        #: Local time, for "scanned at" (tests pin it).
        self.wall_clock = wall_clock
        gate = (not settings.has_root_override) if health_gate is None else health_gate
        self.runner = EngineRunner(self, settings, catalog, health_gate=gate, timeout=timeout)
        self.node_label = node_label or default_node_label(settings)
        self.handle_signals = handle_signals
        self.results: list[Result] = list(first_scan.results) if first_scan else []
        #: Whether the last scan saw live processes (an offline tree: no).
        self.live = first_scan.live if first_scan else True
        #: Files the kubelet runs from the manifests directory besides the components' own.
        self.strays: tuple[StrayFile, ...] = first_scan.strays if first_scan else ()
        #: The node's versions as the last scan read them (shown in the header).
        self.versions: NodeVersions | None = first_scan.versions if first_scan else None
        self.persisted: dict[str, bool] = {}
        self.exit_code = 0
        #: Given the first scan, the checks screen shows it in its first frame.
        self.checks_screen = ChecksScreen(first_scan)
        #: The scan the wizard saved last (in the state directory): the checks whose status
        #: differs from it are marked. Kept for the whole session.
        self.previous_scan = read_last_scan(settings.state_dir)
        self.waiver_warnings: tuple[str, ...] = first_scan.warnings if first_scan else ()
        if first_scan is not None:
            self.checks_screen.changed = self._changed(first_scan.results)
        self._scan_at_mount = first_scan is None
        self.apply_screen: ApplyScreen | None = None
        self._job_checks: tuple[str, ...] = ()
        self._job_kind = ""
        #: The job in flight began rolling back (a cancel or a failure): x has nothing left to do.
        self._job_rolling_back = False
        #: How the last job ended: its result, or its error.
        self._job_outcome: object = None
        self._exit_after_job = False
        #: The signal that stopped the app, and the line that says what it left behind
        #: (printed by run_tui/run_demo once the terminal is restored).
        self.stopped_by: str | None = None
        self._stopped_mid_job = False
        self.exit_summary: str | None = None
        self._saved_handlers: dict[signal.Signals, SignalHandler] = {}
        self._heap_frozen = False
        #: The terminal is gone: frames are dropped, and the app exits once no change is in flight.
        self.terminal_lost = False
        #: Screens whose keys were checked for `[keys]` clashes.
        self._clashes_checked: set[type[Screen[object]]] = set()

    def get_driver_class(self) -> type[Driver]:
        """Textual's driver, made to survive a lost terminal on Linux (see terminal_loss)."""
        from textual.drivers.linux_driver import LinuxDriver

        chosen = super().get_driver_class()
        if chosen is LinuxDriver:
            from cis_tui.tui.terminal_loss import HangupSafeDriver

            return HangupSafeDriver
        return chosen

    def key_hint(self, binding_id: str, default: str) -> str:
        """The key shown in a hint for an action: the admin's `[keys]` map wins."""
        key = self.settings.keys.get(binding_id, default).split(",")[0].strip()
        return self.get_key_display(Binding(key, ""))

    def on_terminal_lost(self) -> None:
        """The terminal went away (a dropped SSH session): nobody can see or answer anything
        any more. Finish or roll back the change in flight, headless, then exit."""
        if self.terminal_lost:
            return
        self.terminal_lost = True
        self.runner.log.note("the terminal was lost; finishing without a screen")
        self._on_signal(signal.SIGHUP)

    def get_default_screen(self) -> Screen[None]:
        return self.checks_screen

    def _show_where(self) -> None:
        """The header: benchmark, the node's Kubernetes version, and which node."""
        version = f"{self.versions.label} · " if self.versions is not None else ""
        where = f"{self.catalog.benchmark} · {version}{self.node_label}"
        self.sub_title = f"read-only · {where}" if self.read_only else where

    def on_mount(self) -> None:
        self._show_where()
        if self.handle_signals:
            loop = asyncio.get_running_loop()
            for sig in (signal.SIGTERM, signal.SIGHUP):
                self._saved_handlers[sig] = signal.getsignal(sig)
                loop.add_signal_handler(sig, self._on_signal, sig)
        self.screen_change_signal.subscribe(self, self._report_key_clashes)
        self._report_key_clashes(self.screen)
        if self._scan_at_mount:
            self.rescan()
        else:  # the first scan came with the app: ask about kubeadm upgrade once it settled
            first = tuple(self.results)
            self.set_timer(PERSISTED_DELAY, lambda: self._judge_persisted(first))
            self.call_after_refresh(self._remember_scan)
            self._warn_waivers()
        self._offer_recovery()
        self.call_after_refresh(self._freeze_heap)

    def _freeze_heap(self) -> None:
        """Exempt what start-up built (modules, catalog, styles, the first screen) from the
        cyclic garbage collector: a full collection over it paused the UI for 100 ms or more."""
        gc.freeze()
        self._heap_frozen = True

    def _offer_recovery(self) -> None:
        """Unfinished transactions in the journal open the recovery dialog, unless another
        cis-tui holds the node lock (then they are in progress, not interrupted)."""
        try:
            if not self.read_only:  # a crash's half-made backups (their maker is gone)
                with contextlib.suppress(OSError):
                    BackupStore(self.settings.state_dir, self.settings.layout).clean_partials()
            pending = Journal(self.settings.state_dir).open_transactions()
            if not pending:
                return
            if self.read_only:  # only inform: taking the lock would write to the state dir
                self.push_screen(_recovery_screen(pending, self.paths, read_only=True))
                return
            with node_lock(self.settings.state_dir):
                pass
        except NodeLocked as exc:
            self.notify(f"{exc}: a change is in progress", markup=False, severity="warning")
            return
        except UserError as exc:
            self.notify(str(exc), title="State directory", markup=False, severity="error")
            return
        self.push_screen(
            _recovery_screen(pending, self.paths), callback=partial(self._recover, pending)
        )

    def on_unmount(self) -> None:
        if self._heap_frozen:  # collectable again, e.g. when tests run many apps in one process
            gc.unfreeze()
        loop = asyncio.get_running_loop()
        for sig, handler in self._saved_handlers.items():
            loop.remove_signal_handler(sig)
            signal.signal(sig, handler)

    def _apply_screen_open(self) -> bool:
        """Whether the apply screen is on the stack (popped screens keep is_mounted a while)."""
        return self.apply_screen is not None and self.apply_screen in self.screen_stack

    def _exit_for_signal(self, code: int) -> None:
        from cis_tui.tui.exit_summary import exit_summary

        if self.stopped_by is not None and self.exit_summary is None:
            outcome = self._job_outcome if self._stopped_mid_job else None
            backups = self.backups_where or self.paths.path(self.settings.state_dir / "backups")
            self.exit_summary = exit_summary(self.stopped_by, outcome, backups)
            self.runner.log.note(self.exit_summary)
        if self.on_signal_exit is not None:
            self.on_signal_exit()
        self.exit(code)

    def _on_signal(self, signum: int) -> None:
        """SIGTERM/SIGHUP (a dropped SSH session): finish or roll back, then exit."""
        name = signal.Signals(signum).name
        if self.stopped_by is None:
            self.stopped_by = f"{name} (the terminal was lost)" if self.terminal_lost else name
        if not self.runner.busy or self._job_outcome is not None:  # no job, or it has ended
            self._exit_for_signal(self.exit_code)
            return
        self._exit_after_job = True
        self._stopped_mid_job = True
        # Cancel once: a cancel during a rollback (a second signal, or SIGHUP and the lost
        # terminal both) would cut the old configuration's health gate short.
        if (
            self.job_cancellable
            and self.runner.cancel(f"stopped by {self.stopped_by}")
            and self._apply_screen_open()
        ):
            self.apply_screen.cancelling(f"stopped by {name}")

    # -- scanning --------------------------------------------------------------------------
    def rescan(self) -> None:
        self.run_worker(self._scan, thread=True, group="scan", exclusive=True, exit_on_error=False)

    def _scan(self) -> None:
        try:
            snap = take_snapshot(self.settings)
            results, warnings = judge(self.catalog, snap, self.settings)
        except Exception as exc:  # an unreadable node is shown, not a traceback
            self.post_message(ScanFailed(f"{type(exc).__name__}: {exc}"))
            return
        self.post_message(ScanDone(results, snap.live, snap.strays, snap.versions, warnings))

    def on_scan_done(self, message: ScanDone) -> None:
        self.results = list(message.results)
        self.live = message.live
        self.strays = message.strays
        if message.versions is not None and message.versions != self.versions:
            self.versions = message.versions
            self._show_where()
        self.checks_screen.changed = self._changed(message.results)
        self.checks_screen.show_results(message.results, message.live, message.strays)
        first_warnings = not self.waiver_warnings
        self.waiver_warnings = message.warnings
        if first_warnings:
            self._warn_waivers()
        self._remember_scan()
        if self._apply_screen_open():
            self.apply_screen.show_statuses(message.results, self._job_checks)
        self._judge_persisted(message.results)

    def _judge_persisted(self, results: Sequence[Result]) -> None:
        """Find out, after the scan is on screen, which passes kubeadm upgrade keeps (it asks
        the API server: never before the first frame)."""
        from cis_tui.persist.status import read_access

        if self.runner.busy or read_access(self.settings) is None:
            return  # a job's own rescan asks again when it is done

        def judge() -> None:
            from cis_tui.persist.status import persisted

            try:
                found = persisted(
                    take_snapshot(self.settings), self.catalog, results, self.settings
                )
            except Exception:  # unknown is shown as unknown, never as a traceback
                return
            self.post_message(PersistedKnown(found))

        self.run_worker(judge, thread=True, group="persisted", exclusive=True, exit_on_error=False)

    def on_persisted_known(self, message: PersistedKnown) -> None:
        self.persisted = message.persisted
        self.checks_screen.show_persisted(message.persisted)

    def _changed(self, results: Sequence[Result]) -> dict[str, str]:
        """Check id -> its status in the scan saved before this session, where it differs."""
        if self.previous_scan is None:
            return {}
        from cis_tui.drift import compare

        return compare(self.previous_scan, results, self.catalog.benchmark).changed_ids

    def _remember_scan(self) -> None:
        """Save the scan shown, for the next session's marks (never in read-only mode)."""
        if self.read_only or not self.results:
            return
        from cis_tui.drift import save_last_scan
        from cis_tui.report import scan_document

        document = scan_document("json", self.current_scan())

        def save() -> None:
            with contextlib.suppress(OSError, UserError):  # a mark lost, nothing else
                save_last_scan(self.settings.state_dir, document)

        self.run_worker(save, thread=True, group="last-scan", exit_on_error=False)

    def _warn_waivers(self) -> None:
        if self.waiver_warnings:
            self.notify(
                "\n".join(self.waiver_warnings),
                title="Waivers",
                severity="warning",
                markup=False,
                timeout=10,
            )

    def waived_ids(self) -> dict[str, str]:
        """Check id -> waiver note, for the checks the config's waivers accept (never fixed)."""
        return {r.id: r.reason for r in self.results if r.status is Status.WAIVED}

    def on_scan_failed(self, message: ScanFailed) -> None:
        self.notify(message.error, markup=False, title="Scan failed", severity="error", timeout=10)

    def current_scan(self) -> Scan:
        """The scan the checks screen shows, as `cis-tui scan` renders one."""
        from cis_tui.report import Scan

        settings = self.settings
        if settings.benchmark != self.catalog.benchmark:  # the catalog shown is the one used
            settings = replace(settings, benchmark=self.catalog.benchmark)
        return Scan(
            tuple(self.results),
            settings,
            self.live,
            strays=self.strays,
            versions=self.versions,
            persisted=dict(self.persisted),
            warnings=self.waiver_warnings,
        )

    # -- navigation ------------------------------------------------------------------------
    def open_plan(self, check_ids: Sequence[str]) -> None:
        from cis_tui.tui.screens.plan import PlanScreen

        self.push_screen(PlanScreen(check_ids))

    def open_backups(self) -> None:
        from cis_tui.tui.screens.backups import BackupsScreen  # loaded on first use

        self.push_screen(BackupsScreen())

    def action_help(self) -> None:
        if not isinstance(self.screen, HelpScreen):
            self.push_screen(HelpScreen(self.screen))

    # -- engine jobs -----------------------------------------------------------------------
    def confirm_text(self, plan: Plan) -> Content:
        """The confirmation for a plan, naming the files and the components that restart."""
        lines: list[Content] = [Content(f"This changes {len(plan.files)} file(s):")]
        for file in plan.files:
            lines.append(
                Content.assemble(
                    "  • ", (self.paths.path(file.path), "bold"), f"  ({', '.join(file.checks)})"
                )
            )
        restarts = ", ".join(plan.restarts) or "none"
        lines += [
            Content(""),
            Content.assemble("Components that will restart: ", (restarts, "bold $text-warning")),
            Content(""),
        ]
        if self.runner.health_gate:
            timeouts = ", ".join(
                f"{c} {self.runner.timeout or self.settings.health.timeout_for(c):.0f} s"
                for c in plan.restarts
            )
            lines.append(
                Content(
                    "Each file is backed up and written atomically, then the health gate waits "
                    f"for the restarted component to answer healthy ({timeouts or 'no restart'}). "
                    "A file whose component does not come back healthy, or whose checks still "
                    f"fail, is rolled back. {self.key_hint('cancel', 'x')} cancels safely "
                    "during the gate."
                )
            )
        else:
            lines.append(
                Content(
                    "No health gate (offline tree): each file is backed up, written atomically "
                    "and re-audited; nothing is restarted."
                )
            )
        return Content("\n").join(lines)

    # -- read-only mode and the keymap ------------------------------------------------------
    @property
    def keymap(self) -> Mapping[str, str]:
        """Binding id -> keys, from the config's `[keys]` (as Textual normalised them)."""
        return self._keymap

    def refuse_in_read_only(self, what: str) -> bool:
        """In read-only mode: say that `what` is not possible, and return True."""
        if not self.read_only:
            return False
        self.notify(
            f"{what} is off in read-only mode (--read-only): nothing on the node changes.",
            title="Read-only mode",
            severity="warning",
            markup=False,
        )
        return True

    def allows(self, binding_id: str) -> bool:
        """Whether a binding may run: read-only mode hides every binding that changes the node."""
        return not (self.read_only and binding_id in WRITE_IDS)

    def on_key(self, event: events.Key) -> None:
        """A key of a change the read-only mode hides explains itself (Textual ignores a
        hidden binding's key)."""
        if not self.read_only or event.key in self.screen.active_bindings:
            return
        for binding in bindings_of(self.screen):
            if not self.allows(binding.id or "") and event.key in keys_of(self, binding):
                self.refuse_in_read_only(binding.description)
                return

    def _report_key_clashes(self, screen: Screen[object]) -> None:
        """`[keys]` gave one key to two actions of this screen: say so, once per screen."""
        if not self.keymap or type(screen) in self._clashes_checked:
            return
        self._clashes_checked.add(type(screen))
        for clash in key_clashes(self, (screen, self)):
            self.notify(clash, title="Key clash", severity="warning", markup=False, timeout=10)

    def _start(self, screen: ApplyScreen, checks: Sequence[str]) -> None:
        if self.refuse_in_read_only("This change"):  # the engine never starts
            return
        if self.runner.busy:
            self.notify("Another change is still in flight.", severity="warning")
            return
        self._job_checks = tuple(checks)
        self._job_kind = screen.job.kind
        self._job_rolling_back = False
        self._job_outcome = None
        self.apply_screen = screen
        self.push_screen(screen)

    def start_apply(self, plan: Plan) -> None:
        from cis_tui.tui.screens.plan import PlanScreen

        if self.refuse_in_read_only("Apply"):
            return
        if isinstance(self.screen, PlanScreen):
            self.pop_screen()
        self._start(_apply_screen(apply_job(plan)), plan.checks)

    def start_restore(self, backup: Backup) -> None:
        if self.refuse_in_read_only("Restore"):
            return
        what = self.paths.path(backup.path) if backup.kind == "file" else "file modes and owners"
        self._start(_apply_screen(restore_job(backup.id, what)), backup.checks)

    def _recover(self, pending: Sequence[OpenTransaction], yes: bool | None) -> None:
        if yes and not self.refuse_in_read_only("Recovery"):
            self._start(_apply_screen(recover_job(len(pending))), ())

    @property
    def job_cancellable(self) -> bool:
        """Whether x can still cancel the job in flight: not once it is cancelling or rolling
        back, and never a recovery (it is a rollback itself)."""
        return not (self.runner.cancelling or self._job_rolling_back or self._job_kind == "recover")

    def on_engine_event(self, message: EngineEvent) -> None:
        if message.event.kind is Kind.ROLLBACK:
            self._job_rolling_back = True
        if self._apply_screen_open():
            self.apply_screen.record(message.event)

    def on_engine_done(self, message: EngineDone) -> None:
        from cis_tui.engine.transaction import ApplyResult

        result = message.result
        self._job_outcome = result
        critical = (
            isinstance(result, ApplyResult)
            and any(f.outcome is Outcome.CRITICAL for f in result.files)
        ) or (isinstance(result, list) and any(not r.ok for r in result))
        if critical:
            self.exit_code = EXIT_CRITICAL
        if self._apply_screen_open():
            self.apply_screen.finish(result)
        self.rescan()
        if self._exit_after_job:  # a signal asked to stop: report how the job ended
            job_code = result.exit_code if isinstance(result, ApplyResult) else 0
            self._exit_for_signal(max(self.exit_code, job_code))

    def on_engine_failed(self, message: EngineFailed) -> None:
        self._job_outcome = message.error
        if self._apply_screen_open():
            self.apply_screen.failed(message.error)
        else:
            self.notify(message.error, markup=False, title="Failed", severity="error")
        if self._exit_after_job:
            self._exit_for_signal(max(self.exit_code, message.exit_code))

    # -- quitting and the command palette ----------------------------------------------------
    def _refuse_quit(self) -> None:
        """Say why quitting waits, naming the key that works now."""
        if self.job_cancellable:
            why = (
                f"A change is in flight: {self.key_hint('cancel', 'x')} cancels it (it rolls "
                "back); quit once it has finished."
            )
        elif self._job_kind == "recover":
            why = "A recovery is in flight: quit once it has finished."
        else:
            why = "Rolling back: quit once it has finished."
        self.notify(why, title="Cannot quit now", severity="warning")

    async def action_quit(self) -> None:
        if self.runner.busy:
            self._refuse_quit()
            return
        self.exit(self.exit_code)

    def action_help_quit(self) -> None:
        """ctrl+c: Textual's hint names the quit key, which is refused while a job runs."""
        if self.runner.busy:
            self._refuse_quit()
            return
        super().action_help_quit()

    def get_system_commands(self, screen: Screen[object]) -> Iterable[SystemCommand]:
        """Every action of the current screen and of the app, plus Textual's own commands."""
        yield from super().get_system_commands(screen)
        seen = {"quit"}
        for owner in (screen, self):
            for binding in bindings_of(owner):
                if binding.action in seen or not self.allows(binding.id or ""):
                    continue
                seen.add(binding.action)
                keys = key_list(self, binding)
                yield SystemCommand(
                    binding.description,
                    f"{binding.tooltip or binding.description} (key: {keys})",
                    partial(self.run_action, binding.action, owner),
                )


def _apply_screen(job: EngineJob) -> ApplyScreen:
    from cis_tui.tui.screens.apply import ApplyScreen  # loaded on first use: a faster start

    return ApplyScreen(job)


def _recovery_screen(
    pending: Sequence[OpenTransaction], paths: NodePaths, *, read_only: bool = False
) -> Screen[bool]:
    from cis_tui.tui.screens.recovery import RecoveryScreen

    return RecoveryScreen(pending, paths, read_only=read_only)


def judge(
    catalog: Catalog, snap: NodeSnapshot, settings: Settings
) -> tuple[list[Result], tuple[str, ...]]:
    """The node's results with the config's waivers applied, and the waiver warnings."""
    from cis_tui.audit.waive import apply_waivers

    results = evaluate(catalog, snap)
    waived = apply_waivers(results, settings.waivers, catalog, config=settings.config_path)
    return list(waived.results), waived.warnings


def scan_node(settings: Settings, catalog: Catalog) -> ScanDone:
    """The first scan, done before the terminal is taken over (it takes milliseconds)."""
    snap = take_snapshot(settings)
    results, warnings = judge(catalog, snap, settings)
    return ScanDone(results, snap.live, snap.strays, snap.versions, warnings)


def run_tui(
    settings: Settings,
    catalog: Catalog,
    *,
    mouse: bool = True,
    read_only: bool = False,
    snapshot: NodeSnapshot | None = None,
) -> int:
    """Run the wizard on a node; returns the exit code (3 after a CRITICAL outcome).
    `snapshot`: the node as just read (to choose the benchmark), judged rather than re-read."""
    check_trusted(settings.state_dir)  # an untrusted state directory: exit 2 before any frame
    try:
        if snapshot is not None:
            results, warnings = judge(catalog, snapshot, settings)
            first: ScanDone | None = ScanDone(
                results, snapshot.live, snapshot.strays, snapshot.versions, warnings
            )
        else:
            first = scan_node(settings, catalog)
    except Exception:  # the app's own scan then shows the error
        first = None
    app = CisTuiApp(settings, catalog, handle_signals=True, first_scan=first, read_only=read_only)
    code = app.run(mouse=mouse)
    if app.exit_summary:  # stopped by a signal: what it left behind, now the terminal is back
        from cis_tui.tui.exit_summary import print_to_terminal

        print_to_terminal(app.exit_summary)
    return code if isinstance(code, int) else app.exit_code
