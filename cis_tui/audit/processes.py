"""Live component processes, found with psutil (what runs now, beside what the files say)."""

from __future__ import annotations

import os
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

import psutil


@dataclass(frozen=True)
class LiveProcess:
    """A running component: its PID and the arguments after the binary name."""

    component: str
    pid: int
    args: tuple[str, ...]
    create_time: float
    env: dict[str, str] = field(default_factory=dict, compare=False)


def _binary_index(cmdline: list[str], binary: str) -> int | None:
    """Where the binary name stands in a command line: argv[0], or argv[1] after an interpreter."""
    if not cmdline:
        return None
    if os.path.basename(cmdline[0]) == binary:
        return 0
    if (
        len(cmdline) > 1
        and os.path.basename(cmdline[0]).startswith("python")
        and os.path.basename(cmdline[1]) == binary
    ):
        return 1
    return None


def _inside(path: str, root: Path) -> bool:
    try:
        return Path(path).is_relative_to(root)
    except ValueError:
        return False


def find_processes(
    components: Iterable[str], process_root: Path | None = None, env_of: Iterable[str] = ()
) -> dict[str, LiveProcess]:
    """The newest live process of each component (one pass over the process table).

    Environment variables are read only for the components in `env_of` (etcd's ETCD_*).
    With `process_root`, only processes whose working directory is inside it count (several
    nodes' processes on one host). Processes we may not read are passed over.
    """
    wanted = set(components)
    env_wanted = set(env_of)
    found: dict[str, LiveProcess] = {}
    # The kernel's short name (15 characters) is cheap to read; only candidates' command
    # lines are read.
    short_names = {c[:15] for c in wanted}
    for proc in psutil.process_iter(["pid", "name"]):
        try:
            name = proc.info["name"] or ""
            if name not in short_names and not name.startswith("python"):
                continue
            cmdline = proc.cmdline()
            for component in wanted:
                index = _binary_index(cmdline, component)
                if index is None:
                    continue
                if process_root is not None and not _inside(proc.cwd(), process_root):
                    continue
                if proc.status() == psutil.STATUS_ZOMBIE:
                    continue
                env: dict[str, str] = {}
                if component in env_wanted:
                    try:
                        env = proc.environ()
                    except (psutil.AccessDenied, psutil.ZombieProcess):
                        env = {}
                live = LiveProcess(
                    component=component,
                    pid=proc.info["pid"],
                    args=tuple(cmdline[index + 1 :]),
                    create_time=proc.create_time(),
                    env=env,
                )
                current = found.get(component)
                # A pod being replaced may briefly show two: prefer the newest.
                if current is None or live.create_time >= current.create_time:
                    found[component] = live
        except (psutil.NoSuchProcess, psutil.AccessDenied, psutil.ZombieProcess):
            continue
    return found
