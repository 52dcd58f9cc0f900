"""Keeping one container (or the kubelet service) running, as the kubelet's pod workers do:
start it, probe it (cis_tui/sandbox/probing.py), wait for it to exit, for a failed startup or
liveness probe or for a new spec, restart it, with CrashLoopBackOff delays.
"""

from __future__ import annotations

import abc
import asyncio
import enum
import os
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from cis_tui.sandbox import events as ev
from cis_tui.sandbox.pods import PodSpec, Probe
from cis_tui.sandbox.probing import cancel_and_wait, probe_container
from cis_tui.sandbox.systemd import UnitError, load_service

if TYPE_CHECKING:
    from cis_tui.sandbox.agent import Agent


@dataclass(frozen=True)
class Launch:
    """One process to start: what the process table will show, and how to watch it."""

    name: str
    argv: tuple[str, ...]
    executable: str | None = None
    env: Mapping[str, str] = field(default_factory=dict)
    grace: float = 10.0
    probe: Probe | None = None  # polled for the healthy event (real binaries only)
    probes: tuple[Probe, ...] = ()  # the manifest's probes, run as the kubelet runs them
    standin: bool = True
    pod: PodSpec | None = None
    manifest: str | None = None
    error: str | None = None  # cannot start, with the runtime's message


class Ended(enum.Enum):
    """Why a supervised container stopped being watched."""

    EXITED = "exited"  # the process exited on its own
    REQUESTED = "requested"  # a new spec, a restart or stop request
    PROBE = "probe"  # a startup or liveness probe failed: the kubelet kills and restarts it


class Worker(abc.ABC):
    """Keeps one container (or the kubelet service) running: start, watch, restart."""

    def __init__(self, agent: Agent, name: str) -> None:
        self.agent = agent
        self.name = name
        self.wake = asyncio.Event()
        self.reason = ""
        self.stopping = False
        self.after: asyncio.Task[None] | None = None  # the previous worker, still stopping

    @abc.abstractmethod
    def make_launch(self) -> Launch:
        """What to run now (the pod's spec, or the kubelet's command line)."""

    def crash_delay(self, crashes: int) -> float:
        s = self.agent.settings.agent
        return float(min(s.backoff_initial_seconds * (2**crashes), s.backoff_max_seconds))

    def poke(self, reason: str) -> None:
        """Restart now: a new spec, or a restart request (also cuts a back-off short)."""
        self.reason = reason
        self.wake.set()

    def stop(self, reason: str) -> None:
        self.stopping = True
        self.poke(reason)

    async def run(self) -> None:
        if self.after is not None:
            # Like the kubelet, one pod per name at a time: wait for the old one to be gone.
            await asyncio.shield(self.after)
        crashes = 0
        reset_after = self.agent.settings.agent.backoff_reset_seconds
        while not self.stopping:
            self.wake.clear()
            launch = self.make_launch()
            began = time.monotonic()
            proc = await self.agent.spawn(launch)
            ended, why = (Ended.EXITED, "") if proc is None else await self._supervise(proc, launch)
            if ended is Ended.REQUESTED:
                assert proc is not None
                await self.agent.terminate(proc, launch, self.reason, restart=not self.stopping)
                crashes = 0
                continue
            if ended is Ended.PROBE:
                assert proc is not None
                # Killed like a crash: the restart waits out the CrashLoopBackOff.
                await self.agent.terminate(proc, launch, why, restart=not self.stopping)
            if self.stopping:
                break
            if time.monotonic() - began >= reset_after:
                crashes = 0
            delay = self.crash_delay(crashes)
            crashes += 1
            self.agent.log(self.name, ev.BACKOFF, delay=round(delay, 3), restarts=crashes)
            try:
                await asyncio.wait_for(self.wake.wait(), delay)
            except asyncio.TimeoutError:
                continue
            if not self.stopping:
                self.agent.log(self.name, ev.RESTARTING, reason=self.reason)
                crashes = 0

    async def _supervise(
        self, proc: asyncio.subprocess.Process, launch: Launch
    ) -> tuple[Ended, str]:
        """Wait for the process to exit, for a restart or stop request, or for a startup or
        liveness probe to fail (with the kubelet's reason)."""
        started = time.monotonic()
        exit_task = asyncio.ensure_future(proc.wait())
        wake_task = asyncio.ensure_future(self.wake.wait())
        watchers: list[asyncio.Future[None]] = []
        if launch.probe is not None:
            watchers.append(asyncio.ensure_future(self.agent.watch_health(proc, launch)))
        probe_task: asyncio.Future[str] | None = None
        if launch.probes:

            def log(event: str, **details: object) -> None:
                self.agent.log(launch.name, event, proc.pid, **details)

            probe_task = asyncio.ensure_future(
                probe_container(launch.name, launch.probes, started, log)
            )
        waited: set[asyncio.Future[object]] = {exit_task, wake_task}
        if probe_task is not None:
            waited.add(probe_task)
        try:
            while True:
                done, _ = await asyncio.wait(waited, return_when=asyncio.FIRST_COMPLETED)
                failed = probe_task in done and probe_task.exception() is not None
                if not failed or done & {exit_task, wake_task}:
                    break
                # A bug in the probes must not leave the container unsupervised.
                assert probe_task is not None
                self.agent.log(
                    launch.name, "probe-error", proc.pid, message=repr(probe_task.exception())
                )
                waited.discard(probe_task)
        finally:
            # The probes stop with the container: nothing probes a process being replaced.
            for task in (wake_task, probe_task, *watchers):
                if task is not None:
                    await cancel_and_wait(task)
        if exit_task in done:
            self.agent.log_exit(proc, launch)
            return Ended.EXITED, ""
        exit_task.cancel()
        if probe_task is not None and probe_task in done and wake_task not in done:
            return Ended.PROBE, probe_task.result()
        return Ended.REQUESTED, self.reason


class PodWorker(Worker):
    """One static pod's container."""

    def __init__(self, agent: Agent, spec: PodSpec) -> None:
        super().__init__(agent, spec.name)
        self.spec = spec

    def update(self, spec: PodSpec) -> None:
        old = self.spec
        self.spec = spec
        self.poke("manifest changed" if old.file == spec.file else f"{spec.file.name} wins")

    def make_launch(self) -> Launch:
        return self.agent.pod_launch(self.spec)


class KubeletWorker(Worker):
    """The kubelet service: re-read from its unit at every start, restarted on request."""

    def __init__(self, agent: Agent) -> None:
        super().__init__(agent, "kubelet")
        self.restart_seconds = 10.0

    def crash_delay(self, crashes: int) -> float:
        return self.restart_seconds  # systemd's Restart=always waits a fixed RestartSec

    def make_launch(self) -> Launch:
        paths = self.agent.paths
        try:
            unit = load_service(paths.kubelet_unit, paths.kubelet_dropin.parent)
        except UnitError as exc:
            return Launch("kubelet", ("kubelet",), error=str(exc))
        self.restart_seconds = unit.restart_seconds
        argv = unit.argv
        if not argv or os.path.basename(argv[0]) != "kubelet":
            cmd = argv[0] if argv else ""
            return Launch("kubelet", argv, error=f"Failed to locate executable {cmd}")
        env = dict(unit.env)
        env["CIS_TUI_SANDBOX_DIR"] = str(paths.root)
        env["CIS_TUI_SANDBOX_POD"] = "kubelet"
        return Launch(
            "kubelet",
            (str(paths.standin("kubelet")), *argv[1:]),
            env=env,
            grace=self.agent.settings.agent.grace_seconds,
            manifest=str(paths.kubelet_dropin),
        )
