"""Restarting components and proving that they restarted.

Static pods restart themselves when the kubelet sees the new file; the kubelet itself needs the
configured restart command. Evidence is a process whose arguments equal the new manifest's and
whose PID differs from the snapshot; without it the old process would pass the health gate
(kubeadm waits for the mirror pod's hash for the same reason, kubeadm#2763). Only a process the
layout's identity rules accept counts (owner, started by the runtime), and the probed ports must
be its own: a process that merely carries the component's name proves nothing.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

import psutil

from cis_tui.audit.processes import IgnoredProcess, LiveProcess, listens_on, scan_processes
from cis_tui.layout import ProcessIdentity


@dataclass(frozen=True)
class RestartEvidence:
    process: LiveProcess | None
    message: str


async def find_process(
    component: str, process_root: Path | None, *, identity: ProcessIdentity
) -> LiveProcess | None:
    found = await asyncio.to_thread(scan_processes, (component,), process_root, identity=identity)
    return found.live.get(component)


async def wait_for_process(
    component: str,
    process_root: Path | None,
    expected_args: tuple[str, ...] | None,
    not_pid: int | None,
    deadline: float,
    cancelled: Callable[[], bool],
    interval: float = 0.1,
    *,
    identity: ProcessIdentity,
) -> RestartEvidence:
    """Wait for a process of `component` that `identity` accepts, with `expected_args` (any,
    if None) and a PID other than `not_pid`, until the monotonic `deadline`."""
    last: LiveProcess | None = None
    impostor: IgnoredProcess | None = None
    while time.monotonic() < deadline and not cancelled():
        scan = await asyncio.to_thread(
            scan_processes, (component,), process_root, identity=identity
        )
        impostor = scan.ignored[-1] if scan.ignored else impostor
        proc = scan.live.get(component)
        if proc is not None:
            last = proc
            args_ok = expected_args is None or proc.args == expected_args
            if args_ok and proc.pid != not_pid:
                return RestartEvidence(proc, f"PID {proc.pid} runs the new arguments")
        await asyncio.sleep(interval)
    if cancelled():
        return RestartEvidence(None, "cancelled")
    if last is None:
        seen = f" ({impostor})" if impostor is not None else ""
        return RestartEvidence(None, f"no {component} process appeared{seen}")
    if last.pid == not_pid:
        return RestartEvidence(None, f"{component} was not restarted (still PID {last.pid})")
    return RestartEvidence(None, f"{component} PID {last.pid} runs other arguments than the file")


async def run_restart_command(command: tuple[str, ...], timeout: float) -> str | None:
    """Run the kubelet restart command; None on success, else why it failed."""
    try:
        proc = await asyncio.create_subprocess_exec(
            *command, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT
        )
    except OSError as exc:
        return f"cannot run {' '.join(command)}: {exc.strerror}"
    try:
        out, _ = await asyncio.wait_for(proc.communicate(), timeout)
    except asyncio.TimeoutError:
        proc.kill()
        await proc.wait()
        return f"{' '.join(command)} did not finish within {timeout:.0f}s"
    if proc.returncode != 0:
        tail = out.decode(errors="replace").strip().splitlines()[-1:] if out else []
        return f"{' '.join(command)} exited {proc.returncode}" + (f": {tail[0]}" if tail else "")
    return None


def pid_alive(pid: int, create_time: float | None = None) -> bool:
    """Whether `pid` still runs (and, given its start time, is still that process: a PID the
    kernel handed to a new process after the watched one died is not it)."""
    try:
        proc = psutil.Process(pid)
        if create_time is not None and abs(proc.create_time() - create_time) > 0.01:
            return False
        return proc.status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


def probe_port(url: str) -> int:
    parts = urlsplit(url)
    return parts.port or (443 if parts.scheme == "https" else 80)


def port_problem(component: str, pid: int, urls: Iterable[str]) -> str | None:
    """Why the probes at `urls` would not judge `pid` (None: it listens on every probed port).
    An answer on a port some other process holds says nothing about the component."""
    for url in urls:
        port = probe_port(url)
        if not listens_on(pid, port):
            return f"port {port} is not listened on by {component} PID {pid}"
    return None
