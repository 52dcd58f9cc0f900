"""Read kube-bench `--json` output and map its results onto the catalog.

Benchmark versions renumber checks (cis-1.23's 1.2.18 is cis-1.12's 1.2.15), so results are
matched by what they audit: the component, the file or the flags and values they test. Ids are
trusted only when the report is of the same benchmark version.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cis_tui.audit.evaluate import Result, Status, describe_test
from cis_tui.benchmarks.catalog import Catalog, Check
from cis_tui.errors import UserError
from cis_tui.userfiles import load_json

_COMPONENT_WORDS = (
    ("kube-apiserver", "kube-apiserver"),
    ("apiserver", "kube-apiserver"),
    ("kube-controller-manager", "kube-controller-manager"),
    ("controller-manager", "kube-controller-manager"),
    ("kube-scheduler", "kube-scheduler"),
    ("kube-proxy", "kube-proxy"),
    ("kubelet", "kubelet"),
    ("etcd", "etcd"),
)
# Audit text → file target, most specific first.
_TARGET_PATTERNS = (
    (r"data-dir", "etcd-data-dir"),
    (r"cni", "cni-files"),
    (r"pki/?'? -name '\*\.crt'|pki/ -name '\*\.crt'", "pki-certs"),
    (r"-name '\*\.key'", "pki-keys"),
    (r"find /etc/kubernetes/pki", "pki-tree"),
    (r"CAFILE|client-ca-file", "kubelet-client-ca"),
    (r"manifests/kube-apiserver", "apiserver-manifest"),
    (r"manifests/kube-controller-manager", "controller-manager-manifest"),
    (r"manifests/kube-scheduler", "scheduler-manifest"),
    (r"manifests/etcd", "etcd-manifest"),
    (r"admin\.conf", "admin-kubeconfigs"),
    (r"scheduler\.conf|scheduler/kubeconfig", "scheduler-kubeconfig"),
    (r"controller-manager\.conf|controller-manager/kubeconfig", "controller-manager-kubeconfig"),
    (r"proxy", "proxy-kubeconfig"),
    (r"kubelet\.service|10-kubeadm\.conf", "kubelet-service"),
    (r"kubelet/kubeconfig|kubelet\.conf|kubelet-kubeconfig", "kubelet-kubeconfig"),
    (r"config\.yaml|kubelet-config", "kubelet-config"),
)
_SUBJECT = re.compile(r"'(--[a-z0-9-]+|\{\.[A-Za-z0-9_.]+\}|ETCD_[A-Z_]+)'")
_VALUE_CLAUSE = re.compile(
    r"'(?P<subject>[^']+)' (?P<op>has|does not have|is equal to|is not equal to) '(?P<value>[^']*)'"
)
_DESC_FLAGS = re.compile(r"--[a-z0-9-]+")


@dataclass(frozen=True)
class _Signature:
    kind: str  # file-mode | file-owner | flags | other
    component: str | None
    target: str | None
    subjects: frozenset[str]
    values: frozenset[tuple[str, str]]  # (polarity, value) for has / does not have / eq


#: A full kube-bench node report is ~300 KB; anything past this is not one.
MAX_REPORT_BYTES = 16 << 20


def _load(path: Path) -> list[dict[str, Any]]:
    doc = load_json(path, "kube-bench report", MAX_REPORT_BYTES)
    controls = doc.get("Controls") if isinstance(doc, dict) else doc
    if not isinstance(controls, list) or not all(isinstance(c, dict) for c in controls):
        raise UserError("not a kube-bench --json report (no Controls list)", path)
    return controls


def _component_of(text: str) -> str | None:
    for word, component in _COMPONENT_WORDS:
        if word in text:
            return component
    return None


def _subject_name(subject: str) -> str:
    """kube-bench's `{.a.b}` config paths and env names, as our tests name them."""
    if subject.startswith("{."):
        return subject[2:-1]
    return subject


def _report_signature(result: dict[str, Any]) -> _Signature:
    audit = str(result.get("audit") or "")
    expected = str(result.get("expected_result") or "")
    desc = str(result.get("test_desc") or "")
    if "stat " in audit or "stat -c" in audit:
        kind = "file-owner" if ("%U:%G" in audit or "ownership" in desc) else "file-mode"
        target = next((t for pat, t in _TARGET_PATTERNS if re.search(pat, audit)), None)
        return _Signature(kind, None, target, frozenset(), frozenset())
    subjects = {_subject_name(s) for s in _SUBJECT.findall(expected)}
    if not subjects:
        subjects = set(_DESC_FLAGS.findall(desc))
    if "encryption-provider-config" in audit and "'provider'" in expected:
        return _Signature("encryption-providers", "kube-apiserver", None, frozenset(), frozenset())
    values = set()
    for m in _VALUE_CLAUSE.finditer(expected):
        values.add(_normal_value("not" if "not" in m.group("op") else "is", m.group("value")))
    return _Signature(
        "flags", _component_of(audit or desc), None, frozenset(subjects), frozenset(values)
    )


def _normal_value(polarity: str, value: str) -> tuple[str, str]:
    """`is not false` and `is true` say the same of a boolean."""
    if value in {"true", "false"} and polarity == "not":
        return "is", "false" if value == "true" else "true"
    return polarity, value


def _catalog_signature(check: Check) -> _Signature:
    audit = check.audit
    if audit.type in {"file-mode", "file-owner"}:
        return _Signature(audit.type, None, audit.target, frozenset(), frozenset())
    if audit.type == "encryption-providers":
        return _Signature(audit.type, check.component, None, frozenset(), frozenset())
    subjects: set[str] = set()
    values: set[tuple[str, str]] = set()
    for t in audit.tests:
        subjects.add(t.flag)
        if t.config:
            subjects.add(t.config)
        if t.env:
            subjects.add(t.env)
        if t.key and t.config:
            subjects.add(t.config)
        if isinstance(t.value, str) and t.op in {"has", "lacks", "eq", "noteq"}:
            values.add(_normal_value("not" if t.op in {"lacks", "noteq"} else "is", t.value))
    return _Signature("flags", check.component, None, frozenset(subjects), frozenset(values))


def _matches(report: _Signature, ours: _Signature) -> bool:
    if report.kind != ours.kind:
        return False
    if report.kind == "encryption-providers":
        return True
    if report.kind != "flags":
        return report.target is not None and report.target == ours.target
    if report.component != ours.component or not report.subjects:
        return False
    if not report.subjects <= ours.subjects:
        return False
    # Values must agree in polarity: "X has V" is not "X does not have V".
    return not report.values or report.values <= ours.values


_STATUS = {"PASS": Status.PASS, "FAIL": Status.FAIL, "WARN": Status.WARN, "INFO": Status.SKIP}


def _to_result(check: Check, result: dict[str, Any], version: str) -> Result:
    status = _STATUS.get(str(result.get("status", "")).upper(), Status.ERROR)
    if status is Status.FAIL and not check.scored:
        status = Status.WARN
    # A check that was manual in the report's benchmark but is scored here: its WARN is a fail.
    was_scored = bool(result.get("scored", True))
    if status is Status.WARN and check.scored and not was_scored and result.get("type") != "manual":
        status = Status.FAIL
    actual = str(result.get("actual_value") or result.get("reason") or "").strip()
    actual = actual.splitlines()[0][:200] if actual else ""
    expected = (
        "; ".join(describe_test(t) for t in check.audit.tests)
        if check.audit.type == "flags"
        else str(result.get("expected_result") or "")
    )
    reason = f"kube-bench {version} {result.get('test_number')}: {result.get('status')}"
    return Result(check, status, expected, actual or None, None, reason)


def _disambiguate(candidates: list[str], result: dict[str, Any], catalog: Catalog) -> list[str]:
    """Several checks test the same flag: keep those whose tested values the report names."""
    desc = str(result.get("test_desc") or "")
    named = [
        cid
        for cid in candidates
        if any(
            isinstance(t.value, str) and t.value and t.value in desc
            for t in catalog.by_id[cid].audit.tests
        )
    ]
    return named or candidates


def import_report(path: Path, catalog: Catalog) -> list[Result]:
    """Results for every catalog check: mapped from the report, else SKIP."""
    controls = _load(path)
    mapped: dict[str, Result] = {}
    ours = {c.id: _catalog_signature(c) for c in catalog.checks}
    for control in controls:
        version = str(control.get("version") or "")
        for group in control.get("tests") or []:
            for result in group.get("results") or []:
                if not isinstance(result, dict):
                    continue
                number = str(result.get("test_number", ""))
                sig = _report_signature(result)
                check_id = None
                if version == catalog.benchmark and number in catalog.by_id:
                    check_id = number
                else:
                    candidates = [cid for cid, s in ours.items() if _matches(sig, s)]
                    if len(candidates) > 1:
                        candidates = _disambiguate(candidates, result, catalog)
                    check_id = candidates[0] if len(candidates) == 1 else None
                if check_id and check_id not in mapped:
                    mapped[check_id] = _to_result(catalog.by_id[check_id], result, version)
    return [
        mapped.get(c.id) or Result(c, Status.SKIP, "", None, None, "not in the kube-bench report")
        for c in catalog.checks
    ]
