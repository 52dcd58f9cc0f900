"""`cis-tui sandbox create DIR`: lay out a kubeadm control-plane node under DIR."""

from __future__ import annotations

import json
import os
import pwd
import re
import shutil
import socket
import subprocess
import sys
from collections.abc import Mapping
from contextlib import ExitStack
from pathlib import Path

from cis_tui.errors import UserError
from cis_tui.sandbox import manifests as mf
from cis_tui.sandbox.configmaps import KUBEADM_CONFIG_VERSIONS, seed_configmaps
from cis_tui.sandbox.paths import ADDRESS, STANDIN_BINARIES, STATIC_COMPONENTS, SandboxPaths
from cis_tui.sandbox.pki import write_file, write_node_pki
from cis_tui.sandbox.scenarios import SCENARIO_FUNCS, NodeDraft, chown_if_root
from cis_tui.sandbox.settings import AgentSettings, SandboxSettings, write_sandbox_settings

SCENARIOS: tuple[str, ...] = tuple(SCENARIO_FUNCS)
ETCD_MODES = ("auto", "real", "standin")
_SAFE_PATH = re.compile(r"[A-Za-z0-9._/+@-]+")
_PORT_NAMES = (
    "etcd-client",
    "etcd-peer",
    "etcd-metrics",
    "kube-apiserver",
    "kube-controller-manager",
    "kube-scheduler",
    "kubelet-healthz",
    "kubelet",
    "kubelet-read-only",
)
#: The ports kubeadm's files name, which the sandbox maps onto its own (not the read-only one).
MAPPED_PORTS = tuple(name for name in _PORT_NAMES if name != "kubelet-read-only")
#: The node kubeadm's reference files (kubeadm/*.yaml) were written for, and its ports there.
REFERENCE_ADDRESS = "10.0.0.10"
KUBEADM_PORTS: Mapping[str, int] = {
    "etcd-client": 2379,
    "etcd-peer": 2380,
    "etcd-metrics": 2381,
    "kube-apiserver": 6443,
    "kube-controller-manager": 10257,
    "kube-scheduler": 10259,
    "kubelet-healthz": 10248,
}


def free_ports(names: tuple[str, ...]) -> dict[str, int]:
    """Distinct free loopback ports (all held open until every one is chosen)."""
    with ExitStack() as stack:
        ports: dict[str, int] = {}
        for name in names:
            sock = stack.enter_context(socket.socket(socket.AF_INET, socket.SOCK_STREAM))
            sock.bind((ADDRESS, 0))
            ports[name] = sock.getsockname()[1]
        return ports


def etcd_binary() -> str | None:
    return shutil.which("etcd")


def etcd_version(binary: str) -> tuple[int, int, int] | None:
    """`etcd --version` as a tuple; None when it cannot be read."""
    try:
        out = subprocess.run(
            [binary, "--version"], capture_output=True, text=True, timeout=10, check=False
        ).stdout
    except (OSError, subprocess.TimeoutExpired):
        return None
    m = re.search(r"etcd Version:\s*(\d+)\.(\d+)\.(\d+)", out)
    return (int(m[1]), int(m[2]), int(m[3])) if m else None


def _standin_script(binary: str, version: str | None = None) -> str:
    """The stand-in binary; the kubelet's names the version it plays (a static pod's stand-in
    plays the version of its pod's image tag)."""
    call = (
        f"main({binary!r}, sys.argv[1:], version={version!r})"
        if version
        else (f"main({binary!r}, sys.argv[1:])")
    )
    return (
        f"#!{sys.executable}\n"
        f"# cis-tui sandbox stand-in for {binary}; see cis_tui/sandbox/standin/.\n"
        "import sys\n\n"
        "from cis_tui.sandbox.standin import main\n\n"
        f"sys.exit({call})\n"
    )


def adapt_etcd(text: str, version: tuple[int, int, int]) -> str:
    """kubeadm's etcd flags and probes for an older etcd, as kubeadm writes them for it."""
    if version >= (3, 6, 0):
        return text
    text = mf.remove_flag(text, "--feature-gates")
    text = mf.remove_flag(text, "--watch-progress-notify-interval")
    text = mf.set_flag(text, "--experimental-initial-corrupt-check", "true")
    text = mf.set_flag(text, "--experimental-watch-progress-notify-interval", "5s")
    text = text.replace("etcd:3.6.6-0", "etcd:{}.{}.{}-0".format(*version))
    return _etcd_probes(text, version)


def _etcd_probes(text: str, version: tuple[int, int, int]) -> str:
    """No /livez or /readyz before etcd 3.5.11: kubeadm's older /health probes, no readiness."""
    if version >= (3, 5, 11):
        return text
    text = re.sub(r"    readinessProbe:\n(?:      .*\n)+", "", text)
    text = text.replace(
        "        path: /livez\n", "        path: /health?exclude=NOSPACE&serializable=true\n"
    )
    return text.replace("        path: /readyz\n", "        path: /health?serializable=false\n")


def image_version(text: str, name: str) -> tuple[int, int, int] | None:
    """The version in a manifest's `name` image tag (`etcd:3.5.12-0` -> (3, 5, 12))."""
    m = re.search(rf"^\s+image: \S*/{re.escape(name)}:v?(\d+)\.(\d+)\.(\d+)", text, re.M)
    return (int(m[1]), int(m[2]), int(m[3])) if m else None


def _host_paths(text: str, root: Path) -> str:
    """Node paths moved under root; a path already there stays (a setting cis-tui stored from the
    sandbox's own files names it so), even when root itself starts with /var or /etc."""
    at_node = re.sub(re.escape(f"{root}/") + r"(?=(?:etc|var|usr|run|opt|lib)/)", "/", text)
    return mf.rewrite_host_paths(at_node, root)


def sandbox_manifest(
    component: str,
    text: str,
    paths: SandboxPaths,
    ports: Mapping[str, int],
    etcd_version: tuple[int, int, int] | None = None,
) -> str:
    """A static pod kubeadm wrote for the reference node (node paths, 10.0.0.10, kubeadm's
    ports) as the sandbox runs it: host paths under DIR, 127.0.0.1 and the sandbox's free ports.

    `etcd_version` (etcd only) makes it kubeadm's manifest for that etcd: flags, tag, probes;
    without it, the probes follow the manifest's own image tag.
    """
    text = _host_paths(text, paths.root)
    if component == "etcd":
        text = (
            text.replace(REFERENCE_ADDRESS, ADDRESS)
            .replace(":2379", f":{ports['etcd-client']}")
            .replace(":2380", f":{ports['etcd-peer']}")
            .replace(":2381", f":{ports['etcd-metrics']}")
            .replace("containerPort: 2381", f"containerPort: {ports['etcd-metrics']}")
        )
        # kubeadm listens on loopback and the node address, one URL once both are 127.0.0.1.
        urls = mf.flags(text).get("--listen-client-urls")
        if urls:
            unique = ",".join(dict.fromkeys(urls.split(",")))
            text = mf.set_flag(text, "--listen-client-urls", unique)
        if etcd_version is not None:
            return adapt_etcd(text, etcd_version)
        tagged = image_version(text, "etcd")
        return _etcd_probes(text, tagged) if tagged else text
    if component == "kube-apiserver":
        return (
            text.replace(REFERENCE_ADDRESS, ADDRESS)
            .replace(":2379", f":{ports['etcd-client']}")
            .replace(":6443", f":{ports['kube-apiserver']}")
            .replace("--secure-port=6443", f"--secure-port={ports['kube-apiserver']}")
            .replace("containerPort: 6443", f"containerPort: {ports['kube-apiserver']}")
        )
    # kubeadm relies on the fixed default ports 10257/10259; the sandbox needs free ones.
    text = mf.set_flag(text, "--secure-port", str(ports[component]))
    default = KUBEADM_PORTS[component]
    return text.replace(f"containerPort: {default}", f"containerPort: {ports[component]}")


def sandbox_kubelet_config(text: str, paths: SandboxPaths, ports: Mapping[str, int]) -> str:
    """A kubelet config kubeadm wrote (node paths, kubeadm's ports) as the sandbox's kubelet
    reads it: host paths under DIR, its own healthz and serving ports."""
    text = _host_paths(text, paths.root)
    text = text.replace("healthzPort: 10248", f"healthzPort: {ports['kubelet-healthz']}")
    return mf.set_top_level(text, "port", f" {ports['kubelet']}")


def _manifest_texts(
    paths: SandboxPaths, ports: Mapping[str, int], etcd_version: tuple[int, int, int] | None
) -> dict[str, str]:
    return {
        comp: sandbox_manifest(comp, mf.template(f"{comp}.yaml"), paths, ports, etcd_version)
        for comp in STATIC_COMPONENTS
    }


def write_ports(paths: SandboxPaths, ports: Mapping[str, int]) -> None:
    """Record the ports chosen at create: `sandbox upgrade` maps kubeadm's onto them."""
    write_file(paths.ports, (json.dumps(dict(ports), indent=2) + "\n").encode(), 0o644)


def _as_kubeadm_wrote(before: dict[str, str], after: dict[str, str]) -> dict[str, str]:
    """The manifests a fresh `kubeadm init` of the node's versions writes: those from before
    the scenario, with the etcd flags kubeadm picks for the etcd the scenario settled on."""
    m = re.search(r"etcd:(\d+)\.(\d+)\.(\d+)", after["etcd"])
    fresh = dict(before)
    if m:
        fresh["etcd"] = adapt_etcd(before["etcd"], (int(m[1]), int(m[2]), int(m[3])))
    return fresh


def _kubelet_config(paths: SandboxPaths, ports: Mapping[str, int]) -> str:
    return sandbox_kubelet_config(mf.template("kubelet-config.yaml"), paths, ports)


def _cis_tui_toml(paths: SandboxPaths) -> str:
    h = paths.host
    layout = {
        "manifests_dir": paths.manifests,
        "kubelet_config": paths.kubelet_config,
        "kubelet_kubeconfig": h("/etc/kubernetes/kubelet.conf"),
        "kubelet_service": paths.kubelet_dropin,
        "kubelet_flags_env": paths.kubelet_flags_env,
        "pki_dir": paths.pki,
        "admin_conf": h("/etc/kubernetes/admin.conf"),
        "super_admin_conf": h("/etc/kubernetes/super-admin.conf"),
        "scheduler_conf": h("/etc/kubernetes/scheduler.conf"),
        "controller_manager_conf": h("/etc/kubernetes/controller-manager.conf"),
        "proxy_kubeconfig": h("/etc/kubernetes/proxy.conf"),
        "etcd_data_dir": paths.etcd_data,
        "cni_conf_dir": h("/etc/cni/net.d"),
        "cni_networks_dir": h("/var/lib/cni/networks"),
        "audit_policy_file": h("/etc/kubernetes/audit-policy.yaml"),
        "audit_log_dir": h("/var/log/kubernetes/audit"),
        "encryption_config": h("/etc/kubernetes/enc/encryption-config.yaml"),
        "admission_config": h("/etc/kubernetes/admission/admission-config.yaml"),
    }
    restart = [sys.executable, "-m", "cis_tui.sandbox", "restart-kubelet", str(paths.root)]
    lines = [
        "# cis-tui configuration for the sandbox node in this directory",
        "# (written by `cis-tui sandbox create`; run the node with `cis-tui sandbox run`).",
        "[layout]",
        *(f'{key} = "{value}"' for key, value in layout.items()),
        "",
        "[state]",
        f'dir = "{paths.state_dir}"',
        "",
        "[kubelet]",
        "restart_command = [" + ", ".join(f'"{a}"' for a in restart) + "]",
        "",
        "[processes]",
        f'root = "{paths.root}"',
        "# The agent plays the container runtime (and the kubelet's systemd): only the processes",
        "# it starts, owned by the user who created this sandbox, are this node's components.",
        f"user = {_owner()}",
        f'runtime_pid_files = ["{paths.agent_lock}"]',
        "",
        "[persist]",
        '# With mode = "patches", cis-tui\'s patch files go where `cis-tui sandbox upgrade`',
        "# (kubeadm upgrade) reads them, as its --patches directory.",
        f'patches_dir = "{paths.patches}"',
        "",
    ]
    return "\n".join(lines)


def _owner() -> str:
    """The creating user, as a TOML value: the name when it has one, else the uid."""
    uid = os.geteuid()
    try:
        return f'"{pwd.getpwuid(uid).pw_name}"'
    except KeyError:
        return str(uid)


def _check_directory(directory: Path) -> Path:
    root = Path(os.path.abspath(directory))
    if not _SAFE_PATH.fullmatch(str(root)):
        raise UserError("sandbox path may only contain letters, digits and . _ / + @ -", directory)
    if root.exists():
        if not root.is_dir():
            raise UserError("not a directory", directory)
        if any(root.iterdir()):
            raise UserError("directory is not empty", directory)
    root.mkdir(parents=True, exist_ok=True)
    return root.resolve()


def create_sandbox(
    directory: Path,
    scenario: str = "default",
    *,
    etcd: str = "auto",
    reuse_keys: bool = False,
    kubeadm_config_version: str | None = None,
) -> Path:
    """Create a kubeadm-like node in an empty DIR; returns DIR/cis-tui.toml.

    `etcd`: "auto" runs the installed etcd binary when there is one, "real" requires it,
    "standin" always uses the stand-in. `reuse_keys`: take RSA keys generated once per
    process (fast test sandboxes; every sandbox still has its own CAs and certificates).
    `kubeadm_config_version`: the format of the seeded kube-system/kubeadm-config, "v1beta4"
    or "v1beta3" (default: what the node's kubeadm release uploads, v1beta4 from v1.31).
    """
    if scenario not in SCENARIO_FUNCS:
        raise UserError(f"unknown scenario {scenario!r} (choose from {', '.join(SCENARIOS)})")
    if etcd not in ETCD_MODES:
        raise UserError(f"unknown etcd mode {etcd!r} (choose from {', '.join(ETCD_MODES)})")
    if kubeadm_config_version not in (None, *KUBEADM_CONFIG_VERSIONS):
        raise UserError(
            f"unknown kubeadm config version {kubeadm_config_version!r} "
            f"(choose from {', '.join(KUBEADM_CONFIG_VERSIONS)})"
        )
    binary = etcd_binary() if etcd != "standin" else None
    if etcd == "real" and binary is None:
        raise UserError("--etcd real: no etcd binary on PATH (Debian: apt-get install etcd-server)")
    version = etcd_version(binary) if binary else None
    if etcd == "real" and version is None:
        raise UserError(f"cannot read the version of {binary}")
    paths = SandboxPaths(_check_directory(directory))
    ports = free_ports(_PORT_NAMES)

    draft = NodeDraft(
        paths=paths, ports=ports, etcd_real=binary is not None and version is not None
    )
    host = paths.host
    for d, mode in (
        (paths.etc_kubernetes, 0o755),
        (paths.manifests, 0o755),
        (paths.etcd_data, 0o700),
        (paths.kubelet_dir, 0o755),
        (paths.kubelet_dropin.parent, 0o755),
        (host("/etc/default"), 0o755),
        (host("/etc/cni/net.d"), 0o755),
        (host("/var/lib/cni/networks/cbr0"), 0o755),
        (host("/etc/ssl/certs"), 0o755),
        (host("/etc/ca-certificates"), 0o755),
        (host("/usr/share/ca-certificates"), 0o755),
        (host("/usr/local/share/ca-certificates"), 0o755),
        (host("/usr/libexec/kubernetes/kubelet-plugins/volume/exec"), 0o755),
        (host("/run/systemd/resolve"), 0o755),
        (paths.standin_dir, 0o755),
        (paths.kubelet_binary.parent, 0o755),
        (paths.run_dir, 0o755),
        (paths.log_dir, 0o755),
    ):
        draft.dirs[d] = mode

    real_etcd = binary is not None and version is not None
    texts = _manifest_texts(paths, ports, version if real_etcd else None)
    kubeadm_wrote = dict(texts)
    for comp, text in texts.items():
        draft.files[paths.manifest(comp)] = (text, 0o600)
    draft.files[paths.kubelet_config] = (_kubelet_config(paths, ports), 0o644)
    draft.files[paths.kubelet_flags_env] = (
        mf.template("kubeadm-flags.env").replace(REFERENCE_ADDRESS, ADDRESS),
        0o644,
    )
    draft.files[paths.kubelet_unit] = (
        mf.rewrite_host_paths(mf.template("kubelet.service"), paths.root),
        0o644,
    )
    draft.files[paths.kubelet_dropin] = (
        mf.rewrite_host_paths(mf.template("10-kubeadm.conf"), paths.root),
        0o644,
    )
    draft.files[host("/etc/default/kubelet")] = ("KUBELET_EXTRA_ARGS=\n", 0o644)
    draft.files[host("/etc/cni/net.d/10-flannel.conflist")] = (
        mf.template("10-flannel.conflist"),
        0o644,
    )
    draft.files[host("/run/systemd/resolve/resolv.conf")] = ("nameserver 127.0.0.53\n", 0o644)
    SCENARIO_FUNCS[scenario](draft)
    for binary_name in STANDIN_BINARIES:
        played = draft.kubernetes if binary_name == "kubelet" else None
        draft.files[paths.standin(binary_name)] = (_standin_script(binary_name, played), 0o755)

    for d, mode in draft.dirs.items():
        d.mkdir(parents=True, exist_ok=True)
        os.chmod(d, mode)
    write_node_pki(paths, ports["kube-apiserver"], reuse_keys=reuse_keys)
    for path, (text, mode) in draft.files.items():
        write_file(path, text.encode(), mode)
    for path, mode in draft.modes.items():
        os.chmod(path, mode)
    for path, owner in draft.owners.items():
        chown_if_root(path, owner)
    # What `kubeadm init` uploads: the scenario's changes count as made through its config.
    manifests = {comp: draft.text(paths.manifest(comp)) for comp in texts}
    seed_configmaps(
        paths,
        manifests,
        _as_kubeadm_wrote(kubeadm_wrote, manifests),
        draft.text(paths.kubelet_config),
        kubeadm_config_version,
    )
    settings = SandboxSettings(agent=AgentSettings(etcd="real" if real_etcd else "standin"))
    write_sandbox_settings(paths.root, settings)
    write_ports(paths, ports)
    write_file(paths.config, _cis_tui_toml(paths).encode(), 0o644)
    return paths.config
