"""Node layout: where a node keeps its files, the TOML config that overrides them, and state dirs.

Defaults are kubeadm's (the same paths kube-bench substitutes). `--root DIR` resolves every
layout path, and every absolute host path found in a manifest, under DIR.

The health gate's stability window (`[health] stable_seconds`): by default it covers the
kubelet's first liveness judgement of the new process, the manifest's livenessProbe
initialDelaySeconds + periodSeconds (20 s for kubeadm's API server), or 5 s for a component
without a liveness probe (the kubelet itself). The key overrides that default either for every
component (`stable_seconds = 1.0`) or for some of them, as a table like `[health.timeouts]`:

    [health.stable_seconds]
    kube-apiserver = 30
    kubelet = 10
"""

from __future__ import annotations

import os
import pwd
import re
import sys
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import Any

import platformdirs

from cis_tui.errors import UserError
from cis_tui.keymap import key_problem, key_string
from cis_tui.userfiles import read_bounded
from cis_tui.waivers import Waiver, parse_waivers

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - exercised on Python 3.10 only
    import tomli as tomllib

APP_NAME = "cis-tui"
CONFIG_ENV = "CIS_TUI_CONFIG"
STATE_ENV = "CIS_TUI_STATE_DIR"
#: A config file is a few KB; past this it is not one.
_CONFIG_LIMIT = 1 << 20

#: Control-plane components that run as static pods, in the engine's transaction order.
STATIC_COMPONENTS: tuple[str, ...] = (
    "etcd",
    "kube-apiserver",
    "kube-controller-manager",
    "kube-scheduler",
)
COMPONENTS: tuple[str, ...] = (*STATIC_COMPONENTS, "kubelet")


#: Stability window of a component whose manifest has no liveness probe (the kubelet).
DEFAULT_STABLE_SECONDS = 5.0


@dataclass(frozen=True)
class HealthSettings:
    """Health-gate tuning (DESIGN section 6, step 8)."""

    timeouts: dict[str, float] = field(
        default_factory=lambda: {
            "etcd": 180.0,
            "kube-apiserver": 180.0,
            "kube-controller-manager": 120.0,
            "kube-scheduler": 120.0,
            "kubelet": 60.0,
        }
    )
    stable_successes: int = 3
    #: The stability window for every component (None: from each manifest's livenessProbe) ...
    stable_seconds: float | None = None
    #: ... or for some components only (`[health.stable_seconds]` as a table).
    stable_seconds_for: dict[str, float] = field(default_factory=dict)
    poll_initial: float = 0.1
    poll_max: float = 1.0
    #: A client certificate signed by the cluster CA. No probe is judged with it: the kubelet's
    #: probes carry no credentials (kubeadm#798). Kept so that existing configs still load.
    client_cert: Path | None = None
    client_key: Path | None = None

    def timeout_for(self, component: str) -> float:
        return self.timeouts.get(component, 120.0)

    def stable_window(self, component: str, liveness: float | None) -> float:
        """The window for `component`: configured, else `liveness` (the manifest's
        initialDelaySeconds + periodSeconds), else DEFAULT_STABLE_SECONDS."""
        if component in self.stable_seconds_for:
            return self.stable_seconds_for[component]
        if self.stable_seconds is not None:
            return self.stable_seconds
        return DEFAULT_STABLE_SECONDS if liveness is None else liveness


#: Parents that start a static pod's container: the runtime's shims (and the kubelet).
DEFAULT_RUNTIMES: tuple[str, ...] = (
    "containerd-shim-runc-v2",
    "containerd-shim",
    "conmon",
    "crio-conmon",
    "kubelet",
)


@dataclass(frozen=True)
class ProcessIdentity:
    """What makes a process a component rather than something with its name (`[processes]`).

    It must be owned by the component's user (`user`, root by default), and started by the
    container runtime: its parent is named in `runtimes` (the kubelet's own parent in
    `kubelet_parents`), or is the process whose PID a file in `runtime_pid_files` holds (a
    sandbox agent), that parent owned by root or the same user; or its cgroup path starts with
    one of `cgroups` (the kubelet's: `kubelet_cgroups`). For example:

        [processes]
        user = "root"                # or a uid, or a table per component
        runtimes = ["containerd-shim-runc-v2", "containerd-shim", "conmon", "crio-conmon"]
        cgroups = ["kubepods", "kubepods.slice"]
        kubelet_parents = ["systemd"]
        kubelet_cgroups = ["system.slice/kubelet.service"]
        runtime_pid_files = []       # a sandbox names its agent's PID file here
    """

    uid: int = 0
    #: Per-component owners (`[processes.user]` as a table), e.g. a rootless control plane.
    uids: dict[str, int] = field(default_factory=dict)
    runtimes: tuple[str, ...] = DEFAULT_RUNTIMES
    runtime_pid_files: tuple[Path, ...] = ()
    cgroups: tuple[str, ...] = ("kubepods", "kubepods.slice")
    kubelet_parents: tuple[str, ...] = ("systemd",)
    kubelet_cgroups: tuple[str, ...] = ("system.slice/kubelet.service",)

    def uid_for(self, component: str) -> int:
        return self.uids.get(component, self.uid)

    def parents_for(self, component: str) -> tuple[str, ...]:
        return self.kubelet_parents if component == "kubelet" else self.runtimes

    def cgroups_for(self, component: str) -> tuple[str, ...]:
        return self.kubelet_cgroups if component == "kubelet" else self.cgroups


@dataclass(frozen=True)
class Layout:
    """Every path cis-tui reads or writes on a node; all absolute."""

    manifests_dir: Path = Path("/etc/kubernetes/manifests")
    kubelet_config: Path = Path("/var/lib/kubelet/config.yaml")
    kubelet_kubeconfig: Path = Path("/etc/kubernetes/kubelet.conf")
    kubelet_service: Path = Path("/etc/systemd/system/kubelet.service.d/10-kubeadm.conf")
    kubelet_flags_env: Path = Path("/var/lib/kubelet/kubeadm-flags.env")
    pki_dir: Path = Path("/etc/kubernetes/pki")
    admin_conf: Path = Path("/etc/kubernetes/admin.conf")
    super_admin_conf: Path = Path("/etc/kubernetes/super-admin.conf")
    scheduler_conf: Path = Path("/etc/kubernetes/scheduler.conf")
    controller_manager_conf: Path = Path("/etc/kubernetes/controller-manager.conf")
    proxy_kubeconfig: Path = Path("/etc/kubernetes/proxy.conf")
    etcd_data_dir: Path = Path("/var/lib/etcd")
    cni_conf_dir: Path = Path("/etc/cni/net.d")
    cni_networks_dir: Path = Path("/var/lib/cni/networks")
    # Where remediations put companion files (kubeadm-style locations).
    audit_policy_file: Path = Path("/etc/kubernetes/audit-policy.yaml")
    audit_log_dir: Path = Path("/var/log/kubernetes/audit")
    encryption_config: Path = Path("/etc/kubernetes/enc/encryption-config.yaml")
    admission_config: Path = Path("/etc/kubernetes/admission/admission-config.yaml")
    #: File name of each component's static pod manifest inside manifests_dir.
    manifest_names: dict[str, str] = field(
        default_factory=lambda: {c: f"{c}.yaml" for c in STATIC_COMPONENTS}
    )
    #: The tree every host path is resolved under (`--root`); "/" on a live node.
    root: Path = Path("/")

    def manifest(self, component: str) -> Path:
        return self.manifests_dir / self.manifest_names[component]

    @property
    def ca_cert(self) -> Path:
        return self.pki_dir / "ca.crt"

    def host_path(self, path: str | Path) -> Path:
        """A host path as named in a manifest or flag, resolved under the root."""
        p = Path(path)
        if self.root == Path("/") or not p.is_absolute():
            return p
        return self.root / p.relative_to("/")

    def confined(self, path: Path) -> Path:
        """`path`, refused (UserError, exit 2) when a symlink on its way leads out of the
        `--root` tree: a copied node must not make cis-tui read or write the host's files."""
        if self.root == Path("/"):
            return path
        real = Path(os.path.realpath(path))
        if real != self.root and not real.is_relative_to(self.root):
            raise UserError(
                f"a symlink leads out of the --root tree {self.root} (to {real}); refusing", path
            )
        return path

    def node_path(self, path: Path) -> str:
        """A layout path as the node itself names it (inside manifests), i.e. without the root."""
        if self.root == Path("/"):
            return str(path)
        return "/" + str(path.relative_to(self.root))

    def under_root(self) -> Layout:
        """This layout with every path moved under `root` (for `--root DIR`)."""
        if self.root == Path("/"):
            return self
        changes = {
            f.name: self.host_path(getattr(self, f.name))
            for f in fields(self)
            if f.type in ("Path", Path) and f.name != "root"
        }
        return replace(self, **changes)


@dataclass(frozen=True)
class RetentionSettings:
    """`[backups]`: which backups are kept. Per file, the newest `keep_per_file` and all younger
    than `keep_days` stay; so do pending ones, an open transaction's, and the newest committed
    one of each file. Applied after each apply that commits (`prune_after_commit`) and by
    `backups prune` without `--keep`."""

    keep_per_file: int = 10
    keep_days: float = 30.0
    prune_after_commit: bool = True


@dataclass(frozen=True)
class EventLogSettings:
    """`[events]`: events.jsonl in the log directory is rotated past `max_bytes`, keeping
    `keep` older files (events.jsonl.1 is the newest of them)."""

    max_bytes: int = 10 << 20
    keep: int = 3


PERSIST_MODES = ("auto", "kubeadm-config", "patches", "off")


@dataclass(frozen=True)
class PersistSettings:
    """`[persist]`: how a fix is made to survive `kubeadm upgrade`. `auto` is kubeadm-config on
    a kubeadm node whose API server answers with admin.conf, else off (and the plan says why)."""

    mode: str = "auto"
    #: kubeadm patch files, for clusters that pass `--patches DIR` to kubeadm.
    patches_dir: Path = Path("/etc/kubernetes/patches")
    #: The kubeconfig whose client certificate reads and writes kubeadm's ConfigMaps.
    kubeconfig: Path | None = None  # None: the layout's admin.conf


@dataclass(frozen=True)
class Settings:
    """Everything the config file and global options decide."""

    layout: Layout
    state_dir: Path
    log_dir: Path
    health: HealthSettings
    kubelet_restart_command: tuple[str, ...] = ("systemctl", "restart", "kubelet")
    #: When set, only processes whose working directory is inside this directory are this
    #: node's components (several nodes' processes on one host, e.g. test nodes).
    process_root: Path | None = None
    #: The benchmark: given (`--benchmark`, the config's `benchmark`), else None until it is
    #: chosen from the node's Kubernetes version (cis_tui.benchmarks.selection).
    benchmark: str | None = None
    #: Why `benchmark` is the one used, in words (JSON `benchmark_chosen_by`).
    benchmark_chosen_by: str = ""
    #: `[versions]`: component (or `kubernetes`) -> version, overriding what the node says.
    versions: dict[str, str] = field(default_factory=dict)
    config_path: Path | None = None
    has_root_override: bool = False
    #: Which processes are the components (owner, starter), not merely named like them.
    identity: ProcessIdentity = field(default_factory=ProcessIdentity)
    #: The wizard's keymap (`[keys]`): binding id -> comma-separated keys, e.g. "p,enter".
    keys: dict[str, str] = field(default_factory=dict)
    persist: PersistSettings = field(default_factory=PersistSettings)
    retention: RetentionSettings = field(default_factory=RetentionSettings)
    events: EventLogSettings = field(default_factory=EventLogSettings)
    #: `[[waivers]]`: accepted exceptions (cis_tui.waivers), checked against the catalog
    #: when they are applied (cis_tui.audit.waive).
    waivers: tuple[Waiver, ...] = ()


_LAYOUT_KEYS = {f.name for f in fields(Layout)} - {"manifest_names", "root"}
_HEALTH_KEYS = {
    "timeouts",
    "stable_successes",
    "stable_seconds",
    "poll_initial",
    "poll_max",
    "client_cert",
    "client_key",
}


def default_config_path() -> Path:
    return Path(platformdirs.user_config_dir(APP_NAME)) / "config.toml"


def _read_toml(path: Path) -> dict[str, Any]:
    raw = read_bounded(path, "config file", _CONFIG_LIMIT)
    try:
        return tomllib.loads(raw.decode("utf-8"))
    except UnicodeDecodeError:
        raise UserError("config file is not UTF-8 text", path) from None
    except tomllib.TOMLDecodeError as exc:
        raise UserError(f"invalid TOML: {exc}", path) from None


def _expect(table: Any, name: str, path: Path) -> dict[str, Any]:
    if not isinstance(table, dict):
        raise UserError(f"[{name}] must be a table", path)
    return table


def _unknown(table: dict[str, Any], allowed: set[str], name: str, path: Path) -> None:
    extra = sorted(set(table) - allowed)
    if extra:
        raise UserError(f"unknown key {extra[0]!r} in [{name}]", path)


def _abs_path(value: Any, key: str, path: Path) -> Path:
    if not isinstance(value, str) or not value.startswith("/"):
        raise UserError(f"{key} must be an absolute path string", path)
    return Path(value)


def _number(value: Any, key: str, path: Path, minimum: float = 0.0) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or value < minimum:
        raise UserError(f"{key} must be a number >= {minimum:g}", path)
    return float(value)


def _parse_layout(table: dict[str, Any], path: Path) -> Layout:
    _unknown(table, _LAYOUT_KEYS | {"manifests"}, "layout", path)
    kwargs: dict[str, Any] = {
        k: _abs_path(v, f"layout.{k}", path) for k, v in table.items() if k != "manifests"
    }
    if "manifests" in table:
        names = _expect(table["manifests"], "layout.manifests", path)
        _unknown(names, set(STATIC_COMPONENTS), "layout.manifests", path)
        merged = Layout().manifest_names
        for comp, name in names.items():
            if not isinstance(name, str) or "/" in name or name.startswith("."):
                raise UserError(f"layout.manifests.{comp} must be a plain file name", path)
            merged[comp] = name
        kwargs["manifest_names"] = merged
    return Layout(**kwargs)


def _parse_health(table: dict[str, Any], path: Path) -> HealthSettings:
    _unknown(table, _HEALTH_KEYS, "health", path)
    base = HealthSettings()
    kwargs: dict[str, Any] = {}
    if "timeouts" in table:
        timeouts = dict(base.timeouts)
        for comp, value in _expect(table["timeouts"], "health.timeouts", path).items():
            if comp not in COMPONENTS:
                raise UserError(f"unknown component {comp!r} in [health.timeouts]", path)
            timeouts[comp] = _number(value, f"health.timeouts.{comp}", path, 1)
        kwargs["timeouts"] = timeouts
    if "stable_successes" in table:
        kwargs["stable_successes"] = int(
            _number(table["stable_successes"], "health.stable_successes", path, 1)
        )
    if isinstance(table.get("stable_seconds"), dict):
        windows = {}
        for comp, value in table["stable_seconds"].items():
            if comp not in COMPONENTS:
                raise UserError(f"unknown component {comp!r} in [health.stable_seconds]", path)
            windows[comp] = _number(value, f"health.stable_seconds.{comp}", path)
        kwargs["stable_seconds_for"] = windows
    elif "stable_seconds" in table:
        kwargs["stable_seconds"] = _number(table["stable_seconds"], "health.stable_seconds", path)
    for key in ("poll_initial", "poll_max"):
        if key in table:
            kwargs[key] = _number(table[key], f"health.{key}", path, 0.01)
    for key in ("client_cert", "client_key"):
        if key in table:
            kwargs[key] = _abs_path(table[key], f"health.{key}", path)
    return replace(base, **kwargs)


_PROCESS_KEYS = {
    "root",
    "user",
    "runtimes",
    "runtime_pid_files",
    "cgroups",
    "kubelet_parents",
    "kubelet_cgroups",
}


def _strings(value: Any, key: str, path: Path) -> tuple[str, ...]:
    if not (isinstance(value, list) and all(isinstance(v, str) and v for v in value)):
        raise UserError(f"{key} must be a list of non-empty strings", path)
    return tuple(value)


def _uid(value: Any, key: str, path: Path) -> int:
    if isinstance(value, int) and not isinstance(value, bool) and value >= 0:
        return value
    if not isinstance(value, str) or not value:
        raise UserError(f"{key} must be a user name or a numeric uid", path)
    try:
        return pwd.getpwnam(value).pw_uid
    except KeyError:
        raise UserError(f"{key}: no user {value!r} on this system", path) from None


def _parse_processes(table: dict[str, Any], path: Path) -> tuple[Path | None, ProcessIdentity]:
    """`[processes]`: the node's process root and what identifies a component's process."""
    _unknown(table, _PROCESS_KEYS, "processes", path)
    root = _abs_path(table["root"], "processes.root", path) if "root" in table else None
    kwargs: dict[str, Any] = {}
    user = table.get("user")
    if isinstance(user, dict):
        uids = {}
        for comp, value in user.items():
            if comp not in (*COMPONENTS, "kube-proxy"):
                raise UserError(f"unknown component {comp!r} in [processes.user]", path)
            uids[comp] = _uid(value, f"processes.user.{comp}", path)
        kwargs["uids"] = uids
    elif user is not None:
        kwargs["uid"] = _uid(user, "processes.user", path)
    for key in ("runtimes", "cgroups", "kubelet_parents", "kubelet_cgroups"):
        if key in table:
            kwargs[key] = _strings(table[key], f"processes.{key}", path)
    if "runtime_pid_files" in table:
        files = table["runtime_pid_files"]
        if not isinstance(files, list):
            raise UserError("processes.runtime_pid_files must be a list of absolute paths", path)
        kwargs["runtime_pid_files"] = tuple(
            _abs_path(f, "processes.runtime_pid_files", path) for f in files
        )
    return root, ProcessIdentity(**kwargs)


def _parse_keys(table: dict[str, Any], path: Path) -> dict[str, str]:
    """`[keys]`: binding id = "key,key" (or a list of keys); ids and key names are checked."""
    for binding_id, value in table.items():
        problem = key_problem(binding_id, value)
        if problem is not None:
            raise UserError(problem, path)
    return {binding_id: key_string(value) for binding_id, value in table.items()}


def load_user_keys() -> dict[str, str]:
    """The `[keys]` of the user's own config file (`$CIS_TUI_CONFIG` or the default), for a
    wizard on a node whose config is not the user's (the demo's sandbox)."""
    path = Path(os.environ[CONFIG_ENV]) if os.environ.get(CONFIG_ENV) else default_config_path()
    if not os.environ.get(CONFIG_ENV) and not path.is_file():
        return {}
    return _parse_keys(_expect(_read_toml(path).get("keys", {}), "keys", path), path)


_VERSION_TEXT = re.compile(r"^v?\d+\.\d+(\.\d+)?([-+_.][0-9A-Za-z.+_-]*)?$")


def _parse_versions(table: dict[str, Any], path: Path) -> dict[str, str]:
    """`[versions]`: `kubernetes = "v1.29.4"` and/or one key per component."""
    _unknown(table, {"kubernetes", *COMPONENTS}, "versions", path)
    for key, value in table.items():
        if not isinstance(value, str) or not _VERSION_TEXT.match(value.strip()):
            raise UserError(f'versions.{key} must be a version string such as "v1.29.4"', path)
    return {k: str(v).strip() for k, v in table.items()}


def _parse_persist(table: dict[str, Any], path: Path) -> PersistSettings:
    """`[persist]`: mode, patches_dir, kubeconfig."""
    _unknown(table, {"mode", "patches_dir", "kubeconfig"}, "persist", path)
    kwargs: dict[str, Any] = {}
    if "mode" in table:
        if table["mode"] not in PERSIST_MODES:
            raise UserError(f"persist.mode must be one of {', '.join(PERSIST_MODES)}", path)
        kwargs["mode"] = table["mode"]
    for key in ("patches_dir", "kubeconfig"):
        if key in table:
            kwargs[key] = _abs_path(table[key], f"persist.{key}", path)
    return PersistSettings(**kwargs)


def _parse_retention(table: dict[str, Any], path: Path) -> RetentionSettings:
    """`[backups]`: keep_per_file, keep_days, prune_after_commit."""
    _unknown(table, {"keep_per_file", "keep_days", "prune_after_commit"}, "backups", path)
    kwargs: dict[str, Any] = {}
    if "keep_per_file" in table:
        kwargs["keep_per_file"] = int(
            _number(table["keep_per_file"], "backups.keep_per_file", path, 1)
        )
    if "keep_days" in table:
        kwargs["keep_days"] = _number(table["keep_days"], "backups.keep_days", path)
    if "prune_after_commit" in table:
        if not isinstance(table["prune_after_commit"], bool):
            raise UserError("backups.prune_after_commit must be true or false", path)
        kwargs["prune_after_commit"] = table["prune_after_commit"]
    return RetentionSettings(**kwargs)


def _parse_events(table: dict[str, Any], path: Path) -> EventLogSettings:
    """`[events]`: max_bytes, keep."""
    _unknown(table, {"max_bytes", "keep"}, "events", path)
    kwargs: dict[str, Any] = {}
    if "max_bytes" in table:
        kwargs["max_bytes"] = int(_number(table["max_bytes"], "events.max_bytes", path, 4096))
    if "keep" in table:
        kwargs["keep"] = int(_number(table["keep"], "events.keep", path, 0))
    return EventLogSettings(**kwargs)


def _default_state_dir(root: Path | None) -> Path:
    if root is not None:
        return root / "var/lib/cis-tui"
    if os.geteuid() == 0:
        return Path("/var/lib/cis-tui")
    return Path(platformdirs.user_state_dir(APP_NAME))


def load_settings(
    config: Path | None = None,
    root: Path | None = None,
    state_dir: Path | None = None,
    benchmark: str | None = None,
) -> Settings:
    """Build the settings from defaults, the config file, environment and global options."""
    explicit = config or (Path(os.environ[CONFIG_ENV]) if os.environ.get(CONFIG_ENV) else None)
    path = explicit or default_config_path()
    data: dict[str, Any] = {}
    if explicit is not None or path.is_file():
        data = _read_toml(path)
    tables = {
        "layout", "state", "kubelet", "health", "processes", "benchmark", "keys", "versions",
        "persist", "waivers", "backups", "events",
    }  # fmt: skip
    _unknown(data, tables, "top", path)
    keys = _parse_keys(_expect(data.get("keys", {}), "keys", path), path)

    layout = _parse_layout(_expect(data.get("layout", {}), "layout", path), path)
    health = _parse_health(_expect(data.get("health", {}), "health", path), path)
    if health.client_cert is None:
        health = replace(
            health,
            client_cert=layout.pki_dir / "apiserver-kubelet-client.crt",
            client_key=layout.pki_dir / "apiserver-kubelet-client.key",
        )

    kubelet = _expect(data.get("kubelet", {}), "kubelet", path)
    _unknown(kubelet, {"restart_command"}, "kubelet", path)
    restart = kubelet.get("restart_command", ["systemctl", "restart", "kubelet"])
    if not (isinstance(restart, list) and restart and all(isinstance(a, str) for a in restart)):
        raise UserError("kubelet.restart_command must be a non-empty list of strings", path)

    processes = _expect(data.get("processes", {}), "processes", path)
    process_root, identity = _parse_processes(processes, path)

    state = _expect(data.get("state", {}), "state", path)
    _unknown(state, {"dir"}, "state", path)
    cfg_state = _abs_path(state["dir"], "state.dir", path) if "dir" in state else None
    env_state = Path(os.environ[STATE_ENV]) if os.environ.get(STATE_ENV) else None

    if root is not None:
        root = root.resolve()
        if not root.is_dir():
            raise UserError("--root is not a directory", root)
        layout = replace(layout, root=root).under_root()
        health = replace(
            health,
            client_cert=layout.host_path(health.client_cert) if health.client_cert else None,
            client_key=layout.host_path(health.client_key) if health.client_key else None,
        )
    chosen_state = state_dir or env_state or cfg_state or _default_state_dir(root)
    if chosen_state == _default_state_dir(root) and root is not None:
        layout.confined(Path(chosen_state))
    bench, chosen_by = benchmark, "--benchmark" if benchmark else ""
    if bench is None and "benchmark" in data:
        if not isinstance(data["benchmark"], str) or not data["benchmark"]:
            raise UserError("benchmark must be a benchmark name such as cis-1.12", path)
        bench, chosen_by = data["benchmark"], f"benchmark in {path}"
    versions = _parse_versions(_expect(data.get("versions", {}), "versions", path), path)
    persist = _parse_persist(_expect(data.get("persist", {}), "persist", path), path)
    retention = _parse_retention(_expect(data.get("backups", {}), "backups", path), path)
    events = _parse_events(_expect(data.get("events", {}), "events", path), path)
    waivers = parse_waivers(data.get("waivers", []), path)
    if root is not None:
        persist = replace(
            persist,
            patches_dir=layout.host_path(persist.patches_dir),
            kubeconfig=layout.host_path(persist.kubeconfig) if persist.kubeconfig else None,
        )
    return Settings(
        layout=layout,
        state_dir=Path(chosen_state).absolute(),
        log_dir=Path(platformdirs.user_log_dir(APP_NAME)),
        health=health,
        kubelet_restart_command=tuple(restart),
        process_root=process_root,
        benchmark=bench,
        benchmark_chosen_by=chosen_by,
        versions=versions,
        config_path=path if data else None,
        has_root_override=root is not None,
        identity=identity,
        keys=keys,
        persist=persist,
        waivers=waivers,
        retention=retention,
        events=events,
    )
