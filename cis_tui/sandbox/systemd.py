"""The kubelet's systemd unit, read the way systemd builds the kubelet's command line.

kubelet.service plus its drop-ins (in name order): `Environment=` assignments,
`EnvironmentFile=` (a leading `-` means optional), `ExecStart=` (an empty one resets the
list), `RestartSec=`. In ExecStart, `$VAR` splits into words and `${VAR}` stays one word.
"""

from __future__ import annotations

import re
import shlex
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path


class UnitError(Exception):
    """The unit cannot start (systemd would refuse it)."""


@dataclass(frozen=True)
class ServiceSpec:
    """What `systemctl start` would exec."""

    argv: tuple[str, ...]
    env: Mapping[str, str]
    restart_seconds: float
    files: tuple[Path, ...]


_VAR = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}|\$([A-Za-z_][A-Za-z0-9_]*)")


def _service_lines(text: str) -> list[tuple[str, str]]:
    """key=value pairs of the [Service] section, continuation lines joined."""
    out: list[tuple[str, str]] = []
    section = ""
    pending = ""
    for raw in text.splitlines():
        line = pending + raw.strip()
        pending = ""
        if line.endswith("\\"):
            pending = line[:-1] + " "
            continue
        if not line or line.startswith(("#", ";")):
            continue
        if line.startswith("[") and line.endswith("]"):
            section = line[1:-1]
            continue
        if section != "Service" or "=" not in line:
            continue
        key, _, value = line.partition("=")
        out.append((key.strip(), value.strip()))
    return out


def parse_env_file(text: str) -> dict[str, str]:
    """KEY=value lines (values may be quoted), comments skipped."""
    env: dict[str, str] = {}
    for raw in text.splitlines():
        line = raw.strip()
        if not line or line.startswith(("#", ";")) or "=" not in line:
            continue
        key, _, value = line.partition("=")
        value = value.strip()
        try:
            words = shlex.split(value) if value else [""]
        except ValueError:
            words = [value]
        env[key.strip()] = " ".join(words)
    return env


def _expand(command: str, env: Mapping[str, str]) -> list[str]:
    argv: list[str] = []
    for word in shlex.split(command):
        m = _VAR.fullmatch(word)
        if m and m.group(2):  # $VAR: split into words, dropped when empty
            argv.extend(env.get(m.group(2), "").split())
            continue
        argv.append(_VAR.sub(lambda v: env.get(v.group(1) or v.group(2), ""), word))
    return argv


def load_service(unit: Path, dropin_dir: Path | None = None) -> ServiceSpec:
    """Read the unit and its drop-ins into the command systemd would run."""
    files = [unit]
    if dropin_dir is not None and dropin_dir.is_dir():
        files += sorted(p for p in dropin_dir.iterdir() if p.suffix == ".conf")
    env: dict[str, str] = {}
    exec_start: list[str] = []
    restart = 0.1  # systemd's default RestartSec
    for path in files:
        try:
            text = path.read_text(encoding="utf-8")
        except OSError as exc:
            raise UnitError(f"{path}: {exc.strerror}") from None
        for key, value in _service_lines(text):
            if key == "Environment":
                try:
                    words = shlex.split(value)
                except ValueError as exc:
                    raise UnitError(f"{path}: bad Environment=: {exc}") from None
                for word in words:
                    name, _, val = word.partition("=")
                    env[name] = val
            elif key == "EnvironmentFile":
                optional = value.startswith("-")
                env_path = Path(value.lstrip("-"))
                try:
                    env.update(parse_env_file(env_path.read_text(encoding="utf-8")))
                except OSError as exc:
                    if not optional:
                        raise UnitError(
                            f"Failed to load environment files: {env_path}: {exc.strerror}"
                        ) from None
            elif key == "ExecStart":
                if not value:
                    exec_start = []
                else:
                    exec_start.append(value)
            elif key == "RestartSec":
                try:
                    restart = float(value.rstrip("s"))
                except ValueError:
                    raise UnitError(f"{path}: bad RestartSec={value}") from None
    if not exec_start:
        raise UnitError("Service has no ExecStart= setting")
    if len(exec_start) > 1:
        raise UnitError("Service has more than one ExecStart= setting")
    argv = _expand(exec_start[-1].lstrip("-@+!:"), env)
    return ServiceSpec(tuple(argv), env, restart, tuple(files))
