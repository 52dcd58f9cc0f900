"""Remediation parameters: `--param ID.NAME=VALUE`, defaults from the catalog, validation."""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from pathlib import Path

from cis_tui.audit.flags import parse_duration, split_list
from cis_tui.benchmarks.catalog import Catalog, Check, Param
from cis_tui.errors import UserError
from cis_tui.layout import Layout

_PLACEHOLDER = re.compile(r"\{([a-z_]+)\}")

#: Parameter values given for a plan: check id → name → value text.
ParamValues = dict[str, dict[str, str]]


def parse_param_options(options: Iterable[str], catalog: Catalog) -> ParamValues:
    """Read `ID.NAME=VALUE` options; unknown checks or names are usage errors."""
    values: ParamValues = {}
    for option in options:
        left, sep, value = option.partition("=")
        check_id, dot, name = left.rpartition(".")
        if not sep or not dot or not check_id or not name:
            raise UserError(f"--param {option!r}: expected ID.NAME=VALUE, e.g. 1.2.17.maxage=60")
        check = catalog.get(check_id)
        param = _find(check, name)
        values.setdefault(check.id, {})[param.name] = validate(check, param, value)
    return values


def _find(check: Check, name: str) -> Param:
    for param in check.remediation.params:
        if param.name == name:
            return param
    known = ", ".join(p.name for p in check.remediation.params) or "none"
    raise UserError(f"check {check.id} has no parameter {name!r} (parameters: {known})")


def validate(check: Check, param: Param, value: str) -> str:
    """The value, normalised; UserError naming check, parameter and rule when invalid."""
    where = f"{check.id}.{param.name}"
    text = value.strip()
    if param.type == "int":
        try:
            number = int(text)
        except ValueError:
            raise UserError(f"{where}: {value!r} is not a whole number") from None
        if param.min is not None and number < param.min:
            raise UserError(f"{where}: must be at least {param.min:g} (got {number})")
        return str(number)
    if param.type == "duration":
        seconds = parse_duration(text)
        if seconds is None or seconds < 0:
            raise UserError(f"{where}: {value!r} is not a duration such as 5m or 1h30m")
        if param.min is not None and seconds < param.min:
            raise UserError(f"{where}: must be at least {param.min:g}s (got {text})")
        return text
    if param.type == "choice":
        if text not in param.choices:
            raise UserError(f"{where}: must be one of {', '.join(param.choices)} (got {text!r})")
        return text
    if param.type == "list":
        items = split_list(text)
        if not items:
            raise UserError(f"{where}: needs at least one comma-separated item")
        if param.choices:
            bad = [i for i in items if i not in param.choices]
            if bad:
                raise UserError(f"{where}: {bad[0]!r} is not allowed here")
        return ",".join(items)
    if not text or any(c in text for c in "\n\r\0"):
        raise UserError(f"{where}: needs a single-line, non-empty value")
    return text


def layout_values(layout: Layout) -> dict[str, str]:
    """Layout paths a catalog value may name, as the node names them."""
    return {
        "pki": layout.node_path(layout.pki_dir),
        "audit_log_dir": layout.node_path(layout.audit_log_dir),
        "audit_policy_file": layout.node_path(layout.audit_policy_file),
        "encryption_config": layout.node_path(layout.encryption_config),
        "admission_config": layout.node_path(layout.admission_config),
    }


def resolve_params(check: Check, given: Mapping[str, str], layout: Layout) -> dict[str, str]:
    """Every parameter of a check: given values, else defaults, with layout paths filled in."""
    marks = layout_values(layout)
    resolved: dict[str, str] = {}
    for param in check.remediation.params:
        if param.name in given:
            raw = given[param.name]
        elif isinstance(param.default, list):
            raw = ",".join(str(v) for v in param.default)
        else:
            raw = "" if param.default is None else str(param.default)
        resolved[param.name] = validate(check, param, fill(raw, marks))
    return resolved


def fill(text: str, values: Mapping[str, str]) -> str:
    """Replace `{name}` placeholders; unknown names are left as written."""
    return _PLACEHOLDER.sub(lambda m: values.get(m.group(1), m.group(0)), text)


def fill_value(value: object, values: Mapping[str, str]) -> object:
    """Fill `{name}` placeholders in an edit's value (strings, and strings inside lists)."""
    if isinstance(value, str):
        filled = fill(value, values)
        return filled
    if isinstance(value, list):
        return [fill_value(v, values) for v in value]
    return value


def as_path(text: str) -> Path:
    return Path(text)
