"""The sandbox event log: one JSON object per line in DIR/var/log/sandbox/events.jsonl.

Written by the agent and by the stand-ins (a stand-in records the moment it turns healthy).
Each line: {"time": <unix float>, "component": ..., "event": ..., "pid": ..., <details>}.
A `healthy` event with `first: true` is the moment a (re)started process first answered its
probe; `first: false` marks a recovery without a restart (the apiserver after an etcd outage).
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

#: Event names used by the agent and the stand-ins.
AGENT_STARTED = "agent-started"
AGENT_STOPPING = "agent-stopping"
AGENT_STOPPED = "agent-stopped"
MANIFEST_ERROR = "manifest-error"
STARTED = "started"
EXITED = "exited"
FAILED = "failed"
HEALTHY = "healthy"
UNHEALTHY = "unhealthy"
RESTARTING = "restarting"
BACKOFF = "backoff"
KILLED = "killed"
STOPPING = "stopping"
REMOVED = "removed"
FAULT = "fault"
#: The agent's probes, as the kubelet runs them (cis_tui/sandbox/probing.py).
PROBE_FAILED = "probe-failed"
PROBE_SUCCEEDED = "probe-succeeded"
READY = "ready"
NOT_READY = "not-ready"


@dataclass(frozen=True)
class Event:
    """One line of the event log."""

    time: float
    component: str
    event: str
    pid: int | None = None
    details: Mapping[str, Any] = field(default_factory=dict)

    def get(self, key: str, default: Any = None) -> Any:
        return self.details.get(key, default)


def append_event(
    path: Path, component: str, event: str, pid: int | None = None, **details: Any
) -> Event:
    """Append one event with the current time; a single O_APPEND write, safe across processes."""
    now = time.time()
    record: dict[str, Any] = {"time": now, "component": component, "event": event, "pid": pid}
    record.update(details)
    line = (json.dumps(record, separators=(",", ":"), default=str) + "\n").encode()
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        os.write(fd, line)
    finally:
        os.close(fd)
    return Event(now, component, event, pid, {k: v for k, v in details.items()})


def parse_event(line: str) -> Event | None:
    """One log line as an Event; None for a torn or foreign line."""
    try:
        raw = json.loads(line)
    except ValueError:
        return None
    if not isinstance(raw, dict) or not {"time", "component", "event"} <= raw.keys():
        return None
    details = {k: v for k, v in raw.items() if k not in {"time", "component", "event", "pid"}}
    pid = raw.get("pid")
    return Event(float(raw["time"]), str(raw["component"]), str(raw["event"]), pid, details)


def read_events(path: Path, offset: int = 0) -> tuple[list[Event], int]:
    """Complete events from byte `offset` on, and the offset after the last complete line."""
    try:
        with path.open("rb") as fh:
            fh.seek(offset)
            data = fh.read()
    except FileNotFoundError:
        return [], offset
    end = data.rfind(b"\n") + 1
    events = [
        ev
        for line in data[:end].decode("utf-8", "replace").splitlines()
        if (ev := parse_event(line)) is not None
    ]
    return events, offset + end


def format_event(ev: Event) -> str:
    """A human log line: ISO time with milliseconds, component, event, pid, details."""
    stamp = time.strftime("%Y-%m-%dT%H:%M:%S", time.localtime(ev.time))
    millis = int((ev.time % 1) * 1000)
    parts = [f"{stamp}.{millis:03d}", f"{ev.component:<23}", ev.event]
    if ev.pid is not None:
        parts.append(f"pid={ev.pid}")
    for key, value in ev.details.items():
        if key == "argv":
            continue
        parts.append(f"{key}={value}")
    return " ".join(parts)
