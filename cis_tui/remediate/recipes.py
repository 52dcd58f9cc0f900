"""Compound fixes: a flag plus everything the component needs in order to start with it.

A flag naming a file that is not mounted into the pod kills the component; each recipe sets the
flag, writes the companion file (never overwriting an existing one) and mounts it.
"""

from __future__ import annotations

import base64
import os
import posixpath
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path

from cis_tui.audit.anonymous import ALLOWED_PATHS
from cis_tui.audit.evaluate import is_loopback
from cis_tui.audit.flags import split_map
from cis_tui.audit.listeners import listeners
from cis_tui.audit.node import parse_manifest
from cis_tui.audit.versions import Version, flag_at
from cis_tui.errors import UserError
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
    #: Its file name in a companion bundle (`plan --save --companions DIR`); "" for a directory.
    name: str = ""
    #: The content came from a companion bundle: the same bytes on every node of a plan.
    shared: bool = False
    #: The check whose fix creates it (set by the planner).
    check: str = ""

    @property
    def is_dir(self) -> bool:
        return self.content is None


#: Companion files by their name in a bundle (a plan's node-independent name for each).
AUDIT_POLICY = "audit-policy.yaml"
ENCRYPTION_CONFIG = "encryption-config.yaml"
ADMISSION_CONFIG = "admission-config.yaml"
EVENT_RATE_LIMIT = "event-rate-limit.yaml"
AUTHENTICATION_CONFIG = "authentication-config.yaml"
BUNDLE_NAMES = (
    AUDIT_POLICY,
    ENCRYPTION_CONFIG,
    ADMISSION_CONFIG,
    EVENT_RATE_LIMIT,
    AUTHENTICATION_CONFIG,
)


class RecipeError(Exception):
    """The recipe cannot be applied safely to this node (one line, says why)."""


class CompanionConflict(UserError):
    """A companion file of the bundle exists on the node with other content (exit 2)."""


@dataclass(frozen=True)
class RecipeContext:
    layout: Layout
    params: dict[str, str]
    #: The component's version (its image tag), None when unknown.
    version: Version | None = None
    #: The companion bundle of a saved plan, by name: these bytes, not freshly made ones.
    bundle: Mapping[str, bytes] | None = None


def _bundled(ctx: RecipeContext, name: str, host: Path) -> bytes | None:
    """The bundle's bytes for `name` (None without a bundle, or when it lacks `name`).

    An existing file with other bytes is a conflict, never overwritten: the nodes of one plan
    must end up with the same file (an encryption key that differs between API servers leaves
    each unable to read the others' Secrets).
    """
    data = None if ctx.bundle is None else ctx.bundle.get(name)
    if data is not None and os.path.lexists(host):
        try:
            same = host.is_file() and not host.is_symlink() and host.read_bytes() == data
        except OSError as exc:
            raise CompanionConflict(f"cannot read it: {exc.strerror or exc}", host) from None
        if not same:
            raise CompanionConflict(
                f"exists and differs from {name} of the companion bundle; it is never "
                "overwritten: compare the two, keep one on every node",
                host,
            )
    return data


def _companion(
    ctx: RecipeContext,
    name: str,
    host: Path,
    node_path: str,
    make: Callable[[], bytes],
    reason: str,
    secret: bool = False,
) -> CompanionFile | None:
    """A new companion file, with the bundle's bytes when the plan has them; None when the node
    already holds exactly the bundle's bytes."""
    shared = _bundled(ctx, name, host)
    if shared is None:
        return CompanionFile(host, node_path, make(), 0o600, reason, secret, name=name)
    if os.path.lexists(host):
        return None
    return CompanionFile(host, node_path, shared, 0o600, reason, secret, name=name, shared=True)


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


def _encryption_config(provider: str, key: bytes, legacy: bool = False) -> str:
    """The EncryptionConfiguration (the alpha `v1` EncryptionConfig that
    --experimental-encryption-provider-config reads before v1.13 when `legacy`)."""
    secret = base64.b64encode(key).decode()
    api = (
        "apiVersion: v1\nkind: EncryptionConfig"
        if legacy
        else ("apiVersion: apiserver.config.k8s.io/v1\nkind: EncryptionConfiguration")
    )
    return f"""\
# Encryption at rest written by cis-tui (CIS 1.2.27 / 1.2.28). The key below decrypts every
# Secret: keep this file 0600, back it up with your etcd snapshots, and rotate it by adding a
# new key first. Existing Secrets stay unencrypted until rewritten:
#   kubectl get secrets -A -o json | kubectl replace -f -
{api}
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
    if not host.exists() or _bundled(ctx, AUDIT_POLICY, host) is not None:
        made = _companion(
            ctx, AUDIT_POLICY, host, node_path, DEFAULT_AUDIT_POLICY.encode, "audit policy"
        )
        companions += [made] if made else []
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
    flag = flag_at(pod.component, "--encryption-provider-config", ctx.version)
    current = pod.flags().get(flag)
    node_path = current or layout.node_path(layout.encryption_config)
    host = layout.host_path(node_path)
    companions = []
    if _bundled(ctx, ENCRYPTION_CONFIG, host) is None and host.exists():
        if current is None:
            raise RecipeError(
                f"{host} already exists but the API server does not use it; review it and set "
                f"{flag} by hand"
            )
        # The API server already reads a config whose first provider is weak: rewriting it
        # would lose keys that decrypt existing data. This needs a human.
        raise RecipeError(
            f"{host} exists; reorder its providers by hand (keep every existing key) so that "
            f"{ctx.params.get('provider', 'secretbox')} comes first"
        )
    provider = ctx.params.get("provider", "secretbox")
    legacy = flag != "--encryption-provider-config"
    made = _companion(
        ctx,
        ENCRYPTION_CONFIG,
        host,
        node_path,
        lambda: _encryption_config(provider, os.urandom(32), legacy).encode(),
        f"{provider} key",
        secret=True,
    )
    companions += [made] if made else []
    pod.set_flag(flag, node_path)
    if legacy:
        pod.notes.append(
            f"kube-apiserver {ctx.version} reads encryption at rest from {flag} (renamed "
            "--encryption-provider-config in v1.13), in the alpha EncryptionConfig format"
        )
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
    shared_admission = (ctx.bundle or {}).get(ADMISSION_CONFIG)
    if shared_admission is not None and event_node.encode() not in shared_admission:
        raise CompanionConflict(
            f"{ADMISSION_CONFIG} of the companion bundle does not name this node's "
            f"{event_node}: the nodes of one plan need the same layout",
            layout.host_path(node_path),
        )
    for path, name, text, what in (
        (node_path, ADMISSION_CONFIG, _admission_config(event_node), "admission configuration"),
        (
            event_node,
            EVENT_RATE_LIMIT,
            _event_rate_limit(ctx.params.get("qps", "50"), ctx.params.get("burst", "100")),
            "EventRateLimit limits",
        ),
    ):
        host = layout.host_path(path)
        if _bundled(ctx, name, host) is None and host.exists():
            raise RecipeError(f"{host} already exists; merge EventRateLimit into it by hand")
        made = _companion(ctx, name, host, path, text.encode, what)
        companions += [made] if made else []
    pod.set_flag("--admission-control-config-file", node_path)
    from cis_tui.remediate.versioned import admission_list  # the legacy list, if used

    pod.add_list_item(admission_list(pod, "--enable-admission-plugins"), "EventRateLimit")
    _mount(pod, "admission-config", posixpath.dirname(node_path), "DirectoryOrCreate", True)
    return companions


def _authentication_config(api_version: str) -> str:
    conditions = "".join(f"  - path: {path}\n" for path in ALLOWED_PATHS)
    return f"""\
# Anonymous requests allowed only where kubeadm needs them, written by cis-tui (CIS 1.2.1):
# the kubelet's liveness, readiness and startup probes of the API server are anonymous, and
# `kubeadm join` token discovery reads the cluster-info ConfigMap before it has credentials.
# Every other anonymous request gets 401. The API server reads this section only at start,
# and refuses to start if --anonymous-auth is set as well.
apiVersion: {api_version}
kind: AuthenticationConfiguration
anonymous:
  enabled: true
  conditions:
{conditions}"""


def authentication_config_api(version: Version | None) -> str | None:
    """The AuthenticationConfiguration apiVersion whose `anonymous` section the API server
    reads without extra feature gates: GA v1 from 1.34, v1beta1 (gate beta, on) in 1.32-1.33."""
    if version is None or version < Version(1, 32):
        return None
    if version >= Version(1, 34):
        return "apiserver.config.k8s.io/v1"
    return "apiserver.config.k8s.io/v1beta1"


def _anonymous_probes(pod: PodManifest) -> list[str]:
    """The pod's httpGet probes that the kubelet sends without credentials."""
    manifest = parse_manifest(pod.text, Path("kube-apiserver.yaml"), pod.component)
    return [
        f"{p.kind} {p.path}"
        for p in manifest.probes
        if not any(name.lower() == "authorization" for name, _ in p.headers)
    ]


def anonymous_auth_config(pod: PodManifest, ctx: RecipeContext) -> list[CompanionFile]:
    """CIS 1.2.1 without breaking kubeadm: anonymous requests only to the probes' paths and
    cluster-info (1.32+); older versions only get --anonymous-auth=false when no probe is
    anonymous, since the kubelet would otherwise restart the API server in a loop."""
    flags = pod.flags()
    version = ctx.version
    api_version = authentication_config_api(version)
    if api_version is None:
        if version is None:
            raise RecipeError(
                "the API server's version is unknown (no version in its image tag): an "
                "AuthenticationConfiguration allow-list needs v1.32 or later and "
                "--anonymous-auth=false alone breaks kubeadm's anonymous probes; set "
                "[versions] kube-apiserver in the config file"
            )
        anonymous = _anonymous_probes(pod)
        if anonymous:
            raise RecipeError(
                f"kube-apiserver {version} cannot allow anonymous requests to chosen paths only "
                "(that needs v1.32), and with --anonymous-auth=false its anonymous "
                f"{', '.join(anonymous)} probes would get 401 and the kubelet would restart it "
                "in a loop (kubeadm#798): not planned. Upgrade to v1.32 or later, or make the "
                "probes authenticate first"
            )
        pod.set_flag("--anonymous-auth", "false")
        pod.notes.append(
            f"kube-apiserver {version}: no probe is anonymous, so --anonymous-auth=false is set; "
            "kubeadm join token discovery (anonymous cluster-info) stops working"
        )
        return []
    if flags.get("--authentication-config"):
        raise RecipeError(
            f"the API server already reads {flags.get('--authentication-config')} "
            "(--authentication-config); add an anonymous section allowing only "
            f"{', '.join(ALLOWED_PATHS)} to it by hand and remove --anonymous-auth"
        )
    oidc = sorted(f for f in flags.values if f.startswith("--oidc-"))
    if oidc:
        raise RecipeError(
            f"the API server refuses --authentication-config next to {', '.join(oidc)}; move "
            "the OIDC settings into a jwt section of an AuthenticationConfiguration by hand"
        )
    gates = split_map(flags.get("--feature-gates") or "")
    for gate in ("StructuredAuthenticationConfiguration", "AnonymousAuthConfigurableEndpoints"):
        if gates.get(gate, "").lower() == "false":
            raise RecipeError(f"--feature-gates turns {gate} off; the allow-list needs it")
    layout = ctx.layout
    node_dir = posixpath.dirname(layout.node_path(layout.audit_policy_file))
    node_path = posixpath.join(node_dir, "authentication-config.yaml")
    host = layout.host_path(node_path)
    if _bundled(ctx, AUTHENTICATION_CONFIG, host) is None and host.exists():
        raise RecipeError(
            f"{host} already exists but the API server does not use it; review it and set "
            "--authentication-config by hand"
        )
    text = _authentication_config(api_version)
    pod.set_flag("--authentication-config", node_path)
    if flags.get("--anonymous-auth") is not None:
        pod.remove_flag("--anonymous-auth")
    _mount(pod, "authentication-config", node_path, "File", read_only=True)
    pod.notes.append(
        f"kube-apiserver {version}: AuthenticationConfiguration {api_version}; anonymous "
        f"requests only to {', '.join(ALLOWED_PATHS)}"
    )
    what = "AuthenticationConfiguration (anonymous only for health checks and cluster-info)"
    made = _companion(ctx, AUTHENTICATION_CONFIG, host, node_path, text.encode, what)
    return [made] if made else []


def serve_on_loopback(pod: PodManifest, ctx: RecipeContext) -> list[CompanionFile]:
    """CIS 1.3.7 / 1.4.2: every port the version serves on 127.0.0.1: `--bind-address` where the
    version has it, and `--address` while it still serves the unauthenticated port (kubeadm's
    HTTP liveness probe of 127.0.0.1 on that port keeps working, as it would not with --port=0)."""
    comp, version = pod.component, ctx.version
    probes = parse_manifest(pod.text, Path(f"{comp}.yaml"), comp).probes
    changed = False
    for listener in listeners(comp, pod.flags().values, version):
        if not listener.on_loopback:
            for probe in probes:
                on_loopback = probe.host_given and is_loopback(probe.host)
                if str(probe.port) == listener.port and not on_loopback:
                    where = probe.host if probe.host_given else "the pod IP (no host: given)"
                    raise RecipeError(
                        f"the {probe.kind} reaches :{listener.port} on {where}; with "
                        f"{listener.flag}=127.0.0.1 it would fail and the "
                        f"kubelet would restart {comp} in a loop: set host: 127.0.0.1 on the "
                        "probe first"
                    )
            pod.set_flag(listener.flag, "127.0.0.1")
            changed = True
            if not listener.secure:
                pod.notes.append(
                    f"{comp} {version} still serves the unauthenticated port :{listener.port}: "
                    "--address=127.0.0.1 keeps it off the network"
                )
    if not changed:
        raise RecipeError(f"every port {comp} serves is already on loopback")
    return []


Recipe = Callable[[PodManifest, RecipeContext], list[CompanionFile]]

RECIPES: dict[str, Recipe] = {
    "audit-policy-file": audit_policy_file,
    "audit-log-path": audit_log_path,
    "encryption-provider-config": encryption_provider_config,
    "event-rate-limit": event_rate_limit,
    "anonymous-auth-config": anonymous_auth_config,
    "serve-on-loopback": serve_on_loopback,
}
