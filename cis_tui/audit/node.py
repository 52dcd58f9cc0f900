"""A snapshot of a node: manifests, kubelet config and command line, file stats, live processes.

All I/O of a scan happens here; evaluation is a pure function over the snapshot.
"""

from __future__ import annotations

import functools
import grp
import os
import pwd
import stat
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field, replace
from pathlib import Path, PurePosixPath
from typing import Any

from cis_tui.audit.effective import (
    EtcdConfigFile,
    KubeletConfigView,
    etcd_config_named,
)
from cis_tui.audit.flags import ParsedArgs, parse_args
from cis_tui.audit.kubeletunit import kubelet_unit_args, kubelet_unit_binary
from cis_tui.audit.podspec import refusals
from cis_tui.audit.processes import IgnoredProcess, LiveProcess, scan_processes
from cis_tui.audit.strays import StrayFile, find_strays, refused_pod
from cis_tui.audit.versions import (
    UNKNOWN,
    NodeVersions,
    Version,
    flag_table_at,
    manifest_flag_table,
    read_versions,
)
from cis_tui.audit.yamlcache import YamlLimitError, YamlSyntaxError, load_all_cached
from cis_tui.layout import STATIC_COMPONENTS, Layout, Settings
from cis_tui.safeyaml import MAX_BYTES

MAX_FILE_BYTES = MAX_BYTES


class InputError(Exception):
    """A node file cannot be used: one line naming the file and the problem."""

    def __init__(self, path: Path, problem: str) -> None:
        self.path = path
        self.problem = problem
        super().__init__(f"{path}: {problem}")


@dataclass(frozen=True)
class HostPathVolume:
    name: str
    path: str
    type: str = ""


@dataclass(frozen=True)
class VolumeMount:
    name: str
    mount_path: str
    read_only: bool = False


@dataclass(frozen=True)
class Probe:
    """An httpGet probe as written in the manifest (timings default as in Kubernetes)."""

    kind: str  # startupProbe | readinessProbe | livenessProbe
    scheme: str
    host: str
    port: int | str
    path: str
    headers: tuple[tuple[str, str], ...] = ()  # httpHeaders, sent as the kubelet sends them
    initial_delay: float = 0.0
    period: float = 10.0
    timeout: float = 1.0
    failure_threshold: int = 3
    #: Whether the manifest names the host: without one the kubelet probes the pod IP (the
    #: node's address for a hostNetwork pod), which `host` stands for as 127.0.0.1.
    host_given: bool = True


@dataclass(frozen=True)
class Manifest:
    """One static pod manifest, parsed for auditing."""

    component: str
    path: Path
    command: tuple[str, ...]
    args: tuple[str, ...]
    env: dict[str, str] = field(default_factory=dict)
    volumes: tuple[HostPathVolume, ...] = ()
    mounts: tuple[VolumeMount, ...] = ()
    probes: tuple[Probe, ...] = ()
    ports: dict[str, int] = field(default_factory=dict)
    image: str = ""  # the container's image: its tag is the component's version
    #: Why the kubelet refuses to run this pod at all (cis_tui.audit.podspec); empty: it runs.
    refused: tuple[str, ...] = ()

    @property
    def argv(self) -> tuple[str, ...]:
        """Arguments after the binary name, as the process will see them."""
        return (*self.command[1:], *self.args)

    def host_path_of(self, container_path: str) -> str | None:
        """Where a path the container names lies on the host, through the hostPath volume
        mounted deepest above it (kubeadm mounts each path at the same path); None when no
        mount covers it: it is inside the container's own filesystem."""
        volumes = {v.name: v.path for v in self.volumes}
        best: tuple[int, str] | None = None
        target = PurePosixPath(container_path)
        for mount in self.mounts:
            mounted = PurePosixPath(mount.mount_path)
            if mount.name in volumes and target.is_relative_to(mounted):
                depth = len(mounted.parts)
                if best is None or depth > best[0]:
                    host = PurePosixPath(volumes[mount.name]) / target.relative_to(mounted)
                    best = (depth, str(host))
        return best[1] if best else None

    @functools.cached_property
    def flags(self) -> ParsedArgs:
        """The flags as the version in the image tag parses them."""
        return parse_args(
            self.component, self.argv, manifest_flag_table(self.component, self.image)
        )


@dataclass(frozen=True)
class FileStat:
    path: Path
    mode: int  # permission bits only
    uid: int
    gid: int
    owner: str  # user:group, names where known
    is_dir: bool


def read_text_file(path: Path, what: str) -> str:
    """Read a small UTF-8 text file that must be a regular file (not a symlink)."""
    try:
        st = path.lstat()
    except FileNotFoundError:
        raise InputError(path, f"{what} not found") from None
    except OSError as exc:
        raise InputError(path, f"cannot read {what}: {exc.strerror}") from None
    if stat.S_ISLNK(st.st_mode):
        raise InputError(path, f"{what} is a symlink; cis-tui reads and edits only regular files")
    if not stat.S_ISREG(st.st_mode):
        raise InputError(path, f"{what} is not a regular file")
    if st.st_size > MAX_FILE_BYTES:
        raise InputError(path, f"{what} is larger than 1 MiB")
    try:
        with path.open("rb") as fh:  # bounded: the file may have grown since the lstat
            raw = fh.read(MAX_FILE_BYTES + 1)
    except OSError as exc:
        raise InputError(path, f"cannot read {what}: {exc.strerror}") from None
    if len(raw) > MAX_FILE_BYTES:
        raise InputError(path, f"{what} is larger than 1 MiB")
    if not raw.strip():
        raise InputError(path, f"{what} is empty")
    if b"\0" in raw:
        raise InputError(path, f"{what} is a binary file, not YAML")
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        raise InputError(path, f"{what} is not UTF-8 text") from None


def load_yaml_document(text: str, path: Path, what: str) -> Any:
    """Exactly one YAML document, safely loaded."""
    try:
        docs = [d for d in load_all_cached(text) if d is not None]
    except YamlSyntaxError as exc:
        where = f" at line {exc.line}" if exc.line is not None else ""
        raise InputError(path, f"malformed YAML{where}: {exc.problem}") from None
    except YamlLimitError as exc:
        raise InputError(path, f"{what} refused: {exc}") from None
    if len(docs) != 1:
        raise InputError(path, f"{what} must hold exactly one YAML document, found {len(docs)}")
    return docs[0]


def _str_list(value: Any, path: Path, key: str) -> tuple[str, ...]:
    if value is None:
        return ()
    if not isinstance(value, list) or not all(isinstance(v, (str, int, float)) for v in value):
        raise InputError(path, f"container {key} must be a list of strings")
    return tuple(str(v) for v in value)


def _probes(container: dict[str, Any]) -> tuple[Probe, ...]:
    probes = []
    for kind in ("startupProbe", "readinessProbe", "livenessProbe"):
        spec = container.get(kind)
        if isinstance(spec, dict) and isinstance(spec.get("httpGet"), dict):
            get = spec["httpGet"]
            probes.append(
                Probe(
                    kind=kind,
                    scheme=str(get.get("scheme", "HTTP")).upper(),
                    host=str(get.get("host", "") or "127.0.0.1"),
                    port=get.get("port", 80),
                    path=str(get.get("path", "/")),
                    headers=tuple(
                        (str(h["name"]), str(h.get("value", "")))
                        for h in get.get("httpHeaders") or []
                        if isinstance(h, dict) and h.get("name")
                    ),
                    initial_delay=_seconds(spec, "initialDelaySeconds", 0),
                    period=_seconds(spec, "periodSeconds", 10),
                    timeout=_seconds(spec, "timeoutSeconds", 1),
                    failure_threshold=int(_seconds(spec, "failureThreshold", 3)),
                    host_given=bool(get.get("host")),
                )
            )
    return tuple(probes)


def _seconds(spec: dict[str, Any], key: str, default: int) -> float:
    """A probe timing field; absent, zero or not a number gives Kubernetes' default."""
    value = spec.get(key)
    if isinstance(value, bool) or not isinstance(value, (int, float)) or value <= 0:
        return float(default)
    return float(value)


def parse_manifest(text: str, path: Path, component: str) -> Manifest:
    """Parse a static pod manifest; InputError when it is not a usable single-container Pod."""
    doc = load_yaml_document(text, path, "manifest")
    if not isinstance(doc, dict) or doc.get("kind") != "Pod":
        kind = doc.get("kind") if isinstance(doc, dict) else type(doc).__name__
        raise InputError(path, f"not a Pod manifest (kind: {kind})")
    spec = doc.get("spec")
    containers = spec.get("containers") if isinstance(spec, dict) else None
    if not isinstance(containers, list) or not containers:
        raise InputError(path, "Pod has no containers")
    if len(containers) != 1 or not isinstance(containers[0], dict):
        names = ", ".join(str(c.get("name")) for c in containers if isinstance(c, dict))
        raise InputError(path, f"expected one container, found {len(containers)} ({names})")
    container = containers[0]
    command = _str_list(container.get("command"), path, "command")
    args = _str_list(container.get("args"), path, "args")
    if not command and not args:
        raise InputError(path, "container has no command or args")
    if not command:
        command = (component,)
    env = {
        str(e["name"]): str(e.get("value", ""))
        for e in container.get("env") or []
        if isinstance(e, dict) and "name" in e
    }
    volumes = tuple(
        HostPathVolume(
            name=str(v.get("name")),
            path=str(v["hostPath"].get("path", "")),
            type=str(v["hostPath"].get("type", "")),
        )
        for v in spec.get("volumes") or []
        if isinstance(v, dict) and isinstance(v.get("hostPath"), dict)
    )
    mounts = tuple(
        VolumeMount(str(m.get("name")), str(m.get("mountPath", "")), bool(m.get("readOnly")))
        for m in container.get("volumeMounts") or []
        if isinstance(m, dict)
    )
    ports = {
        str(p["name"]): int(p["containerPort"])
        for p in container.get("ports") or []
        if isinstance(p, dict) and "name" in p and "containerPort" in p
    }
    return Manifest(
        component=component,
        path=path,
        command=command,
        args=args,
        env=env,
        volumes=volumes,
        mounts=mounts,
        probes=_probes(container),
        ports=ports,
        image=str(container.get("image") or ""),
        refused=tuple(refusals(doc)),
    )


def read_manifest(path: Path, component: str) -> Manifest:
    return parse_manifest(read_text_file(path, "manifest"), path, component)


def read_kubelet_config(path: Path) -> dict[str, Any]:
    doc = load_yaml_document(read_text_file(path, "kubelet config"), path, "kubelet config")
    if not isinstance(doc, dict) or doc.get("kind") != "KubeletConfiguration":
        raise InputError(path, "not a KubeletConfiguration")
    return doc


def _unit_reader(layout: Layout) -> Callable[[Path], str | None]:
    """Reads a unit or environment file inside the layout's tree (None when it cannot)."""

    def read(path: Path) -> str | None:
        try:
            with layout.confined(path).open("rb") as fh:
                return fh.read(MAX_FILE_BYTES).decode("utf-8", errors="replace")
        except OSError:
            return None

    return read


def read_kubelet_file_args(layout: Layout) -> tuple[str, ...]:
    """The kubelet arguments configured on disk: kubelet.service, its drop-ins and the
    environment files they name (kubeadm-flags.env, /etc/default/kubelet), as systemd reads them."""
    return kubelet_unit_args(layout, _unit_reader(layout))


def read_kubelet_unit_binary(layout: Layout) -> str | None:
    """The kubelet binary the unit starts (its last ExecStart=), as the unit names it."""
    return kubelet_unit_binary(layout, _unit_reader(layout))


_owner_cache: dict[tuple[int, int], str] = {}


def owner_name(uid: int, gid: int) -> str:
    key = (uid, gid)
    if key not in _owner_cache:
        try:
            user = pwd.getpwuid(uid).pw_name
        except KeyError:
            user = str(uid)
        try:
            group = grp.getgrgid(gid).gr_name
        except KeyError:
            group = str(gid)
        _owner_cache[key] = f"{user}:{group}"
    return _owner_cache[key]


def stat_file(path: Path) -> FileStat | None:
    try:
        st = path.lstat()
    except OSError:
        return None
    return FileStat(
        path=path,
        mode=stat.S_IMODE(st.st_mode),
        uid=st.st_uid,
        gid=st.st_gid,
        owner=owner_name(st.st_uid, st.st_gid),
        is_dir=stat.S_ISDIR(st.st_mode),
    )


def _walk(top: Path, include_top: bool) -> Iterator[Path]:
    if not top.is_dir():
        return
    if include_top:
        yield top
    for dirpath, dirnames, filenames in os.walk(top):
        dirnames.sort()
        base = Path(dirpath)
        for name in dirnames:
            yield base / name
        for name in sorted(filenames):
            yield base / name


@functools.lru_cache(maxsize=64)
def _parse_cached(
    component: str, args: tuple[str, ...], version: Version | None = None
) -> ParsedArgs:
    return parse_args(component, args, flag_table_at(component, version))


@dataclass
class NodeSnapshot:
    """What a node says now. Built once per scan; evaluation only reads it."""

    settings: Settings
    manifests: dict[str, Manifest] = field(default_factory=dict)
    manifest_errors: dict[str, InputError] = field(default_factory=dict)
    kubelet_config: dict[str, Any] | None = None
    kubelet_config_error: InputError | None = None
    #: The kubelet config file judged: the one the kubelet's --config names, else the layout's.
    kubelet_config_path: Path | None = None
    #: The `*.conf` files of the kubelet's --config-dir, in the order the kubelet merges them.
    kubelet_dropins: tuple[tuple[Path, dict[str, Any]], ...] = ()
    #: The config file etcd reads instead of its flags ("file": the manifest's, "live": the
    #: running etcd's), or why it cannot be read; no entry when etcd reads flags.
    etcd_files: dict[str, EtcdConfigFile | InputError] = field(default_factory=dict)
    kubelet_file_args: tuple[str, ...] = ()
    processes: dict[str, LiveProcess] = field(default_factory=dict)
    #: Processes named like a component that are not it (owner, starter): never judged.
    ignored_processes: tuple[IgnoredProcess, ...] = ()
    live: bool = False  # whether live processes were looked for
    #: File-check targets that cannot be judged (an unreadable manifests directory, a kubelet
    #: config the kubelet is configured to read but that is missing).
    target_errors: dict[str, InputError] = field(default_factory=dict)
    #: Whether anything of a Kubernetes node was found (see `found_problem`).
    found: bool = True
    #: Files the kubelet runs from the manifests directory besides the components' own.
    strays: tuple[StrayFile, ...] = ()
    #: Each component's version (image tags, the running kubelet, the config's [versions]).
    versions: NodeVersions = UNKNOWN

    @property
    def layout(self) -> Layout:
        return self.settings.layout

    def live_flags(self, component: str) -> ParsedArgs | None:
        proc = self.processes.get(component)
        return _parse_cached(component, proc.args, self.versions.of(component)) if proc else None

    def kubelet_flags(self, live: bool) -> ParsedArgs | None:
        if live:
            return self.live_flags("kubelet")
        if not self.kubelet_file_args:
            return None
        return _parse_cached("kubelet", self.kubelet_file_args, self.versions.of("kubelet"))

    def _flag_path(self, component: str, flag: str) -> str | None:
        live = self.live_flags(component)
        if live and live.get(flag):
            return live.get(flag)
        manifest = self.manifests.get(component)
        if manifest is not None:
            return manifest.flags.get(flag)
        return None

    def kubelet_config_source(self) -> tuple[Path, str | None]:
        """The config file the kubelet reads, and what names it (None: nothing does, the
        layout's default is assumed). The running kubelet's command line comes first."""
        named = self._kubelet_names("--config")
        return named if named is not None else (self.layout.kubelet_config, None)

    def kubelet_config_dir_source(self) -> tuple[Path, str] | None:
        """The drop-in directory the kubelet's --config-dir names, and what names it."""
        return self._kubelet_names("--config-dir")

    def _kubelet_names(self, flag: str) -> tuple[Path, str] | None:
        lay = self.layout
        for live, named_by in (
            (True, f"the running kubelet's {flag}"),
            (False, f"{flag} in {lay.kubelet_service} or {lay.kubelet_flags_env}"),
        ):
            flags = self.kubelet_flags(live)
            named = flags.get(flag) if flags else None
            if named and named.startswith("/"):
                return lay.host_path(named), named_by
        return None

    def kubelet_view(self, live: bool) -> KubeletConfigView:
        """The config files behind the kubelet's file (or running) command line. A running
        kubelet without --config reads no config file, whatever lies on disk."""
        base: dict[str, Any] | None = self.kubelet_config
        dropins = self.kubelet_dropins
        flags = self.kubelet_flags(live) if live else None
        if flags is not None:
            base = base if flags.get("--config") else None
            dropins = dropins if flags.get("--config-dir") else ()
        return KubeletConfigView(base, dropins, self.versions.of("kubelet"))

    def found_problem(self) -> str | None:
        """One line saying that no Kubernetes node is here, or None when one is."""
        if self.found:
            return None
        lay = self.layout
        where = "on this host" if lay.root == Path("/") else f"under --root {lay.root}"
        running = ", no running component" if self.live else ""
        return (
            f"no Kubernetes node found {where}: no manifests directory {lay.manifests_dir}, "
            f"no kubelet config, no kubelet service files{running}"
        )

    def target_files(self, target: str) -> list[Path]:
        """Existing files a file check's target names on this node."""
        lay = self.layout
        simple = {
            "apiserver-manifest": [lay.manifest("kube-apiserver")],
            "controller-manager-manifest": [lay.manifest("kube-controller-manager")],
            "scheduler-manifest": [lay.manifest("kube-scheduler")],
            "etcd-manifest": [lay.manifest("etcd")],
            "admin-kubeconfigs": [lay.admin_conf, lay.super_admin_conf],
            "scheduler-kubeconfig": [lay.scheduler_conf],
            "controller-manager-kubeconfig": [lay.controller_manager_conf],
            "kubelet-kubeconfig": [lay.kubelet_kubeconfig],
            "proxy-kubeconfig": [lay.proxy_kubeconfig],
            "kubelet-service": [lay.kubelet_service],
            "kubelet-config": [self.kubelet_config_path or lay.kubelet_config],
        }
        if target in simple:
            candidates = simple[target]
        elif target == "kubelet-client-ca":
            candidates = [self._kubelet_client_ca()]
        elif target == "etcd-data-dir":
            data_dir = self._flag_path("etcd", "--data-dir")
            etcd_file = self.etcd_files.get("live") or self.etcd_files.get("file")
            if isinstance(etcd_file, EtcdConfigFile):  # etcd ignores its flags then
                data_dir = etcd_file.lookup("--data-dir")[0]
            manifest = self.manifests.get("etcd")
            if data_dir and manifest is not None and manifest.mounts:
                # The path is etcd's, inside its container: the host has it where mounted.
                data_dir = manifest.host_path_of(data_dir)
                if data_dir is None:
                    return []
            candidates = [lay.host_path(data_dir) if data_dir else lay.etcd_data_dir]
        elif target == "cni-files":
            candidates = [
                p
                for top in (lay.cni_conf_dir, lay.cni_networks_dir)
                for p in _walk(top, include_top=False)
                if not p.is_dir()
            ]
        elif target == "pki-tree":
            candidates = list(_walk(lay.pki_dir, include_top=True))
        elif target in {"pki-certs", "pki-keys"}:
            suffix = ".crt" if target == "pki-certs" else ".key"
            candidates = [p for p in _walk(lay.pki_dir, False) if p.name.endswith(suffix)]
        else:
            raise ValueError(f"unknown target {target}")
        # Under --root, a file reached through a link out of the tree is the host's: exit 2.
        return [lay.confined(p) for p in candidates if os.path.lexists(p)]

    def _kubelet_client_ca(self) -> Path:
        for live in (True, False):
            flags = self.kubelet_flags(live)
            if flags and flags.get("--client-ca-file"):
                return self.layout.host_path(flags.get("--client-ca-file") or "")
        cfg = self.kubelet_config or {}
        ca = ((cfg.get("authentication") or {}).get("x509") or {}).get("clientCAFile")
        return self.layout.host_path(ca) if ca else self.layout.ca_cert


def _present(path: Path, what: str) -> bool:
    """Whether `path` exists (a symlink counts); InputError when that cannot be told, e.g. the
    directory holding it is unreadable or not a directory."""
    try:
        path.lstat()
    except FileNotFoundError:
        return False
    except OSError as exc:
        raise InputError(path, f"cannot read {what}: {exc.strerror}") from None
    return True


def _present_quietly(path: Path) -> bool:
    """Whether anything is at `path`, an unreadable parent counting as something there."""
    try:
        return _present(path, "file")
    except InputError:
        return True


def _manifests_dir_error(directory: Path) -> InputError | None:
    """Why the manifests directory cannot be listed (None when it can, or is absent)."""
    try:
        os.listdir(directory)
    except FileNotFoundError:
        return None
    except NotADirectoryError:
        return InputError(directory, "manifests directory is not a directory")
    except OSError as exc:
        return InputError(directory, f"cannot read manifests directory: {exc.strerror}")
    return None


_MANIFEST_TARGETS = (
    "apiserver-manifest",
    "controller-manager-manifest",
    "scheduler-manifest",
    "etcd-manifest",
)


def _read_kubelet_config(snap: NodeSnapshot) -> None:
    """The config file the kubelet reads; one it is told to read but that is missing is an
    error: judging the kubelet on defaults would pass checks its real config may fail."""
    path, named_by = snap.kubelet_config_source()
    snap.layout.confined(path)
    snap.kubelet_config_path = path
    try:
        if _present(path, "kubelet config"):
            snap.kubelet_config = read_kubelet_config(path)
        elif named_by is not None:
            raise InputError(path, f"kubelet config not found, although {named_by} names it")
    except InputError as exc:
        snap.kubelet_config_error = exc
        if not _present_quietly(path):
            snap.target_errors["kubelet-config"] = exc


#: Bounds on the kubelet's --config-dir walk (a real one holds a handful of files).
MAX_DROPINS = 256
MAX_DROPIN_DEPTH = 16


def _sorted_entries(directory: Path) -> list[os.DirEntry[str]]:
    try:
        with os.scandir(directory) as entries:
            return sorted(entries, key=lambda e: e.name)
    except OSError as exc:
        problem = f"cannot read kubelet config directory: {exc.strerror}"
        raise InputError(directory, problem) from None


def read_kubelet_dropins(directory: Path) -> tuple[tuple[Path, dict[str, Any]], ...]:
    """The `*.conf` files of a --config-dir in the kubelet's merge order: a walk in lexical
    order that enters each subdirectory where its name sorts (Go's filepath.WalkDir)."""
    found: list[tuple[Path, dict[str, Any]]] = []
    pending = [iter(_sorted_entries(directory))]
    while pending:
        entry = next(pending[-1], None)
        if entry is None:
            pending.pop()
        elif entry.is_dir(follow_symlinks=False):
            if len(pending) >= MAX_DROPIN_DEPTH:
                raise InputError(Path(entry.path), "kubelet config directory nested too deep")
            pending.append(iter(_sorted_entries(Path(entry.path))))
        elif entry.name.endswith(".conf"):  # the kubelet ignores every other file
            if len(found) >= MAX_DROPINS:
                raise InputError(directory, f"more than {MAX_DROPINS} kubelet drop-ins")
            path = Path(entry.path)
            doc = load_yaml_document(read_text_file(path, "kubelet drop-in"), path, "drop-in")
            if not isinstance(doc, dict) or doc.get("kind") != "KubeletConfiguration":
                raise InputError(path, "kubelet drop-in is not a KubeletConfiguration")
            found.append((path, doc))
    return tuple(found)


def _read_kubelet_dropins(snap: NodeSnapshot) -> None:
    """The drop-ins of the directory the kubelet's --config-dir names. The kubelet does not
    start when that directory or a drop-in in it cannot be read: such a kubelet is ERROR."""
    named = snap.kubelet_config_dir_source()
    if named is None:
        return
    directory, named_by = named
    snap.layout.confined(directory)
    try:
        if not _present(directory, "kubelet config directory"):
            raise InputError(
                directory, f"kubelet config directory not found, although {named_by} names it"
            )
        snap.kubelet_dropins = read_kubelet_dropins(directory)
    except InputError as exc:
        snap.kubelet_config_error = snap.kubelet_config_error or exc


def _read_etcd_file(path: Path, named: str, named_by: str) -> EtcdConfigFile | InputError:
    try:
        doc = load_yaml_document(read_text_file(path, "etcd config file"), path, "etcd config")
    except InputError as exc:
        return exc
    if not isinstance(doc, dict):
        return InputError(path, "etcd config file is not a YAML mapping")
    return EtcdConfigFile(path, named, named_by, doc)


def _read_etcd_files(snap: NodeSnapshot) -> None:
    """The config file each etcd command line (manifest, running process) makes etcd read."""
    sources: dict[str, tuple[dict[str, str], dict[str, str]]] = {}
    manifest = snap.manifests.get("etcd")
    if manifest is not None:
        sources["file"] = (manifest.flags.values, manifest.env)
    proc = snap.processes.get("etcd")
    live = snap.live_flags("etcd")
    if proc is not None and live is not None:
        sources["live"] = (live.values, proc.env)
    read: dict[Path, EtcdConfigFile | InputError] = {}
    for which, (flags, env) in sources.items():
        named = etcd_config_named(flags, env)
        if named is None:
            continue
        text, named_by = named
        if not text.startswith("/"):
            problem = f"etcd's {named_by} is a relative path; cis-tui cannot tell what etcd reads"
            snap.etcd_files[which] = InputError(Path(text), problem)
            continue
        path = snap.layout.confined(snap.layout.host_path(text))
        if path not in read:
            read[path] = _read_etcd_file(path, text, named_by)
        snap.etcd_files[which] = read[path]


def with_kubelet_config(settings: Settings) -> Settings:
    """`settings` whose layout names the kubelet config file the kubelet really reads: the one
    its --config names on the running kubelet's command line, else in its unit and
    kubeadm-flags.env, else the layout's own. Scan, plan, backups and restore then judge, edit
    and restore that one file (a kubelet started with --config /etc/kubernetes/kubelet.yaml)."""
    layout = settings.layout
    candidates: list[tuple[str, ...]] = []
    if not settings.has_root_override:
        from cis_tui.audit.processes import scan_processes

        found = scan_processes(("kubelet",), settings.process_root, identity=settings.identity)
        if (proc := found.live.get("kubelet")) is not None:
            candidates.append(proc.args)
    candidates.append(read_kubelet_file_args(layout))
    for args in candidates:
        named = _parse_cached("kubelet", tuple(args)).get("--config")
        if named and named.startswith("/"):
            path = layout.host_path(named)
            if path == layout.kubelet_config:
                return settings
            layout.confined(path)
            return replace(settings, layout=replace(layout, kubelet_config=path))
    return settings


def take_snapshot(settings: Settings, live: bool | None = None) -> NodeSnapshot:
    """Read the node. `live` defaults to True unless the node is a `--root` copy."""
    look_live = (not settings.has_root_override) if live is None else live
    # Under --root, a symlink out of the tree would make cis-tui judge (and edit) host files.
    layout = settings.layout
    for path in (
        layout.manifests_dir,
        *(layout.manifest(c) for c in STATIC_COMPONENTS),
        layout.kubelet_config,
        layout.pki_dir,
    ):
        layout.confined(path)
    snap = NodeSnapshot(settings=settings, live=look_live)
    dir_error = _manifests_dir_error(layout.manifests_dir)
    if dir_error is not None:  # every manifest check is ERROR, none SKIP
        snap.manifest_errors = dict.fromkeys(STATIC_COMPONENTS, dir_error)
        snap.target_errors = dict.fromkeys(_MANIFEST_TARGETS, dir_error)
    for component in STATIC_COMPONENTS if dir_error is None else ():
        path = settings.layout.manifest(component)
        try:
            if _present(path, "manifest"):
                snap.manifests[component] = read_manifest(path, component)
        except InputError as exc:
            snap.manifest_errors[component] = exc
    if dir_error is None:
        snap.strays = tuple(find_strays(layout)) + tuple(
            refused_pod(m) for m in snap.manifests.values() if m.refused
        )
    snap.kubelet_file_args = read_kubelet_file_args(settings.layout)
    if look_live:
        scan = scan_processes(
            (*STATIC_COMPONENTS, "kubelet", "kube-proxy"),
            settings.process_root,
            env_of=("etcd",),
            identity=settings.identity,
        )
        snap.processes, snap.ignored_processes = scan.live, scan.ignored
    _read_kubelet_config(snap)  # after the processes: the running kubelet's --config counts
    _read_kubelet_dropins(snap)
    _read_etcd_files(snap)
    kubelet = snap.processes.get("kubelet")
    snap.versions = read_versions(
        {c: m.image for c, m in snap.manifests.items()},
        kubelet,
        settings.versions,
        snap.manifest_errors,
        # a kubelet that is not running: ask the binary its unit starts (never in a --root tree)
        read_kubelet_unit_binary(layout) if look_live and kubelet is None else None,
    )
    snap.found = bool(snap.processes) or any(
        _present_quietly(p)
        for p in (
            layout.manifests_dir,
            snap.kubelet_config_path or layout.kubelet_config,
            layout.kubelet_service,
            layout.kubelet_flags_env,
        )
    )
    return snap
