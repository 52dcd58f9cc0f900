"""Read and write kubeadm's ConfigMaps through the API server, as admin.conf allows.

Mutual TLS only: the server is verified against the cluster CA of the kubeconfig and nothing
else (no system trust store, no proxy from the environment), and the client authenticates with
the kubeconfig's client certificate. Writes are optimistic: a PUT carries the resourceVersion it
read, and a 409 makes `update` re-read and re-apply the edit to the fresh text.
"""

from __future__ import annotations

import base64
import binascii
import copy
import datetime as dt
import json
import os
import ssl
import tempfile
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from http import HTTPStatus
from pathlib import Path
from types import TracebackType
from typing import Any, Protocol
from urllib.parse import quote, urlsplit

import httpx

from cis_tui import safeyaml
from cis_tui.errors import UserError

FIELD_MANAGER = "cis-tui"
#: Largest kubeconfig or referenced PEM file read (admin.conf is about 5 KB).
MAX_FILE_BYTES = 1 << 20
#: Largest answer read: a ConfigMap holds at most 1 MiB, which JSON escaping can inflate.
MAX_RESPONSE_BYTES = 4 << 20
#: Auth methods a kubeconfig user can have besides a client certificate, as users read them.
_OTHER_AUTH = {
    "token": "a bearer token",
    "tokenFile": "a bearer token file",
    "exec": "an exec credential plugin",
    "auth-provider": "an auth-provider plugin",
    "username": "basic auth (username/password)",
}
#: TLS alerts a server sends when it refuses the client certificate.
_CLIENT_CERT_ALERTS = ("UNKNOWN_CA", "BAD_CERTIFICATE", "CERTIFICATE_REQUIRED", "EXPIRED")
#: OpenSSL's X509_V_ERR_HOSTNAME_MISMATCH and X509_V_ERR_IP_ADDRESS_MISMATCH.
_NAME_MISMATCH = (62, 64)


class ApiError(Exception):
    """A request that failed, as one line: `GET <url>: 403 Forbidden: <server message>`.

    `status` is the HTTP status, or None when no HTTP answer came (connection refused, TLS
    verification failure, timeout); `reason` is the Kubernetes Status reason when one came.
    """

    def __init__(self, message: str, status: int | None = None, reason: str = "") -> None:
        self.status = status
        self.reason = reason
        super().__init__(message)


class Conflict(ApiError):
    """409: the object changed since it was read (or another write won the race)."""


@dataclass(frozen=True)
class ClusterAccess:
    """What a kubeconfig's current context says about reaching the API server."""

    server: str
    # Kept out of repr: a logged or printed ClusterAccess must not carry the private key.
    ca_pem: bytes = field(repr=False)
    cert_pem: bytes = field(repr=False)
    key_pem: bytes = field(repr=False)
    source: Path


@dataclass(frozen=True)
class ConfigMap:
    """A ConfigMap exactly as the server returned it."""

    obj: dict[str, Any]

    @property
    def _metadata(self) -> dict[str, Any]:
        metadata = self.obj.get("metadata")
        return metadata if isinstance(metadata, dict) else {}

    @property
    def name(self) -> str:
        return str(self._metadata.get("name", ""))

    @property
    def namespace(self) -> str:
        return str(self._metadata.get("namespace", ""))

    @property
    def resource_version(self) -> str:
        return str(self._metadata.get("resourceVersion", ""))

    @property
    def data(self) -> dict[str, str]:
        """A copy of `data` (empty when the ConfigMap has none)."""
        return dict(self.obj.get("data") or {})


# -- kubeconfig ------------------------------------------------------------------------------


#: (path, device, inode, size, mtime) -> what it said: checking a key against its
#: certificate costs a tenth of a second, and a scan, a plan and an apply each read it.
_KUBECONFIGS: dict[tuple[str, int, int, int, int], ClusterAccess] = {}


def read_kubeconfig(path: Path) -> ClusterAccess:
    """The server, cluster CA and client certificate of `path`'s current context.

    UserError (naming `path`) when the file is missing or unreadable, not YAML, has no usable
    current context, or authenticates other than with a client certificate. Cached per version
    of the file (a rewritten file is read again)."""
    path = Path(path)
    try:
        st = path.stat()
    except OSError:
        return _read_kubeconfig(path)  # says why, naming the file
    key = (str(path), st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns)
    if key not in _KUBECONFIGS:
        _KUBECONFIGS[key] = _read_kubeconfig(path)
    return _KUBECONFIGS[key]


def _read_kubeconfig(path: Path) -> ClusterAccess:
    text = _read_bytes(path, path, "").decode("utf-8", "replace")
    from ruamel.yaml.error import YAMLError

    try:
        doc = safeyaml.load(text)
    except safeyaml.YamlLimitError as exc:
        raise UserError(f"refused YAML: {exc}", path) from None
    except YAMLError as exc:
        raise UserError(f"not YAML: {_yaml_problem(exc)}", path) from None
    if not isinstance(doc, dict):
        raise UserError("not a kubeconfig: expected a mapping with clusters, contexts, users", path)
    current = doc.get("current-context")
    if not isinstance(current, str) or not current:
        raise UserError("no current-context", path)
    context = _entry(doc, "contexts", "context", current, path, "the current-context")
    cluster_name, user_name = context.get("cluster"), context.get("user")
    for what, value in (("cluster", cluster_name), ("user", user_name)):
        if not isinstance(value, str) or not value:
            raise UserError(f'context "{current}" names no {what}', path)
    assert isinstance(cluster_name, str) and isinstance(user_name, str)
    cluster = _entry(doc, "clusters", "cluster", cluster_name, path, f'context "{current}"')
    user = _entry(doc, "users", "user", user_name, path, f'context "{current}"')

    server = cluster.get("server")
    where = f'cluster "{cluster_name}"'
    if not isinstance(server, str) or not server:
        raise UserError(f"{where} has no server", path)
    parts = urlsplit(server)
    if parts.scheme != "https" or not parts.hostname:
        raise UserError(f"{where} server {server!r} is not an https:// URL", path)
    if cluster.get("insecure-skip-tls-verify") is True:
        raise UserError(
            f"{where} sets insecure-skip-tls-verify: cis-tui always verifies the API server "
            "against the cluster CA",
            path,
        )
    ca_pem = _pem_field(cluster, "certificate-authority", path, where)
    if ca_pem is None:
        raise UserError(f"{where} has no certificate-authority-data or certificate-authority", path)

    who = f'user "{user_name}"'
    cert_pem = _pem_field(user, "client-certificate", path, who)
    key_pem = _pem_field(user, "client-key", path, who)
    if cert_pem is None:
        other = next((label for key, label in _OTHER_AUTH.items() if user.get(key)), None)
        if other is not None:
            raise UserError(
                f"{who} authenticates with {other}, which cis-tui does not support: it needs a "
                "client certificate (client-certificate-data and client-key-data, as in "
                "kubeadm's admin.conf)",
                path,
            )
        raise UserError(f"{who} has no client certificate (client-certificate-data)", path)
    if key_pem is None:
        raise UserError(f"{who} has a client certificate but no client-key-data", path)
    _check_pems(ca_pem, cert_pem, key_pem, path, where, who)
    return ClusterAccess(server.rstrip("/"), ca_pem, cert_pem, key_pem, path)


def _read_bytes(path: Path, kubeconfig: Path, what: str) -> bytes:
    """A bounded read; errors name `what` (a field, "" for the kubeconfig itself)."""
    prefix = f"{what} {path}: " if what else ""
    try:
        with path.open("rb") as fh:
            raw = fh.read(MAX_FILE_BYTES + 1)
    except OSError as exc:
        raise UserError(f"{prefix}cannot read: {exc.strerror or exc}", kubeconfig) from None
    if len(raw) > MAX_FILE_BYTES:
        raise UserError(f"{prefix}larger than {MAX_FILE_BYTES} bytes", kubeconfig)
    return raw


def _yaml_problem(exc: Exception) -> str:
    problem = getattr(exc, "problem", None)
    mark = getattr(exc, "problem_mark", None)
    if problem and mark is not None:
        return f"{problem} (line {mark.line + 1})"
    lines = str(exc).strip().splitlines()
    return lines[0] if lines else type(exc).__name__


def _entry(
    doc: dict[str, Any], section: str, inner: str, name: str, path: Path, by: str
) -> dict[str, Any]:
    """The `inner` mapping of the entry called `name` in the list `section`."""
    entries = doc.get(section)
    for entry in entries if isinstance(entries, list) else ():
        if isinstance(entry, dict) and entry.get("name") == name:
            value = entry.get(inner)
            if not isinstance(value, dict):
                raise UserError(f'{inner} "{name}" in {section} is not a mapping', path)
            return value
    raise UserError(f'{inner} "{name}" named by {by} is not in {section}', path)


def _pem_field(section: dict[str, Any], key: str, path: Path, who: str) -> bytes | None:
    """`<key>-data` (base64) or the file `<key>` (relative to the kubeconfig, as kubectl does)."""
    data = section.get(f"{key}-data")
    if data:
        if not isinstance(data, str):
            raise UserError(f"{who} {key}-data is not a string", path)
        try:
            return base64.b64decode("".join(data.split()), validate=True)
        except (binascii.Error, ValueError):
            raise UserError(f"{who} {key}-data is not valid base64", path) from None
    name = section.get(key)
    if name:
        if not isinstance(name, str):
            raise UserError(f"{who} {key} is not a file name", path)
        return _read_bytes(path.parent / name, path, f"{who} {key}")
    return None


def _check_pems(ca: bytes, cert: bytes, key: bytes, path: Path, where: str, who: str) -> None:
    """Refuse unusable PEM here, where the message can name the kubeconfig and the field."""
    from cryptography import x509
    from cryptography.hazmat.primitives import serialization

    try:
        x509.load_pem_x509_certificates(ca)
    except ValueError:
        raise UserError(f"{where} certificate-authority holds no PEM certificate", path) from None
    try:
        client = x509.load_pem_x509_certificate(cert)
    except ValueError:
        raise UserError(f"{who} client certificate is not a PEM certificate", path) from None
    try:
        private = serialization.load_pem_private_key(key, password=None)
    except (ValueError, TypeError) as exc:
        problem = "is encrypted" if isinstance(exc, TypeError) else "is not a PEM private key"
        raise UserError(f"{who} client key {problem}", path) from None
    spki = (serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    if client.public_key().public_bytes(*spki) != private.public_key().public_bytes(*spki):
        raise UserError(f"{who} client key does not match its client certificate", path)
    expiry = client.not_valid_after_utc
    if expiry <= dt.datetime.now(dt.timezone.utc):
        raise UserError(
            f"{who} client certificate expired on {expiry:%Y-%m-%d %H:%M} UTC "
            "(`kubeadm certs renew admin.conf` renews admin.conf)",
            path,
        )


# -- HTTP ------------------------------------------------------------------------------------


def _ssl_context(access: ClusterAccess) -> ssl.SSLContext:
    """Trust exactly the kubeconfig's CA; present its client certificate."""
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)  # CERT_REQUIRED and hostname checks
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    try:
        ctx.load_verify_locations(cadata=access.ca_pem.decode("ascii"))
    except (ssl.SSLError, ValueError) as exc:
        raise UserError(f"unusable certificate-authority: {exc}", access.source) from None
    # load_cert_chain reads only files: the key lives on disk in a 0700 directory (mkdtemp's
    # mode) for the duration of this call.
    with tempfile.TemporaryDirectory(prefix="cis-tui-client-") as tmp:
        cert_file, key_file = Path(tmp, "client.crt"), Path(tmp, "client.key")
        for file, data in ((cert_file, access.cert_pem), (key_file, access.key_pem)):
            fd = os.open(file, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(fd, "wb") as fh:
                fh.write(data)
        try:
            ctx.load_cert_chain(cert_file, key_file)
        except ssl.SSLError as exc:
            raise UserError(f"unusable client certificate: {exc}", access.source) from None
    return ctx


def _chain(exc: BaseException) -> Iterator[BaseException]:
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        yield current
        current = current.__cause__ or current.__context__


def _transport_problem(exc: httpx.TransportError, source: Path) -> str:
    """Why no HTTP answer came, in words that point at the fix."""
    for cause in _chain(exc):
        if isinstance(cause, ssl.SSLCertVerificationError):
            detail = (cause.verify_message or cause.reason or str(cause)).rstrip(".")
            if cause.verify_code in _NAME_MISMATCH:
                why = f"the certificate does not name the host of the server URL in {source}"
            else:
                why = f"trusting only the certificate-authority in {source}"
            return f"TLS certificate verification failed: {detail} ({why})"
        if isinstance(cause, ssl.SSLError):
            reason = cause.reason or str(cause)
            if any(alert in reason for alert in _CLIENT_CERT_ALERTS):
                return (
                    f"TLS handshake refused by the server ({reason}): it does not accept the "
                    f"client certificate of {source}"
                )
            return f"TLS handshake failed: {reason}"
    if isinstance(exc, httpx.ConnectError):
        return f"cannot connect: {exc}"
    return f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__


def _one_line(text: str, limit: int = 500) -> str:
    line = " ".join(text.split())
    return line if len(line) <= limit else line[: limit - 1] + "…"


class ConfigStore(Protocol):
    """Where kubeadm's configuration is kept: ConfigMaps on the API server, or the patches
    directory (cis_tui.persist.patchfiles.PatchDirectory), read and replaced alike."""

    def get(self, name: str, namespace: str = "kube-system") -> ConfigMap: ...

    def replace(self, cm: ConfigMap, data: Mapping[str, str]) -> ConfigMap: ...

    def close(self) -> None: ...

    def __enter__(self) -> ConfigStore: ...

    def __exit__(self, *exc: object) -> None: ...


class ConfigMapClient:
    """GET and PUT of ConfigMaps with the credentials of one kubeconfig."""

    def __init__(self, access: ClusterAccess, timeout: float = 10.0) -> None:
        self.access = access
        self.timeout = timeout
        # trust_env=False: an HTTPS_PROXY set for image pulls must not carry the admin
        # credential's connection elsewhere, nor SSL_CERT_FILE widen the trust.
        self._http = httpx.Client(
            verify=_ssl_context(access),
            timeout=timeout,
            trust_env=False,
            follow_redirects=False,
            headers={"User-Agent": "cis-tui", "Accept": "application/json"},
        )

    def __enter__(self) -> ConfigMapClient:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def close(self) -> None:
        self._http.close()

    def url(self, name: str, namespace: str = "kube-system") -> str:
        ns, cm = quote(namespace, safe=""), quote(name, safe="")
        return f"{self.access.server}/api/v1/namespaces/{ns}/configmaps/{cm}"

    def get(self, name: str, namespace: str = "kube-system") -> ConfigMap:
        """The ConfigMap as stored (ApiError with status 404 when there is none)."""
        return self._configmap("GET", self.url(name, namespace))

    def replace(self, cm: ConfigMap, data: Mapping[str, str]) -> ConfigMap:
        """PUT `cm` as read with `data` instead of its data; Conflict when it changed since."""
        url = self.url(cm.name, cm.namespace)
        if not cm.resource_version:
            # Without it the API server accepts the PUT unconditionally: the last writer wins.
            raise ApiError(f"PUT {url}: refused: the ConfigMap has no metadata.resourceVersion")
        body = copy.deepcopy(cm.obj)
        body["data"] = dict(data)
        content = json.dumps(body, ensure_ascii=False).encode("utf-8")
        return self._configmap("PUT", url, content)

    def update(
        self,
        name: str,
        key: str,
        edit: Callable[[str], str],
        namespace: str = "kube-system",
        attempts: int = 5,
    ) -> tuple[str, str, ConfigMap]:
        """Apply `edit` to `data[key]` and store it: (text replaced, text stored, ConfigMap).

        A 409 re-reads and applies `edit` to the fresh text, at most `attempts` times in all,
        so a concurrent change is merged rather than overwritten. No PUT when nothing changes.
        """
        if attempts < 1:
            raise ValueError("attempts must be at least 1")
        last: Conflict | None = None
        for _ in range(attempts):
            cm = self.get(name, namespace)
            data = cm.data
            if key not in data:
                raise ApiError(f"GET {self.url(name, namespace)}: the ConfigMap has no {key} key")
            old = data[key]
            new = edit(old)
            if new == old:
                return old, new, cm
            data[key] = new
            try:
                return old, new, self.replace(cm, data)
            except Conflict as exc:
                last = exc
        assert last is not None
        raise Conflict(f"{last} (gave up after {attempts} attempts)", 409, last.reason)

    # -- plumbing ----------------------------------------------------------------------------

    def _configmap(self, method: str, url: str, content: bytes | None = None) -> ConfigMap:
        status, obj = self._request(method, url, content)
        metadata = obj.get("metadata") if isinstance(obj, dict) else None
        data = obj.get("data", {}) if isinstance(obj, dict) else None
        if (
            not isinstance(metadata, dict)
            or not isinstance(data, dict | None)
            or not all(isinstance(k, str) and isinstance(v, str) for k, v in (data or {}).items())
        ):
            raise ApiError(f"{method} {url}: the answer is not a ConfigMap", status)
        return ConfigMap(obj)

    def _request(self, method: str, url: str, content: bytes | None) -> tuple[int, Any]:
        shown = f"{method} {url}"
        headers = {"Content-Type": "application/json"} if content is not None else None
        params = {"fieldManager": FIELD_MANAGER} if method == "PUT" else None
        try:
            with self._http.stream(
                method, url, params=params, content=content, headers=headers
            ) as response:
                status = response.status_code
                raw = bytearray()
                for chunk in response.iter_bytes():
                    raw += chunk
                    if len(raw) > MAX_RESPONSE_BYTES:
                        raise ApiError(
                            f"{shown}: answer larger than {MAX_RESPONSE_BYTES} bytes", status
                        )
                phrase = response.reason_phrase
        except httpx.TimeoutException as exc:
            raise ApiError(f"{shown}: no answer within {self.timeout:g} s") from exc
        except httpx.TransportError as exc:
            raise ApiError(f"{shown}: {_transport_problem(exc, self.access.source)}") from exc
        try:
            body: Any = json.loads(raw)
        except (ValueError, RecursionError):
            body = None
        if 200 <= status < 300:
            if body is None:
                raise ApiError(f"{shown}: {status}: the answer is not JSON", status)
            return status, body
        raise self._error(shown, status, phrase, body, bytes(raw))

    @staticmethod
    def _error(shown: str, status: int, phrase: str, body: Any, raw: bytes) -> ApiError:
        """The server's Status message, or the start of whatever else it said."""
        try:
            phrase = phrase or HTTPStatus(status).phrase
        except ValueError:
            phrase = phrase or ""
        reason = ""
        if isinstance(body, dict) and body.get("kind") == "Status":
            message = str(body.get("message") or "")
            reason = str(body.get("reason") or "")
        else:
            message = raw.decode("utf-8", "replace")
        line = f"{shown}: {status} {phrase}".rstrip()
        message = _one_line(message)
        if message:
            line += f": {message}"
        kind = Conflict if status == HTTPStatus.CONFLICT else ApiError
        return kind(line, status, reason)
