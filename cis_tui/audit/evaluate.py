"""Evaluate catalog checks against a node snapshot: a pure function, no I/O beyond the snapshot.

A flag check is judged on two sources: the file (what will run) and the live process (what
runs now). Either failing fails the check, and a disagreement between them is reported.
"""

from __future__ import annotations

import dataclasses
import enum
import ipaddress
from collections.abc import Iterable
from dataclasses import dataclass

from cis_tui.audit.effective import (
    CONFIG_FILE,
    CONFIG_FILE_DEFAULT,
    FLAG_DEFAULT,
    EtcdConfigFile,
    KubeletConfigView,
    etcd_env_name,
    etcd_without_peers,
    kubelet_default,
)
from cis_tui.audit.flags import (
    ENABLE_ADMISSION,
    LEGACY_ADMISSION,
    legacy_admission_test,
    parse_bool,
    parse_duration,
    spec_for,
    split_list,
    split_map,
)
from cis_tui.audit.node import InputError, NodeSnapshot, load_yaml_document, read_text_file
from cis_tui.audit.versions import Version, default_at, flag_at, missing, not_applicable
from cis_tui.benchmarks.catalog import Catalog, Check, FlagTest
from cis_tui.waivers import WaiverMark


class Status(str, enum.Enum):
    PASS = "PASS"
    FAIL = "FAIL"
    WARN = "WARN"
    SKIP = "SKIP"
    ERROR = "ERROR"
    #: An accepted exception from the config's `[[waivers]]` (cis_tui.audit.waive).
    WAIVED = "WAIVED"

    def __str__(self) -> str:
        return self.value


#: Order in which results are listed: what needs attention first.
STATUS_ORDER = {
    Status.FAIL: 0,
    Status.ERROR: 1,
    Status.WARN: 2,
    Status.WAIVED: 3,
    Status.PASS: 4,
    Status.SKIP: 5,
}


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
    #: The waiver that matched the check (WAIVED, or expired: the real status with a note).
    waiver: WaiverMark | None = None

    @property
    def id(self) -> str:
        return self.check.id


@dataclass(frozen=True)
class _Outcome:
    passed: bool
    value: str  # what was found, for display ("--profiling=false", "absent", "mode 644 ...")


def _failing(check: Check) -> Status:
    return Status.FAIL if check.scored else Status.WARN


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


def is_loopback(value: str) -> bool:
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
        return is_loopback(found)
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


#: Absent flags our verdict judges by the component's default where kube-bench passes an absent
#: flag; the evidence says so (k8s-versions.md: the kubelet's rotateCertificates defaults to
#: false; --bind-address: cis_tui.audit.listeners).
_KUBE_BENCH_PASSES_ABSENT = {("kubelet", "--rotate-certificates")}
#: --admission-control's default before v1.10 (kube-apiserver reference: "default [AlwaysAdmit]").
LEGACY_ADMISSION_DEFAULT = "AlwaysAdmit"


class _FlagSource:
    """One place flags are read from: a manifest or a live process, with what the component
    reads besides (the kubelet's config file and drop-ins, etcd's config file, environment)."""

    def __init__(
        self,
        component: str,
        flags: dict[str, str],
        config: KubeletConfigView | None = None,
        env: dict[str, str] | None = None,
        etcd_file: EtcdConfigFile | None = None,
        version: Version | None = None,
    ) -> None:
        self.component = component
        self.flags = flags
        self.config = config
        self.env = env or {}
        self.etcd_file = etcd_file
        self.version = version

    def lookup(self, test: FlagTest) -> tuple[str | None, str, str]:
        """The value the component uses for the test's flag, how it was spelled, and the
        source that decided it when that is not the command line ("" when it is)."""
        if self.etcd_file is not None:  # etcd then ignores its flags and environment
            value, key = self.etcd_file.lookup(test.flag)
            read = self.etcd_file
            return value, key, f"{read.named_by} {read.named}; flags ignored"
        value = self.flags.get(test.flag)
        label, origin = test.flag, ""
        if value is not None and test.key:
            # A map flag (--feature-gates): only the entry counts; the config key names it.
            value = split_map(value).get(test.key)
            label = f"{label} {test.key}"
        if value is None and test.config:
            label = test.config
            if self.config is not None:
                value, origin = self.config.lookup(test.config)
                origin = "" if origin == CONFIG_FILE else origin
        if value is None and test.env:
            value, label = self.env.get(test.env), test.env
        return value, label, origin

    def setting(self, flag: str) -> str | None:
        """The value etcd uses for a flag: its config file's, else the flag's or ETCD_*'s."""
        if self.etcd_file is not None:
            return self.etcd_file.lookup(flag)[0]
        value = self.flags.get(flag)
        return value if value is not None else self.env.get(etcd_env_name(flag))

    def _legacy_admission(self, test: FlagTest) -> tuple[FlagTest, str]:
        """An admission plugin test as the legacy --admission-control list answers it: when
        given, or on a version that has no other list (then its default, [AlwaysAdmit])."""
        if self.component != "kube-apiserver":
            return test, ""
        only_legacy = missing("flag", self.component, ENABLE_ADMISSION, self.version)
        if LEGACY_ADMISSION not in self.flags and only_legacy is None:
            return test, ""
        swap = legacy_admission_test(test.flag, test.op)
        if swap is None:
            return test, ""
        legacy = dataclasses.replace(test, flag=swap[0], op=swap[1])
        if LEGACY_ADMISSION not in self.flags:
            return legacy, f"its default: {only_legacy}"
        return legacy, "the legacy list: a plugin it leaves out is off"

    def _legacy_flag(self, test: FlagTest) -> tuple[FlagTest, str]:
        """The test on the flag's older name, on a version that has only that."""
        older = flag_at(self.component, test.flag, self.version)
        if older == test.flag:
            return test, ""
        return dataclasses.replace(test, flag=older), f"{self.component} {self.version} names it so"

    def run(self, test: FlagTest) -> _Outcome:
        test, origin = self._legacy_admission(test)
        if not origin:
            test, origin = self._legacy_flag(test)
        value, label, decided = self.lookup(test)
        if value is None and test.flag == LEGACY_ADMISSION:
            value = LEGACY_ADMISSION_DEFAULT  # a version with no --enable-admission-plugins
        origin = origin or decided
        kube_bench = (self.component, test.flag) in _KUBE_BENCH_PASSES_ABSENT
        if value is None and test.key and not test.config:
            # A feature gate left out takes the version's default (alpha gates were off).
            default = default_at(self.component, test.key, self.version)
            if default is not None:
                since = "" if self.version is None else f" in {self.version}"
                text = f"{test.flag} {test.key} absent (default {default}{since})"
                return _Outcome(_apply_op(test, default), text)
        if value is None:
            text = f"{label.split(' ')[0]} absent"
            spec = spec_for(self.component, test.flag)
            default = spec.default.strip('"') if spec is not None else ""
            if kube_bench and default:
                origin = f"the default {default} applies; kube-bench passes an absent flag"
            elif default and not origin and label == test.flag and default not in {"[]", "{}"}:
                origin = f"default {default}"
            return _Outcome(test.absent == "pass", text + (f" ({origin})" if origin else ""))
        if kube_bench and origin in {CONFIG_FILE_DEFAULT, FLAG_DEFAULT}:
            origin += "; kube-bench passes an absent setting"
        where = f" ({origin})" if origin else ""
        if test.op == "unset":
            return _Outcome(False, f"{label}={value}{where}")
        spec = spec_for(self.component, test.flag)
        kind = spec.type if spec else None
        in_file = label == test.config and not origin  # the --config file's own value
        if kind == "duration" and in_file and parse_duration(value) == 0:
            # The kubelet re-defaults a zero duration read from its config file (kubeadm's 0s
            # idle timeout means 4h); a flag or a drop-in can really set zero.
            default = kubelet_default(label, True, self.version)
            if default is None:
                return _Outcome(test.absent == "pass", f"{label}={value} (zero: the default)")
            text = f"{label}={value} (zero in the config file: the default {default})"
            return _Outcome(_apply_op(test, default, kind), text)
        return _Outcome(_apply_op(test, value, kind), f"{label}={value}{where}")


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
        file_flags = snap.kubelet_flags(live=False)
        file_src = None
        if snap.kubelet_config is not None or file_flags is not None:
            file_values = file_flags.values if file_flags else {}
            file_src = _FlagSource(comp, file_values, snap.kubelet_view(live=False))
        live_flags = snap.kubelet_flags(live=True)
        live_src = None
        if live_flags is not None:
            live_src = _FlagSource(comp, live_flags.values, snap.kubelet_view(live=True))
        error = str(snap.kubelet_config_error) if snap.kubelet_config_error else ""
        return file_src, live_src, error
    if comp == "kube-proxy":
        live_flags = snap.live_flags(comp)
        return None, (_FlagSource(comp, live_flags.values) if live_flags else None), ""
    manifest = snap.manifests.get(comp)
    error = str(snap.manifest_errors[comp]) if comp in snap.manifest_errors else ""
    etcd_files: dict[str, EtcdConfigFile] = {}
    version = snap.versions.of(comp)
    for which, got in snap.etcd_files.items() if comp == "etcd" else ():
        if isinstance(got, InputError):
            error = error or str(got)  # etcd does not start without its config file
        else:
            etcd_files[which] = got
    file_src = None
    if manifest is not None:
        file_src = _FlagSource(
            comp,
            manifest.flags.values,
            env=manifest.env,
            etcd_file=etcd_files.get("file"),
            version=version,
        )
    live_src = None
    if proc is not None:
        live_src = _FlagSource(
            comp,
            snap.live_flags(comp).values,  # type: ignore[union-attr]
            env=proc.env,
            etcd_file=etcd_files.get("live"),
            version=version,
        )
    return file_src, live_src, error


def _etcd_ca_shared(check: Check, snap: NodeSnapshot, sources: list[_FlagSource]) -> str:
    """Why the CA etcd trusts for clients is not one dedicated to etcd ("" when it may be):
    it is the very file the API server trusts for every client certificate of the cluster."""
    if check.component != "etcd" or [t.flag for t in check.audit.tests] != ["--trusted-ca-file"]:
        return ""
    apiserver = snap.manifests.get("kube-apiserver")
    cluster_ca = apiserver.flags.get("--client-ca-file") if apiserver else None
    for src in sources:
        if cluster_ca and src.setting("--trusted-ca-file") == cluster_ca:
            return (
                f"etcd trusts {cluster_ca}, the API server's --client-ca-file: any client "
                "certificate of the cluster CA can reach etcd"
            )
    return ""


def _etcd_without_peers(check: Check, sources: list[_FlagSource]) -> str | None:
    """Why a peer TLS check does not apply to this etcd (a single member with its peer
    listener on loopback only, in every source), or None when it does."""
    if check.component != "etcd" or not all(
        t.flag.startswith("--peer-") for t in check.audit.tests
    ):
        return None
    reasons = [
        etcd_without_peers(src.setting, src.etcd_file.named if src.etcd_file else None)
        for src in sources
    ]
    return reasons[0] if reasons and all(reasons) else None


#: Flags the API server reads only when it writes its audit log to a file.
_AUDIT_FILE_ROTATION = {"--audit-log-maxage", "--audit-log-maxbackup", "--audit-log-maxsize"}


def _audit_log_to_stdout(check: Check, sources: list[_FlagSource]) -> str | None:
    """Why an audit log rotation check does not apply (`--audit-log-path=-` in every source:
    the API server writes to stdout and ignores the rotation flags), or None."""
    if check.component != "kube-apiserver" or not all(
        t.flag in _AUDIT_FILE_ROTATION for t in check.audit.tests
    ):
        return None
    if not sources or any(src.flags.get("--audit-log-path") != "-" for src in sources):
        return None
    return (
        "not applicable: --audit-log-path=- writes the audit log to stdout, where the API "
        "server ignores --audit-log-maxage, --audit-log-maxbackup and --audit-log-maxsize; "
        "the container runtime's log rotation decides how long it is kept (review it by hand)"
    )


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
    to_stdout = _audit_log_to_stdout(check, [s for s in (file_src, live_src) if s is not None])
    if to_stdout is not None:
        return Result(check, Status.SKIP, expected, None, None, to_stdout)
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
    sources = [s for s in (file_src, live_src) if s is not None]
    shared_ca = _etcd_ca_shared(check, snap, sources) if passed else ""
    if passed and not shared_ca:
        reason = (file_out or live_out).value  # type: ignore[union-attr]
        status = Status.PASS
    elif shared_ca:
        reason, status = shared_ca, _failing(check)
    else:
        failed = file_out if file_out is not None and not file_out.passed else live_out
        where = "file" if failed is file_out else f"running {comp}"
        reason = f"{where}: {failed.value}"  # type: ignore[union-attr]
        status = _failing(check)
        no_peers = _etcd_without_peers(check, sources)
        if no_peers is not None:
            status, reason = Status.SKIP, no_peers
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
    flag = flag_at(
        "kube-apiserver", "--encryption-provider-config", snap.versions.of(check.component)
    )
    config = (live.get(flag) if live else None) or (manifest.flags.get(flag) if manifest else None)
    if not config:
        return Result(
            check, _failing(check), expected, f"no {flag}", None, f"kube-apiserver has no {flag}"
        )
    path = snap.layout.confined(snap.layout.host_path(config))
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
    absent_in_version = not_applicable(check, snap.versions)  # its flag is not in the version
    if absent_in_version is not None:
        expected = "; ".join(describe_test(t) for t in check.audit.tests) or "not applicable"
        return Result(check, Status.SKIP, expected, None, None, absent_in_version)
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
    if kind == "anonymous-auth":  # 1.2.1: the flag, or an AuthenticationConfiguration allow-list
        from cis_tui.audit.anonymous import evaluate_anonymous_auth

        return evaluate_anonymous_auth(check, snap)
    if kind == "listeners":  # 1.3.7, 1.4.2: every port the version serves
        from cis_tui.audit.listeners import evaluate_listeners

        return evaluate_listeners(check, snap)
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
