"""`cis-tui sandbox run DIR`: the node agent, a small kubelet (and the kubelet's systemd).

It watches the manifests directory (inotify through watchfiles, plus a periodic relist),
runs each static pod's container as a process whose argv is the container's command and
args, restarts a pod whose manifest changed (the old process terminated first, with a grace
period), runs every startup, readiness and liveness probe of the manifest anonymously with its
timings and kills a container whose startup or liveness probe fails, restarts crashed and
killed containers with CrashLoopBackOff-style delays, and runs the kubelet stand-in from its
systemd unit (restarted by SIGHUP, i.e. `sandbox restart-kubelet`).
Every event goes to DIR/var/log/sandbox/events.jsonl; the agent prints them as they come.
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import fcntl
import os
import platform
import shutil
import signal
import sys
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

from watchfiles import awatch

from cis_tui.errors import UserError
from cis_tui.sandbox import events as ev
from cis_tui.sandbox.control import sandbox_paths
from cis_tui.sandbox.paths import STANDIN_BINARIES, SandboxPaths
from cis_tui.sandbox.pods import (
    ManifestError,
    PodSpec,
    PodStore,
    load_pod,
    manifest_files,
    prepare_host_paths,
)
from cis_tui.sandbox.probing import http_probe
from cis_tui.sandbox.settings import Fault, SandboxSettings, load_sandbox_settings
from cis_tui.sandbox.workers import KubeletWorker, Launch, PodWorker

PR_SET_PDEATHSIG = 1
_LIBC = ctypes.CDLL(None, use_errno=True)
SHUTDOWN_GRACE_CAP = 10.0


def _child_setup(parent: int) -> None:
    """In the forked child: die with the agent, even on `kill -9` of the agent."""
    _LIBC.prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
    if os.getppid() != parent:  # the agent died before prctl took effect
        os._exit(1)


class Agent:
    """The node agent: one per sandbox directory (an exclusive lock makes sure)."""

    def __init__(self, paths: SandboxPaths, settings: SandboxSettings) -> None:
        self.paths = paths
        self.settings = settings
        self.store = PodStore()
        self.workers: dict[str, PodWorker] = {}
        self.tasks: dict[str, asyncio.Task[None]] = {}
        self.draining: dict[str, asyncio.Task[None]] = {}
        self.kubelet = KubeletWorker(self)
        self.stop_event = asyncio.Event()
        self.shutting_down = False
        self.manifest_errors: dict[Path, str] = {}
        self.log_offsets: dict[str, int] = {}
        self.real_faults: dict[str, tuple[Fault, ...]] = {}
        self.etcd_binary = shutil.which("etcd") if settings.agent.etcd == "real" else None

    # -- events ---------------------------------------------------------------------------
    def log(self, component: str, event: str, pid: int | None = None, **details: Any) -> None:
        ev.append_event(self.paths.events, component, event, pid, **details)

    def log_exit(self, proc: asyncio.subprocess.Process, launch: Launch) -> None:
        code = proc.returncode
        details: dict[str, Any] = {}
        if code is not None and code < 0:
            details["signal"] = signal.Signals(-code).name
        else:
            details["code"] = code
        message = self._last_log_line(launch.name)
        if message:
            details["message"] = message
        self.log(launch.name, ev.EXITED, proc.pid, **details)

    def _last_log_line(self, name: str) -> str:
        try:
            with self.paths.component_log(name).open("rb") as fh:
                fh.seek(self.log_offsets.get(name, 0))
                tail = fh.read()[-8192:]
        except OSError:
            return ""
        lines = [ln.strip() for ln in tail.decode("utf-8", "replace").splitlines() if ln.strip()]
        return lines[-1][:500] if lines else ""

    # -- processes ------------------------------------------------------------------------
    def pod_launch(self, spec: PodSpec) -> Launch:
        """How to run a pod's container: a stand-in script, or the real etcd binary."""
        binary = os.path.basename(spec.command[0])
        grace = spec.grace_seconds
        common: dict[str, Any] = {
            "grace": self.settings.agent.grace_seconds if grace is None else grace,
            "manifest": str(spec.file),
            "pod": spec,
            "probes": spec.probes,
        }
        if binary == "etcd" and self.etcd_binary is not None:
            env: dict[str, str] = {}
            machine = platform.machine()
            if machine not in ("x86_64", "amd64"):
                env["ETCD_UNSUPPORTED_ARCH"] = {"aarch64": "arm64"}.get(machine, machine)
            return Launch(
                spec.name,
                spec.argv,
                executable=self.etcd_binary,
                env=env,
                probe=spec.health_probe,
                standin=False,
                **common,
            )
        if binary in STANDIN_BINARIES:
            env = {
                "CIS_TUI_SANDBOX_DIR": str(self.paths.root),
                "CIS_TUI_SANDBOX_POD": spec.name,
                "CIS_TUI_SANDBOX_MANIFEST": str(spec.file),
                "CIS_TUI_SANDBOX_MOUNTS": spec.mounts_json(),
                "CIS_TUI_SANDBOX_IMAGE": spec.image,
            }
            script = str(self.paths.standin(binary))
            return Launch(spec.name, (script, *spec.argv[1:]), env=env, **common)
        message = f'exec: "{spec.command[0]}": executable file not found in $PATH'
        return Launch(spec.name, spec.argv, error=message, **common)

    @staticmethod
    def _environment(launch: Launch) -> dict[str, str]:
        # etcd reads ETCD_* variables as flags: none may leak in from the agent's environment.
        env = {
            k: v for k, v in os.environ.items() if not k.startswith(("ETCD_", "CIS_TUI_SANDBOX_"))
        }
        env.update(launch.env)
        return env

    async def spawn(self, launch: Launch) -> asyncio.subprocess.Process | None:
        """Start a container process; None (with a `failed` event) when it cannot start."""
        if launch.error is None and launch.pod is not None:
            try:
                prepare_host_paths(launch.pod, self.paths.root)
            except ManifestError as exc:
                launch = replace(launch, error=str(exc))
        if launch.error is not None:
            self.log(launch.name, ev.FAILED, message=launch.error, manifest=launch.manifest)
            return None
        if not launch.standin:
            settings = load_sandbox_settings(self.paths.sandbox_settings)
            self.real_faults[launch.name] = settings.faults_for(launch.name, launch.argv[1:])
        parent = os.getpid()
        with self.paths.component_log(launch.name).open("ab") as logf:
            stamp = time.strftime("%Y-%m-%dT%H:%M:%S")
            logf.write(f"--- {stamp} start: {' '.join(launch.argv)}\n".encode())
            logf.flush()
            self.log_offsets[launch.name] = logf.tell()
            try:
                proc = await asyncio.create_subprocess_exec(
                    *launch.argv,
                    executable=launch.executable or launch.argv[0],
                    cwd=self.paths.run_dir,
                    env=self._environment(launch),
                    stdin=asyncio.subprocess.DEVNULL,
                    stdout=logf,
                    stderr=asyncio.subprocess.STDOUT,
                    start_new_session=True,
                    preexec_fn=lambda: _child_setup(parent),
                )
            except OSError as exc:
                message = f"exec {launch.argv[0]}: {exc.strerror}"
                self.log(launch.name, ev.FAILED, message=message, manifest=launch.manifest)
                return None
        self.log(
            launch.name,
            ev.STARTED,
            proc.pid,
            argv=list(launch.argv),
            manifest=launch.manifest,
            standin=launch.standin,
        )
        return proc

    async def watch_health(self, proc: asyncio.subprocess.Process, launch: Launch) -> None:
        """Poll a real binary's probe until it first answers healthy; then apply faults."""
        assert launch.probe is not None
        interval = self.settings.agent.health_poll_seconds
        started = time.monotonic()
        while not (await http_probe(launch.probe, timeout=1.0))[0]:
            if proc.returncode is not None:
                return
            await asyncio.sleep(interval)
        took = round(time.monotonic() - started, 3)
        self.log(launch.name, ev.HEALTHY, proc.pid, after=took, first=True, probe=launch.probe.url)
        crash = [f for f in self.real_faults.get(launch.name, ()) if f.crash_after_healthy]
        if crash:
            await asyncio.sleep(crash[0].crash_after_healthy or 0.0)
            if proc.returncode is None:
                self.log(launch.name, ev.FAULT, proc.pid, fault="crash_after_healthy")
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(proc.pid, signal.SIGKILL)

    async def terminate(
        self, proc: asyncio.subprocess.Process, launch: Launch, reason: str, restart: bool
    ) -> None:
        """SIGTERM the container, SIGKILL after its grace period, and record the exit."""
        grace = launch.grace
        if self.shutting_down:
            grace = min(grace, SHUTDOWN_GRACE_CAP)
        event = ev.RESTARTING if restart else ev.STOPPING
        self.log(launch.name, event, proc.pid, reason=reason, grace=grace)
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGTERM)
        try:
            await asyncio.wait_for(proc.wait(), grace)
        except asyncio.TimeoutError:
            self.log(launch.name, ev.KILLED, proc.pid, reason=f"grace period {grace:g}s expired")
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
            await proc.wait()
        # Whatever else is left in the container's process group goes too.
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        self.log_exit(proc, launch)

    # -- static pods ----------------------------------------------------------------------
    def _load(self, path: Path) -> PodSpec | None:
        try:
            spec = load_pod(path)
        except ManifestError as exc:
            if self.manifest_errors.get(path) != str(exc):  # log each problem once
                self.manifest_errors[path] = str(exc)
                self.log("agent", ev.MANIFEST_ERROR, file=str(path), message=str(exc))
            return None
        self.manifest_errors.pop(path, None)
        for warning in spec.warnings:
            self.log(spec.name, "warning", file=str(path), message=warning)
        return spec

    def relist(self) -> None:
        if not self.paths.manifests.is_dir():
            # The kubelet's relist fails ("path does not exist") and keeps its pods.
            self.log("agent", "watch-error", message=f"{self.paths.manifests} does not exist")
            return
        files = manifest_files(self.paths.manifests)
        for stale in set(self.manifest_errors) - set(files):
            self.manifest_errors.pop(stale, None)
        self.store.replace(s for f in files if (s := self._load(f)) is not None)
        self.reconcile()

    def on_file_event(self, path: Path) -> None:
        if path.is_file():
            spec = self._load(path)
            if spec is not None:
                self.store.add(spec)
        elif not path.exists():
            self.manifest_errors.pop(path, None)
            self.store.remove_file(path)

    def reconcile(self) -> None:
        if self.stop_event.is_set():
            return
        desired = {spec.name: spec for spec in self.store.pods.values()}
        for name, spec in desired.items():
            worker = self.workers.get(name)
            if worker is None:
                worker = PodWorker(self, spec)
                worker.after = self.draining.pop(name, None)
                self.workers[name] = worker
                self.tasks[name] = asyncio.ensure_future(worker.run())
            elif worker.spec.uid != spec.uid:
                worker.update(spec)
        for name in [n for n in self.workers if n not in desired]:
            worker = self.workers.pop(name)
            self.log(name, ev.REMOVED, file=str(worker.spec.file))
            worker.stop("manifest removed")
            self.draining[name] = self.tasks.pop(name)

    async def _watch(self) -> None:
        manifests = self.paths.manifests
        while not self.stop_event.is_set():
            try:
                async for changes in awatch(
                    manifests,
                    watch_filter=None,
                    recursive=False,
                    step=20,
                    stop_event=self.stop_event,
                    rust_timeout=1000,
                ):
                    for _change, raw in changes:
                        path = Path(raw)
                        if path.parent == manifests and not path.name.startswith("."):
                            self.on_file_event(path)
                    self.reconcile()
            except (OSError, RuntimeError) as exc:
                self.log("agent", "watch-error", message=str(exc))
            # The watch ended or failed (the directory vanished?): retry like the kubelet.
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(self.stop_event.wait(), 1.0)

    async def _resync(self) -> None:
        period = max(self.settings.agent.resync_seconds, 0.5)
        while not self.stop_event.is_set():
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(self.stop_event.wait(), period)
            if not self.stop_event.is_set():
                self.relist()

    async def _print_events(self, done: asyncio.Event) -> None:
        offset = 0
        while True:
            finished = done.is_set()
            events, offset = ev.read_events(self.paths.events, offset)
            for event in events:
                print(ev.format_event(event), file=sys.stderr, flush=True)
            if finished:
                return
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(done.wait(), 0.1)

    # -- lifecycle ------------------------------------------------------------------------
    async def run(self) -> int:
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, self.stop_event.set)
        loop.add_signal_handler(signal.SIGHUP, self.restart_kubelet)
        self.paths.log_dir.mkdir(parents=True, exist_ok=True)
        self.log(
            "agent",
            ev.AGENT_STARTED,
            os.getpid(),
            etcd=self.etcd_binary or "standin",
            uid=os.geteuid(),
        )
        printed = asyncio.Event()
        printer = asyncio.ensure_future(self._print_events(printed))
        self.relist()
        kubelet_task = asyncio.ensure_future(self.kubelet.run())
        background = [asyncio.ensure_future(self._watch()), asyncio.ensure_future(self._resync())]
        await self.stop_event.wait()

        self.shutting_down = True
        self.log("agent", ev.AGENT_STOPPING, os.getpid())
        for worker in [*self.workers.values(), self.kubelet]:
            worker.stop("agent stopping")
        # Each worker terminates its own process (grace capped); then nothing is left.
        await asyncio.gather(
            *self.tasks.values(), *self.draining.values(), kubelet_task, return_exceptions=True
        )
        for task in background:
            task.cancel()
        await asyncio.gather(*background, return_exceptions=True)
        self.log("agent", ev.AGENT_STOPPED, os.getpid())
        printed.set()
        await printer
        return 0

    def restart_kubelet(self) -> None:
        if not self.stop_event.is_set():
            self.kubelet.poke("restart requested")


def _acquire_lock(paths: SandboxPaths) -> int:
    paths.run_dir.mkdir(parents=True, exist_ok=True)
    fd = os.open(paths.agent_lock, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        holder = os.read(fd, 32).decode(errors="replace").strip() or "?"
        os.close(fd)
        raise UserError(
            f"a sandbox agent already runs for this directory (pid {holder})", paths.root
        ) from None
    os.ftruncate(fd, 0)
    os.fchmod(fd, 0o644)  # cis-tui trusts this PID as the runtime only if no one else may write it
    os.write(fd, f"{os.getpid()}\n".encode())
    return fd


def run_agent(directory: Path) -> int:
    """Run the agent for DIR in the foreground until SIGINT or SIGTERM."""
    paths = sandbox_paths(directory)
    settings = load_sandbox_settings(paths.sandbox_settings)
    if settings.agent.etcd == "real" and shutil.which("etcd") is None:
        print("sandbox: no etcd binary on PATH; running the etcd stand-in", file=sys.stderr)
    lock = _acquire_lock(paths)
    try:
        return asyncio.run(Agent(paths, settings).run())
    finally:
        os.close(lock)
