"""What a report shows, gathered once: the scan by section, the waivers, the change history.

The renderers (html.py, markdown.py) only format these values. Records read from the state
directory and the fleet file are checked field by field: a tampered or foreign value becomes
"unknown", never an exception or markup (escaping is the renderers' job, and they always do it).
"""

from __future__ import annotations

import datetime as dt
import socket
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cis_tui.audit.evaluate import Result, Status
from cis_tui.drift import Entry, parse_baseline
from cis_tui.errors import UserError
from cis_tui.report import Scan
from cis_tui.userfiles import load_json
from cis_tui.waivers import EXPIRY_WARNING_DAYS, Waiver

#: A fleet of a thousand nodes' scans is ~100 MB; past this it is not one.
_FLEET_LIMIT = 256 << 20

#: CIS Kubernetes Benchmark section titles (the catalog only numbers them).
SECTION_TITLES = {
    "1": "Control plane components",
    "1.1": "Control plane node configuration files",
    "1.2": "API server",
    "1.3": "Controller manager",
    "1.4": "Scheduler",
    "2": "etcd",
    "3": "Control plane configuration",
    "4": "Worker nodes",
    "4.1": "Worker node configuration files",
    "4.2": "Kubelet",
    "4.3": "kube-proxy",
    "5": "Policies",
}
#: The order statuses are counted and drawn in.
STATUS_SEQUENCE = (
    Status.FAIL,
    Status.ERROR,
    Status.WARN,
    Status.WAIVED,
    Status.PASS,
    Status.SKIP,
)


def utc(timestamp: float) -> str:
    return dt.datetime.fromtimestamp(timestamp, dt.timezone.utc).strftime("%Y-%m-%d %H:%M:%S UTC")


@dataclass(frozen=True)
class Section:
    id: str
    title: str
    results: tuple[Result, ...]

    @property
    def counts(self) -> dict[str, int]:
        counts = {s.value: 0 for s in STATUS_SEQUENCE}
        for r in self.results:
            counts[r.status.value] += 1
        return counts


def sections(results: Sequence[Result]) -> tuple[Section, ...]:
    """Results grouped by benchmark section, in the order they come."""
    groups: dict[str, list[Result]] = {}
    for r in results:
        groups.setdefault(r.check.section, []).append(r)
    return tuple(
        Section(sid, SECTION_TITLES.get(sid, f"Section {sid}"), tuple(rs))
        for sid, rs in groups.items()
    )


@dataclass(frozen=True)
class WaiverRow:
    waiver: Waiver
    state: str  # "active" | "expiring" | "expired" | "other nodes"
    days_left: int

    @property
    def when(self) -> str:
        """`2026-12-10 (in 9 days)`, `2026-11-01 (30 days ago)`."""
        day, n = self.waiver.expires.isoformat(), self.days_left
        if n == 0:
            return f"{day} (today)"
        unit = "day" if abs(n) == 1 else "days"
        return f"{day} (in {n} {unit})" if n > 0 else f"{day} ({-n} {unit} ago)"


def waiver_rows(waivers: Sequence[Waiver], host: str, today: dt.date) -> tuple[WaiverRow, ...]:
    rows = []
    for w in waivers:
        days = w.days_left(today)
        if not w.applies_to(host):
            state = "other nodes"
        elif w.expired(today):
            state = "expired"
        elif days <= EXPIRY_WARNING_DAYS:
            state = "expiring"
        else:
            state = "active"
        rows.append(WaiverRow(w, state, days))
    return tuple(rows)


# -- the change history ------------------------------------------------------------------------
def _s(raw: Mapping[str, Any], key: str) -> str:
    value = raw.get(key)
    return value if isinstance(value, str) else ""


def _n(raw: Mapping[str, Any], key: str) -> float | None:
    value = raw.get(key)
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    return float(value)


def _pid(raw: Mapping[str, Any], key: str) -> int | None:
    value = raw.get(key)
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def _strs(raw: Mapping[str, Any], key: str) -> tuple[str, ...]:
    value = raw.get(key)
    if not isinstance(value, list):
        return ()
    return tuple(v for v in value if isinstance(v, str))


def _dicts(raw: Mapping[str, Any], key: str) -> list[Mapping[str, Any]]:
    value = raw.get(key)
    return [v for v in value if isinstance(v, dict)] if isinstance(value, list) else []


@dataclass(frozen=True)
class Gate:
    """One health gate of a transaction, as the history recorded it."""

    component: str
    phase: str
    ok: bool | None
    result: str
    urls: tuple[str, ...]
    tls: str
    polls: int
    failed_polls: int
    latency: tuple[float, float, float] | None  # min, median, max in ms
    first_healthy: float | None
    stable_after: float | None
    window: float | None
    timeout: float | None

    @classmethod
    def parse(cls, raw: Mapping[str, Any]) -> Gate:
        lat = raw.get("latency_ms")
        latency = None
        if isinstance(lat, dict):
            values = [_n(lat, k) for k in ("min", "median", "max")]
            if all(v is not None for v in values):
                latency = (values[0], values[1], values[2])  # type: ignore[assignment]
        ok = raw.get("ok")
        return cls(
            _s(raw, "component"),
            _s(raw, "phase") or "change",
            ok if isinstance(ok, bool) else None,
            _s(raw, "result"),
            _strs(raw, "urls"),
            _s(raw, "tls"),
            int(_n(raw, "polls") or 0),
            int(_n(raw, "failed_polls") or 0),
            latency,
            _n(raw, "first_healthy_s"),
            _n(raw, "stable_after_s"),
            _n(raw, "window_s"),
            _n(raw, "timeout_s"),
        )


@dataclass(frozen=True)
class AuditLine:
    check: str
    ok: bool | None
    result: str


@dataclass(frozen=True)
class Step:
    step: str
    ok: bool
    message: str
    time: float | None


@dataclass(frozen=True)
class Transaction:
    """One finished transaction with its proof."""

    txid: str
    backup_id: str
    started: float | None
    finished: float | None
    file: str
    component: str
    kind: str
    restores: str
    checks: tuple[str, ...]
    diff: str
    risks: tuple[str, ...]
    old_pid: int | None
    new_pid: int | None
    restart: str
    gates: tuple[Gate, ...]
    audit: tuple[AuditLine, ...]
    steps: tuple[Step, ...]
    notes: tuple[str, ...]
    rollback_reason: str
    outcome: str
    message: str

    @property
    def anchor(self) -> str:
        return "tx-" + "".join(c if c.isalnum() or c == "-" else "-" for c in self.txid or "x")

    @classmethod
    def parse(cls, raw: Mapping[str, Any]) -> Transaction:
        audit = []
        for a in _dicts(raw, "audit"):
            ok = a.get("ok")
            audit.append(
                AuditLine(_s(a, "check"), ok if isinstance(ok, bool) else None, _s(a, "result"))
            )
        steps = [
            Step(_s(s, "step"), s.get("ok") is True, _s(s, "message"), _n(s, "time"))
            for s in _dicts(raw, "steps")
        ]
        return cls(
            txid=_s(raw, "txid"),
            backup_id=_s(raw, "backup_id"),
            started=_n(raw, "started"),
            finished=_n(raw, "finished"),
            file=_s(raw, "file"),
            component=_s(raw, "component"),
            kind=_s(raw, "kind") or "apply",
            restores=_s(raw, "restores"),
            checks=_strs(raw, "checks"),
            diff=_s(raw, "diff"),
            risks=_strs(raw, "risks"),
            old_pid=_pid(raw, "old_pid"),
            new_pid=_pid(raw, "new_pid"),
            restart=_s(raw, "restart"),
            gates=tuple(Gate.parse(g) for g in _dicts(raw, "gates")),
            audit=tuple(audit),
            steps=tuple(steps),
            notes=_strs(raw, "notes"),
            rollback_reason=_s(raw, "rollback_reason"),
            outcome=_s(raw, "outcome") or "unknown",
            message=_s(raw, "message"),
        )


@dataclass(frozen=True)
class Unrecorded:
    """A backup with no history record: taken before history was kept, or by `persist`."""

    id: str
    time: str
    path: str
    checks: tuple[str, ...]
    outcome: str


@dataclass(frozen=True)
class History:
    source: str  # where it was read, or why there is none
    transactions: tuple[Transaction, ...] = ()  # newest first
    unrecorded: tuple[Unrecorded, ...] = ()
    problem: str = ""


def read_node_history(scan: Scan) -> History:
    """The change history of the scanned node's state directory (never raises)."""
    from cis_tui.engine.backups import BackupStore
    from cis_tui.engine.history import HISTORY_FILE, read_history

    settings = scan.settings
    source = str(settings.state_dir / HISTORY_FILE)
    try:
        records = [Transaction.parse(r) for r in read_history(settings.state_dir)]
        backups = BackupStore(settings.state_dir, settings.layout).list()
    except (UserError, OSError) as exc:
        return History(source, problem=str(exc))
    recorded = {t.backup_id for t in records}
    unrecorded = tuple(
        Unrecorded(b.id, b.time, b.path or "file modes and owners", b.checks, b.outcome)
        for b in backups
        if b.id not in recorded
    )
    ordered = sorted(records, key=lambda t: t.started or 0.0, reverse=True)
    return History(source, tuple(ordered), unrecorded)


@dataclass(frozen=True)
class NodeReport:
    scan: Scan
    host: str
    generated: dt.datetime
    history: History | None  # None: not included (the results come from a kube-bench report)
    waivers: tuple[WaiverRow, ...]

    @property
    def sections(self) -> tuple[Section, ...]:
        return sections(self.scan.results)


def node_report(
    scan: Scan,
    *,
    history: History | None = None,
    include_history: bool = True,
    host: str | None = None,
    now: dt.datetime | None = None,
) -> NodeReport:
    """The report of one node: `history` None reads the scan's state directory (unless
    `include_history` is False: a kube-bench report is not of this node's state)."""
    now = now or dt.datetime.now(dt.timezone.utc)
    host = host or socket.gethostname()
    if history is None and include_history:
        history = read_node_history(scan)
    rows = waiver_rows(scan.settings.waivers, host, now.date())
    return NodeReport(scan, host, now, history, rows)


# -- fleet ---------------------------------------------------------------------------------------
@dataclass(frozen=True)
class FleetNode:
    host: str
    benchmark: str
    versions: str
    entries: Mapping[str, Entry]

    @property
    def counts(self) -> dict[str, int]:
        counts = {s.value: 0 for s in STATUS_SEQUENCE}
        for e in self.entries.values():
            counts[e.status] = counts.get(e.status, 0) + 1
        return counts


@dataclass(frozen=True)
class FleetReport:
    source: Path
    generated: dt.datetime
    nodes: tuple[FleetNode, ...]
    checks: tuple[tuple[str, str], ...]  # (id, title), first seen order

    def differing(self) -> tuple[str, ...]:
        """Check ids whose status is not the same on every node (a missing check counts)."""
        out = []
        for check_id, _title in self.checks:
            statuses = {
                n.entries[check_id].status if check_id in n.entries else "" for n in self.nodes
            }
            if len(statuses) > 1:
                out.append(check_id)
        return tuple(out)


def _versions_label(doc: Mapping[str, Any]) -> str:
    node = doc.get("node")
    versions = node.get("versions") if isinstance(node, dict) else None
    if isinstance(versions, dict) and isinstance(versions.get("kubernetes"), str):
        return f"Kubernetes {versions['kubernetes']}"
    return "Kubernetes version unknown"


def parse_fleet(doc: Any, path: Path, now: dt.datetime | None = None) -> FleetReport:
    """The fleet file agreed with the Ansible fleet scan (issue 15):

        {"nodes": {"<hostname>": <the output of `cis-tui scan --format json` on it>, ...}}

    Any other top-level keys are ignored. UserError (exit 2) names the node that is wrong.
    """
    if not isinstance(doc, dict) or not isinstance(doc.get("nodes"), dict) or not doc["nodes"]:
        raise UserError('not a fleet scan: expected {"nodes": {"<hostname>": <scan json>}}', path)
    nodes = []
    checks: dict[str, str] = {}
    for host, scan_doc in doc["nodes"].items():
        try:
            baseline = parse_baseline(scan_doc, path)
        except UserError as exc:
            raise UserError(f"node {host!r}: {exc.message}", path) from None
        for entry in baseline.entries.values():
            checks.setdefault(entry.id, entry.title)
        nodes.append(
            FleetNode(str(host), baseline.benchmark, _versions_label(scan_doc), baseline.entries)
        )
    return FleetReport(
        path, now or dt.datetime.now(dt.timezone.utc), tuple(nodes), tuple(checks.items())
    )


def load_fleet(path: Path, now: dt.datetime | None = None) -> FleetReport:
    return parse_fleet(load_json(path, "fleet file", _FLEET_LIMIT), path, now)
