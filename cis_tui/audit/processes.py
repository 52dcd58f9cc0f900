"""Live component processes, found with psutil (what runs now, beside what the files say).

A process is a component only when it is one, not merely named like one: owned by the
component's user and started by the container runtime (or, for the kubelet, its service
manager), as the layout's `[processes]` table describes (`ProcessIdentity`). Anything else with
a component's name is an impostor: it is ignored, and the scan says so.
"""

from __future__ import annotations

import os
import pwd
import stat
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

import psutil

from cis_tui.layout import ProcessIdentity


@dataclass(frozen=True)
class LiveProcess:
    """A running component: its PID and the arguments after the binary name."""

    component: str
    pid: int
    args: tuple[str, ...]
    create_time: float
    env: dict[str, str] = field(default_factory=dict, compare=False)
    #: The binary as the command line names it (a script after its interpreter).
    binary: str = field(default="", compare=False)


@dataclass(frozen=True)
class IgnoredProcess:
    """A process named like a component that is not it (wrong owner or not started by the
    runtime): never judged, never restart evidence."""

    component: str
    pid: int
    args: tuple[str, ...]
    reason: str

    def __str__(self) -> str:
        return f"ignored {self.component} PID {self.pid}: {self.reason}"


@dataclass(frozen=True)
class ProcessScan:
    """One pass over the process table: the components, and the impostors passed over."""

    live: dict[str, LiveProcess]
    ignored: tuple[IgnoredProcess, ...] = ()


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


def _user(uid: int) -> str:
    try:
        return f"{pwd.getpwuid(uid).pw_name} (uid {uid})"
    except KeyError:
        return f"uid {uid}"


def _owner_problem(proc: psutil.Process, uid: int) -> str | None:
    real, effective, _saved = proc.uids()
    if real != uid:
        return f"owned by {_user(real)}, not {_user(uid)}"
    if effective != uid:
        return f"runs with the rights of {_user(effective)}, not {_user(uid)}"
    return None


def _pid_file(path: Path) -> tuple[int, int] | None:
    """(PID, owner uid) from a runtime PID file; None unless it is a regular file that only
    its owner may write (never through a symlink)."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK)
    except OSError:
        return None
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode) or st.st_mode & 0o022:
            return None
        text = os.read(fd, 64).decode("ascii", errors="replace").strip()
    except OSError:
        return None
    finally:
        os.close(fd)
    return (int(text), st.st_uid) if text.isdigit() else None


def _name_in(name: str, names: Iterable[str]) -> bool:
    # The kernel keeps 15 characters of a name (containerd-shim-runc-v2 -> containerd-shim).
    return any(name == n or (len(name) == 15 and n.startswith(name)) for n in names)


def _cgroups(pid: int) -> list[str]:
    try:
        text = Path(f"/proc/{pid}/cgroup").read_text()
    except OSError:
        return []
    return [line.split(":", 2)[2] for line in text.splitlines() if line.count(":") >= 2]


def _under(cgroup: str, prefix: str) -> bool:
    top = "/" + prefix.strip("/")
    return cgroup == top or cgroup.startswith(top + "/")


class _Checker:
    """Identity checks for one scan (PID files are read once, and only if a candidate needs
    them)."""

    def __init__(self, identity: ProcessIdentity) -> None:
        self.identity = identity
        self._pid_files: list[tuple[int, int]] | None = None

    def runtime_pids(self, uid: int) -> set[int]:
        if self._pid_files is None:
            read = (_pid_file(p) for p in self.identity.runtime_pid_files)
            self._pid_files = [r for r in read if r is not None]
        return {pid for pid, owner in self._pid_files if owner in (0, uid)}

    def problem(self, proc: psutil.Process, component: str) -> str | None:
        """Why `proc` is not `component` (None: it is)."""
        uid = self.identity.uid_for(component)
        owner = _owner_problem(proc, uid)
        if owner:
            return owner
        ppid = proc.ppid()
        parent = f"parent PID {ppid}"
        try:
            pproc = psutil.Process(ppid)
            pname = pproc.name()
            parent = f"parent PID {ppid} {pname}"
            if _owner_problem(pproc, uid) is None or _owner_problem(pproc, 0) is None:
                if _name_in(pname, self.identity.parents_for(component)):
                    return None
                if ppid in self.runtime_pids(uid):
                    return None
            else:
                parent += f" owned by {_user(pproc.uids().real)}"
        except (psutil.NoSuchProcess, psutil.AccessDenied, psutil.ZombieProcess, ValueError):
            pass
        cgroups = _cgroups(proc.pid)
        prefixes = self.identity.cgroups_for(component)
        if any(_under(c, p) for c in cgroups for p in prefixes):
            return None
        starter = "its service manager" if component == "kubelet" else "the container runtime"
        where = cgroups[0] if cgroups else "unknown"
        return f"not started by {starter} ({parent}, cgroup {where})"


class _Narrow:
    """Which interpreter processes (`python3 kube-apiserver ...`, as stand-ins run) may be a
    component, judged before their command line is read: inside the process root when there
    is one, and started as a component is (a parent named like a runtime or the kubelet's
    service manager, a runtime PID file's process, or a runtime cgroup). A node running
    thousands of Python processes pays one stat line for each, not a command line."""

    def __init__(
        self,
        checker: _Checker,
        components: Iterable[str],
        names: dict[int, str],
        process_root: Path | None,
    ) -> None:
        identity = checker.identity
        comps = list(components)
        self.checker = checker
        self.names = names
        self.root = process_root
        self.parents = {n for c in comps for n in identity.parents_for(c)}
        self.cgroups = {g for c in comps for g in identity.cgroups_for(c)}
        self._runtime: set[int] | None = None

    def runtime_pids(self) -> set[int]:
        if self._runtime is None:
            self.checker.runtime_pids(-1)  # reads the PID files once
            self._runtime = {pid for pid, _owner in self.checker._pid_files or []}
        return self._runtime

    def interpreted_candidate(self, proc: psutil.Process) -> bool:
        if self.root is not None and not _inside(proc.cwd(), self.root):
            return False
        ppid = proc.ppid()
        if _name_in(self.names.get(ppid, ""), self.parents) or ppid in self.runtime_pids():
            return True
        return any(_under(c, g) for c in _cgroups(proc.pid) for g in self.cgroups)


def scan_processes(
    components: Iterable[str],
    process_root: Path | None = None,
    env_of: Iterable[str] = (),
    identity: ProcessIdentity | None = None,
) -> ProcessScan:
    """The newest live process of each component (one pass over the process table), and the
    processes named like a component that `identity` refuses.

    Environment variables are read only for the components in `env_of` (etcd's ETCD_*).
    With `process_root`, only processes whose working directory is inside it count (several
    nodes' processes on one host). Processes we may not read are passed over.
    """
    wanted = set(components)
    env_wanted = set(env_of)
    checker = _Checker(identity or ProcessIdentity())
    found: dict[str, LiveProcess] = {}
    ignored: list[IgnoredProcess] = []
    # The kernel's short name (15 characters) is cheap to read (and an interpreter's parent
    # PID); only candidates' command lines, and then their owner, parent and cgroup, are read.
    short_names = {c[:15] for c in wanted}
    table = list(psutil.process_iter(["pid", "name"]))
    names = {p.info["pid"]: p.info["name"] or "" for p in table}
    narrow = _Narrow(checker, wanted, names, process_root)
    for proc in table:
        try:
            name = proc.info["name"] or ""
            if name not in short_names and not (
                name.startswith("python") and narrow.interpreted_candidate(proc)
            ):
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
                args = tuple(cmdline[index + 1 :])
                problem = checker.problem(proc, component)
                if problem is not None:
                    ignored.append(IgnoredProcess(component, proc.info["pid"], args, problem))
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
                    args=args,
                    create_time=proc.create_time(),
                    env=env,
                    binary=cmdline[index],
                )
                current = found.get(component)
                # A pod being replaced may briefly show two: prefer the newest.
                if current is None or live.create_time >= current.create_time:
                    found[component] = live
        except (psutil.NoSuchProcess, psutil.AccessDenied, psutil.ZombieProcess):
            continue
    return ProcessScan(found, tuple(ignored))


def find_processes(
    components: Iterable[str],
    process_root: Path | None = None,
    env_of: Iterable[str] = (),
    identity: ProcessIdentity | None = None,
) -> dict[str, LiveProcess]:
    """The newest live process of each component that `identity` (default: root, started by
    the container runtime) accepts; see scan_processes."""
    return scan_processes(components, process_root, env_of, identity).live


def listens_on(pid: int, port: int) -> bool:
    """Whether process `pid` itself holds a listening TCP socket on `port` (any address).

    psutil matches the process's sockets against this network namespace's tables, which is
    where static pods (hostNetwork) listen."""
    try:
        proc = psutil.Process(pid)
        # psutil 6 renamed connections() to net_connections().
        conns = (
            proc.net_connections(kind="inet")
            if hasattr(proc, "net_connections")
            else proc.connections(kind="inet")
        )
    except (psutil.NoSuchProcess, psutil.AccessDenied, psutil.ZombieProcess):
        return False
    return any(c.status == psutil.CONN_LISTEN and c.laddr and c.laddr.port == port for c in conns)
