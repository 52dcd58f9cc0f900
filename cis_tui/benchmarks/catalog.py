"""The check catalog: one YAML data file per benchmark version, loaded into frozen values.

cis-1.12 is written out in full; the other versions are overlays on it (or on each other):
`base`, then `remove` (ids), `patch` (check id -> field path -> value; a list field takes
`{add: [...]}` / `{remove: [...]}`) and `add` (whole checks, inserted in id order).
"""

from __future__ import annotations

import copy
import functools
import re
from dataclasses import dataclass
from importlib import resources
from typing import Any

from cis_tui.audit.yamlcache import YamlSyntaxError, load_all_cached
from cis_tui.errors import UserError

AUDIT_TYPES = {
    "file-mode",
    "file-owner",
    "flags",
    "manual",
    "encryption-providers",
    "anonymous-auth",
    "listeners",
}
TEST_OPS = {"set", "unset", "eq", "noteq", "gte", "has", "lacks", "subset", "loopback"}
COMPONENTS = {
    "kube-apiserver",
    "kube-controller-manager",
    "kube-scheduler",
    "etcd",
    "kubelet",
    "kube-proxy",
    "node",
}
TARGETS = {
    "apiserver-manifest",
    "controller-manager-manifest",
    "scheduler-manifest",
    "etcd-manifest",
    "admin-kubeconfigs",
    "scheduler-kubeconfig",
    "controller-manager-kubeconfig",
    "kubelet-kubeconfig",
    "proxy-kubeconfig",
    "kubelet-service",
    "kubelet-config",
    "kubelet-client-ca",
    "etcd-data-dir",
    "cni-files",
    "pki-tree",
    "pki-certs",
    "pki-keys",
}
REMEDIATION_KINDS = {"chmod", "chown", "flag", "kubelet-config", "compound", "manual"}
EDIT_OPS = {
    "set-flag",
    "remove-flag",
    "add-list-item",
    "remove-list-item",
    "set-map-item",
    "set-config",
    "chmod",
    "chown",
    "recipe",
}
PARAM_TYPES = {"int", "string", "choice", "duration", "list"}


@dataclass(frozen=True)
class FlagTest:
    """One test on a flag (or kubelet config key / etcd env var)."""

    flag: str
    op: str
    value: str | tuple[str, ...] | None = None
    absent: str = "fail"  # verdict when absent everywhere: "pass" or "fail"
    key: str | None = None  # entry of a map flag (--feature-gates)
    config: str | None = None  # kubelet config key (dotted)
    env: str | None = None  # etcd environment variable


@dataclass(frozen=True)
class Audit:
    type: str
    target: str | None = None
    max_mode: int | None = None
    owner: str | None = None
    missing: str = "skip"
    combine: str = "all"
    tests: tuple[FlagTest, ...] = ()
    allowed: tuple[str, ...] = ()


@dataclass(frozen=True)
class Param:
    name: str
    type: str
    default: Any
    help: str = ""
    min: float | None = None
    choices: tuple[str, ...] = ()


@dataclass(frozen=True)
class Edit:
    """One mechanical edit; string values may reference params as {name}."""

    op: str
    flag: str | None = None
    value: Any = None
    item: str | None = None
    key: str | None = None
    target: str | None = None
    mode: str | None = None
    owner: str | None = None
    name: str | None = None


@dataclass(frozen=True)
class Remediation:
    kind: str
    summary: str
    edits: tuple[Edit, ...] = ()
    params: tuple[Param, ...] = ()
    risks: tuple[str, ...] = ()

    @property
    def available(self) -> bool:
        return bool(self.edits)


@dataclass(frozen=True)
class Check:
    id: str
    title: str
    section: str
    scored: bool
    component: str
    rationale: str
    audit: Audit
    remediation: Remediation


@dataclass(frozen=True)
class Catalog:
    benchmark: str
    title: str
    checks: tuple[Check, ...]

    @functools.cached_property
    def by_id(self) -> dict[str, Check]:
        return {c.id: c for c in self.checks}

    def get(self, check_id: str) -> Check:
        try:
            return self.by_id[check_id]
        except KeyError:
            raise UserError(f"unknown check id {check_id!r} in {self.benchmark}") from None


class CatalogError(ValueError):
    """The catalog data file is malformed (a bug in the package, not a user error)."""


def _keys(data: dict[str, Any], allowed: set[str], where: str) -> None:
    extra = set(data) - allowed
    if extra:
        raise CatalogError(f"{where}: unknown keys {sorted(extra)}")


def _one_of(value: Any, allowed: set[str], where: str) -> str:
    if value not in allowed:
        raise CatalogError(f"{where}: {value!r} is not one of {sorted(allowed)}")
    return str(value)


def _test(data: dict[str, Any], where: str) -> FlagTest:
    _keys(data, {"flag", "op", "value", "absent", "key", "config", "env"}, where)
    op = _one_of(data.get("op"), TEST_OPS, where)
    value = data.get("value")
    if isinstance(value, list):
        value = tuple(str(v) for v in value)
    elif value is not None:
        value = str(value)
    absent = data.get("absent", "pass" if op == "unset" else "fail")
    return FlagTest(
        flag=str(data["flag"]),
        op=op,
        value=value,
        absent=_one_of(absent, {"pass", "fail"}, where),
        key=data.get("key"),
        config=data.get("config"),
        env=data.get("env"),
    )


def _audit(data: dict[str, Any], where: str) -> Audit:
    _keys(
        data,
        {"type", "target", "max_mode", "owner", "missing", "combine", "tests", "allowed"},
        where,
    )
    typ = _one_of(data.get("type"), AUDIT_TYPES, where)
    target = data.get("target")
    if typ in {"file-mode", "file-owner"}:
        _one_of(target, TARGETS, where)
    max_mode = int(str(data["max_mode"]), 8) if "max_mode" in data else None
    tests = tuple(_test(t, f"{where} test {i}") for i, t in enumerate(data.get("tests") or []))
    if typ == "flags" and not tests:
        raise CatalogError(f"{where}: a flags audit needs tests")
    return Audit(
        type=typ,
        target=target,
        max_mode=max_mode,
        owner=data.get("owner"),
        missing=_one_of(data.get("missing", "skip"), {"skip", "pass", "fail"}, where),
        combine=_one_of(data.get("combine", "all"), {"all", "any"}, where),
        tests=tests,
        allowed=tuple(str(a) for a in data.get("allowed") or ()),
    )


def _remediation(data: dict[str, Any], where: str) -> Remediation:
    _keys(data, {"kind", "summary", "edits", "params", "risks"}, where)
    edits = []
    for i, e in enumerate(data.get("edits") or []):
        ew = f"{where} edit {i}"
        _keys(e, {"op", "flag", "value", "item", "key", "target", "mode", "owner", "name"}, ew)
        _one_of(e.get("op"), EDIT_OPS, ew)
        if e.get("target") is not None:
            _one_of(e["target"], TARGETS, ew)
        edits.append(Edit(**{k: (str(v) if k == "mode" else v) for k, v in e.items()}))
    params = []
    for i, p in enumerate(data.get("params") or []):
        pw = f"{where} param {i}"
        _keys(p, {"name", "type", "default", "help", "min", "choices"}, pw)
        params.append(
            Param(
                name=str(p["name"]),
                type=_one_of(p.get("type"), PARAM_TYPES, pw),
                default=p.get("default"),
                help=str(p.get("help", "")),
                min=p.get("min"),
                choices=tuple(str(c) for c in p.get("choices") or ()),
            )
        )
    return Remediation(
        kind=_one_of(data.get("kind"), REMEDIATION_KINDS, where),
        summary=str(data.get("summary", "")).strip(),
        edits=tuple(edits),
        params=tuple(params),
        risks=tuple(str(r).strip() for r in data.get("risks") or ()),
    )


def _check(data: dict[str, Any]) -> Check:
    where = f"check {data.get('id')}"
    _keys(
        data,
        {"id", "title", "section", "scored", "component", "rationale", "audit", "remediation"},
        where,
    )
    return Check(
        id=str(data["id"]),
        title=str(data["title"]).strip(),
        section=str(data["section"]),
        scored=bool(data["scored"]),
        component=_one_of(data.get("component"), COMPONENTS, where),
        rationale=str(data.get("rationale", "")).strip(),
        audit=_audit(data["audit"], f"{where} audit"),
        remediation=_remediation(data["remediation"], f"{where} remediation"),
    )


def _plain(node: Any) -> Any:
    """ruamel containers to plain dicts/lists (safe loader already gives plain types)."""
    if isinstance(node, dict):
        return {str(k): _plain(v) for k, v in node.items()}
    if isinstance(node, list):
        return [_plain(v) for v in node]
    return node


def _read_data(benchmark: str, raw: bytes) -> dict[str, Any]:
    """The parsed data file (through the checksum-keyed cache: YAML parsing is slow)."""
    try:
        docs = load_all_cached(raw.decode("utf-8"))
    except YamlSyntaxError as exc:  # pragma: no cover - a packaging bug
        raise CatalogError(f"{benchmark}.yaml: {exc}") from exc
    return dict(_plain(docs[0]))


_PATH_PART = re.compile(r"^([A-Za-z_]+)(?:\[(\d+)\])?$")


def _id_key(check_id: str) -> tuple[int, ...]:
    return tuple(int(p) for p in check_id.split(".") if p.isdigit())


def _patch(check: dict[str, Any], path: str, value: Any, where: str) -> None:
    """Set the field at `path` (`audit.tests[0].value`) of a raw check."""
    parts = path.split(".")
    node: Any = check
    for i, part in enumerate(parts):
        m = _PATH_PART.match(part)
        if m is None:
            raise CatalogError(f"{where}: bad field path {path!r}")
        key, index = m[1], m[2]
        last = i == len(parts) - 1
        if not isinstance(node, dict) or (key not in node and (index is not None or not last)):
            raise CatalogError(f"{where}: no field {path!r} in the base check")
        if index is None and last:
            current = node.get(key)
            if isinstance(current, list) and isinstance(value, dict) and value:
                _keys(value, {"add", "remove"}, f"{where} {path}")
                items = [v for v in current if v not in (value.get("remove") or [])]
                node[key] = items + [v for v in value.get("add") or [] if v not in items]
            else:
                node[key] = copy.deepcopy(value)
            return
        node = node[key]
        if index is not None:
            if not isinstance(node, list) or int(index) >= len(node):
                raise CatalogError(f"{where}: no item {index} in {path!r}")
            if last:
                node[int(index)] = copy.deepcopy(value)
                return
            node = node[int(index)]


def _overlay(base: dict[str, Any], overlay: dict[str, Any], name: str) -> dict[str, Any]:
    """A base catalog's raw data changed by an overlay's `remove`, `patch` and `add`."""
    _keys(overlay, {"benchmark", "title", "base", "source", "remove", "patch", "add"}, name)
    checks = [copy.deepcopy(c) for c in base["checks"]]
    ids = [str(c["id"]) for c in checks]
    for check_id in overlay.get("remove") or []:
        if str(check_id) not in ids:
            raise CatalogError(f"{name}: remove: no check {check_id} in {base['benchmark']}")
    checks = [
        c for c in checks if str(c["id"]) not in {str(i) for i in overlay.get("remove") or []}
    ]
    by_id = {str(c["id"]): c for c in checks}
    for check_id, fields in (overlay.get("patch") or {}).items():
        if str(check_id) not in by_id:
            raise CatalogError(f"{name}: patch: no check {check_id} in {base['benchmark']}")
        for path, value in fields.items():
            _patch(by_id[str(check_id)], str(path), value, f"{name} patch {check_id}")
    for added in overlay.get("add") or []:
        check_id = str(added.get("id"))
        if check_id in by_id:
            raise CatalogError(f"{name}: add: check {check_id} is already in the base")
        at = next(
            (i for i, c in enumerate(checks) if _id_key(str(c["id"])) > _id_key(check_id)),
            len(checks),
        )
        checks.insert(at, copy.deepcopy(added))
        by_id[check_id] = added
    return {"benchmark": overlay["benchmark"], "title": overlay["title"], "checks": checks}


@functools.cache
def _raw_catalog(benchmark: str, chain: tuple[str, ...] = ()) -> dict[str, Any]:
    """A benchmark's raw data with its overlays applied (cached)."""
    resource = resources.files("cis_tui.benchmarks") / f"{benchmark}.yaml"
    if not benchmark.startswith("cis-") or not resource.is_file():
        from cis_tui.benchmarks.selection import shipped_benchmarks

        available = ", ".join(shipped_benchmarks())
        raise UserError(f"unknown benchmark {benchmark!r}; available: {available}")
    data = _read_data(benchmark, resource.read_bytes())
    if data.get("benchmark") != benchmark:
        raise CatalogError(f"{benchmark}.yaml: says it is {data.get('benchmark')!r}")
    if "base" not in data:
        return data
    base = str(data["base"])
    if base in (*chain, benchmark):
        raise CatalogError(f"{benchmark}.yaml: overlays loop through {base}")
    return _overlay(_raw_catalog(base, (*chain, benchmark)), data, f"{benchmark}.yaml")


@functools.cache
def load_catalog(benchmark: str | None = None) -> Catalog:
    """Load a benchmark's catalog from the package data (cached). None: the default,
    cis-1.12, for callers that do not choose from the node (see benchmarks.selection)."""
    if benchmark is None:
        from cis_tui.benchmarks.selection import DEFAULT_BENCHMARK

        benchmark = DEFAULT_BENCHMARK
    data = _raw_catalog(benchmark)
    checks = tuple(_check(c) for c in data["checks"])
    ids = [c.id for c in checks]
    if len(set(ids)) != len(ids):
        raise CatalogError(f"{benchmark}.yaml: duplicate check ids")
    return Catalog(benchmark=str(data["benchmark"]), title=str(data["title"]), checks=checks)
