"""The node's versions, and what each version of a component has.

Each component's version comes from the image tag of its static pod manifest
(`registry.k8s.io/kube-apiserver:v1.32.1`, `quay.io/coreos/hyperkube:v1.10.4_coreos.0`, etcd's
own `3.5.16-0`); the kubelet's from `kubelet --version`, asked only of the binary the running
kubelet was started from; a config file's `[versions]` table overrides both.

What a version has comes from one data table, `flagtables/versions.tsv` (the facts of
k8s-versions.md): when a flag, admission plugin, kubelet config field, feature gate, cipher
suite name, encryption provider or config apiVersion appeared or was removed. This module is
its only reader; the audit (not applicable: SKIP), the planner (never add what the version
lacks) and the sandbox stand-ins (refuse what the version lacks) ask it.

Stdlib only at import time: the sandbox stand-ins import it.
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import os
import re
import stat
import subprocess
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING, Any

import platformdirs

from cis_tui.audit.flags import FlagSpec, flag_table

if TYPE_CHECKING:
    from cis_tui.audit.processes import LiveProcess
    from cis_tui.benchmarks.catalog import Check
    from cis_tui.layout import Settings

KUBERNETES_COMPONENTS = (
    "kube-apiserver",
    "kube-controller-manager",
    "kube-scheduler",
    "kubelet",
)
VERSIONED_COMPONENTS = ("etcd", *KUBERNETES_COMPONENTS)

_VERSION = re.compile(r"^v?(\d+)\.(\d+)(?:\.(\d+))?")
_KUBELET_VERSION = re.compile(r"Kubernetes\s+(v\d+\.\d+\S*)")


@dataclass(frozen=True, order=True)
class Version:
    """A component version; compared by major.minor.patch, shown as written."""

    major: int
    minor: int
    patch: int = 0
    text: str = field(default="", compare=False)

    def __str__(self) -> str:
        return self.text or f"v{self.major}.{self.minor}.{self.patch}"

    @property
    def minor_text(self) -> str:
        """`1.32`: what the benchmark mapping is keyed by."""
        return f"{self.major}.{self.minor}"


def parse_version(text: str) -> Version | None:
    """`v1.32.1`, `1.28`, `v1.10.4_coreos.0`, `3.5.16-0`; None when it is not a version."""
    m = _VERSION.match(text.strip())
    if not m:
        return None
    return Version(int(m[1]), int(m[2]), int(m[3] or 0), text.strip())


def _minor(text: str) -> Version | None:
    return parse_version(text) if text else None


def image_version(component: str, image: str) -> Version | None:
    """The version in an image's tag; None without a usable tag (`latest`, a digest only)."""
    name = image.strip().split("@", 1)[0]
    last = name.rsplit("/", 1)[-1]
    if ":" not in last:
        return None
    version = parse_version(last.rsplit(":", 1)[1])
    if version is None:
        return None
    if component == "etcd":
        return version if version.major >= 2 else None
    return version if version.major == 1 else None


# -- the facts ------------------------------------------------------------------------------
@dataclass(frozen=True)
class Fact:
    """One row of versions.tsv."""

    kind: str  # flag | plugin | config | gate | cipher | provider | api
    component: str  # a component, or * for every Kubernetes component
    name: str
    since: Version | None = None
    removed: Version | None = None
    type: str = ""
    source: str = ""

    def present_in(self, version: Version) -> bool:
        if self.since is not None and version < self.since:
            return False
        return self.removed is None or version < self.removed


KINDS = {"flag", "plugin", "config", "gate", "cipher", "provider", "api", "serving", "default"}
_WHAT = {
    "flag": "{name}",
    "plugin": "admission plugin {name}",
    "config": "config field {name}",
    "gate": "feature gate {name}",
    "cipher": "cipher suite name {name}",
    "provider": "encryption provider {name}",
    "api": "{name}",
    "serving": "{name} serving",
    "default": "{name}",
}


@functools.cache
def facts() -> tuple[Fact, ...]:
    """Every row of versions.tsv (cached)."""
    text = (resources.files("cis_tui.audit") / "flagtables" / "versions.tsv").read_text("utf-8")
    rows: list[Fact] = []
    header_seen = False
    for line in text.splitlines():
        if not line.strip() or line.startswith("#"):
            continue
        if not header_seen:  # the header row
            header_seen = True
            continue
        kind, component, name, since, removed, typ, source = [*line.split("\t"), *[""] * 7][:7]
        if kind not in KINDS:
            raise ValueError(f"versions.tsv: unknown kind {kind!r} in {line!r}")
        rows.append(Fact(kind, component, name, _minor(since), _minor(removed), typ, source))
    return tuple(rows)


@functools.cache
def _index() -> dict[tuple[str, str, str], Fact]:
    return {(f.kind, f.component, f.name): f for f in facts()}


def fact(kind: str, component: str, name: str) -> Fact | None:
    """The row for an item of a component (`*` rows apply to every Kubernetes component)."""
    index = _index()
    found = index.get((kind, component, name))
    if found is None and component != "etcd":
        found = index.get((kind, "*", name))
    return found


def missing(kind: str, component: str, name: str, version: Version | None) -> str | None:
    """Why `component` at `version` does not have the item, naming the version; None when
    it has it (or when the version is unknown, or nothing is recorded about the item)."""
    if version is None:
        return None
    row = fact(kind, component, name)
    if row is None:
        if kind == "flag" and name not in flag_table(component) and flag_table(component):
            return f"{component} {version} has no flag {name}"
        return None
    if row.present_in(version):
        return None
    what = _WHAT[kind].format(name=name)
    if row.since is not None and version < row.since:
        return f"{component} {version} has no {what} (added in v{row.since.minor_text})"
    assert row.removed is not None
    return f"{component} {version} no longer has {what} (removed in v{row.removed.minor_text})"


def has(kind: str, component: str, name: str, version: Version | None) -> bool:
    return missing(kind, component, name, version) is None


def default_at(component: str, name: str, version: Version | None) -> str | None:
    """The default of a setting (a feature gate, a kubelet config field) in the component's
    version, when it changed across versions (None: no row, the current default applies).
    An unknown version takes the current default."""
    for row in facts():
        if row.kind != "default" or row.component not in (component, "*"):
            continue
        key, _, value = row.name.partition("=")
        if key != name:
            continue
        if (row.removed is None) if version is None else row.present_in(version):
            return value
    return None


#: The older name a flag had, for versions that predate the flag (the same setting).
LEGACY_FLAGS = {
    ("kube-apiserver", "--encryption-provider-config"): "--experimental-encryption-provider-config",
}


def flag_at(component: str, flag: str, version: Version | None) -> str:
    """The flag that does `flag`'s job at `version`: itself, or its older name on a version
    that has only that (v1.12's --experimental-encryption-provider-config)."""
    legacy = LEGACY_FLAGS.get((component, flag))
    if (
        legacy
        and missing("flag", component, flag, version)
        and has("flag", component, legacy, version)
    ):
        return legacy
    return flag


def known_items(
    kind: str, component: str, names: Iterable[str], version: Version | None
) -> list[str]:
    """The names the version has, in order (all of them when the version is unknown)."""
    return [n for n in names if has(kind, component, n, version)]


def flag_table_for(component: str, version: Version | None) -> dict[str, FlagSpec]:
    """The flags `component` at `version` accepts: the v1.35 table, less what came later,
    plus what was removed since (with the type it had)."""
    table = dict(flag_table(component))
    if version is None or not table:
        return table
    for row in facts():
        if row.kind != "flag" or row.component != component:
            continue
        if row.present_in(version):
            if row.name not in table:
                table[row.name] = FlagSpec(row.name, row.type or "string")
        else:
            table.pop(row.name, None)
    return table


@functools.cache
def _table_at(component: str, version: Version | None) -> Mapping[str, FlagSpec]:
    return flag_table_for(component, version)


def flag_table_at(component: str, version: Version | None) -> Mapping[str, FlagSpec]:
    """`flag_table_for`, cached: the flags a manifest or a process of that version is parsed
    with (a v1.11 controller manager's --address is a flag, not an unknown word)."""
    return _table_at(component, version)


def manifest_flag_table(component: str, image: str | None) -> Mapping[str, FlagSpec]:
    """The flags of the version in a manifest's image tag (v1.35's without a usable tag)."""
    return flag_table_at(component, image_version(component, image) if image else None)


def api_version_of(text: str) -> str | None:
    """`apiVersion/Kind` of a small YAML config file, read from its top-level lines."""
    api = kind = None
    for line in text.splitlines():
        if line.startswith("apiVersion:"):
            api = line.split(":", 1)[1].split("#", 1)[0].strip().strip("\"'")
        elif line.startswith("kind:"):
            kind = line.split(":", 1)[1].split("#", 1)[0].strip().strip("\"'")
    return f"{api}/{kind}" if api and kind else None


# -- the node's versions -------------------------------------------------------------------
@dataclass(frozen=True)
class ComponentVersion:
    """One component's version and where it was read."""

    component: str
    version: Version | None
    source: str
    #: Not read from the component itself: taken from the control plane's version.
    assumed: bool = False

    def to_dict(self) -> dict[str, Any]:
        return {
            "version": str(self.version) if self.version else None,
            "source": self.source,
            "assumed": self.assumed,
        }


@dataclass(frozen=True)
class NodeVersions:
    """Every component's version, and the node's Kubernetes version (what picks the
    benchmark: the API server's, as kube-bench uses the server version)."""

    components: tuple[ComponentVersion, ...] = ()
    kubernetes: Version | None = None
    kubernetes_source: str = "unknown: no component told its version"

    def get(self, component: str) -> ComponentVersion | None:
        return next((c for c in self.components if c.component == component), None)

    def of(self, component: str) -> Version | None:
        found = self.get(component)
        return found.version if found else None

    @property
    def label(self) -> str:
        """`Kubernetes v1.32.2`, for a header line."""
        return f"Kubernetes {self.kubernetes}" if self.kubernetes else "Kubernetes version unknown"

    def to_dict(self) -> dict[str, Any]:
        return {
            "kubernetes": str(self.kubernetes) if self.kubernetes else None,
            "kubernetes_source": self.kubernetes_source,
            "components": {c.component: c.to_dict() for c in self.components},
        }


UNKNOWN = NodeVersions()

#: (pid, start time) -> the running kubelet's version and how it was read.
_running_cache: dict[tuple[int, float], tuple[Version | None, str]] = {}


def running_binary_version(proc: LiveProcess) -> tuple[Version | None, str]:
    """`BINARY --version` of a running component, asked only when the file on disk is the one
    the process was started from (a binary upgraded under a running kubelet would answer with
    a version that is not running). Cached per process."""
    key = (proc.pid, proc.create_time)
    if key not in _running_cache:
        _running_cache[key] = _ask_binary(proc)
    return _running_cache[key]


def _ask_binary(proc: LiveProcess) -> tuple[Version | None, str]:
    path = proc.binary
    if not path or not os.path.isabs(path):
        return None, f"unknown: the running {proc.component}'s binary path is not absolute"
    try:
        disk = os.stat(path)
        with Path(path).open("rb") as fh:
            script = fh.read(2) == b"#!"
    except OSError as exc:
        return None, f"unknown: {path}: {exc.strerror}"
    try:
        running = os.stat(f"/proc/{proc.pid}/exe")
    except OSError:
        running = None
    if script:  # an interpreted binary: unchanged since the process started
        same = disk.st_ctime <= proc.create_time + 1.0
    else:
        same = running is not None and (running.st_dev, running.st_ino) == (
            disk.st_dev,
            disk.st_ino,
        )
    if not same:
        return None, (
            f"unknown: {path} is not the binary PID {proc.pid} runs (replaced since it "
            "started); restart the kubelet or set [versions] kubelet"
        )
    return _binary_answer(path, disk, f"{path} --version (the running binary, PID {proc.pid})")


def unit_binary_version(path: str) -> tuple[Version | None, str]:
    """`BINARY --version` of the kubelet binary its systemd unit starts, for a node whose
    kubelet is not running. Root runs it, so it must be root's alone: an absolute path to a
    regular file owned by root and writable by nobody else, in directories only root (or the
    sticky bit) lets anyone change."""
    from cis_tui.engine.statedir import check_trusted
    from cis_tui.errors import UserError

    if not os.path.isabs(path):
        return None, f"unknown: not running; its unit's ExecStart {path!r} is not absolute"
    real = os.path.realpath(path)
    try:
        disk = os.stat(real)
    except OSError as exc:
        return None, f"unknown: not running, and {path} (its unit's ExecStart): {exc.strerror}"
    if not stat.S_ISREG(disk.st_mode):
        return None, f"unknown: {path} is not a regular file"
    if disk.st_uid != 0 or disk.st_mode & 0o022:
        return None, (
            f"unknown: {path} is not root's alone (uid {disk.st_uid}, mode "
            f"{stat.S_IMODE(disk.st_mode):o}); not run"
        )
    try:
        check_trusted(Path(real).parent, "kubelet binary's directory")
    except UserError as exc:
        return None, f"unknown: {exc}; not run"
    return _binary_answer(real, disk, f"{path} --version (the binary kubelet.service starts)")


def _binary_answer(path: str, disk: os.stat_result, source: str) -> tuple[Version | None, str]:
    """`path --version`, remembered per binary file."""
    # The answer of one binary file (same inode, size and mtime) never changes: start-up need
    # not spawn it every time (a stand-in kubelet takes 100 ms to answer).
    identity = f"{path}\0{disk.st_dev}\0{disk.st_ino}\0{disk.st_size}\0{disk.st_mtime_ns}"
    cached = _binary_cache_dir() / hashlib.sha256(identity.encode()).hexdigest()
    with contextlib.suppress(OSError):
        version = parse_version(cached.read_text(encoding="utf-8")[:64].strip())
        if version is not None:
            return version, source
    try:
        out = subprocess.run(
            [path, "--version"], capture_output=True, text=True, timeout=10, check=False
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        return None, f"unknown: {path} --version: {exc}"
    m = _KUBELET_VERSION.search(out.stdout + out.stderr)
    version = parse_version(m[1]) if m else None
    if version is None:
        return None, f"unknown: {path} --version did not print a version"
    with contextlib.suppress(OSError):  # a read-only home: ask every time
        cached.parent.mkdir(parents=True, exist_ok=True)
        cached.write_text(m[1] if m else "", encoding="utf-8")
    return version, source


def _binary_cache_dir() -> Path:
    return Path(platformdirs.user_cache_dir("cis-tui")) / "binary-versions"


def read_versions(
    images: Mapping[str, str],
    kubelet: LiveProcess | None = None,
    overrides: Mapping[str, str] | None = None,
    unreadable: Iterable[str] = (),
    kubelet_binary: str | None = None,
) -> NodeVersions:
    """The node's versions: `images` are the manifests' images by component, `kubelet` the
    running kubelet (asked for its version), `overrides` the config's `[versions]` table
    (`kubernetes` for every Kubernetes component, or one key per component). Without a
    running kubelet, `kubelet_binary` (the one its unit starts) is asked instead."""
    overrides = overrides or {}
    unreadable = set(unreadable)
    found: dict[str, ComponentVersion] = {}
    for comp in VERSIONED_COMPONENTS:
        given = overrides.get(comp) or (
            overrides.get("kubernetes") if comp in KUBERNETES_COMPONENTS else None
        )
        if given:
            key = comp if comp in overrides else "kubernetes"
            found[comp] = ComponentVersion(
                comp, parse_version(given), f"[versions] {key} in the config file"
            )
        elif comp == "kubelet":
            if kubelet is not None:
                version, source = running_binary_version(kubelet)
                found[comp] = ComponentVersion(comp, version, source)
            elif kubelet_binary is not None:
                version, source = unit_binary_version(kubelet_binary)
                found[comp] = ComponentVersion(comp, version, source)
            else:
                found[comp] = ComponentVersion(comp, None, "unknown: no running kubelet to ask")
        elif comp in images:
            image = images[comp]
            version = image_version(comp, image)
            source = f"image {image}" if version else f"unknown: image {image!r} has no version"
            found[comp] = ComponentVersion(comp, version, source)
        else:
            why = "its manifest cannot be read" if comp in unreadable else "no manifest"
            found[comp] = ComponentVersion(comp, None, f"unknown: {why}")
    kubernetes, source = None, "unknown: no component told its version"
    if overrides.get("kubernetes"):
        kubernetes = parse_version(overrides["kubernetes"])
        source = "[versions] kubernetes in the config file"
    else:
        for comp in ("kube-apiserver", "kube-controller-manager", "kube-scheduler", "kubelet"):
            if found[comp].version is not None:
                kubernetes = found[comp].version
                source = f"{comp}: {found[comp].source}"
                break
    kubelet_found = found["kubelet"]
    if kubelet_found.version is None and kubernetes is not None:
        # The version skew policy lets a kubelet be older than the API server, never newer:
        # the control plane's version is the newest it can be. Said so wherever it is shown.
        found["kubelet"] = replace(
            kubelet_found,
            version=kubernetes,
            source=f"assumed: the control plane's version ({kubelet_found.source}; "
            "set [versions] kubelet to be sure)",
            assumed=True,
        )
    return NodeVersions(tuple(found.values()), kubernetes, source)


# -- what a check needs --------------------------------------------------------------------
_ADMISSION_LISTS = {"--enable-admission-plugins", "--disable-admission-plugins"}


def _test_missing(check: Check, test: Any, version: Version) -> str | None:
    comp = check.component
    if test.flag in _ADMISSION_LISTS:
        # Before 1.10 the legacy --admission-control is the plugin list: the check still
        # applies as long as the plugin itself exists.
        if test.flag == "--enable-admission-plugins" and test.op == "has":
            return missing("plugin", comp, str(test.value), version)
        return None
    flag_gone = missing("flag", comp, test.flag, version)
    if flag_gone and flag_at(comp, test.flag, version) != test.flag:
        return None  # judged on its older name
    if test.key and flag_gone is None:
        return missing("gate", comp, test.key, version)
    if flag_gone is None:
        return None
    if test.config and comp == "kubelet":
        field_gone = missing("config", comp, test.config, version)
        if field_gone is None and has("flag", comp, "--config", version):
            return None
        return field_gone or flag_gone
    if test.env:  # etcd reads the same setting from its environment
        return None
    return flag_gone


def not_applicable(check: Check, versions: NodeVersions | None) -> str | None:
    """Why a check cannot apply to its component's version (its flag, admission plugin or
    config field does not exist there), naming the version; None when it applies or the
    version is unknown."""
    if versions is None or check.component not in VERSIONED_COMPONENTS:
        return None
    found = versions.get(check.component)
    version = found.version if found else None
    if found is None or version is None:
        return None
    if found.assumed:  # say so: the kubelet may be older than the control plane
        version = replace(version, text=f"{version} (assumed: the control plane's)")
    audit = check.audit
    if audit.type == "encryption-providers":
        flag = flag_at(check.component, "--encryption-provider-config", version)
        why = missing("flag", check.component, flag, version)
        return f"not applicable: {why}" if why else None
    if audit.type != "flags" or not audit.tests:
        return None
    reasons = [_test_missing(check, t, version) for t in audit.tests]
    gone = [r for r in reasons if r]
    if not gone:
        return None
    if audit.combine == "any" and len(gone) < len(reasons):
        return None
    return f"not applicable: {gone[0]}"


# -- the benchmark for the node ------------------------------------------------------------
def read_node_versions(settings: Settings) -> NodeVersions:
    """The versions without a whole snapshot: the manifests' images and the running kubelet."""
    from cis_tui.audit.node import InputError, read_kubelet_unit_binary, read_manifest
    from cis_tui.audit.processes import scan_processes
    from cis_tui.errors import UserError
    from cis_tui.layout import STATIC_COMPONENTS

    layout = settings.layout
    images: dict[str, str] = {}
    unreadable: list[str] = []
    for comp in STATIC_COMPONENTS:
        path = layout.manifest(comp)
        try:
            if os.path.lexists(layout.confined(path)):
                images[comp] = read_manifest(path, comp).image
        except (InputError, UserError, OSError):
            unreadable.append(comp)
    kubelet = binary = None
    if not settings.has_root_override:
        found = scan_processes(("kubelet",), settings.process_root, identity=settings.identity)
        kubelet = found.live.get("kubelet")
        if kubelet is None:
            binary = read_kubelet_unit_binary(layout)
    return read_versions(images, kubelet, settings.versions, unreadable, binary)


def with_benchmark(settings: Settings, versions: NodeVersions) -> tuple[Settings, str | None]:
    """`settings` with the benchmark decided: the one given, else the one kube-bench maps the
    node's Kubernetes version to; and a warning to show (an old or unknown version)."""
    from cis_tui.benchmarks.selection import choose_benchmark

    k8s = versions.kubernetes
    choice = choose_benchmark(
        settings.benchmark,
        settings.benchmark_chosen_by,
        (k8s.major, k8s.minor) if k8s else None,
        str(k8s) if k8s else "",
        versions.kubernetes_source,
    )
    chosen = replace(settings, benchmark=choice.benchmark, benchmark_chosen_by=choice.chosen_by)
    return chosen, choice.warning
