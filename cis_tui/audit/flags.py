"""Command lines read the way each component's flag library reads them.

Kubernetes components use spf13/pflag: `--f=v`; `--f v` for non-boolean flags only (a boolean
never takes the next item); bare `--f` for booleans; scalars repeated → last wins; list and map
flags repeated → accumulate. kube-bench reads `--f v` as a boolean (kube-bench#2095); we don't.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from importlib import resources

# Flags known to every component's flag set but not listed in the docs tables.
_COMMON_HIDDEN = {"--help": "bool", "--version": "version[=true]"}

_TRUE = {"1", "t", "T", "TRUE", "true", "True"}
_FALSE = {"0", "f", "F", "FALSE", "false", "False"}

LIST_TYPES = {"strings", "pattern=N,...", "[]v1.Taint"}
MAP_TYPES = {
    "stringToString",
    "colonSeparatedMultimapStringString",
    "<comma-separated 'key=value' pairs>",
    "<comma-separated 'key=True|False' pairs>",
    "reserved-memory",
}

#: kube-apiserver's admission plugin flags. The legacy one (deprecated in 1.10, still accepted)
#: is the whole list of enabled plugins: every plugin it leaves out is off, the default ones
#: included, and the API server refuses it next to the other two.
ENABLE_ADMISSION = "--enable-admission-plugins"
DISABLE_ADMISSION = "--disable-admission-plugins"
LEGACY_ADMISSION = "--admission-control"


def legacy_admission_test(flag: str, op: str) -> tuple[str, str] | None:
    """The (flag, op) that judges an admission test on an API server given the legacy
    --admission-control: a plugin is enabled when listed there, disabled when not."""
    if flag == ENABLE_ADMISSION and op in {"has", "lacks"}:
        return LEGACY_ADMISSION, op
    if flag == DISABLE_ADMISSION and op in {"has", "lacks"}:
        return LEGACY_ADMISSION, "has" if op == "lacks" else "lacks"
    return None


_DURATION = re.compile(r"^[-+]?(?:(?:\d+(?:\.\d*)?|\.\d+)(?:ns|us|µs|μs|ms|s|m|h))+$")
_DURATION_PART = re.compile(r"(\d+(?:\.\d*)?|\.\d+)(ns|us|µs|μs|ms|s|m|h)")
_UNIT_SECONDS = {
    "ns": 1e-9,
    "us": 1e-6,
    "µs": 1e-6,
    "μs": 1e-6,
    "ms": 1e-3,
    "s": 1.0,
    "m": 60.0,
    "h": 3600.0,
}
_QUANTITY = re.compile(
    r"^[+-]?(\d+(\.\d*)?|\.\d+)([eE][+-]?\d+|Ki|Mi|Gi|Ti|Pi|Ei|n|u|m|k|M|G|T|P|E)?$"
)


@dataclass(frozen=True)
class FlagSpec:
    """One documented flag of a component."""

    name: str
    type: str
    default: str = ""
    deprecated: bool = False

    @property
    def is_bool(self) -> bool:
        return self.type == "bool"

    @property
    def is_list(self) -> bool:
        return self.type in LIST_TYPES

    @property
    def is_map(self) -> bool:
        return self.type in MAP_TYPES

    @property
    def takes_optional_value(self) -> bool:
        """Flags pflag gives a NoOptDefVal: bare form allowed, never consume the next item."""
        return self.is_bool or self.type == "version[=true]"


@dataclass(frozen=True)
class Occurrence:
    """One flag as written on the command line."""

    name: str
    value: str | None  # None: bare flag (`--f`)
    index: int  # position of the flag item in argv
    style: str  # "=", " " (value in the next item) or "bare"


@dataclass(frozen=True)
class ParsedArgs:
    """A command line parsed like the component would."""

    component: str
    values: dict[str, str] = field(default_factory=dict)
    occurrences: tuple[Occurrence, ...] = ()
    positional: tuple[str, ...] = ()
    unknown: tuple[str, ...] = ()
    errors: tuple[str, ...] = ()

    def get(self, name: str) -> str | None:
        return self.values.get(name)

    def duplicated(self) -> dict[str, int]:
        """Flags given more than once, with their count."""
        counts: dict[str, int] = {}
        for occ in self.occurrences:
            counts[occ.name] = counts.get(occ.name, 0) + 1
        return {k: v for k, v in counts.items() if v > 1}


@functools.cache
def flag_table(component: str) -> dict[str, FlagSpec]:
    """The documented flags of a component; empty for components without a table."""
    name = f"{component}.tsv"
    pkg = resources.files("cis_tui.audit") / "flagtables" / name
    if not pkg.is_file():
        return {}
    table: dict[str, FlagSpec] = {}
    for line in pkg.read_text(encoding="utf-8").splitlines()[1:]:
        if not line.strip():
            continue
        flag, typ, default, deprecated = ([*line.split("\t"), "", "", "", ""])[:4]
        table[flag] = FlagSpec(flag, typ, default.strip('"'), deprecated == "yes")
    for flag, typ in _COMMON_HIDDEN.items():
        table.setdefault(flag, FlagSpec(flag, typ))
    return table


def spec_for(component: str, name: str) -> FlagSpec | None:
    return flag_table(component).get(name)


def parse_bool(value: str) -> bool | None:
    """Go's strconv.ParseBool; None when the text is not a boolean."""
    if value in _TRUE:
        return True
    if value in _FALSE:
        return False
    return None


def parse_duration(value: str) -> float | None:
    """A Go duration (`1m30s`, `0`) in seconds; None when invalid."""
    text = value.strip()
    if text in {"0", "+0", "-0"}:
        return 0.0
    if not _DURATION.match(text):
        return None
    sign = -1.0 if text.startswith("-") else 1.0
    total = sum(float(n) * _UNIT_SECONDS[u] for n, u in _DURATION_PART.findall(text))
    return sign * total


def split_list(value: str) -> list[str]:
    """Elements of a comma-separated list value, trimmed, empty ones dropped."""
    return [item.strip() for item in value.split(",") if item.strip()]


def split_map(value: str) -> dict[str, str]:
    """Entries of a `k=v,k2=v2` value (feature gates and similar)."""
    entries: dict[str, str] = {}
    for item in split_list(value):
        key, sep, val = item.partition("=")
        entries[key.strip()] = val.strip() if sep else ""
    return entries


def _go_quote(text: str) -> str:
    """A string as Go's %q prints it (the real binaries' error messages)."""
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


def validate_value(spec: FlagSpec, value: str) -> str | None:
    """Why `value` is invalid for this flag, in the component's words; None if valid."""
    typ = spec.type
    bad = f'invalid argument "{value}" for "{spec.name}" flag'
    if typ == "bool":
        return (
            None
            if parse_bool(value) is not None
            else f"{bad}: strconv.ParseBool: parsing {_go_quote(value)}: invalid syntax"
        )
    if typ in {"int", "int32"}:
        try:
            number = int(value, 0)
        except ValueError:
            return f"{bad}: strconv.ParseInt: parsing {_go_quote(value)}: invalid syntax"
        if typ == "int32" and not -(2**31) <= number < 2**31:
            return f"{bad}: strconv.ParseInt: parsing {_go_quote(value)}: value out of range"
        return None
    if typ == "float":
        try:
            float(value)
        except ValueError:
            return f"{bad}: strconv.ParseFloat: parsing {_go_quote(value)}: invalid syntax"
        return None
    if typ == "duration":
        return (
            None
            if parse_duration(value) is not None
            else f'{bad}: time: invalid duration "{value}"'
        )
    if typ == "quantity":
        return (
            None
            if _QUANTITY.match(value)
            else f"{bad}: quantities must match the regular expression"
        )
    if typ in {"<comma-separated 'key=True|False' pairs>"}:
        for key, val in split_map(value).items():
            if parse_bool(val) is None:
                return (
                    f"{bad}: invalid value of {key}: {val}, "
                    f"err: strconv.ParseBool: parsing {_go_quote(val)}: invalid syntax"
                )
        return None
    if typ in {"stringToString", "<comma-separated 'key=value' pairs>"}:
        for item in split_list(value):
            if "=" not in item:
                return f"{bad}: {item} must be formatted as key=value"
        return None
    if typ == "<a string in the form 'N1-N2'>":
        return None if re.fullmatch(r"\d+-\d+|\d+", value) else f"{bad}: invalid port range"
    return None


def parse_args(
    component: str,
    argv: list[str] | tuple[str, ...],
    table: Mapping[str, FlagSpec] | None = None,
) -> ParsedArgs:
    """Parse the arguments after the binary name, like the component's flag library
    (`table`: the flags of one version, see audit.versions; default the v1.35 tables)."""
    table = flag_table(component) if table is None else table
    values: dict[str, str] = {}
    occurrences: list[Occurrence] = []
    positional: list[str] = []
    unknown: list[str] = []
    errors: list[str] = []
    single_dash_long = component == "etcd"  # Go's flag package: -name == --name
    i = 0
    while i < len(argv):
        item = argv[i]
        if item == "--":
            positional.extend(argv[i + 1 :])
            break
        is_long = item.startswith("--") and len(item) > 2
        is_single = not is_long and item.startswith("-") and len(item) > 1 and item[1] != "-"
        if not (is_long or is_single):
            positional.append(item)
            i += 1
            continue
        body = item[2:] if is_long else item[1:]
        raw_name, eq, raw_value = body.partition("=")
        if is_single and not single_dash_long and len(raw_name) == 1:
            name = {"v": "--v", "h": "--help"}.get(raw_name, f"-{raw_name}")
        else:
            name = f"--{raw_name}"
        spec = table.get(name) if table else FlagSpec(name, "string")
        if spec is None:
            unknown.append(name)
            errors.append(f"unknown flag: {name}")
            i += 1
            continue
        if eq:
            value: str | None = raw_value
            style = "="
        elif spec.takes_optional_value:
            value, style = None, "bare"
        elif i + 1 < len(argv):
            value, style = argv[i + 1], " "
        else:
            errors.append(f"flag needs an argument: {item}")
            i += 1
            continue
        occurrences.append(Occurrence(name, value, i, style))
        effective = "true" if value is None else value
        if value is not None:
            problem = validate_value(spec, value)
            if problem:
                errors.append(problem)
        if (spec.is_list or spec.is_map) and name in values and values[name] != "":
            values[name] = f"{values[name]},{effective}"
        else:
            values[name] = effective
        i += 2 if style == " " else 1
    return ParsedArgs(
        component=component,
        values=values,
        occurrences=tuple(occurrences),
        positional=tuple(positional),
        unknown=tuple(unknown),
        errors=tuple(errors),
    )
