"""Evaluate catalog checks against a node snapshot: a pure function, no I/O beyond the snapshot.

A flag check is judged on two sources: the file (what will run) and the live process (what
runs now). Either failing fails the check, and a disagreement between them is reported.
"""

from __future__ import annotations

import enum
import ipaddress
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from cis_tui.audit.flags import parse_bool, parse_duration, spec_for, split_list, split_map
from cis_tui.audit.node import InputError, NodeSnapshot, load_yaml_document, read_text_file
from cis_tui.benchmarks.catalog import Catalog, Check, FlagTest


class Status(str, enum.Enum):
    PASS = "PASS"
    FAIL = "FAIL"
    WARN = "WARN"
    SKIP = "SKIP"
    ERROR = "ERROR"

    def __str__(self) -> str:
        return self.value


#: Order in which results are listed: what needs attention first.
STATUS_ORDER = {Status.FAIL: 0, Status.ERROR: 1, Status.WARN: 2, Status.PASS: 3, Status.SKIP: 4}


@dataclass(frozen=True)
class Result:
    """The verdict on one check, with what each source said."""

    check: Check
    status: Status
    expected: str
    file_value: str | None  # what the file says (None: no file source)
    live_value: str | None  # what the running process says (None: no live source)
    reason: str  # one line: why this status
    disagreement: str | None = None

    @property
    def id(self) -> str:
        return self.check.id


@dataclass(frozen=True)
class _Outcome:
    passed: bool
    value: str  # what was found, for display ("--profiling=false", "absent", "mode 644 ...")


def _failing(check: Check) -> Status:
    return Status.FAIL if check.scored else Status.WARN


def _config_value(config: dict[str, Any] | None, dotted: str) -> str | None:
    node: Any = config
    for part in dotted.split("."):
        if not isinstance(node, dict) or part not in node:
            return None
        node = node[part]
    if node is None:
        return None
    if isinstance(node, bool):
        return "true" if node else "false"
    if isinstance(node, list):
        return ",".join(str(v) for v in node)
    if isinstance(node, dict):
        return ",".join(f"{k}={_config_value(node, str(k))}" for k in node)
    return str(node)


def _same(found: str, expected: str, kind: str | None = None) -> bool:
    exp_bool = parse_bool(expected) if expected in {"true", "false"} else None
    if exp_bool is not None:
        return parse_bool(found) == exp_bool
    if kind == "duration":  # 0, 0s and 0h0m0s are one value, as the component reads them
        found_s, expected_s = parse_duration(found), parse_duration(expected)
        if found_s is not None and expected_s is not None:
            return found_s == expected_s
    try:
        return float(found) == float(expected)
    except ValueError:
        return found == expected


def _is_loopback(value: str) -> bool:
    host = value
    if host.startswith("["):
        host = host[1:].split("]", 1)[0]
    elif host.count(":") == 1:
        host = host.split(":", 1)[0]
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _apply_op(test: FlagTest, found: str, kind: str | None = None) -> bool:
    """Whether a present value passes the test (`kind`: the flag's type, e.g. duration)."""
    op, expected = test.op, test.value
    if op == "set":
        return found.strip() != ""
    if op == "unset":
        return False
    if op == "eq":
        return _same(found, str(expected), kind)
    if op == "noteq":
        return not _same(found, str(expected), kind)
    if op == "gte":
        try:
            return float(found) >= float(str(expected))
        except ValueError:
            return False
    if op == "has":
        return str(expected) in split_list(found)
    if op == "lacks":
        return str(expected) not in split_list(found)
    if op == "subset":
        items = split_list(found)
        allowed = set(expected) if isinstance(expected, tuple) else {str(expected)}
        return bool(items) and all(item in allowed for item in items)
    if op == "loopback":
        return _is_loopback(found)
    raise ValueError(f"unknown op {op}")


def describe_test(test: FlagTest) -> str:
    """The expected state in an admin's words."""
    name = f"{test.flag} {test.key}" if test.key else test.flag
    value = test.value
    text = {
        "set": f"{name} is set",
        "unset": f"{name} is not set",
        "eq": f"{test.flag}={value}" if not test.key else f"{name}={value}",
        "noteq": f"{name} is not {value}",
        "gte": f"{name} >= {value}",
        "has": f"{name} includes {value}",
        "lacks": f"{name} does not include {value}",
        "subset": f"{name} only from the strong list",
        "loopback": f"{name} on a loopback address",
    }[test.op]
    if test.config:
        text += f" (or {test.config} in the kubelet config)"
    if test.env:
        text += f" (or env {test.env})"
    if test.absent == "pass" and test.op != "unset":
        text += ", or unset"
    return text


class _FlagSource:
    """One place flags are read from: a manifest or a live process (+ kubelet config / env)."""

    def __init__(
        self,
        component: str,
        flags: dict[str, str],
        config: dict[str, Any] | None = None,
        env: dict[str, str] | None = None,
    ) -> None:
        self.component = component
        self.flags = flags
        self.config = config
        self.env = env or {}

    def lookup(self, test: FlagTest) -> tuple[str | None, str]:
        """The value the component uses for the test's flag, and how it was spelled."""
        value = self.flags.get(test.flag)
        label = test.flag
        if value is not None and test.key:
            # A map flag (--feature-gates): only the entry counts; the config key names it.
            value = split_map(value).get(test.key)
            label = f"{label} {test.key}"
        if value is None and test.config:
            value, label = _config_value(self.config, test.config), test.config
        if value is None and test.env:
            value, label = self.env.get(test.env), test.env
        return value, label

    def run(self, test: FlagTest) -> _Outcome:
        value, label = self.lookup(test)
        if value is None:
            return _Outcome(test.absent == "pass", f"{label.split(' ')[0]} absent")
        if test.op == "unset":
            return _Outcome(False, f"{label}={value}")
        spec = spec_for(self.component, test.flag)
        kind = spec.type if spec else None
        if kind == "duration" and label == test.config and parse_duration(value) == 0:
            # The kubelet defaults a zero duration in its config file (0s idle timeout: 4h);
            # only the command-line flag can really set zero.
            return _Outcome(test.absent == "pass", f"{label}={value} (zero: the default)")
        return _Outcome(_apply_op(test, value, kind), f"{label}={value}")


def _combine(outcomes: list[_Outcome], combine: str) -> _Outcome:
    passed = (all if combine == "all" else any)(o.passed for o in outcomes)
    return _Outcome(passed, "; ".join(o.value for o in outcomes))


def _sources(
    check: Check, snap: NodeSnapshot
) -> tuple[_FlagSource | None, _FlagSource | None, str]:
    """(file source, live source, error) for a flags check's component."""
    comp = check.component
    proc = snap.processes.get(comp)
    if comp == "kubelet":
        config = snap.kubelet_config
        file_flags = snap.kubelet_flags(live=False)
        file_src = None
        if config is not None or file_flags is not None:
            file_src = _FlagSource(comp, file_flags.values if file_flags else {}, config)
        live_flags = snap.kubelet_flags(live=True)
        live_src = _FlagSource(comp, live_flags.values, config) if live_flags else None
        error = str(snap.kubelet_config_error) if snap.kubelet_config_error else ""
        return file_src, live_src, error
    if comp == "kube-proxy":
        live_flags = snap.live_flags(comp)
        return None, (_FlagSource(comp, live_flags.values) if live_flags else None), ""
    manifest = snap.manifests.get(comp)
    error = str(snap.manifest_errors[comp]) if comp in snap.manifest_errors else ""
    file_src = _FlagSource(comp, manifest.flags.values, env=manifest.env) if manifest else None
    live_src = None
    if proc is not None:
        live_src = _FlagSource(comp, snap.live_flags(comp).values, env=proc.env)  # type: ignore[union-attr]
    return file_src, live_src, error


def _component_label(check: Check) -> str:
    return check.component if check.component != "node" else "node"


def _evaluate_flags(check: Check, snap: NodeSnapshot) -> Result:
    expected = "; ".join(describe_test(t) for t in check.audit.tests)
    if check.audit.combine == "any":
        expected = " or ".join(describe_test(t) for t in check.audit.tests)
    file_src, live_src, error = _sources(check, snap)
    if error:
        return Result(check, Status.ERROR, expected, None, None, error)
    if file_src is None and live_src is None:
        where = (
            "no running process"
            if check.component == "kube-proxy"
            else "no file and no running process"
        )
        return Result(
            check, Status.SKIP, expected, None, None, f"{check.component} not found ({where})"
        )
    file_out = (
        _combine([file_src.run(t) for t in check.audit.tests], check.audit.combine)
        if file_src
        else None
    )
    live_out = (
        _combine([live_src.run(t) for t in check.audit.tests], check.audit.combine)
        if live_src
        else None
    )
    outcomes = [o for o in (file_out, live_out) if o is not None]
    passed = all(o.passed for o in outcomes)
    disagreement = None
    comp = check.component
    if file_out and live_out and file_out.value != live_out.value:
        disagreement = (
            f"the file says {file_out.value}, the running {comp} still has {live_out.value}"
        )
    if passed:
        reason = (file_out or live_out).value  # type: ignore[union-attr]
        status = Status.PASS
    else:
        failed = file_out if file_out is not None and not file_out.passed else live_out
        where = "file" if failed is file_out else f"running {comp}"
        reason = f"{where}: {failed.value}"  # type: ignore[union-attr]
        status = _failing(check)
    return Result(
        check,
        status,
        expected,
        file_out.value if file_out else None,
        live_out.value if live_out else None,
        reason,
        disagreement,
    )


def _evaluate_file(check: Check, snap: NodeSnapshot) -> Result:
    audit = check.audit
    assert audit.target is not None
    if audit.type == "file-mode":
        expected = f"mode {audit.max_mode:03o} or stricter"
    else:
        expected = f"owner {audit.owner}"
    problem = snap.target_errors.get(audit.target)
    if problem is not None:
        return Result(check, Status.ERROR, expected, None, None, str(problem))
    files = snap.target_files(audit.target)
    if not files:
        status = {"skip": Status.SKIP, "pass": Status.PASS, "fail": _failing(check)}[audit.missing]
        return Result(check, status, expected, "no such file", None, f"no file for {audit.target}")
    bad: list[str] = []
    shown: list[str] = []
    from cis_tui.audit.node import stat_file

    for path in files:
        st = stat_file(path)
        if st is None:
            bad.append(f"{path}: cannot stat")
            continue
        if audit.type == "file-mode":
            assert audit.max_mode is not None
            text = f"{path} {st.mode:03o}"
            if st.mode & ~audit.max_mode:
                bad.append(text)
        else:
            text = f"{path} {st.owner}"
            if st.owner != audit.owner:
                bad.append(text)
        shown.append(text)
    value = "; ".join(shown) if len(shown) <= 3 else f"{len(shown)} files"
    if bad:
        reason = bad[0] if len(bad) == 1 else f"{len(bad)} of {len(files)} files: {bad[0]}, ..."
        return Result(check, _failing(check), expected, "; ".join(bad[:3]), None, reason)
    return Result(check, Status.PASS, expected, value, None, f"{len(files)} file(s) as expected")


def _evaluate_encryption(check: Check, snap: NodeSnapshot) -> Result:
    allowed = check.audit.allowed
    expected = f"first provider is one of {', '.join(allowed)}"
    live = snap.live_flags("kube-apiserver")
    manifest = snap.manifests.get("kube-apiserver")
    config = (live.get("--encryption-provider-config") if live else None) or (
        manifest.flags.get("--encryption-provider-config") if manifest else None
    )
    if not config:
        return Result(
            check,
            _failing(check),
            expected,
            "no --encryption-provider-config",
            None,
            "kube-apiserver has no --encryption-provider-config",
        )
    path = snap.layout.host_path(config)
    try:
        doc = load_yaml_document(
            read_text_file(path, "encryption config"), path, "encryption config"
        )
        first = doc["resources"][0]["providers"][0]
        provider = next(iter(first)) if isinstance(first, dict) else str(first)
    except InputError as exc:
        return Result(check, Status.ERROR, expected, None, None, str(exc))
    except (KeyError, IndexError, TypeError, StopIteration):
        return Result(
            check, Status.ERROR, expected, None, None, f"{path}: no resources[0].providers[0]"
        )
    status = Status.PASS if provider in allowed else _failing(check)
    return Result(
        check,
        status,
        expected,
        f"first provider {provider}",
        None,
        f"{path}: first provider {provider}",
    )


def evaluate_check(check: Check, snap: NodeSnapshot) -> Result:
    kind = check.audit.type
    if kind == "manual":
        return Result(
            check, Status.WARN, "a human review", None, None, "manual check: review it by hand"
        )
    if kind == "flags":
        return _evaluate_flags(check, snap)
    if kind in {"file-mode", "file-owner"}:
        return _evaluate_file(check, snap)
    if kind == "encryption-providers":
        return _evaluate_encryption(check, snap)
    raise ValueError(f"unknown audit type {kind}")


def evaluate(
    catalog: Catalog, snap: NodeSnapshot, ids: Iterable[str] | None = None
) -> list[Result]:
    """Evaluate the chosen checks (all by default) in catalog order."""
    if ids is None:
        checks: Iterable[Check] = catalog.checks
    else:
        wanted = {catalog.get(i).id for i in ids}
        checks = [c for c in catalog.checks if c.id in wanted]
    return [evaluate_check(c, snap) for c in checks]


def summarize(results: Iterable[Result]) -> dict[str, int]:
    counts = {s.value: 0 for s in Status}
    for r in results:
        counts[r.status.value] += 1
    return counts
