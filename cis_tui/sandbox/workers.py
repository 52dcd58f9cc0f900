"""Keeping one container (or the kubelet service) running, as the kubelet's pod workers do:
start it, wait for it to exit or for a new spec, restart it, with CrashLoopBackOff delays.
"""

from __future__ import annotations

import abc
import asyncio
import contextlib
import os
import ssl
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from cis_tui.sandbox import events as ev
from cis_tui.sandbox.pods import PodSpec, Probe
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
    standin: bool = True
    pod: PodSpec | None = None
    manifest: str | None = None
    error: str | None = None  # cannot start, with the runtime's message


async def http_ok(probe: Probe, timeout: float = 1.0) -> bool:
    """One probe attempt, as the kubelet makes it: 200-399 is success, TLS unverified."""
    ctx: ssl.SSLContext | None = None
    if probe.scheme == "HTTPS":
        ctx = ssl.create_default_context()
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
    try:
        reader, writer = await asyncio.wait_for(
            asyncio.open_connection(probe.host, probe.port, ssl=ctx), timeout
        )
    except (OSError, asyncio.TimeoutError, ssl.SSLError):
        return False
    try:
        request = (
            f"GET {probe.path} HTTP/1.1\r\nHost: {probe.host}:{probe.port}\r\n"
            "User-Agent: kube-probe/1.35\r\nConnection: close\r\n\r\n"
        )
        writer.write(request.encode())
        await writer.drain()
        status = await asyncio.wait_for(reader.readline(), timeout)
        parts = status.split()
        return len(parts) >= 2 and parts[1].isdigit() and 200 <= int(parts[1]) < 400
    except (OSError, asyncio.TimeoutError, ssl.SSLError):
        return False
    finally:
        writer.close()
        with contextlib.suppress(Exception):
            await writer.wait_closed()


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
            if proc is not None and await self._supervise(proc, launch):
                await self.agent.terminate(proc, launch, self.reason, restart=not self.stopping)
                crashes = 0
                continue
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

    async def _supervise(self, proc: asyncio.subprocess.Process, launch: Launch) -> bool:
        """Wait for the process to exit (False) or for a restart or stop request (True)."""
        exit_task = asyncio.ensure_future(proc.wait())
        wake_task = asyncio.ensure_future(self.wake.wait())
        health = (
            asyncio.ensure_future(self.agent.watch_health(proc, launch))
            if launch.probe is not None
            else None
        )
        try:
            done, _ = await asyncio.wait(
                {exit_task, wake_task}, return_when=asyncio.FIRST_COMPLETED
            )
        finally:
            wake_task.cancel()
            if health is not None:
                health.cancel()
        if exit_task in done:
            self.agent.log_exit(proc, launch)
            return False
        exit_task.cancel()
        return True


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
