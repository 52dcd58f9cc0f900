"""DIR/sandbox.toml: knobs that exist only in a sandbox (never read by cis-tui itself).

```toml
[agent]
etcd = "real"                 # "real" (the installed etcd binary) or "standin"
resync_seconds = 20.0         # periodic relist of the manifests dir (the kubelet's 20 s)
grace_seconds = 10.0          # termination grace when a pod sets none
backoff_initial_seconds = 1.0 # CrashLoopBackOff: first delay, doubled per crash ...
backoff_max_seconds = 10.0    # ... up to this
backoff_reset_seconds = 60.0  # a run this long forgets earlier crashes
health_poll_seconds = 0.02    # probe polling of real binaries (etcd) for the healthy event

[ready_delay]                 # seconds from start until a stand-in answers healthy
kube-apiserver = 1.0
etcd = 0.3

[[faults]]                    # re-read at every component start
component = "kube-apiserver"  # optional: any component when absent
argv_contains = "--profiling=false"  # optional: a substring of one argument
crash_after_healthy = 2.0     # exit 1 this long after first answering healthy
# exit_at_start = 1           # exit at once with this code
# never_ready = true          # serve, but never answer healthy
# ready_delay = 5.0           # override [ready_delay]
# ignore_sigterm = true       # make the agent wait out the grace period
```
Stdlib-only: the stand-ins read it at start.
"""

from __future__ import annotations

import math
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import Any

from cis_tui.errors import UserError
from cis_tui.sandbox.paths import COMPONENTS

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - Python 3.10 only
    import tomli as tomllib

DEFAULT_READY_DELAY: Mapping[str, float] = {
    "etcd": 0.3,
    "kube-apiserver": 1.0,
    "kube-controller-manager": 0.3,
    "kube-scheduler": 0.3,
    "kubelet": 0.3,
}


@dataclass(frozen=True)
class AgentSettings:
    """How the node agent behaves."""

    etcd: str = "standin"
    resync_seconds: float = 20.0
    grace_seconds: float = 10.0
    backoff_initial_seconds: float = 1.0
    backoff_max_seconds: float = 10.0
    backoff_reset_seconds: float = 60.0
    health_poll_seconds: float = 0.02


@dataclass(frozen=True)
class Fault:
    """A misbehaviour injected into a component whose argv matches."""

    component: str | None = None
    argv_contains: str | None = None
    crash_after_healthy: float | None = None
    exit_at_start: int | None = None
    never_ready: bool = False
    ready_delay: float | None = None
    ignore_sigterm: bool = False

    def matches(self, component: str, argv: Sequence[str]) -> bool:
        if self.component is not None and self.component != component:
            return False
        if self.argv_contains is None:
            return True
        return any(self.argv_contains in arg for arg in argv)


@dataclass(frozen=True)
class SandboxSettings:
    """The whole of sandbox.toml."""

    agent: AgentSettings = field(default_factory=AgentSettings)
    ready_delay: Mapping[str, float] = field(default_factory=lambda: dict(DEFAULT_READY_DELAY))
    faults: tuple[Fault, ...] = ()

    def delay_for(self, component: str) -> float:
        return float(self.ready_delay.get(component, 0.3))

    def faults_for(self, component: str, argv: Sequence[str]) -> tuple[Fault, ...]:
        return tuple(f for f in self.faults if f.matches(component, argv))


def _number(value: Any, key: str, path: Path) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or value < 0:
        raise UserError(f"{key} must be a number >= 0", path)
    if not math.isfinite(value):
        raise UserError(f"{key} must be finite", path)
    return float(value)


def _parse_agent(table: Any, path: Path) -> AgentSettings:
    if not isinstance(table, dict):
        raise UserError("[agent] must be a table", path)
    known = {f.name for f in fields(AgentSettings)}
    extra = sorted(set(table) - known)
    if extra:
        raise UserError(f"unknown key {extra[0]!r} in [agent]", path)
    kwargs: dict[str, Any] = {}
    for key, value in table.items():
        if key == "etcd":
            if value not in ("real", "standin"):
                raise UserError('agent.etcd must be "real" or "standin"', path)
            kwargs[key] = value
        else:
            kwargs[key] = _number(value, f"agent.{key}", path)
    return AgentSettings(**kwargs)


def _parse_fault(raw: Any, path: Path) -> Fault:
    if not isinstance(raw, dict):
        raise UserError("each [[faults]] entry must be a table", path)
    known = {f.name for f in fields(Fault)}
    extra = sorted(set(raw) - known)
    if extra:
        raise UserError(f"unknown key {extra[0]!r} in [[faults]]", path)
    kwargs: dict[str, Any] = {}
    for key, value in raw.items():
        if key in ("component", "argv_contains"):
            if not isinstance(value, str):
                raise UserError(f"faults.{key} must be a string", path)
            kwargs[key] = value
        elif key in ("never_ready", "ignore_sigterm"):
            if not isinstance(value, bool):
                raise UserError(f"faults.{key} must be true or false", path)
            kwargs[key] = value
        elif key == "exit_at_start":
            if isinstance(value, bool) or not isinstance(value, int):
                raise UserError("faults.exit_at_start must be an integer", path)
            kwargs[key] = value
        else:
            kwargs[key] = _number(value, f"faults.{key}", path)
    return Fault(**kwargs)


def load_sandbox_settings(path: Path) -> SandboxSettings:
    """Read sandbox.toml; a missing file gives the defaults."""
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return SandboxSettings()
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
        raise UserError(f"cannot read sandbox settings: {exc}", path) from None
    extra = sorted(set(data) - {"agent", "ready_delay", "faults"})
    if extra:
        raise UserError(f"unknown key {extra[0]!r} in sandbox settings", path)
    agent = _parse_agent(data.get("agent", {}), path)
    delays = dict(DEFAULT_READY_DELAY)
    raw_delays = data.get("ready_delay", {})
    if not isinstance(raw_delays, dict):
        raise UserError("[ready_delay] must be a table", path)
    for comp, value in raw_delays.items():
        if comp not in COMPONENTS:
            raise UserError(f"unknown component {comp!r} in [ready_delay]", path)
        delays[comp] = _number(value, f"ready_delay.{comp}", path)
    raw_faults = data.get("faults", [])
    if not isinstance(raw_faults, list):
        raise UserError("faults must be an array of tables ([[faults]])", path)
    faults = tuple(_parse_fault(f, path) for f in raw_faults)
    return SandboxSettings(agent=agent, ready_delay=delays, faults=faults)


def _toml_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return repr(value)
    text = str(value).replace("\\", "\\\\").replace('"', '\\"')
    return f'"{text}"'


def _toml_key(key: str) -> str:
    return key if key.replace("-", "").replace("_", "").isalnum() else _toml_value(key)


def dump_sandbox_settings(settings: SandboxSettings) -> str:
    """sandbox.toml text for these settings (a small writer: tables of scalars only)."""
    lines = [
        "# Sandbox-only settings, read by the sandbox agent and stand-ins (not by cis-tui).",
        "# Faults and readiness delays are re-read at every component start.",
        "[agent]",
    ]
    for f in fields(AgentSettings):
        lines.append(f"{f.name} = {_toml_value(getattr(settings.agent, f.name))}")
    lines += ["", "[ready_delay]"]
    for comp, delay in settings.ready_delay.items():
        lines.append(f"{_toml_key(comp)} = {_toml_value(float(delay))}")
    for fault in settings.faults:
        lines += ["", "[[faults]]"]
        for f in fields(Fault):
            value = getattr(fault, f.name)
            if value is None or value is False:
                continue
            lines.append(f"{f.name} = {_toml_value(value)}")
    return "\n".join(lines) + "\n"


def write_sandbox_settings(directory: Path, settings: SandboxSettings) -> None:
    """Replace DIR/sandbox.toml atomically (the stand-ins may read it at any moment)."""
    target = Path(directory) / "sandbox.toml"
    tmp = target.with_name(".sandbox.toml.tmp")
    tmp.write_text(dump_sandbox_settings(settings), encoding="utf-8")
    tmp.replace(target)


def update_sandbox_settings(
    directory: Path,
    *,
    ready_delay: Mapping[str, float] | None = None,
    faults: Sequence[Fault] | None = None,
    **agent: Any,
) -> SandboxSettings:
    """Change some settings of a sandbox (delays merge, faults replace, agent keys replace)."""
    path = Path(directory) / "sandbox.toml"
    current = load_sandbox_settings(path)
    delays = dict(current.ready_delay)
    delays.update(ready_delay or {})
    new = replace(
        current,
        agent=replace(current.agent, **agent),
        ready_delay=delays,
        faults=tuple(faults) if faults is not None else current.faults,
    )
    write_sandbox_settings(Path(directory), new)
    return new
