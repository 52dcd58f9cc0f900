"""Sandbox node: a small kubelet and faithful stand-in components, for tests and the demo.

Public API (imports are lazy: the stand-ins import this package and must start fast):

- `create_sandbox(directory, scenario="default", *, etcd="auto", reuse_keys=False,
  kubeadm_config_version=None) -> Path` (the config DIR/cis-tui.toml)
- `run_agent(directory) -> int`: the node agent, in the foreground until SIGINT/SIGTERM
- `restart_kubelet(directory) -> int`: what `systemctl restart kubelet` is on a real node
- `SCENARIOS`: the scenario names
- `SandboxRun` (cis_tui.sandbox.harness): start an agent and wait on its event log (tests, demo)
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

SCENARIOS: tuple[str, ...] = ("default", "hardened", "insecure", "stray-backup", "v1.29", "v1.35")

if TYPE_CHECKING:
    from cis_tui.sandbox.harness import SandboxRun

__all__ = ["SCENARIOS", "SandboxRun", "create_sandbox", "restart_kubelet", "run_agent"]


def create_sandbox(
    directory: Path,
    scenario: str = "default",
    *,
    etcd: str = "auto",
    reuse_keys: bool = False,
    kubeadm_config_version: str | None = None,
) -> Path:
    """Lay out a kubeadm-like node in an empty DIR; returns the config path DIR/cis-tui.toml.

    etcd: "auto" | "real" | "standin"; reuse_keys: per-process RSA keys (fast test sandboxes);
    kubeadm_config_version: "v1beta4" | "v1beta3" for kube-system/kubeadm-config (default:
    what the node's kubeadm release writes).
    """
    from cis_tui.sandbox.create import create_sandbox as _create

    return _create(
        Path(directory),
        scenario,
        etcd=etcd,
        reuse_keys=reuse_keys,
        kubeadm_config_version=kubeadm_config_version,
    )


def run_agent(directory: Path) -> int:
    """Run the node agent in the foreground until SIGINT or SIGTERM; returns the exit code."""
    from cis_tui.sandbox.agent import run_agent as _run

    return _run(Path(directory))


def restart_kubelet(directory: Path) -> int:
    """Restart the sandbox's kubelet through its running agent; 0 once the new one started."""
    from cis_tui.sandbox.control import restart_kubelet as _restart

    return _restart(Path(directory))


def __getattr__(name: str) -> object:
    if name == "SandboxRun":
        from cis_tui.sandbox.harness import SandboxRun

        return SandboxRun
    raise AttributeError(name)
