"""Saved plans: node-independent (check ids and parameters), versioned and checksummed.

A plan reviewed once can be rolled across several nodes: each node re-plans the same checks
with the same parameters against its own files. A plan saved with a companion bundle
(`--companions DIR`, cis_tui.remediate.bundle) also lists the companion files every node
installs byte for byte, with their sha256: `cis-tui/v2`, which an older cis-tui refuses by
version instead of generating its own encryption key on each node.
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ruamel.yaml.error import YAMLError

from cis_tui import safeyaml
from cis_tui.benchmarks.catalog import Catalog
from cis_tui.errors import UserError
from cis_tui.remediate.params import ParamValues, parse_param_options

API_VERSION = "cis-tui/v1"
#: A plan with companion files (an older cis-tui must refuse it, not make its own key).
API_VERSION_COMPANIONS = "cis-tui/v2"
KIND = "Plan"
_COMPANION_KEYS = {"file", "check", "sha256", "secret"}


@dataclass(frozen=True)
class CompanionRef:
    """A companion file of a saved plan: its name in the bundle directory and its sha256."""

    file: str
    check: str
    sha256: str
    secret: bool

    def to_dict(self) -> dict[str, object]:
        return {
            "file": self.file,
            "check": self.check,
            "sha256": self.sha256,
            "secret": self.secret,
        }


@dataclass(frozen=True)
class SavedPlan:
    benchmark: str
    checks: tuple[str, ...]
    params: ParamValues
    companions: tuple[CompanionRef, ...] = ()

    @property
    def secrets(self) -> tuple[CompanionRef, ...]:
        return tuple(c for c in self.companions if c.secret)


def _checksum(
    benchmark: str,
    checks: list[str],
    params: ParamValues,
    companions: list[dict[str, object]] | None = None,
) -> str:
    doc: dict[str, object] = {"benchmark": benchmark, "checks": checks, "params": params}
    if companions:  # absent from v1 plans: their checksums stay what they were
        doc["companions"] = companions
    canonical = json.dumps(doc, sort_keys=True, separators=(",", ":"))
    return "sha256:" + hashlib.sha256(canonical.encode()).hexdigest()


def dump_plan(plan: SavedPlan) -> str:
    checks = list(plan.checks)
    params = {k: dict(v) for k, v in plan.params.items()}
    companions = [c.to_dict() for c in plan.companions]
    lines = [
        "# cis-tui plan: the checks to fix and their parameters, not diffs. Apply it on each",
        "# node with `cis-tui apply --plan FILE`; every node re-plans against its own files.",
        "# Editing this file by hand invalidates its checksum.",
        f"apiVersion: {API_VERSION_COMPANIONS if companions else API_VERSION}",
        f"kind: {KIND}",
        f"benchmark: {plan.benchmark}",
        "checks:",
        *[f'- "{c}"' for c in checks],
    ]
    if params:
        lines.append("params:")
        for check_id in sorted(params):
            lines.append(f'  "{check_id}":')
            for name, value in sorted(params[check_id].items()):
                lines.append(f"    {name}: {json.dumps(value)}")
    else:
        lines.append("params: {}")
    if companions:
        lines[3:3] = [
            "# Its companion files are installed byte for byte on every node: apply it with",
            "# `--companions DIR` (the directory `plan --save --companions DIR` wrote).",
        ]
        lines.append("companions:")
        for ref in plan.companions:
            lines += [
                f"- file: {json.dumps(ref.file)}",
                f"  check: {json.dumps(ref.check)}",
                f"  sha256: {json.dumps(ref.sha256)}",
                f"  secret: {json.dumps(ref.secret)}",
            ]
    lines.append(f"checksum: {_checksum(plan.benchmark, checks, params, companions)}")
    return "\n".join(lines) + "\n"


def save_plan(plan: SavedPlan, path: Path) -> None:
    """Write atomically (a plan is small; a half-written plan must never exist)."""
    text = dump_plan(plan)
    tmp = path.with_name(f".{path.name}.tmp{os.getpid()}")
    try:
        with open(tmp, "x", encoding="utf-8") as fh:
            fh.write(text)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except OSError as exc:
        tmp.unlink(missing_ok=True)
        raise UserError(f"cannot write plan: {exc.strerror}", path) from None


def _read_text(path: Path) -> str:
    """The plan file's text, never more than safeyaml.MAX_BYTES read."""
    try:
        with path.open("rb") as fh:
            raw = fh.read(safeyaml.MAX_BYTES + 1)
    except FileNotFoundError:
        raise UserError("plan file not found", path) from None
    except OSError as exc:
        raise UserError(f"cannot read plan file: {exc.strerror or exc}", path) from None
    if len(raw) > safeyaml.MAX_BYTES:
        raise UserError(f"plan file is larger than {safeyaml.MAX_BYTES} bytes", path)
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        raise UserError("plan file is not UTF-8 text", path) from None


def _is_str_map(value: object) -> bool:
    return isinstance(value, dict) and all(
        isinstance(k, str) and isinstance(v, str) for k, v in value.items()
    )


def load_plan(path: Path, catalog: Catalog) -> SavedPlan:
    """Read and verify a saved plan; UserError (exit 2) for anything off.

    The YAML is bounded (an alias bomb is refused before it is built), and no parameter is
    looked at beyond its type until the checksum holds.
    """
    text = _read_text(path)
    try:
        doc: Any = safeyaml.load(text)
    except safeyaml.YamlLimitError as exc:
        raise UserError(f"plan file refused: {exc}", path) from None
    except YAMLError:
        raise UserError("malformed plan file (not YAML)", path) from None
    if not isinstance(doc, dict) or doc.get("kind") != KIND:
        raise UserError("not a cis-tui plan file", path)
    version = doc.get("apiVersion")
    if version not in (API_VERSION, API_VERSION_COMPANIONS):
        raise UserError(
            f"unknown plan version {repr(version)[:60]} "
            f"(this cis-tui reads {API_VERSION} and {API_VERSION_COMPANIONS})",
            path,
        )
    benchmark, checks, params = doc.get("benchmark"), doc.get("checks"), doc.get("params") or {}
    companions = _companions(doc.get("companions"), version == API_VERSION_COMPANIONS, path)
    if not isinstance(checks, list) or not all(isinstance(c, str) for c in checks) or not checks:
        raise UserError("plan has no list of check ids", path)
    if not isinstance(params, dict) or not all(isinstance(v, dict) for v in params.values()):
        raise UserError("plan params must map check ids to name: value", path)
    # save_plan writes nothing but strings: any other type was not written by cis-tui.
    if (
        not isinstance(benchmark, str)
        or not all(isinstance(k, str) and _is_str_map(p) for k, p in params.items())
        or doc.get("checksum")
        != _checksum(benchmark, checks, params, [c.to_dict() for c in companions])
    ):
        raise UserError("plan was modified after it was saved (checksum mismatch)", path)
    if benchmark != catalog.benchmark:
        raise UserError(f"plan is for {benchmark}, this node uses {catalog.benchmark}", path)
    try:
        for check_id in checks:
            catalog.get(check_id)
        options = [
            f"{cid}.{name}={value}" for cid, p in params.items() for name, value in p.items()
        ]
        validated = parse_param_options(options, catalog)
    except UserError as exc:
        raise UserError(exc.message, path) from None
    return SavedPlan(
        benchmark=str(benchmark), checks=tuple(checks), params=validated, companions=companions
    )


def _companions(raw: object, expected: bool, path: Path) -> tuple[CompanionRef, ...]:
    """The companion list of a v2 plan (a v1 plan has none); UserError when malformed."""
    if not expected:
        if raw is not None:
            raise UserError(f"a {API_VERSION} plan has no companion files", path)
        return ()
    if not isinstance(raw, list) or not raw:
        raise UserError(f"a {API_VERSION_COMPANIONS} plan lists its companion files", path)
    refs = []
    for item in raw:
        if (
            not isinstance(item, dict)
            or set(item) != _COMPANION_KEYS
            or not all(isinstance(item[k], str) for k in ("file", "check", "sha256"))
            or not isinstance(item["secret"], bool)
        ):
            raise UserError("malformed companions entry in the plan file", path)
        name = item["file"]
        if not name or "/" in name or name.startswith(".") or len(name) > 100:
            raise UserError(f"companion file name {name[:60]!r} is not a plain file name", path)
        refs.append(CompanionRef(name, item["check"], item["sha256"], item["secret"]))
    if len({r.file for r in refs}) != len(refs):
        raise UserError("the plan names a companion file twice", path)
    return tuple(refs)
