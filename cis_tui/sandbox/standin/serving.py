"""How stand-ins serve: TLS with the certificates their flags name (Go's cipher and version
names), a small threaded HTTP server, and the health state whose first flip to healthy is
written to the event log as it happens."""

from __future__ import annotations

import contextlib
import http.server
import json
import os
import socket
import socketserver
import ssl
import sys
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cis_tui.audit.flags import ParsedArgs
from cis_tui.audit.versions import Version, has
from cis_tui.sandbox import events as ev
from cis_tui.sandbox.pki import self_signed_serving
from cis_tui.sandbox.standin.common import Context, Fatal, klog, split

# -- TLS ----------------------------------------------------------------------------------
#: Go's crypto/tls cipher suite names (secure and insecure), with OpenSSL names for TLS 1.2.
GO_CIPHERS: Mapping[str, str | None] = {
    "TLS_AES_128_GCM_SHA256": None,
    "TLS_AES_256_GCM_SHA384": None,
    "TLS_CHACHA20_POLY1305_SHA256": None,
    "TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA": "ECDHE-ECDSA-AES128-SHA",
    "TLS_ECDHE_ECDSA_WITH_AES_256_CBC_SHA": "ECDHE-ECDSA-AES256-SHA",
    "TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA": "ECDHE-RSA-AES128-SHA",
    "TLS_ECDHE_RSA_WITH_AES_256_CBC_SHA": "ECDHE-RSA-AES256-SHA",
    "TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256": "ECDHE-ECDSA-AES128-GCM-SHA256",
    "TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384": "ECDHE-ECDSA-AES256-GCM-SHA384",
    "TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256": "ECDHE-RSA-AES128-GCM-SHA256",
    "TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384": "ECDHE-RSA-AES256-GCM-SHA384",
    "TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256": "ECDHE-ECDSA-CHACHA20-POLY1305",
    "TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256": "ECDHE-RSA-CHACHA20-POLY1305",
    "TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305": "ECDHE-ECDSA-CHACHA20-POLY1305",
    "TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305": "ECDHE-RSA-CHACHA20-POLY1305",
    "TLS_RSA_WITH_RC4_128_SHA": None,
    "TLS_RSA_WITH_3DES_EDE_CBC_SHA": "DES-CBC3-SHA",
    "TLS_RSA_WITH_AES_128_CBC_SHA": "AES128-SHA",
    "TLS_RSA_WITH_AES_256_CBC_SHA": "AES256-SHA",
    "TLS_RSA_WITH_AES_128_CBC_SHA256": "AES128-SHA256",
    "TLS_RSA_WITH_AES_128_GCM_SHA256": "AES128-GCM-SHA256",
    "TLS_RSA_WITH_AES_256_GCM_SHA384": "AES256-GCM-SHA384",
    "TLS_ECDHE_ECDSA_WITH_RC4_128_SHA": None,
    "TLS_ECDHE_RSA_WITH_RC4_128_SHA": None,
    "TLS_ECDHE_RSA_WITH_3DES_EDE_CBC_SHA": "ECDHE-RSA-DES-CBC3-SHA",
    "TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA256": "ECDHE-ECDSA-AES128-SHA256",
    "TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA256": "ECDHE-RSA-AES128-SHA256",
}
TLS_VERSIONS: Mapping[str, ssl.TLSVersion] = {
    "VersionTLS10": ssl.TLSVersion.TLSv1,
    "VersionTLS11": ssl.TLSVersion.TLSv1_1,
    "VersionTLS12": ssl.TLSVersion.TLSv1_2,
    "VersionTLS13": ssl.TLSVersion.TLSv1_3,
}


def check_tls_options(
    ciphers: Sequence[str],
    min_version: str | None,
    component: str = "kube-apiserver",
    version: Version | None = None,
) -> list[str]:
    """component-base's cliflag errors for --tls-cipher-suites / --tls-min-version (the cipher
    names of `version`'s binary: TLS 1.3 names only from 1.19, for example)."""
    problems = [
        f"Cipher suite {name} not supported or doesn't exist"
        for name in ciphers
        if name not in GO_CIPHERS or not has("cipher", component, name, version)
    ]
    if min_version and min_version not in TLS_VERSIONS:
        problems.append(f'unknown tls version "{min_version}"')
    return problems


@dataclass(frozen=True)
class TLSFiles:
    """A serving key pair (host paths), the client CA (host path), and TLS options."""

    cert: Path
    key: Path
    client_ca: Path | None = None
    require_client_cert: bool = False
    ciphers: tuple[str, ...] = ()
    min_version: str | None = None


def serving_files(ctx: Context, flags: ParsedArgs, self_signed_name: str) -> TLSFiles:
    """The serving TLS files a control-plane component's flags name: --tls-cert-file and
    --tls-private-key-file, or (both unset) a self-signed pair made at start, as the real ones
    make in memory; --client-ca-file, --tls-cipher-suites and --tls-min-version."""
    cert, key = flags.get("--tls-cert-file"), flags.get("--tls-private-key-file")
    if cert and key:
        cert_path = ctx.open_path(cert, "unable to load server certificate: ")
        key_path = ctx.open_path(key, "unable to load server certificate: ")
    else:
        pair = self_signed_serving("localhost")
        cert_path = ctx.paths.run_dir / f".{ctx.pod}-{self_signed_name}.crt"
        key_path = ctx.paths.run_dir / f".{ctx.pod}-{self_signed_name}.key"
        cert_path.write_bytes(pair.cert_pem)
        key_path.write_bytes(pair.key_pem)
        key_path.chmod(0o600)
    client_ca = flags.get("--client-ca-file")
    return TLSFiles(
        cert=cert_path,
        key=key_path,
        client_ca=ctx.open_path(client_ca) if client_ca else None,
        ciphers=tuple(split(flags.get("--tls-cipher-suites"))),
        min_version=flags.get("--tls-min-version"),
    )


def server_context(tls: TLSFiles, err_prefix: str) -> ssl.SSLContext:
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    try:
        ctx.load_cert_chain(tls.cert, tls.key)
    except ssl.SSLError as exc:
        raise Fatal(
            f"{err_prefix}tls: failed to find any PEM data or key mismatch: {exc.reason}"
        ) from None
    if tls.client_ca is not None:
        try:
            ctx.load_verify_locations(cafile=str(tls.client_ca))
        except ssl.SSLError as exc:
            raise Fatal(f"{err_prefix}unable to load client CA file: {exc.reason}") from None
        ctx.verify_mode = ssl.CERT_REQUIRED if tls.require_client_cert else ssl.CERT_OPTIONAL
    if tls.min_version:
        ctx.minimum_version = TLS_VERSIONS[tls.min_version]
    openssl = [GO_CIPHERS[c] for c in tls.ciphers if GO_CIPHERS.get(c)]
    if openssl:
        # TLS 1.3 suites cannot be restricted, in Go as here; only TLS 1.2 ones apply.
        with contextlib.suppress(ssl.SSLError):
            ctx.set_ciphers(":".join(c for c in openssl if c))
    return ctx


# -- serving ------------------------------------------------------------------------------
@dataclass(frozen=True)
class Request:
    """What a route handler needs to know about a request."""

    method: str
    path: str
    query: str
    user: str | None  # CN of a verified client certificate; None: anonymous
    tls: bool
    groups: tuple[str, ...] = ()  # its O= values: the user's groups
    body: bytes = b""


@dataclass(frozen=True)
class Response:
    status: int
    body: str
    content_type: str = "text/plain; charset=utf-8"


Route = Callable[[Request], Response]
#: The API server's limit on a request body (3 MiB).
MAX_BODY = 3 << 20


class _Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "Go-http-server"
    sys_version = ""

    def setup(self) -> None:
        if isinstance(self.request, ssl.SSLSocket):
            self.request.settimeout(10)
            self.request.do_handshake()
        super().setup()

    def _identity(self) -> tuple[str | None, tuple[str, ...]]:
        """(CN, O values) of the verified client certificate, as the x509 authenticator
        reads them; (None, ()) without one."""
        if not isinstance(self.connection, ssl.SSLSocket):
            return None, ()
        cert = self.connection.getpeercert()
        if not cert:
            return None, ()
        user, groups = "unknown", []
        subject: Any = cert.get("subject", ())
        for rdn in subject:
            for key, value in rdn:
                if key == "commonName":
                    user = str(value)
                elif key == "organizationName":
                    groups.append(str(value))
        return user, tuple(groups)

    def _serve(self) -> None:
        path, _, query = self.path.partition("?")
        try:
            length = int(self.headers.get("Content-Length") or 0)
        except ValueError:
            length = -1
        if not 0 <= length <= MAX_BODY:
            self.send_error(413 if length > MAX_BODY else 400)
            return
        body = self.rfile.read(length) if length > 0 else b""
        user, groups = self._identity()
        req = Request(
            self.command,
            path,
            query,
            user,
            isinstance(self.connection, ssl.SSLSocket),
            groups,
            body,
        )
        resp = self.server.route(req)  # type: ignore[attr-defined]
        body = resp.body.encode()
        self.send_response(resp.status)
        self.send_header("Content-Type", resp.content_type)
        self.send_header("X-Content-Type-Options", "nosniff")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    do_GET = _serve
    do_HEAD = _serve
    do_POST = _serve
    do_PUT = _serve

    def log_message(self, format: str, *args: Any) -> None:
        return


class _Server(socketserver.ThreadingMixIn, http.server.HTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    block_on_close = False

    def __init__(self, address: tuple[str, int], route: Route, family: int) -> None:
        self.address_family = family
        self.route = route
        super().__init__(address, _Handler, bind_and_activate=False)

    def handle_error(self, request: Any, client_address: Any) -> None:
        exc = sys.exc_info()[1]
        if isinstance(exc, (ssl.SSLError, OSError)):
            reason = getattr(exc, "reason", None) or exc
            peer = f"{client_address[0]}:{client_address[1]}"
            print(
                klog("I", f"http: TLS handshake error from {peer}: {reason}"),
                file=sys.stderr,
                flush=True,
            )
            return
        super().handle_error(request, client_address)


def serve(
    host: str,
    port: int,
    route: Route,
    tls: ssl.SSLContext | None,
    what: str = "failed to listen on",
) -> _Server:
    """Bind and serve in a daemon thread; Fatal with Go's words when the port is taken."""
    bind_host = host or "0.0.0.0"
    family = socket.AF_INET6 if ":" in bind_host else socket.AF_INET
    server = _Server((bind_host, port), route, family)
    try:
        server.server_bind()
        server.server_activate()
    except OSError as exc:
        server.server_close()
        reason = (exc.strerror or str(exc)).lower()
        raise Fatal(
            f"{what} {bind_host}:{port}: listen tcp {bind_host}:{port}: bind: {reason}"
        ) from None
    if tls is not None:
        server.socket = tls.wrap_socket(
            server.socket, server_side=True, do_handshake_on_connect=False
        )
    threading.Thread(
        target=server.serve_forever, kwargs={"poll_interval": 0.2}, daemon=True
    ).start()
    return server


# -- health -------------------------------------------------------------------------------
class Health:
    """Ready after the configured delay and while every dynamic check passes.

    The first flip to healthy is written to the event log at the moment it happens: a probe
    answers 200 from then on, so the event is when the component "first answers healthy".
    """

    def __init__(
        self, ctx: Context, checks: Mapping[str, Callable[[], str | None]] | None = None
    ) -> None:
        self.ctx = ctx
        self.checks = dict(checks or {})
        self.started = time.monotonic()
        self.ready_at = self.started + ctx.ready_delay
        self.never_ready = bool(ctx.fault("never_ready"))
        self.ok = False
        self.failures: dict[str, str] = {"startup": "not finished"}
        self.ever_healthy = False
        self._lock = threading.Lock()

    def evaluate(self) -> None:
        failures: dict[str, str] = {}
        now = time.monotonic()
        if now < self.ready_at or self.never_ready:
            failures["poststarthook/start-sandbox-delay"] = "not finished"
        for name, check in self.checks.items():
            problem = check()
            if problem is not None:
                failures[name] = problem
        with self._lock:
            was = self.ok
            self.failures = failures
            self.ok = not failures
            changed = was != self.ok
        if changed and self.ok:
            after = round(time.monotonic() - self.started, 3)
            self.ctx.event(ev.HEALTHY, after=after, first=not self.ever_healthy)
            if not self.ever_healthy:
                self.ever_healthy = True
                crash = self.ctx.fault("crash_after_healthy")
                if crash is not None:
                    threading.Timer(float(crash), self._crash, args=(float(crash),)).start()
        elif changed:
            self.ctx.event(ev.UNHEALTHY, failing=sorted(failures))

    def _crash(self, after: float) -> None:
        self.ctx.event(ev.FAULT, fault="crash_after_healthy", after=after)
        print(
            klog("F", "injected fault: crash after first healthy answer"),
            file=sys.stderr,
            flush=True,
        )
        os._exit(1)

    def run(self, interval: float = 0.2) -> None:
        """Evaluate in a daemon thread: at the readiness deadline, then every `interval`."""

        def loop() -> None:
            while True:
                self.evaluate()
                now = time.monotonic()
                wait = interval
                if now < self.ready_at:
                    wait = min(interval, self.ready_at - now)
                time.sleep(max(wait, 0.001))

        threading.Thread(target=loop, daemon=True).start()

    def answer(self, endpoint: str, verbose: bool = False) -> Response:
        with self._lock:
            ok, failures = self.ok, dict(self.failures)
        if ok and not verbose:
            return Response(200, "ok")
        lines = ["[+]ping ok", "[+]log ok"]
        lines += [f"[-]{name} failed: reason withheld" for name in sorted(failures)]
        tail = f"{endpoint} check passed" if ok else f"{endpoint} check failed"
        return Response(200 if ok else 500, "\n".join([*lines, tail]) + "\n")


def unauthorized() -> Response:
    body = json.dumps(
        {
            "kind": "Status",
            "apiVersion": "v1",
            "metadata": {},
            "status": "Failure",
            "message": "Unauthorized",
            "reason": "Unauthorized",
            "code": 401,
        }
    )
    return Response(401, body, "application/json")


def forbidden(user: str, path: str) -> Response:
    body = json.dumps(
        {
            "kind": "Status",
            "apiVersion": "v1",
            "metadata": {},
            "status": "Failure",
            "message": f'forbidden: User "{user}" cannot get path "{path}"',
            "reason": "Forbidden",
            "details": {},
            "code": 403,
        }
    )
    return Response(403, body, "application/json")
