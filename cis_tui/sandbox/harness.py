"""Run a sandbox agent as a subprocess and wait on its event log (tests, the demo, bench/).

Every wait is on a condition with a deadline; nothing sleeps a fixed time.
"""

from __future__ import annotations

import ctypes
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterable
from pathlib import Path

import psutil

from cis_tui.sandbox import events as ev
from cis_tui.sandbox.paths import COMPONENTS, SandboxPaths

POLL = 0.02
_PYTHON_NAMES = ("python", "python3")


def _die_with_parent() -> None:
    # The agent gets SIGTERM (and so stops its components) if the test process dies.
    ctypes.CDLL(None).prctl(1, signal.SIGTERM, 0, 0, 0)


def component_argv(cmdline: list[str], component: str) -> list[str] | None:
    """The arguments of `component` if this cmdline is its process (cis-tui's identity rule:
    argv[0] is the binary, or argv[0] is a Python interpreter and argv[1] the binary)."""
    if not cmdline:
        return None
    if os.path.basename(cmdline[0]) == component:
        return cmdline[1:]
    first = os.path.basename(cmdline[0])
    if (
        first.startswith(_PYTHON_NAMES)
        and len(cmdline) > 1
        and (os.path.basename(cmdline[1]) == component)
    ):
        return cmdline[2:]
    return None


def _inside(path: str, root: Path) -> bool:
    p = Path(path)
    return p == root or root in p.parents


class SandboxRun:
    """A running sandbox agent (`python -m cis_tui.sandbox run DIR`)."""

    def __init__(
        self, paths: SandboxPaths, process: subprocess.Popen[bytes], started: float
    ) -> None:
        self.paths = paths
        self.process = process
        self.started = started

    @property
    def dir(self) -> Path:
        return self.paths.root

    @property
    def config(self) -> Path:
        return self.paths.config

    @classmethod
    def start(cls, directory: Path, *, wait: bool = True, timeout: float = 30.0) -> SandboxRun:
        """Start the agent; with `wait`, return once every component answered healthy."""
        paths = SandboxPaths(Path(directory).resolve())
        paths.log_dir.mkdir(parents=True, exist_ok=True)
        started = time.time()
        with paths.agent_log.open("ab") as log:
            process = subprocess.Popen(
                [sys.executable, "-m", "cis_tui.sandbox", "run", str(paths.root)],
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                preexec_fn=_die_with_parent,
            )
        run = cls(paths, process, started)
        if wait:
            try:
                run.wait_all_healthy(since=started, timeout=timeout)
            except BaseException:
                run.stop()
                raise
        return run

    # -- events ---------------------------------------------------------------------------
    def events(
        self, component: str | None = None, event: str | None = None, since: float | None = None
    ) -> list[ev.Event]:
        found, _ = ev.read_events(self.paths.events)
        return [
            e
            for e in found
            if (component is None or e.component == component)
            and (event is None or e.event == event)
            and (since is None or e.time >= since)
        ]

    def wait_for(
        self, predicate: Callable[[ev.Event], bool], timeout: float = 30.0, what: str = "event"
    ) -> ev.Event:
        """The first event (in log order) matching `predicate`, waiting up to `timeout`."""
        deadline = time.monotonic() + timeout
        offset = 0
        while True:
            found, offset = ev.read_events(self.paths.events, offset)
            for event in found:
                if predicate(event):
                    return event
            if self.process.poll() is not None:
                raise RuntimeError(
                    f"the sandbox agent exited ({self.process.returncode}) " + self._tail()
                )
            if time.monotonic() > deadline:
                raise TimeoutError(f"no {what} within {timeout:g}s\n{self._tail()}")
            time.sleep(POLL)

    def wait_event(
        self, component: str, event: str, since: float | None = None, timeout: float = 30.0
    ) -> ev.Event:
        return self.wait_for(
            lambda e: (
                e.component == component and e.event == event and (since is None or e.time >= since)
            ),
            timeout,
            f"{event!r} event of {component}",
        )

    def wait_healthy(
        self, component: str, since: float | None = None, timeout: float = 30.0
    ) -> ev.Event:
        """The first moment `component` answered healthy after `since`."""
        return self.wait_event(component, ev.HEALTHY, since, timeout)

    def wait_all_healthy(
        self,
        since: float | None = None,
        timeout: float = 30.0,
        components: Iterable[str] = COMPONENTS,
    ) -> dict[str, ev.Event]:
        deadline = time.monotonic() + timeout
        return {
            c: self.wait_healthy(c, since, max(deadline - time.monotonic(), 0.0))
            for c in components
        }

    def _tail(self, lines: int = 15) -> str:
        try:
            text = self.paths.agent_log.read_text(errors="replace")
        except OSError:
            return ""
        return "agent log:\n" + "\n".join(text.splitlines()[-lines:])

    # -- processes ------------------------------------------------------------------------
    def live_processes(self) -> list[psutil.Process]:
        """Every live (non-zombie) process working inside the sandbox, the agent excluded."""
        found = []
        for proc in psutil.process_iter(["pid", "cwd", "status"]):
            try:
                cwd = proc.info["cwd"]
                if proc.pid == self.process.pid or not cwd or not _inside(cwd, self.dir):
                    continue
                if proc.info["status"] == psutil.STATUS_ZOMBIE:
                    continue
            except (psutil.NoSuchProcess, psutil.AccessDenied):
                continue
            found.append(proc)
        return found

    def processes(self, component: str) -> list[tuple[psutil.Process, list[str]]]:
        """This sandbox's processes of `component`, with their arguments."""
        out = []
        for proc in self.live_processes():
            try:
                args = component_argv(proc.cmdline(), component)
            except (psutil.NoSuchProcess, psutil.AccessDenied):
                continue
            if args is not None:
                out.append((proc, args))
        return out

    def pid_of(self, component: str) -> int:
        """The pid of the component's live process (the most recently started one)."""
        for event in reversed(self.events(component, ev.STARTED)):
            if event.pid is not None and psutil.pid_exists(event.pid):
                try:
                    if psutil.Process(event.pid).status() != psutil.STATUS_ZOMBIE:
                        return event.pid
                except psutil.NoSuchProcess:
                    continue
        raise LookupError(f"no live {component} process")

    def args_of(self, component: str) -> list[str]:
        """The live component's arguments, as the scanner reads them from /proc."""
        pid = self.pid_of(component)
        args = component_argv(psutil.Process(pid).cmdline(), component)
        if args is None:
            raise LookupError(f"pid {pid} is not a {component} process")
        return args

    def restart_kubelet(self) -> int:
        return subprocess.run(
            [sys.executable, "-m", "cis_tui.sandbox", "restart-kubelet", str(self.dir)],
            check=False,
            timeout=60,
        ).returncode

    # -- stopping -------------------------------------------------------------------------
    def stop(self, timeout: float = 30.0) -> int:
        """SIGTERM the agent and wait for it; returns its exit code."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(5)
        return self.process.returncode

    def kill(self) -> None:
        """SIGKILL the agent (its components die with it through PR_SET_PDEATHSIG)."""
        if self.process.poll() is None:
            self.process.kill()
        self.process.wait(10)

    def wait_no_processes(self, timeout: float = 10.0) -> None:
        """Wait until nothing runs inside the sandbox; AssertionError naming what is left."""
        deadline = time.monotonic() + timeout
        while True:
            left = self.live_processes()
            if not left:
                return
            if time.monotonic() > deadline:
                names = []
                for p in left:
                    try:
                        names.append(f"{p.pid} {' '.join(p.cmdline())[:120]}")
                    except psutil.Error:
                        names.append(str(p.pid))
                raise AssertionError("processes left in the sandbox:\n" + "\n".join(names))
            time.sleep(POLL)
