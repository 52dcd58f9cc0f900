"""Compound fixes: a flag plus everything the component needs in order to start with it.

A flag naming a file that is not mounted into the pod kills the component; each recipe sets the
flag, writes the companion file (never overwriting an existing one) and mounts it.
"""

from __future__ import annotations

import base64
import os
import posixpath
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from cis_tui.layout import Layout
from cis_tui.remediate.edits import PodManifest, VolumeNameTaken


@dataclass(frozen=True)
class CompanionFile:
    """A file (or directory) a fix creates beside the manifest, outside the manifests dir."""

    path: Path  # where it is written on this host (under --root when given)
    node_path: str  # how the node names it
    content: bytes | None  # None: a directory
    mode: int
    reason: str
    secret: bool = False  # content is a key: never shown in plans or logs

    @property
    def is_dir(self) -> bool:
        return self.content is None


class RecipeError(Exception):
    """The recipe cannot be applied safely to this node (one line, says why)."""


@dataclass(frozen=True)
class RecipeContext:
    layout: Layout
    params: dict[str, str]


DEFAULT_AUDIT_POLICY = """\
# Audit policy written by cis-tui (CIS 1.2.16 / 3.2.1). Review it for your cluster.
apiVersion: audit.k8s.io/v1
kind: Policy
omitStages:
- RequestReceived
rules:
# Health checks and version probes are noise.
- level: None
  nonResourceURLs:
  - /healthz*
  - /livez*
  - /readyz*
  - /version
# Events are high volume and carry no security signal of their own.
- level: None
  resources:
  - group: ""
    resources: ["events"]
# Never log the bodies of objects that hold secrets or tokens.
- level: Metadata
  resources:
  - group: ""
    resources: ["secrets", "configmaps", "serviceaccounts/token"]
  - group: authentication.k8s.io
    resources: ["tokenreviews"]
# Changes are recorded with their request body; reads with metadata only.
- level: Request
  verbs: ["create", "update", "patch", "delete", "deletecollection"]
- level: Metadata
"""


def _encryption_config(provider: str, key: bytes) -> str:
    secret = base64.b64encode(key).decode()
    return f"""\
# Encryption at rest written by cis-tui (CIS 1.2.27 / 1.2.28). The key below decrypts every
# Secret: keep this file 0600, back it up with your etcd snapshots, and rotate it by adding a
# new key first. Existing Secrets stay unencrypted until rewritten:
#   kubectl get secrets -A -o json | kubectl replace -f -
apiVersion: apiserver.config.k8s.io/v1
kind: EncryptionConfiguration
resources:
- resources:
  - secrets
  providers:
  - {provider}:
      keys:
      - name: key1
        secret: {secret}
  - identity: {{}}
"""


def _admission_config(event_config: str) -> str:
    return f"""\
# Admission plugin configuration written by cis-tui (CIS 1.2.9).
apiVersion: apiserver.config.k8s.io/v1
kind: AdmissionConfiguration
plugins:
- name: EventRateLimit
  path: {event_config}
"""


def _event_rate_limit(qps: str, burst: str) -> str:
    return f"""\
apiVersion: eventratelimit.admission.k8s.io/v1alpha1
kind: Configuration
limits:
- type: Namespace
  qps: {qps}
  burst: {burst}
  cacheSize: 2000
- type: User
  qps: 10
  burst: 50
"""


def _mount(pod: PodManifest, name: str, node_path: str, vol_type: str, read_only: bool) -> None:
    """Mount a host path at the same path in the pod, unless already visible there."""
    if pod.has_mount_for(node_path):
        return
    taken = name
    for n in range(2, 10):
        try:
            pod.add_host_path_volume(taken, node_path, node_path, vol_type, read_only)
            return
        except VolumeNameTaken:
            taken = f"{name}-{n}"
    raise RecipeError(f"no free volume name for {node_path}")


def audit_policy_file(pod: PodManifest, ctx: RecipeContext) -> list[CompanionFile]:
    layout = ctx.layout
    current = pod.flags().get("--audit-policy-file")
    companions = []
    if current:
        node_path = current
    else:
        node_path = layout.node_path(layout.audit_policy_file)
        pod.set_flag("--audit-policy-file", node_path)
    host = layout.host_path(node_path)
    if not host.exists():
        companions.append(
            CompanionFile(host, node_path, DEFAULT_AUDIT_POLICY.encode(), 0o600, "audit policy")
        )
    _mount(pod, "audit-policy", node_path, "File", read_only=True)
    return companions


def audit_log_path(pod: PodManifest, ctx: RecipeContext) -> list[CompanionFile]:
    layout = ctx.layout
    node_path = pod.flags().get("--audit-log-path") or ctx.params.get("path") or ""
    if not node_path:
        node_path = posixpath.join(layout.node_path(layout.audit_log_dir), "audit.log")
    if node_path == "-":
        raise RecipeError("--audit-log-path is '-' (stdout); choose a file with --param")
    if not node_path.startswith("/"):
        raise RecipeError(f"audit log path {node_path!r} must be absolute")
    pod.set_flag("--audit-log-path", node_path)
    log_dir = posixpath.dirname(node_path)
    host_dir = layout.host_path(log_dir)
    companions = []
    if not host_dir.exists():
        companions.append(CompanionFile(host_dir, log_dir, None, 0o700, "audit log directory"))
    _mount(pod, "audit-log", log_dir, "DirectoryOrCreate", read_only=False)
    return companions


def encryption_provider_config(pod: PodManifest, ctx: RecipeContext) -> list[CompanionFile]:
    layout = ctx.layout
    current = pod.flags().get("--encryption-provider-config")
    node_path = current or layout.node_path(layout.encryption_config)
    host = layout.host_path(node_path)
    companions = []
    if host.exists():
        if current is None:
            raise RecipeError(
                f"{host} already exists but the API server does not use it; review it and set "
                "--encryption-provider-config by hand"
            )
        # The API server already reads a config whose first provider is weak: rewriting it
        # would lose keys that decrypt existing data. This needs a human.
        raise RecipeError(
            f"{host} exists; reorder its providers by hand (keep every existing key) so that "
            f"{ctx.params.get('provider', 'secretbox')} comes first"
        )
    provider = ctx.params.get("provider", "secretbox")
    text = _encryption_config(provider, os.urandom(32))
    companions.append(
        CompanionFile(host, node_path, text.encode(), 0o600, f"{provider} key", secret=True)
    )
    pod.set_flag("--encryption-provider-config", node_path)
    _mount(pod, "encryption-config", posixpath.dirname(node_path), "DirectoryOrCreate", True)
    return companions


def event_rate_limit(pod: PodManifest, ctx: RecipeContext) -> list[CompanionFile]:
    layout = ctx.layout
    if pod.flags().get("--admission-control-config-file"):
        raise RecipeError(
            "the API server already has --admission-control-config-file; add an EventRateLimit "
            "entry to that file by hand"
        )
    node_path = layout.node_path(layout.admission_config)
    event_node = posixpath.join(posixpath.dirname(node_path), "event-rate-limit.yaml")
    companions = []
    for path, text, what in (
        (node_path, _admission_config(event_node), "admission configuration"),
        (
            event_node,
            _event_rate_limit(ctx.params.get("qps", "50"), ctx.params.get("burst", "100")),
            "EventRateLimit limits",
        ),
    ):
        host = layout.host_path(path)
        if host.exists():
            raise RecipeError(f"{host} already exists; merge EventRateLimit into it by hand")
        companions.append(CompanionFile(host, path, text.encode(), 0o600, what))
    pod.set_flag("--admission-control-config-file", node_path)
    pod.add_list_item("--enable-admission-plugins", "EventRateLimit")
    _mount(pod, "admission-config", posixpath.dirname(node_path), "DirectoryOrCreate", True)
    return companions


Recipe = Callable[[PodManifest, RecipeContext], list[CompanionFile]]

RECIPES: dict[str, Recipe] = {
    "audit-policy-file": audit_policy_file,
    "audit-log-path": audit_log_path,
    "encryption-provider-config": encryption_provider_config,
    "event-rate-limit": event_rate_limit,
}
