"""`cis-tui demo`: a sandbox node in a temporary directory, the wizard on it, then clean up.

The sandbox agent runs as a subprocess in its own session (terminal signals and a dropped SSH
session reach the wizard, which finishes or rolls back first), and dies with the demo even on
`kill -9` (PR_SET_PDEATHSIG). Everything is removed on exit: on a normal quit, a crash,
SIGTERM or SIGHUP.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from types import FrameType

from cis_tui.sandbox import create_sandbox
from cis_tui.sandbox.harness import SandboxRun
from cis_tui.sandbox.paths import SandboxPaths

START_TIMEOUT = 60.0  # seconds for every component to answer healthy
STOP_TIMEOUT = 20.0
WATCHDOG_SECONDS = 10.0  # a clean shutdown after SIGTERM/SIGHUP takes a few seconds
_PR_SET_PDEATHSIG = 1


class DemoStopped(Exception):
    """SIGTERM or SIGHUP arrived while the demo was starting or cleaning up."""


def _agent_child_setup() -> None:
    # In the agent (after setsid): stop cleanly if the demo dies, even by SIGKILL.
    ctypes.CDLL(None, use_errno=True).prctl(_PR_SET_PDEATHSIG, signal.SIGTERM, 0, 0, 0)


def start_agent(directory: Path, timeout: float = START_TIMEOUT) -> SandboxRun:
    """Start the sandbox agent in its own session; return once every component is healthy."""
    paths = SandboxPaths(directory.resolve())
    paths.log_dir.mkdir(parents=True, exist_ok=True)
    started = time.time()
    with paths.agent_log.open("ab") as log:
        process = subprocess.Popen(
            [sys.executable, "-m", "cis_tui.sandbox", "run", str(paths.root)],
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            preexec_fn=_agent_child_setup,
        )
    run = SandboxRun(paths, process, started)
    try:
        run.wait_all_healthy(since=started, timeout=timeout)
    except BaseException:
        stop_agent(run)
        raise
    return run


def stop_agent(run: SandboxRun) -> None:
    """Stop the agent and everything it started; no process is left behind."""
    run.stop(timeout=STOP_TIMEOUT)
    with contextlib.suppress(ProcessLookupError, PermissionError):
        # Anything still in the agent's process group (its session) goes too.
        os.killpg(run.process.pid, signal.SIGKILL)
    with contextlib.suppress(AssertionError):
        run.wait_no_processes(timeout=STOP_TIMEOUT)


class Cleanup:
    """Stops the agent and removes the sandbox; safe to call more than once, from any thread."""

    def __init__(self) -> None:
        self.run: SandboxRun | None = None
        self.base: Path | None = None
        self._lock = threading.Lock()

    def __call__(self) -> None:
        with self._lock:
            run, self.run = self.run, None
            if run is not None:
                stop_agent(run)
            if self.base is not None:
                shutil.rmtree(self.base, ignore_errors=True)

    def arm_watchdog(self, seconds: float = WATCHDOG_SECONDS) -> None:
        """After a stop signal: if the process is still alive in `seconds` (a wedged terminal
        shutdown after a dropped SSH session), clean up and exit anyway."""

        def force() -> None:
            self()
            os._exit(1)

        timer = threading.Timer(seconds, force)
        timer.daemon = True
        timer.start()


@contextlib.contextmanager
def sandbox_node(
    scenario: str = "default",
    *,
    parent: Path | None = None,
    notice: bool = False,
    cleanup: Cleanup | None = None,
) -> Iterator[Path]:
    """A running sandbox node in a new temporary directory; yields DIR/cis-tui.toml."""
    base = Path(tempfile.mkdtemp(prefix="cis-tui-demo-", dir=parent))
    cleanup = cleanup or Cleanup()
    cleanup.base = base
    try:
        directory = base / "node"
        directory.mkdir()
        if notice:
            print(
                f"cis-tui demo: sandbox node in {directory} (removed on exit); starting it…",
                flush=True,
            )
        config = create_sandbox(directory, scenario)
        cleanup.run = start_agent(directory)
        yield config
    finally:
        cleanup()


def _raise_stop(signum: int, frame: FrameType | None) -> None:
    # Once: the cleanup this starts must not be cut short by a second signal.
    for sig in (signal.SIGTERM, signal.SIGHUP):
        signal.signal(sig, signal.SIG_IGN)
    raise DemoStopped(signal.Signals(signum).name)


def run_demo(scenario: str = "default", *, mouse: bool = True, read_only: bool = False) -> int:
    """Create and start a sandbox node, open the wizard on it, clean up on every exit path."""
    from dataclasses import replace

    from cis_tui.audit.versions import read_node_versions, with_benchmark
    from cis_tui.benchmarks.catalog import load_catalog
    from cis_tui.layout import load_settings, load_user_keys
    from cis_tui.tui.app import CisTuiApp

    keys = load_user_keys()  # the sandbox's config is not the user's; their keymap still holds
    cleanup = Cleanup()

    def stop(signum: int, frame: FrameType | None) -> None:
        cleanup.arm_watchdog()  # even if unwinding from here wedges, nothing is left behind
        _raise_stop(signum, frame)

    previous = {s: signal.getsignal(s) for s in (signal.SIGTERM, signal.SIGHUP)}
    for sig in previous:
        signal.signal(sig, stop)
    code = 1
    try:
        with sandbox_node(scenario, notice=True, cleanup=cleanup) as config:
            settings = replace(load_settings(config=config), keys=keys)
            settings, _ = with_benchmark(settings, read_node_versions(settings))
            app = CisTuiApp(
                settings,
                load_catalog(settings.benchmark),
                node_label=f"demo sandbox ({scenario}), paths inside it",
                display_root=config.parent,
                handle_signals=True,
                on_signal_exit=cleanup.arm_watchdog,
                read_only=read_only,
                backups_where="the demo sandbox, removed on exit",
            )
            result = app.run(mouse=mouse)
            code = result if isinstance(result, int) else app.exit_code
            if app.exit_summary:  # stopped by a signal: say what it left, before cleaning up
                from cis_tui.tui.exit_summary import print_to_terminal

                print_to_terminal(app.exit_summary)
    except DemoStopped as exc:
        print_to_terminal(f"cis-tui demo: {exc}: stopped and cleaned up")
        code = 1
    except KeyboardInterrupt:
        code = 130
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    return code
