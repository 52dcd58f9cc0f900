"""What every stand-in shares: who it is and its container's view of the host, fatal errors
and flag parsing in the real binary's words, and its process name and shutdown.

Stand-ins import only the stdlib (and cryptography, ruamel.yaml where a file needs it):
their start-up time is part of what the engine's benchmarks measure.
"""

from __future__ import annotations

import contextlib
import ctypes
import ipaddress
import json
import os
import signal
import sys
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from cis_tui.audit.flags import ParsedArgs, parse_args, validate_value
from cis_tui.audit.versions import Version, flag_table_for, image_version, parse_version
from cis_tui.sandbox import events as ev
from cis_tui.sandbox.paths import SandboxPaths, sandbox_root_of_script
from cis_tui.sandbox.settings import Fault, SandboxSettings, load_sandbox_settings


class Fatal(Exception):
    """The component gives up with `message` and exit `code`.

    `raw` messages are printed as they are (already in the binary's style); others are
    runtime errors that main() logs the way the binary logs a fatal error.
    """

    def __init__(self, message: str, code: int = 1, raw: bool = False) -> None:
        super().__init__(message)
        self.message = message
        self.code = code
        self.raw = raw


def klog(severity: str, message: str, **kv: Any) -> str:
    """A klog text line: `E1126 10:49:40.021788  12345 run.go:72] "msg" key="value"`."""
    now = time.time()
    stamp = time.strftime("%m%d %H:%M:%S", time.localtime(now)) + f".{int(now % 1 * 1e6):06d}"
    pairs = "".join(f" {k}={json.dumps(str(v))}" for k, v in kv.items())
    return f"{severity}{stamp} {os.getpid():>7} run.go:72] {json.dumps(message)}{pairs}"


def command_failed(err: str) -> Fatal:
    """A runtime error of a Kubernetes component, as component-base's cli.Run logs it."""
    return Fatal(klog("E", "command failed", err=err), raw=True)


@dataclass(frozen=True)
class MountView:
    """The filesystem a container sees: only its volumeMounts (None: not containerised)."""

    mounts: tuple[tuple[str, str, bool], ...] | None

    @classmethod
    def from_json(cls, text: str | None) -> MountView:
        if text is None:
            return cls(None)
        raw = json.loads(text)
        return cls(tuple((m["mountPath"], m["hostPath"], bool(m["readOnly"])) for m in raw))

    def _resolve(self, path: str) -> tuple[str, bool] | None:
        if self.mounts is None:
            return path, False
        p = os.path.normpath(path)
        best: tuple[str, str, bool] | None = None
        for mount_path, host_path, ro in self.mounts:
            mp = os.path.normpath(mount_path)
            if (p == mp or p.startswith(mp.rstrip("/") + "/")) and (
                best is None or len(mp) > len(best[0])
            ):
                best = (mp, host_path, ro)
        if best is None:
            return None
        mp, host, ro = best
        rest = p[len(mp) :].lstrip("/")
        return (os.path.join(host, rest) if rest else host), ro

    def host_path(self, path: str) -> str | None:
        """Where a container path lives on the host; None when no mount shows it."""
        found = self._resolve(path)
        return found[0] if found else None

    def read_only(self, path: str) -> bool:
        found = self._resolve(path)
        return found[1] if found else False


@dataclass
class Context:
    """One stand-in process: who it is, where its sandbox is, what it may see."""

    binary: str
    pod: str
    paths: SandboxPaths
    view: MountView
    settings: SandboxSettings
    argv: tuple[str, ...]
    faults: tuple[Fault, ...] = field(default=())
    #: The version this stand-in plays: its pod's image tag (the kubelet: its script's).
    version: Version | None = None

    @classmethod
    def from_environment(
        cls, binary: str, argv: Sequence[str], version: str | None = None
    ) -> Context:
        root = os.environ.get("CIS_TUI_SANDBOX_DIR") or str(sandbox_root_of_script(sys.argv[0]))
        paths = SandboxPaths(Path(root))
        try:
            settings = load_sandbox_settings(paths.sandbox_settings)
        except Exception:  # a broken sandbox.toml must not look like a component failure
            settings = SandboxSettings()
        pod = os.environ.get("CIS_TUI_SANDBOX_POD", binary)
        ctx = cls(
            binary=binary,
            pod=pod,
            paths=paths,
            view=MountView.from_json(os.environ.get("CIS_TUI_SANDBOX_MOUNTS")),
            settings=settings,
            argv=tuple(argv),
            version=played_version(binary, version),
        )
        ctx.faults = settings.faults_for(pod, argv)
        return ctx

    def event(self, event: str, **details: Any) -> None:
        with contextlib.suppress(OSError):
            ev.append_event(self.paths.events, self.pod, event, os.getpid(), **details)

    @property
    def ready_delay(self) -> float:
        for fault in self.faults:
            if fault.ready_delay is not None:
                return fault.ready_delay
        return self.settings.delay_for(self.pod)

    def fault(self, name: str) -> Any:
        for f in self.faults:
            value = getattr(f, name)
            if value not in (None, False):
                return value
        return None

    # -- files as the container sees them -------------------------------------------------
    def open_path(self, path: str, prefix: str = "") -> Path:
        """The host file behind a container path, or Fatal(`open P: no such file ...`)."""
        host = self.view.host_path(path)
        if host is None or not os.path.exists(host):
            raise Fatal(f"{prefix}open {path}: no such file or directory")
        if os.path.isdir(host):
            raise Fatal(f"{prefix}read {path}: is a directory")
        if not os.access(host, os.R_OK):
            raise Fatal(f"{prefix}open {path}: permission denied")
        return Path(host)

    def read_bytes(self, path: str, prefix: str = "") -> bytes:
        return self.open_path(path, prefix).read_bytes()

    def read_text(self, path: str, prefix: str = "") -> str:
        return self.read_bytes(path, prefix).decode("utf-8", "replace")

    def writable_file(self, path: str, prefix: str = "") -> Path:
        """Open (create) a file for appending, as a log file; Fatal when the container can't."""
        host = self.view.host_path(path)
        if host is None or not os.path.isdir(os.path.dirname(host)):
            raise Fatal(f"{prefix}open {path}: no such file or directory")
        if self.view.read_only(path):
            raise Fatal(f"{prefix}open {path}: read-only file system")
        try:
            fd = os.open(host, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
        except OSError as exc:
            raise Fatal(f"{prefix}open {path}: {(exc.strerror or '').lower()}") from None
        os.close(fd)
        return Path(host)


def played_version(binary: str, version: str | None = None) -> Version | None:
    """The version a stand-in plays: `version` (the kubelet's script names its own), else the
    tag of the image its pod runs (CIS_TUI_SANDBOX_IMAGE, set by the agent)."""
    if version:
        return parse_version(version)
    image = os.environ.get("CIS_TUI_SANDBOX_IMAGE", "")
    return image_version(binary, image) if image else None


# -- flags --------------------------------------------------------------------------------
def parse_kube_flags(
    component: str, argv: Sequence[str], version: Version | None = None
) -> ParsedArgs:
    """pflag parsing with cobra's errors: `Error: unknown flag: --foo`, exit 1; the flags are
    those of `version` (a flag added later, or removed since, is unknown, as in that binary)."""
    parsed = parse_args(component, list(argv), flag_table_for(component, version))
    if parsed.errors:
        raise Fatal(f"Error: {parsed.errors[0]}", raw=True)
    return parsed


def check_no_positional(component: str, parsed: ParsedArgs) -> None:
    args = [a for a in parsed.positional if a]
    if args:
        got = "[" + " ".join(json.dumps(a) for a in parsed.positional) + "]"
        raise Fatal(f'Error: "{component}" does not take any arguments, got {got}', raw=True)


def parse_go_flags(
    component: str, argv: Sequence[str], version: Version | None = None
) -> ParsedArgs:
    """Go's flag package (etcd): `flag provided but not defined: -foo`, exit 2."""
    table = flag_table_for(component, version)
    parsed = parse_args(component, list(argv), table)
    if parsed.unknown:
        name = parsed.unknown[0].lstrip("-")
        raise Fatal(f"flag provided but not defined: -{name}", 2, raw=True)
    for occ in parsed.occurrences:
        spec = table.get(occ.name)
        if spec is not None and occ.value is not None and validate_value(spec, occ.value):
            name = occ.name.lstrip("-")
            raise Fatal(f'invalid value "{occ.value}" for flag -{name}: parse error', 2, raw=True)
    if parsed.errors:
        message = parsed.errors[0].replace(
            "flag needs an argument: --", "flag needs an argument: -"
        )
        raise Fatal(message, 2, raw=True)
    return parsed


def flag_bool(parsed: ParsedArgs, name: str, default: bool) -> bool:
    value = parsed.get(name)
    if value is None:
        return default
    return value in {"1", "t", "T", "TRUE", "true", "True"}


def flag_int(parsed: ParsedArgs, name: str, default: int) -> int:
    value = parsed.get(name)
    return int(value, 0) if value not in (None, "") else default


def split(value: str | None) -> list[str]:
    return [v.strip() for v in (value or "").split(",") if v.strip()]


def valid_ip(value: str) -> bool:
    try:
        ipaddress.ip_address(value)
    except ValueError:
        return False
    return True


# -- process ------------------------------------------------------------------------------
def set_process_name(name: str) -> None:
    """Set the kernel's comm (what `ps -C` and psutil's name() see) to the binary's name."""
    try:
        libc = ctypes.CDLL(None)
        libc.prctl(15, ctypes.c_char_p(name.encode()[:15]), 0, 0, 0)  # PR_SET_NAME
    except (OSError, AttributeError):
        pass


def wait_for_termination(ctx: Context) -> int:
    """Block until SIGTERM/SIGINT; exit 0 like a graceful shutdown (unless a fault says no)."""
    stop = threading.Event()

    def on_signal(signum: int, _frame: Any) -> None:
        if ctx.fault("ignore_sigterm") and signum == signal.SIGTERM:
            ctx.event(ev.FAULT, fault="ignore_sigterm")
            return
        stop.set()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    while not stop.wait(1.0):
        pass
    print(
        klog("I", "Received signal to terminate, becoming unready, but keeping serving"),
        file=sys.stderr,
    )
    return 0
