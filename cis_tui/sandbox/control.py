"""Talking to a running agent: find it by its lock, restart the kubelet like systemctl does."""

from __future__ import annotations

import fcntl
import os
import signal
import sys
import time
from pathlib import Path

from cis_tui.errors import UserError
from cis_tui.sandbox import events as ev
from cis_tui.sandbox.paths import SandboxPaths

RESTART_TIMEOUT = 30.0


def sandbox_paths(directory: Path) -> SandboxPaths:
    """The sandbox at DIR, or a UserError when DIR is not one."""
    paths = SandboxPaths(Path(directory).resolve())
    if not paths.sandbox_settings.is_file() or not paths.manifests.is_dir():
        raise UserError(
            "not a sandbox directory (create one with `cis-tui sandbox create`)", directory
        )
    return paths


def agent_pid(paths: SandboxPaths) -> int | None:
    """The pid of the agent holding DIR's lock; None when no agent runs."""
    try:
        fd = os.open(paths.agent_lock, os.O_RDONLY)
    except FileNotFoundError:
        return None
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
        except BlockingIOError:
            text = os.read(fd, 32).decode(errors="replace").strip()
            return int(text) if text.isdigit() else None
        fcntl.flock(fd, fcntl.LOCK_UN)
        return None
    finally:
        os.close(fd)


def restart_kubelet(directory: Path, timeout: float = RESTART_TIMEOUT) -> int:
    """`systemctl restart kubelet` for a sandbox: 0 once the new kubelet process started."""
    paths = sandbox_paths(directory)
    pid = agent_pid(paths)
    if pid is None:
        print(f"cis-tui sandbox: no agent is running for {paths.root}", file=sys.stderr)
        return 1
    try:
        offset = paths.events.stat().st_size
    except FileNotFoundError:
        offset = 0
    os.kill(pid, signal.SIGHUP)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        events, offset = ev.read_events(paths.events, offset)
        for event in events:
            if event.component != "kubelet":
                continue
            if event.event == ev.STARTED:
                return 0
            if event.event == ev.FAILED:
                print(
                    "Job for kubelet.service failed: " + str(event.get("message", "")),
                    file=sys.stderr,
                )
                return 1
        time.sleep(0.02)
    print(f"cis-tui sandbox: the kubelet did not restart within {timeout:g}s", file=sys.stderr)
    return 1
