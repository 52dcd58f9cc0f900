"""A real loopback HTTPS API server holding ConfigMaps, for tests of the ConfigMap client.

What it shares with kube-apiserver, as far as a ConfigMap GET and PUT can tell: its own CA and a
serving certificate for 127.0.0.1; client certificates signed by that CA authenticate (subject CN
is the user, O the groups), a certificate from another CA fails the TLS handshake, and no
certificate at all is a 401; `kubeadm:cluster-admins` and `system:masters` may do anything and
everyone else gets the RBAC 403; resourceVersion is a string that grows with every write, and a
PUT carrying a stale one gets the 409 Conflict Status. The Status bodies are worded as the real
server words them.

    with FakeApiServer() as api:
        api.seed_reference("v1beta4.upstream-example")
        kubeconfig = api.write_kubeconfig(tmp_path / "admin.conf")
"""

from __future__ import annotations

import contextlib
import copy
import datetime as dt
import http.server
import json
import re
import socket
import ssl
import tempfile
import threading
import uuid
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

from cryptography.hazmat.primitives.asymmetric import ec

from cis_tui import safeyaml
from cis_tui.sandbox.pki import (
    KeyPair,
    PrivateKey,
    kubeconfig,
    make_ca,
    make_cert,
    new_rsa_key,
    write_file,
)

#: The reference ConfigMaps (../shared/ref/kubeadm-config/*.configmap.yaml).
REF_CONFIGMAPS = Path(__file__).resolve().parents[2] / "shared/ref/kubeadm-config"
ADMIN_GROUPS = frozenset({"kubeadm:cluster-admins", "system:masters"})
ADMIN = ("kubernetes-admin", ("kubeadm:cluster-admins",))  # admin.conf since v1.29
_PATH = re.compile(r"/api/v1/namespaces/([^/]+)/configmaps/([^/]+)")
_VERBS = {"GET": "get", "PUT": "update", "PATCH": "patch", "DELETE": "delete", "POST": "create"}
_REASONS = {
    400: "BadRequest",
    401: "Unauthorized",
    403: "Forbidden",
    404: "NotFound",
    405: "MethodNotAllowed",
    409: "Conflict",
    422: "Invalid",
    429: "TooManyRequests",
    500: "InternalError",
    503: "ServiceUnavailable",
    504: "Timeout",
}
CONFLICT_MESSAGE = (
    'Operation cannot be fulfilled on configmaps "{name}": the object has been modified; '
    "please apply your changes to the latest version and try again"
)


def fast_key() -> PrivateKey:
    """An ECDSA P-256 key: unique per call and a thousand times faster than RSA-2048."""
    return ec.generate_private_key(ec.SECP256R1())


def status(code: int, message: str, details: Mapping[str, str] | None = None) -> dict[str, Any]:
    """A `Status` as the API server sends with every failure."""
    doc: dict[str, Any] = {
        "kind": "Status",
        "apiVersion": "v1",
        "metadata": {},
        "status": "Failure",
        "message": message,
        "reason": _REASONS.get(code, "Unknown"),
    }
    if details:
        doc["details"] = dict(details)
    doc["code"] = code
    return doc


def load_configmap_file(path: Path) -> dict[str, Any]:
    """A `*.configmap.yaml` data file as plain data (its comments dropped)."""
    obj = safeyaml.load(path.read_text(encoding="utf-8"))
    assert isinstance(obj, dict) and obj.get("kind") == "ConfigMap", path
    return obj


@dataclass(frozen=True)
class Request:
    """One request the server answered (after a successful TLS handshake)."""

    method: str
    path: str
    query: dict[str, list[str]]
    user: str | None  # None: anonymous
    groups: tuple[str, ...]
    status: int
    body: bytes

    @property
    def json(self) -> Any:
        return json.loads(self.body)


def _now() -> str:
    return dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


class _Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive, as httpx uses it
    timeout = 10.0
    disable_nagle_algorithm = True  # headers and body are two writes: no delayed-ACK stall
    server: _HTTPServer

    def handle(self) -> None:
        # The handshake runs here, in the connection's thread, so a stuck client cannot block
        # the accept loop; a refused client certificate ends the connection like Go's server.
        try:
            self.connection.do_handshake()
        except (ssl.SSLError, OSError) as exc:
            self.server.fake._handshake_failed(exc)
            return
        super().handle()

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def _serve(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        cert = self.connection.getpeercert()
        code, answer = self.server.fake._answer(self.command, self.path, body, cert)
        payload = json.dumps(answer).encode()
        self.send_response(code)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)

    do_GET = do_PUT = do_POST = do_PATCH = do_DELETE = _serve


class _HTTPServer(http.server.ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, fake: FakeApiServer, context: ssl.SSLContext) -> None:
        self.fake = fake
        self.context = context
        self.connections: set[socket.socket] = set()
        self.connections_lock = threading.Lock()
        super().__init__(("127.0.0.1", 0), _Handler)

    def get_request(self) -> tuple[socket.socket, Any]:
        sock, addr = self.socket.accept()
        conn = self.context.wrap_socket(sock, server_side=True, do_handshake_on_connect=False)
        with self.connections_lock:
            self.connections.add(conn)
        return conn, addr

    def shutdown_request(self, request: Any) -> None:
        with self.connections_lock:
            self.connections.discard(request)
        super().shutdown_request(request)

    def drop_connections(self) -> None:
        with self.connections_lock:
            conns = list(self.connections)
        for conn in conns:
            # The raw socket's shutdown: wakes a handler thread blocked in a read.
            with contextlib.suppress(OSError):
                socket.socket.shutdown(conn, socket.SHUT_RDWR)


class FakeApiServer:
    """The API server's ConfigMap endpoints on 127.0.0.1 over mutual TLS, with fault hooks."""

    def __init__(self, admin_groups: Iterable[str] = ADMIN_GROUPS) -> None:
        self.admin_groups = frozenset(admin_groups)
        self.ca = make_ca("kubernetes", fast_key())  # type: ignore[arg-type]
        self.serving = make_cert(
            self.ca, "kube-apiserver", server=True, ips=["127.0.0.1"], key=fast_key()
        )
        self.requests: list[Request] = []
        self.handshake_errors: list[str] = []
        self._lock = threading.Lock()
        self._objects: dict[tuple[str, str], dict[str, Any]] = {}
        self._revision = 1000
        self._faults: list[tuple[int, str | None]] = []
        self._conflicts: list[Callable[[dict[str, str]], Mapping[str, str]]] = []
        self._httpd: _HTTPServer | None = None
        self._thread: threading.Thread | None = None

    # -- life ----------------------------------------------------------------------------------

    def start(self) -> FakeApiServer:
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        # Verified when given, optional so that an anonymous request reaches the 401.
        context.verify_mode = ssl.CERT_OPTIONAL
        context.load_verify_locations(cadata=self.ca.cert_pem.decode())
        with tempfile.TemporaryDirectory() as tmp:
            cert, key = Path(tmp, "apiserver.crt"), Path(tmp, "apiserver.key")
            cert.write_bytes(self.serving.cert_pem)
            key.write_bytes(self.serving.key_pem)
            context.load_cert_chain(cert, key)
        self._httpd = _HTTPServer(self, context)
        self._thread = threading.Thread(
            target=self._httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._httpd is None:
            return
        self._httpd.shutdown()
        self._httpd.drop_connections()
        self._httpd.server_close()
        assert self._thread is not None
        self._thread.join(timeout=10)
        self._httpd = None

    def __enter__(self) -> FakeApiServer:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    @property
    def port(self) -> int:
        assert self._httpd is not None, "not started"
        return int(self._httpd.server_address[1])

    @property
    def url(self) -> str:
        return f"https://127.0.0.1:{self.port}"

    # -- identities ----------------------------------------------------------------------------

    def client(
        self,
        user: str = ADMIN[0],
        groups: Iterable[str] = ADMIN[1],
        *,
        ca: KeyPair | None = None,
        rsa: bool = False,
    ) -> KeyPair:
        """A client certificate for `user` in `groups` (O=), signed by this server's CA."""
        key = new_rsa_key() if rsa else fast_key()
        return make_cert(ca or self.ca, user, orgs=tuple(groups), client=True, key=key)

    def write_kubeconfig(
        self,
        path: Path,
        user: str = ADMIN[0],
        groups: Iterable[str] = ADMIN[1],
        *,
        client: KeyPair | None = None,
        trust: KeyPair | None = None,
        server: str | None = None,
    ) -> Path:
        """An admin.conf-style kubeconfig (embedded data, mode 0600) for `user` in `groups`.

        `trust` replaces the CA it trusts, `client` its certificate, `server` its URL."""
        client = client or self.client(user, groups)
        text = kubeconfig(server or self.url, trust or self.ca, user, client=client)
        write_file(path, text.encode(), 0o600)
        return path

    def write_wrong_ca_kubeconfig(self, path: Path) -> Path:
        """An admin kubeconfig whose certificate-authority-data is another CA than the server's."""
        return self.write_kubeconfig(path, trust=make_ca("kubernetes", fast_key()))  # type: ignore[arg-type]

    # -- objects -------------------------------------------------------------------------------

    def _next_revision(self) -> str:
        self._revision += 1
        return str(self._revision)

    def add_configmap(
        self, name: str, data: Mapping[str, str], namespace: str = "kube-system", **extra: Any
    ) -> dict[str, Any]:
        """Store a ConfigMap as `kubectl create` would; `extra` adds top-level fields
        (binaryData, immutable) or, under `metadata`, labels and annotations."""
        with self._lock:
            now = _now()
            metadata: dict[str, Any] = {
                "name": name,
                "namespace": namespace,
                "uid": str(uuid.uuid4()),
                "resourceVersion": self._next_revision(),
                "creationTimestamp": now,
                **extra.pop("metadata", {}),
                "managedFields": [
                    {
                        "manager": "kubeadm",
                        "operation": "Update",
                        "apiVersion": "v1",
                        "time": now,
                        "fieldsType": "FieldsV1",
                        "fieldsV1": {"f:data": {f"f:{key}": {} for key in data}},
                    }
                ],
            }
            obj = {
                "kind": "ConfigMap",
                "apiVersion": "v1",
                "metadata": metadata,
                "data": dict(data),
            }
            obj.update(extra)
            self._objects[(namespace, name)] = obj
            return copy.deepcopy(obj)

    def seed_file(self, path: Path) -> dict[str, Any]:
        """Store the ConfigMap of a `*.configmap.yaml` file (its name, namespace and data)."""
        obj = load_configmap_file(path)
        meta = obj["metadata"]
        return self.add_configmap(
            meta["name"], obj.get("data") or {}, meta.get("namespace", "default")
        )

    def seed_reference(self, *names: str) -> list[dict[str, Any]]:
        """Store reference ConfigMaps by file stem: "v1beta4.upstream-example",
        "kubelet-config.upstream-example", "cp-1-cis.v1beta4"..."""
        return [self.seed_file(REF_CONFIGMAPS / f"{name}.configmap.yaml") for name in names]

    def configmap(self, name: str, namespace: str = "kube-system") -> dict[str, Any]:
        """The stored object (a copy)."""
        with self._lock:
            return copy.deepcopy(self._objects[(namespace, name)])

    def set_data(self, name: str, data: Mapping[str, str], namespace: str = "kube-system") -> str:
        """A write by someone else (kubectl edit): new data, new resourceVersion (returned)."""
        with self._lock:
            obj = self._objects[(namespace, name)]
            obj["data"] = dict(data)
            obj["metadata"]["resourceVersion"] = self._next_revision()
            return str(obj["metadata"]["resourceVersion"])

    # -- faults --------------------------------------------------------------------------------

    def conflict_next_put(self, change: Callable[[dict[str, str]], Mapping[str, str]]) -> None:
        """On the next PUT, first let someone else store `change(data)`: the PUT's
        resourceVersion is then stale and it gets the real 409. Calls queue up."""
        with self._lock:
            self._conflicts.append(change)

    def fail_next(self, code: int, message: str | None = None) -> None:
        """Answer the next authorized request with a `code` Status instead. Calls queue up."""
        with self._lock:
            self._faults.append((code, message))

    def _handshake_failed(self, exc: BaseException) -> None:
        with self._lock:
            self.handshake_errors.append(str(exc))

    # -- answering -----------------------------------------------------------------------------

    def _answer(
        self, method: str, target: str, body: bytes, cert: dict[str, Any] | None
    ) -> tuple[int, dict[str, Any]]:
        parts = urlsplit(target)
        user, groups = _identity(cert)
        with self._lock:
            code, answer = self._decide(
                method, parts.path, parse_qs(parts.query), body, user, groups
            )
            self.requests.append(
                Request(method, parts.path, parse_qs(parts.query), user, groups, code, body)
            )
        return code, answer

    def _decide(
        self,
        method: str,
        path: str,
        query: dict[str, list[str]],
        body: bytes,
        user: str | None,
        groups: tuple[str, ...],
    ) -> tuple[int, dict[str, Any]]:
        if user is None:
            return 401, status(401, "Unauthorized")
        match = _PATH.fullmatch(path)
        verb = _VERBS.get(method, method.lower())
        if not self.admin_groups.intersection(groups):
            if match is None:
                return 403, status(403, f'forbidden: User "{user}" cannot {verb} path "{path}"')
            namespace, name = unquote(match[1]), unquote(match[2])
            return 403, status(
                403,
                f'configmaps "{name}" is forbidden: User "{user}" cannot {verb} resource '
                f'"configmaps" in API group "" in the namespace "{namespace}"',
                {"name": name, "kind": "configmaps"},
            )
        if self._faults:
            code, message = self._faults.pop(0)
            return code, status(code, message or _REASONS.get(code, "failure"))
        if match is None:
            return 404, status(404, "the server could not find the requested resource")
        namespace, name = unquote(match[1]), unquote(match[2])
        stored = self._objects.get((namespace, name))
        details = {"name": name, "kind": "configmaps"}
        if method not in ("GET", "PUT"):
            return 405, status(
                405, "the server does not allow this method on the requested resource"
            )
        if stored is None:
            return 404, status(404, f'configmaps "{name}" not found', details)
        if method == "GET":
            return 200, copy.deepcopy(stored)
        return self._put(stored, namespace, name, query, body, details)

    def _put(
        self,
        stored: dict[str, Any],
        namespace: str,
        name: str,
        query: dict[str, list[str]],
        body: bytes,
        details: dict[str, str],
    ) -> tuple[int, dict[str, Any]]:
        try:
            obj = json.loads(body)
        except ValueError as exc:
            return 400, status(400, f"the body of the request was in an unknown format: {exc}")
        metadata = obj.get("metadata") if isinstance(obj, dict) else None
        if not isinstance(metadata, dict) or obj.get("kind", "ConfigMap") != "ConfigMap":
            return 400, status(400, "the body is not a ConfigMap")
        if metadata.get("name") != name:
            return 400, status(
                400,
                f"the name of the object ({metadata.get('name')}) does not match the name on "
                f"the URL ({name})",
            )
        if metadata.get("namespace", namespace) != namespace:
            return 400, status(
                400,
                "the namespace of the provided object does not match the namespace sent on "
                "the request",
            )
        data = obj.get("data") or {}
        if not isinstance(data, dict) or not all(isinstance(v, str) for v in data.values()):
            return 422, status(422, f'ConfigMap "{name}" is invalid: data: values must be strings')
        if self._conflicts:
            change = self._conflicts.pop(0)
            stored["data"] = dict(change(dict(stored.get("data") or {})))
            stored["metadata"]["resourceVersion"] = self._next_revision()
        sent = metadata.get("resourceVersion")
        # Without a resourceVersion, ConfigMaps accept an unconditional update.
        if sent and sent != stored["metadata"]["resourceVersion"]:
            return 409, status(409, CONFLICT_MESSAGE.format(name=name), details)
        new = copy.deepcopy(obj)
        new["kind"], new["apiVersion"] = "ConfigMap", "v1"
        meta = new["metadata"]
        meta["namespace"] = namespace
        for kept in ("uid", "creationTimestamp"):  # the server's, whatever the client sent
            meta[kept] = stored["metadata"].get(kept)
        meta["resourceVersion"] = self._next_revision()
        manager = (query.get("fieldManager") or ["unknown"])[0]
        fields = [e for e in meta.get("managedFields") or [] if e.get("manager") != manager]
        fields.append(
            {
                "manager": manager,
                "operation": "Update",
                "apiVersion": "v1",
                "time": _now(),
                "fieldsType": "FieldsV1",
                "fieldsV1": {"f:data": {f"f:{key}": {} for key in data}},
            }
        )
        meta["managedFields"] = fields
        self._objects[(namespace, name)] = new
        return 200, copy.deepcopy(new)


def _identity(cert: dict[str, Any] | None) -> tuple[str | None, tuple[str, ...]]:
    """(CN, O values) of a verified client certificate; (None, ()) when there is none."""
    if not cert:
        return None, ()
    user = None
    groups: list[str] = []
    for rdn in cert.get("subject", ()):
        for key, value in rdn:
            if key == "commonName":
                user = value
            elif key == "organizationName":
                groups.append(value)
    return user, tuple(groups)


def unused_port() -> int:
    """A loopback port nothing listens on (bound, then released)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


__all__ = [
    "ADMIN",
    "ADMIN_GROUPS",
    "REF_CONFIGMAPS",
    "FakeApiServer",
    "Request",
    "fast_key",
    "load_configmap_file",
    "status",
    "unused_port",
]
