"""Build kubeadm-like node trees in a temporary directory (for `--root` scans, no processes)."""

from __future__ import annotations

import os
import pwd
from pathlib import Path

DATA = Path(__file__).parent / "data" / "kubeadm"

CERT = "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n"
KEY = "-----BEGIN PRIVATE KEY-----\nMIIE\n-----END PRIVATE KEY-----\n"

PKI_FILES = [
    "ca.crt", "ca.key", "apiserver.crt", "apiserver.key",
    "apiserver-kubelet-client.crt", "apiserver-kubelet-client.key",
    "apiserver-etcd-client.crt", "apiserver-etcd-client.key",
    "front-proxy-ca.crt", "front-proxy-ca.key", "front-proxy-client.crt", "front-proxy-client.key",
    "sa.key", "sa.pub",
    "etcd/ca.crt", "etcd/ca.key", "etcd/server.crt", "etcd/server.key", "etcd/peer.crt",
    "etcd/peer.key", "etcd/healthcheck-client.crt", "etcd/healthcheck-client.key",
]  # fmt: skip

DROP_IN = """# Note: This dropin only works with kubeadm and kubelet v1.11+
[Service]
Environment="KUBELET_KUBECONFIG_ARGS=--bootstrap-kubeconfig=/etc/kubernetes/bootstrap-kubelet.conf --kubeconfig=/etc/kubernetes/kubelet.conf"
Environment="KUBELET_CONFIG_ARGS=--config=/var/lib/kubelet/config.yaml"
EnvironmentFile=-/var/lib/kubelet/kubeadm-flags.env
EnvironmentFile=-/etc/default/kubelet
ExecStart=
ExecStart=/usr/bin/kubelet $KUBELET_KUBECONFIG_ARGS $KUBELET_CONFIG_ARGS $KUBELET_KUBEADM_ARGS $KUBELET_EXTRA_ARGS
"""
FLAGS_ENV = 'KUBELET_KUBEADM_ARGS="--container-runtime-endpoint=unix:///var/run/containerd/containerd.sock"\n'

HARDENED_FLAGS = {
    "kube-apiserver": [
        "--anonymous-auth=false",
        "--profiling=false",
        "--audit-log-path=/var/log/kubernetes/audit/audit.log",
        "--audit-log-maxage=30",
        "--audit-log-maxbackup=10",
        "--audit-log-maxsize=100",
        "--audit-policy-file=/etc/kubernetes/audit-policy.yaml",
        "--kubelet-certificate-authority=/etc/kubernetes/pki/ca.crt",
        "--encryption-provider-config=/etc/kubernetes/enc/encryption-config.yaml",
        "--admission-control-config-file=/etc/kubernetes/admission/admission-config.yaml",
        "--service-account-extend-token-expiration=false",
        "--tls-cipher-suites=TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256,TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256",
    ],
    "kube-controller-manager": ["--profiling=false", "--terminated-pod-gc-threshold=10"],
    "kube-scheduler": ["--profiling=false"],
    "etcd": [],
}
HARDENED_PLUGINS = "NodeRestriction,EventRateLimit,AlwaysPullImages,DenyServiceExternalIPs"
HARDENED_KUBELET = """readOnlyPort: 0
seccompDefault: true
podPidsLimit: 4096
tlsCertFile: /var/lib/kubelet/pki/kubelet.crt
tlsPrivateKeyFile: /var/lib/kubelet/pki/kubelet.key
tlsCipherSuites:
- TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256
- TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256
"""
ENCRYPTION = """apiVersion: apiserver.config.k8s.io/v1
kind: EncryptionConfiguration
resources:
- resources:
  - secrets
  providers:
  - secretbox:
      keys:
      - name: key1
        secret: c2VjcmV0IGlzIHNlY3VyZSwgb3IgaXMgaXQ/Cg==
  - identity: {}
"""


def write(path: Path, text: str, mode: int) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    path.chmod(mode)
    return path


def manifest_text(component: str, hardened: bool = False) -> str:
    text = (DATA / f"{component}.yaml").read_text()
    if not hardened:
        return text
    extra = HARDENED_FLAGS[component]
    lines = text.splitlines(keepends=True)
    at = next(i for i, line in enumerate(lines) if line.strip() == f"- {component}")
    lines[at + 1 : at + 1] = [f"    - {flag}\n" for flag in extra]
    text = "".join(lines)
    return text.replace(
        "--enable-admission-plugins=NodeRestriction",
        f"--enable-admission-plugins={HARDENED_PLUGINS}",
    )


def build_kubeadm_tree(root: Path, hardened: bool = False) -> Path:
    """A fresh kubeadm control-plane node under root (files only), kubeadm's modes."""
    etc = root / "etc/kubernetes"
    for comp in ("etcd", "kube-apiserver", "kube-controller-manager", "kube-scheduler"):
        write(etc / "manifests" / f"{comp}.yaml", manifest_text(comp, hardened), 0o600)
    (etc / "manifests").chmod(0o700)
    for name in (
        "admin.conf",
        "super-admin.conf",
        "kubelet.conf",
        "scheduler.conf",
        "controller-manager.conf",
    ):
        write(etc / name, "apiVersion: v1\nkind: Config\n", 0o600)
    for name in PKI_FILES:
        is_key = name.endswith(".key")
        write(etc / "pki" / name, KEY if is_key else CERT, 0o600 if is_key else 0o644)
    kubelet_cfg = (DATA / "kubelet-config.yaml").read_text()
    if hardened:
        kubelet_cfg = kubelet_cfg.replace(
            "streamingConnectionIdleTimeout: 0s", "streamingConnectionIdleTimeout: 5m0s"
        )
        kubelet_cfg += HARDENED_KUBELET
    write(root / "var/lib/kubelet/config.yaml", kubelet_cfg, 0o600 if hardened else 0o644)
    write(root / "var/lib/kubelet/kubeadm-flags.env", FLAGS_ENV, 0o644)
    write(
        root / "etc/systemd/system/kubelet.service.d/10-kubeadm.conf",
        DROP_IN,
        0o600 if hardened else 0o644,
    )
    data_dir = root / "var/lib/etcd"
    data_dir.mkdir(parents=True, exist_ok=True)
    data_dir.chmod(0o700)
    if hardened:
        write(etc / "audit-policy.yaml", "apiVersion: audit.k8s.io/v1\nkind: Policy\n", 0o600)
        write(etc / "enc/encryption-config.yaml", ENCRYPTION, 0o600)
        write(etc / "admission/admission-config.yaml", "kind: AdmissionConfiguration\n", 0o600)
        etcd_user = etcd_account()
        if etcd_user is not None and os.geteuid() == 0:
            os.chown(data_dir, *etcd_user)
    return root


def etcd_account() -> tuple[int, int] | None:
    """uid and gid of an `etcd` user, if the machine has one (Debian's etcd-server adds it)."""
    try:
        entry = pwd.getpwnam("etcd")
    except KeyError:
        return None
    return entry.pw_uid, entry.pw_gid
