"""Static pods as the kubelet reads them: which files count, how a pod is keyed and hashed.

kubelet semantics kept here (pkg/kubelet/config/file.go): every non-dot regular file in the
directory is a manifest, whatever its extension; pods are keyed by namespace/name; a relist
walks the files in sorted order, so a later file with the same pod name wins (a stray
`kube-apiserver.yaml.bak` beats `kube-apiserver.yaml`); an inotify event makes the written
file win until the next relist; deleting a file removes the pod it last defined. A pod's
identity is a hash of its content and its file path, so rewriting identical content (or
`touch`) restarts nothing.
"""

from __future__ import annotations

import hashlib
import json
import os
import stat
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ruamel.yaml.error import YAMLError

from cis_tui import safeyaml

MAX_MANIFEST_BYTES = 10 * 1 << 20  # the kubelet's maxConfigLength


class ManifestError(Exception):
    """A file in the manifests directory that is not a usable pod."""


@dataclass(frozen=True)
class Probe:
    """An httpGet probe with its named port resolved, and the kubelet's timings for it
    (Kubernetes' defaults where the manifest gives none)."""

    kind: str  # startupProbe | readinessProbe | livenessProbe
    scheme: str
    host: str
    port: int
    path: str
    headers: tuple[tuple[str, str], ...] = ()  # httpHeaders
    initial_delay: float = 0.0
    period: float = 10.0
    timeout: float = 1.0
    failure_threshold: int = 3
    success_threshold: int = 1

    @property
    def url(self) -> str:
        return f"{self.scheme.lower()}://{self.host}:{self.port}{self.path}"

    @property
    def name(self) -> str:
        """`liveness`, `readiness` or `startup`, as the kubelet names probes in its events."""
        return self.kind.removesuffix("Probe")


@dataclass(frozen=True)
class Mount:
    """A volumeMount resolved to its hostPath volume."""

    name: str
    mount_path: str
    host_path: str | None  # None: not a hostPath volume (or no such volume)
    host_type: str
    read_only: bool


@dataclass(frozen=True)
class PodSpec:
    """The parts of a static pod the sandbox runs."""

    file: Path
    namespace: str
    name: str
    container: str
    command: tuple[str, ...]
    args: tuple[str, ...]
    mounts: tuple[Mount, ...]
    volumes: Mapping[str, tuple[str, str]]  # name -> (hostPath, type)
    probes: tuple[Probe, ...]
    grace_seconds: float | None
    uid: str
    warnings: tuple[str, ...] = field(default=())
    #: The container's image: a stand-in plays the version in its tag.
    image: str = ""

    @property
    def key(self) -> str:
        return f"{self.namespace}/{self.name}"

    @property
    def argv(self) -> tuple[str, ...]:
        """The container's command followed by its args, as the runtime execs them."""
        return self.command + self.args

    @property
    def health_probe(self) -> Probe | None:
        """The probe a health gate uses: startupProbe, then readinessProbe, then livenessProbe."""
        return self.probes[0] if self.probes else None

    def mounts_json(self) -> str:
        """The container's view of the host, passed to a stand-in (a real one sees only mounts)."""
        return json.dumps(
            [
                {"mountPath": m.mount_path, "hostPath": m.host_path, "readOnly": m.read_only}
                for m in self.mounts
                if m.host_path is not None
            ]
        )


def _str_list(value: Any, what: str) -> tuple[str, ...]:
    if value is None:
        return ()
    if not isinstance(value, list) or not all(isinstance(v, (str, int, float)) for v in value):
        raise ManifestError(f"{what} must be a list of strings")
    return tuple(str(v) for v in value)


def _probe(kind: str, raw: Any, ports: Mapping[str, int]) -> Probe | None:
    if not isinstance(raw, dict) or not isinstance(raw.get("httpGet"), dict):
        return None
    get = raw["httpGet"]
    port = get.get("port")
    if isinstance(port, str) and not port.isdigit():
        if port not in ports:
            return None
        port = ports[port]
    try:
        number = int(port)
    except (TypeError, ValueError):
        return None
    headers = tuple(
        (str(h["name"]), str(h.get("value", "")))
        for h in get.get("httpHeaders") or []
        if isinstance(h, dict) and h.get("name")
    )
    return Probe(
        kind=kind,
        scheme=str(get.get("scheme", "HTTP")).upper(),
        host=str(get.get("host", "127.0.0.1")),
        port=number,
        path=str(get.get("path", "/")),
        headers=headers,
        initial_delay=_timing(raw, "initialDelaySeconds", 0),
        period=_timing(raw, "periodSeconds", 10),
        timeout=_timing(raw, "timeoutSeconds", 1),
        failure_threshold=int(_timing(raw, "failureThreshold", 3)),
        # liveness and startup probes must have 1 (the API server refuses anything else)
        success_threshold=int(_timing(raw, "successThreshold", 1))
        if kind == "readinessProbe"
        else 1,
    )


def _timing(raw: Mapping[str, Any], key: str, default: int) -> float:
    """A probe field the API server would default: absent, zero or invalid gives `default`."""
    value = raw.get(key)
    if isinstance(value, bool) or not isinstance(value, (int, float)) or value <= 0:
        return float(default)
    return float(value)


def pod_from_data(data: Any, file: Path) -> PodSpec:
    """Validate a decoded manifest as a Pod and extract what the agent runs."""
    if not isinstance(data, dict):
        raise ManifestError("not a YAML mapping")
    if data.get("kind") != "Pod":
        raise ManifestError(f"kind is {data.get('kind')!r}, not Pod")
    meta = data.get("metadata")
    if not isinstance(meta, dict) or not isinstance(meta.get("name"), str) or not meta["name"]:
        raise ManifestError("metadata.name is missing")
    spec = data.get("spec")
    if not isinstance(spec, dict):
        raise ManifestError("spec is missing")
    containers = spec.get("containers")
    if not isinstance(containers, list) or not containers or not isinstance(containers[0], dict):
        raise ManifestError("spec.containers is empty")
    warnings: list[str] = []
    if len(containers) > 1:
        warnings.append(f"{len(containers)} containers: only the first one runs in the sandbox")
    c = containers[0]
    command = _str_list(c.get("command"), "command")
    if not command:
        raise ManifestError("the container has no command (the sandbox has no images)")
    args = _str_list(c.get("args"), "args")

    volumes: dict[str, tuple[str, str]] = {}
    for vol in spec.get("volumes") or []:
        if isinstance(vol, dict) and isinstance(vol.get("hostPath"), dict):
            hp = vol["hostPath"]
            volumes[str(vol.get("name"))] = (str(hp.get("path", "")), str(hp.get("type") or ""))
    mounts: list[Mount] = []
    for m in c.get("volumeMounts") or []:
        if not isinstance(m, dict):
            continue
        vol_name = str(m.get("name"))
        host = volumes.get(vol_name)
        mounts.append(
            Mount(
                name=vol_name,
                mount_path=str(m.get("mountPath", "")),
                host_path=host[0] if host else None,
                host_type=host[1] if host else "",
                read_only=bool(m.get("readOnly", False)),
            )
        )
    ports: dict[str, int] = {}
    for p in c.get("ports") or []:
        if isinstance(p, dict) and isinstance(p.get("name"), str):
            try:
                ports[p["name"]] = int(str(p.get("containerPort")))
            except (TypeError, ValueError):
                continue
    probes = tuple(
        probe
        for kind in ("startupProbe", "readinessProbe", "livenessProbe")
        if (probe := _probe(kind, c.get(kind), ports)) is not None
    )
    grace = spec.get("terminationGracePeriodSeconds")
    canonical = json.dumps(data, sort_keys=True, default=str)
    uid = hashlib.sha256(f"{canonical}\nfile:{file}".encode()).hexdigest()[:16]
    return PodSpec(
        file=file,
        namespace=str(meta.get("namespace") or "default"),
        name=meta["name"],
        container=str(c.get("name", meta["name"])),
        command=command,
        args=args,
        mounts=tuple(mounts),
        volumes=volumes,
        probes=probes,
        grace_seconds=float(grace) if isinstance(grace, (int, float)) else None,
        uid=uid,
        warnings=tuple(warnings),
        image=str(c.get("image") or ""),
    )


def _plain(node: Any) -> Any:
    """ruamel's safe loader already gives plain containers; normalise keys to str."""
    if isinstance(node, dict):
        return {str(k): _plain(v) for k, v in node.items()}
    if isinstance(node, list):
        return [_plain(v) for v in node]
    return node


def load_pod(path: Path) -> PodSpec:
    """Read one manifest file (YAML or JSON) as the kubelet would."""
    try:
        st = path.stat()
        if st.st_size > MAX_MANIFEST_BYTES:
            raise ManifestError("larger than the kubelet's 10 MB limit")
        raw = path.read_bytes()
    except OSError as exc:
        raise ManifestError(exc.strerror or str(exc)) from None
    try:
        docs = safeyaml.load_all(raw.decode("utf-8"), MAX_MANIFEST_BYTES)  # no alias bombs
    except (YAMLError, UnicodeDecodeError, ValueError) as exc:
        raise ManifestError(f"invalid YAML: {str(exc).splitlines()[0]}") from None
    docs = [d for d in docs if d is not None]
    if len(docs) != 1:
        raise ManifestError("expected exactly one YAML document")
    return pod_from_data(_plain(docs[0]), path)


def manifest_files(directory: Path) -> list[Path]:
    """The kubelet's `[^.]*` glob: every non-dot regular file (symlinks followed), sorted."""
    try:
        names = sorted(os.listdir(directory))
    except OSError:
        return []
    out = []
    for name in names:
        if name.startswith("."):
            continue
        p = directory / name
        try:
            if stat.S_ISREG(p.stat().st_mode):
                out.append(p)
        except OSError:
            continue
    return out


@dataclass
class PodStore:
    """The kubelet file source's UndeltaStore, keyed by namespace/name."""

    pods: dict[str, PodSpec] = field(default_factory=dict)
    key_of_file: dict[Path, str] = field(default_factory=dict)

    def replace(self, specs: Iterable[PodSpec]) -> None:
        """A relist: files in sorted order, a later file with the same key wins."""
        self.pods = {}
        self.key_of_file = {}
        for spec in sorted(specs, key=lambda s: str(s.file)):
            self.pods[spec.key] = spec
            self.key_of_file[spec.file] = spec.key

    def add(self, spec: PodSpec) -> None:
        """A create/modify event: this file's pod wins until the next relist."""
        self.pods[spec.key] = spec
        self.key_of_file[spec.file] = spec.key

    def remove_file(self, file: Path) -> None:
        """A delete/rename-away event removes the pod this file last defined."""
        key = self.key_of_file.pop(file, None)
        if key is not None:
            self.pods.pop(key, None)


def prepare_host_paths(spec: PodSpec, inside: Path) -> None:
    """Check and create hostPath volumes like the kubelet's hostPath type checker.

    Creation is refused outside `inside` (the sandbox never touches the host).
    Raises ManifestError with a kubelet-style message when the pod cannot start.
    """

    def allowed(p: Path) -> bool:
        return p == inside or inside in p.parents

    for name, (host, vtype) in sorted(spec.volumes.items()):
        p = Path(host)
        prefix = f'MountVolume.SetUp failed for volume "{name}" : '
        if not p.is_absolute():
            raise ManifestError(f"{prefix}hostPath {host!r} is not absolute")
        exists = p.exists()
        if vtype in ("DirectoryOrCreate", ""):
            if exists:
                if vtype and not p.is_dir():
                    raise ManifestError(
                        f"{prefix}hostPath type check failed: {host} is not a directory"
                    )
                continue
            if not allowed(p):
                raise ManifestError(f"{prefix}refusing to create {host} outside the sandbox")
            p.mkdir(mode=0o755, parents=True, exist_ok=True)
        elif vtype == "FileOrCreate":
            if exists:
                if not p.is_file():
                    raise ManifestError(f"{prefix}hostPath type check failed: {host} is not a file")
                continue
            if not allowed(p):
                raise ManifestError(f"{prefix}refusing to create {host} outside the sandbox")
            if not p.parent.is_dir():
                raise ManifestError(f"{prefix}open {host}: no such file or directory")
            fd = os.open(p, os.O_WRONLY | os.O_CREAT, 0o644)
            os.close(fd)
        elif vtype == "Directory":
            if not p.is_dir():
                raise ManifestError(
                    f"{prefix}hostPath type check failed: {host} is not a directory"
                )
        elif vtype == "File":
            if not p.is_file():
                raise ManifestError(f"{prefix}hostPath type check failed: {host} is not a file")
        elif vtype in ("Socket", "CharDevice", "BlockDevice"):
            if not exists:
                raise ManifestError(f"{prefix}hostPath type check failed: {host} does not exist")
        else:
            raise ManifestError(f'{prefix}unknown hostPath type "{vtype}"')
