"""The certificates, keys and kubeconfigs `kubeadm init` writes, made with cryptography.

Same files, subjects, SANs, usages and modes as kubeadm: certificates 0644, keys 0600
(`keyutil.WriteKey`, which kubeadm also uses for sa.pub), kubeconfigs 0600.
"""

from __future__ import annotations

import base64
import datetime as dt
import ipaddress
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from cis_tui.sandbox.paths import ADDRESS, NODE_NAME, SandboxPaths

CERT_MODE = 0o644
KEY_MODE = 0o600
KUBECONFIG_MODE = 0o600
CLUSTER_NAME = "kubernetes"
SERVICE_IP = "10.96.0.1"

PrivateKey = rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey


@dataclass(frozen=True)
class KeyPair:
    """A certificate with its private key."""

    cert: x509.Certificate
    key: PrivateKey

    @property
    def cert_pem(self) -> bytes:
        return self.cert.public_bytes(serialization.Encoding.PEM)

    @property
    def key_pem(self) -> bytes:
        return key_pem(self.key)


def key_pem(key: PrivateKey) -> bytes:
    # kubeadm writes "RSA PRIVATE KEY" (PKCS#1) for RSA keys.
    fmt = (
        serialization.PrivateFormat.TraditionalOpenSSL
        if isinstance(key, rsa.RSAPrivateKey)
        else serialization.PrivateFormat.PKCS8
    )
    return key.private_bytes(serialization.Encoding.PEM, fmt, serialization.NoEncryption())


def new_rsa_key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


_KEY_CACHE: list[rsa.RSAPrivateKey] = []


class KeySource:
    """RSA-2048 keys, kubeadm's default: fresh ones, or (for test sandboxes) keys generated
    once per process and reused, since key generation is most of a sandbox's creation time."""

    def __init__(self, reuse: bool = False) -> None:
        self.reuse = reuse
        self.used = 0

    def __call__(self) -> rsa.RSAPrivateKey:
        if not self.reuse:
            return new_rsa_key()
        while len(_KEY_CACHE) <= self.used:
            _KEY_CACHE.append(new_rsa_key())
        self.used += 1
        return _KEY_CACHE[self.used - 1]


def _name(cn: str, orgs: Sequence[str] = ()) -> x509.Name:
    attrs = [x509.NameAttribute(NameOID.ORGANIZATION_NAME, o) for o in orgs]
    attrs.append(x509.NameAttribute(NameOID.COMMON_NAME, cn))
    return x509.Name(attrs)


def _now() -> dt.datetime:
    return dt.datetime.now(dt.timezone.utc).replace(microsecond=0)


def make_ca(cn: str, key: rsa.RSAPrivateKey | None = None) -> KeyPair:
    """A self-signed CA, valid ten years like kubeadm's."""
    key = key or new_rsa_key()
    now = _now()
    cert = (
        x509.CertificateBuilder()
        .subject_name(_name(cn))
        .issuer_name(_name(cn))
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=3650))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=False,
                key_encipherment=True,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=True,
                crl_sign=False,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .add_extension(x509.SubjectAlternativeName([x509.DNSName(cn)]), critical=False)
        .sign(key, hashes.SHA256())
    )
    return KeyPair(cert, key)


def make_cert(
    ca: KeyPair,
    cn: str,
    *,
    orgs: Sequence[str] = (),
    server: bool = False,
    client: bool = False,
    dns: Sequence[str] = (),
    ips: Sequence[str] = (),
    key: PrivateKey | None = None,
    days: int = 365,
) -> KeyPair:
    """A leaf certificate signed by `ca` with kubeadm's key usages."""
    key = key or new_rsa_key()
    now = _now()
    usages = []
    if server:
        usages.append(ExtendedKeyUsageOID.SERVER_AUTH)
    if client:
        usages.append(ExtendedKeyUsageOID.CLIENT_AUTH)
    builder = (
        x509.CertificateBuilder()
        .subject_name(_name(cn, orgs))
        .issuer_name(ca.cert.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=days))
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=False,
                key_encipherment=isinstance(key, rsa.RSAPrivateKey),
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=False,
                crl_sign=False,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.ExtendedKeyUsage(usages), critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(ca.key.public_key()),
            critical=False,
        )
    )
    alt: list[x509.GeneralName] = [x509.DNSName(d) for d in dns]
    alt += [x509.IPAddress(ipaddress.ip_address(i)) for i in ips]
    if alt:
        builder = builder.add_extension(x509.SubjectAlternativeName(alt), critical=False)
    return KeyPair(builder.sign(ca.key, hashes.SHA256()), key)


def self_signed_serving(host: str, ips: Sequence[str] = (ADDRESS,)) -> KeyPair:
    """A self-signed serving certificate made at start-up, as kube-scheduler and the
    kube-controller-manager do when --tls-cert-file is not given (ECDSA: fast)."""
    key = ec.generate_private_key(ec.SECP256R1())
    now = _now()
    name = _name(f"{host}@{int(now.timestamp())}")
    alt: list[x509.GeneralName] = [x509.DNSName(host), x509.DNSName("localhost")]
    alt += [x509.IPAddress(ipaddress.ip_address(i)) for i in ips]
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=365))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .add_extension(x509.SubjectAlternativeName(alt), critical=False)
        .sign(key, hashes.SHA256())
    )
    return KeyPair(cert, key)


def write_file(path: Path, data: bytes, mode: int) -> None:
    """Create a file with exactly this mode (umask cannot widen or narrow it)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode)
    try:
        os.write(fd, data)
    finally:
        os.close(fd)
    os.chmod(path, mode)


def write_pair(directory: Path, name: str, pair: KeyPair) -> None:
    write_file(directory / f"{name}.crt", pair.cert_pem, CERT_MODE)
    write_file(directory / f"{name}.key", pair.key_pem, KEY_MODE)


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def kubeconfig(
    server: str,
    ca: KeyPair,
    user: str,
    *,
    client: KeyPair | None = None,
    client_files: Path | None = None,
) -> str:
    """A kubeconfig in the shape kubeadm writes (embedded data, or files for kubelet.conf)."""
    if client_files is not None:
        creds = f"    client-certificate: {client_files}\n    client-key: {client_files}\n"
    elif client is not None:
        creds = (
            f"    client-certificate-data: {_b64(client.cert_pem)}\n"
            f"    client-key-data: {_b64(client.key_pem)}\n"
        )
    else:  # pragma: no cover - every kubeadm kubeconfig has credentials
        creds = ""
    context = f"{user}@{CLUSTER_NAME}"
    return (
        "apiVersion: v1\n"
        "clusters:\n"
        "- cluster:\n"
        f"    certificate-authority-data: {_b64(ca.cert_pem)}\n"
        f"    server: {server}\n"
        f"  name: {CLUSTER_NAME}\n"
        "contexts:\n"
        "- context:\n"
        f"    cluster: {CLUSTER_NAME}\n"
        f"    user: {user}\n"
        f"  name: {context}\n"
        f"current-context: {context}\n"
        "kind: Config\n"
        "preferences: {}\n"
        "users:\n"
        f"- name: {user}\n"
        "  user:\n"
        f"{creds}"
    )


def write_node_pki(paths: SandboxPaths, apiserver_port: int, reuse_keys: bool = False) -> None:
    """Every certificate, key and kubeconfig of a kubeadm control-plane node."""
    keys = KeySource(reuse_keys)
    pki = paths.pki
    etcd_dir = pki / "etcd"
    pki.mkdir(parents=True, exist_ok=True)
    etcd_dir.mkdir(exist_ok=True)
    os.chmod(pki, 0o755)
    os.chmod(etcd_dir, 0o755)

    ca = make_ca("kubernetes", keys())
    write_pair(pki, "ca", ca)
    write_pair(
        pki,
        "apiserver",
        make_cert(
            ca,
            "kube-apiserver",
            server=True,
            dns=[
                NODE_NAME,
                "kubernetes",
                "kubernetes.default",
                "kubernetes.default.svc",
                "kubernetes.default.svc.cluster.local",
                "localhost",
            ],
            ips=[SERVICE_IP, ADDRESS],
            key=keys(),
        ),
    )
    write_pair(
        pki,
        "apiserver-kubelet-client",
        make_cert(
            ca, "kube-apiserver-kubelet-client", orgs=["kubeadm:cluster-admins"], client=True
        ),
    )
    front_ca = make_ca("front-proxy-ca", keys())
    write_pair(pki, "front-proxy-ca", front_ca)
    write_pair(
        pki,
        "front-proxy-client",
        make_cert(front_ca, "front-proxy-client", client=True, key=keys()),
    )

    etcd_ca = make_ca("etcd-ca", keys())
    write_pair(etcd_dir, "ca", etcd_ca)
    for name in ("server", "peer"):
        pair = make_cert(
            etcd_ca,
            NODE_NAME,
            server=True,
            client=True,
            dns=[NODE_NAME, "localhost"],
            ips=[ADDRESS, "::1"],
            key=keys(),
        )
        write_pair(etcd_dir, name, pair)
    write_pair(
        etcd_dir,
        "healthcheck-client",
        make_cert(etcd_ca, "kube-etcd-healthcheck-client", client=True, key=keys()),
    )
    write_pair(
        pki,
        "apiserver-etcd-client",
        make_cert(etcd_ca, "kube-apiserver-etcd-client", client=True, key=keys()),
    )

    sa = keys()
    write_file(pki / "sa.key", key_pem(sa), KEY_MODE)
    sa_pub = sa.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    write_file(pki / "sa.pub", sa_pub, KEY_MODE)

    server = f"https://{ADDRESS}:{apiserver_port}"
    confs = {
        "admin.conf": ("kubernetes-admin", ["kubeadm:cluster-admins"]),
        "super-admin.conf": ("kubernetes-super-admin", ["system:masters"]),
        "controller-manager.conf": ("system:kube-controller-manager", []),
        "scheduler.conf": ("system:kube-scheduler", []),
    }
    for filename, (user, orgs) in confs.items():
        client = make_cert(ca, user, orgs=orgs, client=True, key=keys())
        write_file(
            paths.etc_kubernetes / filename,
            kubeconfig(server, ca, user, client=client).encode(),
            KUBECONFIG_MODE,
        )

    # The kubelet: a rotated client certificate (cert + key in one file) behind a symlink,
    # and the self-signed serving pair it makes in its --cert-dir on first start.
    kubelet_pki = paths.kubelet_pki
    kubelet_pki.mkdir(parents=True, exist_ok=True)
    os.chmod(kubelet_pki, 0o755)
    node_user = f"system:node:{NODE_NAME}"
    node_client = make_cert(ca, node_user, orgs=["system:nodes"], client=True, key=keys())
    stamp = _now().strftime("%Y-%m-%d-%H-%M-%S")
    client_pem = kubelet_pki / f"kubelet-client-{stamp}.pem"
    write_file(client_pem, node_client.cert_pem + node_client.key_pem, KEY_MODE)
    current = kubelet_pki / "kubelet-client-current.pem"
    current.symlink_to(client_pem)
    serving = self_signed_serving(NODE_NAME)
    write_file(kubelet_pki / "kubelet.crt", serving.cert_pem, CERT_MODE)
    write_file(kubelet_pki / "kubelet.key", serving.key_pem, KEY_MODE)
    write_file(
        paths.etc_kubernetes / "kubelet.conf",
        kubeconfig(server, ca, node_user, client_files=current).encode(),
        KUBECONFIG_MODE,
    )
