"""Scenarios: how a sandbox node differs from a fresh `kubeadm init`.

- `default`: a fresh kubeadm node, nothing changed (so exactly kubeadm's CIS failures).
- `hardened`: what the benchmark asks for: audit logging, encryption at rest, EventRateLimit,
  profiling off, strict kubelet config, tighter file modes; companion files are mounted. The
  API server keeps anonymous requests (its probes need them; see `hardened`).
- `insecure`: an administrator's worst day: anonymous and AlwaysAllow everywhere, loose modes.
- `stray-backup`: `cp kube-apiserver.yaml kube-apiserver.yaml.bak` left in the manifests dir
  before an edit; like on a real kubelet, the backup's spec is what runs (kubeadm#2823).
- `v1.29`: a fresh kubeadm v1.29 node (CIS 1.11): its images, etcd 3.5, the kubelet's
  kubeadm-flags as kubeadm 1.29 wrote them; the stand-ins refuse flags 1.29 does not have.
- `v1.35`: a fresh kubeadm v1.35 node (CIS 2.0), pinned (`default` follows the templates).

Every stand-in plays the version of its image tag (the kubelet the one its script names).
"""

from __future__ import annotations

import base64
import os
import re
import secrets
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from cis_tui.sandbox import manifests as mf
from cis_tui.sandbox.paths import SandboxPaths


@dataclass
class NodeDraft:
    """The text files of a node being created, editable by a scenario before they are written."""

    paths: SandboxPaths
    ports: dict[str, int]
    #: path -> (text, mode); written in insertion order.
    files: dict[Path, tuple[str, int]] = field(default_factory=dict)
    #: Applied after every file exists: path -> mode.
    modes: dict[Path, int] = field(default_factory=dict)
    #: Directories to create: path -> mode.
    dirs: dict[Path, int] = field(default_factory=dict)
    #: chown when running as root and the account exists: path -> "user:group".
    owners: dict[Path, str] = field(default_factory=dict)
    #: The Kubernetes version the node runs: its images' tags and the kubelet's.
    kubernetes: str = "v1.35.0"
    #: Whether etcd is the installed binary (its manifest then matches that binary's version).
    etcd_real: bool = False

    def text(self, path: Path) -> str:
        return self.files[path][0]

    def edit(self, path: Path, change: Callable[[str], str]) -> None:
        text, mode = self.files[path]
        self.files[path] = (change(text), mode)

    def manifest(self, component: str) -> Path:
        return self.paths.manifest(component)


STRONG_CIPHERS = (
    "TLS_AES_128_GCM_SHA256,TLS_AES_256_GCM_SHA384,TLS_CHACHA20_POLY1305_SHA256,"
    "TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256,TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384,"
    "TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305,TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256,"
    "TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384,TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305"
)
KUBELET_CIPHERS = (
    "TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256",
    "TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256",
    "TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305",
    "TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384",
    "TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305",
    "TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384",
)

AUDIT_POLICY = """\
apiVersion: audit.k8s.io/v1
kind: Policy
omitStages:
- RequestReceived
rules:
- level: None
  nonResourceURLs:
  - /healthz*
  - /livez*
  - /readyz*
  - /version
- level: Metadata
  resources:
  - group: ""
    resources:
    - secrets
    - configmaps
- level: Metadata
"""


def _encryption_config() -> str:
    key = base64.b64encode(secrets.token_bytes(32)).decode()
    return f"""\
apiVersion: apiserver.config.k8s.io/v1
kind: EncryptionConfiguration
resources:
- resources:
  - secrets
  providers:
  - aescbc:
      keys:
      - name: key1
        secret: {key}
  - identity: {{}}
"""


ADMISSION_CONFIG = """\
apiVersion: apiserver.config.k8s.io/v1
kind: AdmissionConfiguration
plugins:
- name: EventRateLimit
  path: eventconfig.yaml
"""

EVENT_CONFIG = """\
apiVersion: eventratelimit.admission.k8s.io/v1alpha1
kind: Configuration
limits:
- type: Namespace
  qps: 50
  burst: 100
  cacheSize: 2000
- type: User
  qps: 10
  burst: 50
"""


def default(draft: NodeDraft) -> None:
    """A fresh kubeadm node: nothing to change."""


def hardened(draft: NodeDraft) -> None:
    """Every benchmark recommendation a single control-plane node can follow."""
    p = draft.paths
    audit_policy = p.host("/etc/kubernetes/audit-policy.yaml")
    audit_dir = p.host("/var/log/kubernetes/audit")
    enc_dir = p.host("/etc/kubernetes/enc")
    adm_dir = p.host("/etc/kubernetes/admission")
    draft.dirs.update({audit_dir.parent: 0o755, audit_dir: 0o700, enc_dir: 0o700, adm_dir: 0o700})
    draft.files[audit_policy] = (AUDIT_POLICY, 0o600)
    draft.files[enc_dir / "encryption-config.yaml"] = (_encryption_config(), 0o600)
    draft.files[adm_dir / "admission-config.yaml"] = (ADMISSION_CONFIG, 0o600)
    draft.files[adm_dir / "eventconfig.yaml"] = (EVENT_CONFIG, 0o600)

    def apiserver(text: str) -> str:
        # Not --anonymous-auth=false: the kubelet's probes are anonymous, so that API server
        # would answer them 401 and be restarted in a loop (kubeadm#798). Anonymous requests
        # stay limited by RBAC to the health and version paths (1.2.1 is a manual check).
        for flag, value in {
            "--admission-control-config-file": str(adm_dir / "admission-config.yaml"),
            "--audit-log-maxage": "30",
            "--audit-log-maxbackup": "10",
            "--audit-log-maxsize": "100",
            "--audit-log-path": str(audit_dir / "audit.log"),
            "--audit-policy-file": str(audit_policy),
            "--enable-admission-plugins": (
                "NodeRestriction,EventRateLimit,AlwaysPullImages,DenyServiceExternalIPs"
            ),
            "--encryption-provider-config": str(enc_dir / "encryption-config.yaml"),
            "--kubelet-certificate-authority": str(p.ca_cert),
            "--profiling": "false",
            "--request-timeout": "300s",
            "--service-account-extend-token-expiration": "false",
            "--service-account-lookup": "true",
            "--tls-cipher-suites": STRONG_CIPHERS,
            "--tls-min-version": "VersionTLS12",
        }.items():
            text = mf.set_flag(text, flag, value)
        for vol in (
            mf.HostPathVolume("admission-config", str(adm_dir), str(adm_dir)),
            mf.HostPathVolume("audit-log", str(audit_dir), str(audit_dir), read_only=False),
            mf.HostPathVolume("audit-policy", str(audit_policy), str(audit_policy), "File"),
            mf.HostPathVolume("encryption-config", str(enc_dir), str(enc_dir)),
        ):
            text = mf.add_volume(text, vol)
        return text

    draft.edit(draft.manifest("kube-apiserver"), apiserver)
    draft.edit(
        draft.manifest("kube-controller-manager"),
        lambda t: mf.set_flag(
            mf.set_flag(t, "--profiling", "false"), "--terminated-pod-gc-threshold", "10"
        ),
    )
    draft.edit(draft.manifest("kube-scheduler"), lambda t: mf.set_flag(t, "--profiling", "false"))

    def kubelet(text: str) -> str:
        for key, value in {
            "eventRecordQPS": " 5",
            "makeIPTablesUtilChains": " true",
            "podPidsLimit": " 4096",
            "readOnlyPort": " 0",
            "seccompDefault": " true",
            "streamingConnectionIdleTimeout": " 5m0s",
            "tlsCertFile": f" {p.kubelet_pki / 'kubelet.crt'}",
            "tlsCipherSuites": "".join(f"\n- {c}" for c in KUBELET_CIPHERS),
            "tlsPrivateKeyFile": f" {p.kubelet_pki / 'kubelet.key'}",
        }.items():
            text = mf.set_top_level(text, key, value)
        return text

    draft.edit(p.kubelet_config, kubelet)
    draft.modes[p.kubelet_config] = 0o600
    draft.modes[p.kubelet_dropin] = 0o600
    draft.modes[p.host("/etc/cni/net.d/10-flannel.conflist")] = 0o600
    draft.owners[p.etcd_data] = "etcd:etcd"


def insecure(draft: NodeDraft) -> None:
    """Anonymous access and AlwaysAllow everywhere, profiling on, loose file modes."""
    p = draft.paths
    tokens = p.pki / "tokens.csv"
    draft.files[tokens] = (f"{secrets.token_hex(16)},admin,1000,system:masters\n", 0o644)

    def apiserver(text: str) -> str:
        for flag, value in {
            "--anonymous-auth": "true",
            "--authorization-mode": "AlwaysAllow",
            "--enable-admission-plugins": "AlwaysAdmit,NodeRestriction",
            "--profiling": "true",
            "--service-account-lookup": "false",
            "--token-auth-file": str(tokens),
        }.items():
            text = mf.set_flag(text, flag, value)
        return text

    draft.edit(draft.manifest("kube-apiserver"), apiserver)
    for comp in ("kube-controller-manager", "kube-scheduler"):
        draft.edit(
            draft.manifest(comp),
            lambda t: mf.set_flag(
                mf.set_flag(t, "--bind-address", "0.0.0.0"), "--profiling", "true"
            ),
        )
    draft.edit(
        draft.manifest("kube-controller-manager"),
        lambda t: mf.set_flag(t, "--use-service-account-credentials", "false"),
    )
    draft.edit(
        draft.manifest("etcd"),
        lambda t: mf.set_flag(t, "--peer-client-cert-auth", "false"),
    )

    def kubelet(text: str) -> str:
        text = text.replace("  anonymous:\n    enabled: false", "  anonymous:\n    enabled: true")
        text = text.replace("  mode: Webhook", "  mode: AlwaysAllow")
        for key, value in {
            "makeIPTablesUtilChains": " false",
            "readOnlyPort": f" {draft.ports['kubelet-read-only']}",
            "rotateCertificates": " false",
        }.items():
            text = mf.set_top_level(text, key, value)
        return text

    draft.edit(p.kubelet_config, kubelet)
    for comp in ("etcd", "kube-apiserver", "kube-controller-manager", "kube-scheduler"):
        draft.modes[draft.manifest(comp)] = 0o644
    for conf in ("admin.conf", "super-admin.conf", "kubelet.conf", "scheduler.conf"):
        draft.modes[p.etc_kubernetes / conf] = 0o644
    draft.modes[p.pki / "ca.key"] = 0o644
    draft.modes[p.pki / "apiserver.key"] = 0o644
    draft.modes[p.etcd_data] = 0o755
    draft.modes[p.kubelet_config] = 0o666


def stray_backup(draft: NodeDraft) -> None:
    """A backup copy left in the manifests dir before an edit; the backup is what runs."""
    path = draft.manifest("kube-apiserver")
    original = draft.text(path)
    draft.edit(path, lambda t: mf.set_flag(t, "--profiling", "false"))
    draft.files[path.with_name("kube-apiserver.yaml.bak")] = (original, 0o600)


#: The etcd kubeadm pins for each Kubernetes minor the scenarios use (kubeadm's constants).
KUBEADM_ETCD = {"1.29": (3, 5, 12), "1.35": (3, 6, 6)}


def kubernetes_version(draft: NodeDraft, version: str) -> None:
    """Make the node a kubeadm node of `version`: the control-plane images' tags, kubeadm's
    etcd for that release (unless the installed etcd runs), the kubelet's version."""
    from cis_tui.sandbox.create import adapt_etcd  # create imports this module

    template = "v1.35.0"
    for comp in ("kube-apiserver", "kube-controller-manager", "kube-scheduler"):
        draft.edit(
            draft.manifest(comp), lambda t, c=comp: t.replace(f"{c}:{template}", f"{c}:{version}")
        )
    minor = ".".join(version.lstrip("v").split(".")[:2])
    if not draft.etcd_real and minor in KUBEADM_ETCD:
        draft.edit(draft.manifest("etcd"), lambda t: adapt_etcd(t, KUBEADM_ETCD[minor]))
        etcd = "{}.{}.{}".format(*KUBEADM_ETCD[minor])
        draft.edit(draft.manifest("etcd"), lambda t: re.sub(r"etcd:[0-9.]+-0", f"etcd:{etcd}-0", t))
    draft.kubernetes = version


def v1_29(draft: NodeDraft) -> None:
    """A fresh kubeadm v1.29 node (kube-bench maps 1.29 to CIS 1.11)."""
    kubernetes_version(draft, "v1.29.4")
    # kubeadm 1.29 still passed the pause image to the kubelet (a flag v1.35 removed), and
    # its kubelet config had no crashLoopBackOff section (1.32+).
    draft.edit(
        draft.paths.kubelet_flags_env,
        lambda t: t.replace(
            'KUBELET_KUBEADM_ARGS="',
            'KUBELET_KUBEADM_ARGS="--pod-infra-container-image=registry.k8s.io/pause:3.9 ',
        ),
    )
    draft.edit(draft.paths.kubelet_config, lambda t: t.replace("crashLoopBackOff: {}\n", ""))


def v1_35(draft: NodeDraft) -> None:
    """A fresh kubeadm v1.35 node (kube-bench maps 1.35 to CIS 2.0)."""
    kubernetes_version(draft, "v1.35.0")


SCENARIO_FUNCS: dict[str, Callable[[NodeDraft], None]] = {
    "default": default,
    "hardened": hardened,
    "insecure": insecure,
    "stray-backup": stray_backup,
    "v1.29": v1_29,
    "v1.35": v1_35,
}


def chown_if_root(path: Path, owner: str) -> None:
    """chown user:group when running as root and both exist; otherwise leave it."""
    if os.geteuid() != 0:
        return
    import grp
    import pwd

    user, _, group = owner.partition(":")
    try:
        uid = pwd.getpwnam(user).pw_uid
        gid = grp.getgrnam(group or user).gr_gid
    except KeyError:
        return
    os.chown(path, uid, gid)
