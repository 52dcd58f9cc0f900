"""Where a sandbox keeps each file: a kubeadm node's tree under one directory.

Imported by the stand-ins, so it stays stdlib-only and cheap.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

#: Static pods, then the kubelet (a systemd service on a real node).
STATIC_COMPONENTS: tuple[str, ...] = (
    "etcd",
    "kube-apiserver",
    "kube-controller-manager",
    "kube-scheduler",
)
COMPONENTS: tuple[str, ...] = (*STATIC_COMPONENTS, "kubelet")
#: Binaries the sandbox can imitate.
STANDIN_BINARIES: tuple[str, ...] = COMPONENTS
NODE_NAME = "cp-1"
ADDRESS = "127.0.0.1"


@dataclass(frozen=True)
class SandboxPaths:
    """The absolute paths of one sandbox node rooted at `root`."""

    root: Path

    def host(self, path: str | Path) -> Path:
        """A kubeadm host path (`/etc/kubernetes/...`) inside this sandbox."""
        return self.root / str(path).lstrip("/")

    @property
    def etc_kubernetes(self) -> Path:
        return self.host("/etc/kubernetes")

    @property
    def manifests(self) -> Path:
        return self.host("/etc/kubernetes/manifests")

    def manifest(self, component: str) -> Path:
        return self.manifests / f"{component}.yaml"

    @property
    def kubeadm_tmp(self) -> Path:
        """kubeadm's scratch directory: upgrade backups of manifests and the kubelet config."""
        return self.host("/etc/kubernetes/tmp")

    @property
    def patches(self) -> Path:
        """The kubeadm patches directory `sandbox upgrade` passes as `--patches`."""
        return self.host("/etc/kubernetes/patches")

    @property
    def pki(self) -> Path:
        return self.host("/etc/kubernetes/pki")

    @property
    def ca_cert(self) -> Path:
        return self.pki / "ca.crt"

    @property
    def kubelet_dir(self) -> Path:
        return self.host("/var/lib/kubelet")

    @property
    def kubelet_config(self) -> Path:
        return self.kubelet_dir / "config.yaml"

    @property
    def kubelet_flags_env(self) -> Path:
        return self.kubelet_dir / "kubeadm-flags.env"

    @property
    def kubelet_pki(self) -> Path:
        return self.kubelet_dir / "pki"

    @property
    def kubelet_unit(self) -> Path:
        return self.host("/etc/systemd/system/kubelet.service")

    @property
    def kubelet_dropin(self) -> Path:
        return self.host("/etc/systemd/system/kubelet.service.d/10-kubeadm.conf")

    @property
    def etcd_data(self) -> Path:
        return self.host("/var/lib/etcd")

    @property
    def standin_dir(self) -> Path:
        """Where the container images keep their binary (`/usr/local/bin`)."""
        return self.host("/usr/local/bin")

    @property
    def kubelet_binary(self) -> Path:
        return self.host("/usr/bin/kubelet")

    def standin(self, binary: str) -> Path:
        return self.kubelet_binary if binary == "kubelet" else self.standin_dir / binary

    @property
    def run_dir(self) -> Path:
        """The agent's lock and pid file, and every component's working directory."""
        return self.host("/run/cis-tui-sandbox")

    @property
    def agent_lock(self) -> Path:
        return self.run_dir / "agent.lock"

    @property
    def log_dir(self) -> Path:
        return self.host("/var/log/sandbox")

    @property
    def events(self) -> Path:
        return self.log_dir / "events.jsonl"

    def component_log(self, name: str) -> Path:
        return self.log_dir / f"{name}.log"

    @property
    def agent_log(self) -> Path:
        return self.log_dir / "agent.log"

    @property
    def config(self) -> Path:
        """The cis-tui config describing this node."""
        return self.root / "cis-tui.toml"

    @property
    def sandbox_settings(self) -> Path:
        """Sandbox-only knobs: readiness delays, agent timings, faults."""
        return self.root / "sandbox.toml"

    @property
    def ports(self) -> Path:
        """The loopback ports chosen at create (JSON: name -> port), kubeadm's mapped onto them."""
        return self.root / "ports.json"

    @property
    def state_dir(self) -> Path:
        return self.host("/var/lib/cis-tui")

    @property
    def apiserver_store(self) -> Path:
        """The API server stand-in's ConfigMaps (in a file: the stand-in restarts often)."""
        return self.root / "apiserver" / "configmaps.json"


def sandbox_root_of_script(script: str | Path) -> Path:
    """The sandbox directory of a stand-in script (`DIR/usr/local/bin/x` or `DIR/usr/bin/x`)."""
    p = Path(script).absolute()
    up = 4 if p.parent.name == "bin" and p.parent.parent.name == "local" else 3
    return p.parents[up - 1]
