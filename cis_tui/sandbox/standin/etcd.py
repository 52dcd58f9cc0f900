"""etcd stand-in (used when no etcd binary is installed): Go flag-package parsing, the TLS
files it loads, the data dir it creates, TLS on the client and peer URLs (client
certificates required with --client-cert-auth) and /health /livez /readyz on the metrics URL."""

from __future__ import annotations

import json
import os
import sys
import urllib.parse
from collections.abc import Sequence

from cis_tui.audit.flags import ParsedArgs, split_map
from cis_tui.sandbox.standin.common import (
    Context,
    Fatal,
    flag_bool,
    parse_go_flags,
    split,
    wait_for_termination,
)
from cis_tui.sandbox.standin.serving import (
    Health,
    Request,
    Response,
    TLSFiles,
    serve,
    server_context,
)

COMPONENT = "etcd"
FEATURE_GATES = {
    "InitialCorruptCheck",
    "CompactHashCheck",
    "TxnModeWriteWithSharedBuffer",
    "LeaseCheckpoint",
    "LeaseCheckpointPersist",
    "StopGRPCServiceOnDefrag",
    "SetMemberLocalAddr",
    "AllowNonLinearizableRead",
}


def zap(level: str, msg: str, **fields: object) -> str:
    """An etcd 3.6 zap JSON log line."""
    import time

    now = time.time()
    stamp = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(now)) + f".{int(now % 1 * 1e6):06d}Z"
    record = {"level": level, "ts": stamp, "caller": "etcdmain/etcd.go:204", "msg": msg, **fields}
    return json.dumps(record)


def _urls(p: ParsedArgs, flag: str) -> list[urllib.parse.SplitResult]:
    out = []
    for raw in split(p.get(flag)):
        url = urllib.parse.urlsplit(raw)
        if url.scheme not in ("http", "https", "unix", "unixs") or not url.hostname:
            raise Fatal(
                f"unexpected error setting up {flag.lstrip('-')}: "
                f"URL scheme must be http, https, unix, or unixs: {raw}"
            )
        out.append(url)
    return out


def validate(p: ParsedArgs) -> None:
    positional = [a for a in p.positional if a]
    if positional:
        raise Fatal(
            f"etcdmain: error verifying flags, '{positional[0]}' is not a valid flag. "
            "See 'etcd --help'.",
            1,
            raw=True,
        )
    for gate in split_map(p.get("--feature-gates") or ""):
        if gate not in FEATURE_GATES:
            raise Fatal(
                "failed to set feature gates from initial flags-based config: "
                f"unrecognized feature gate: {gate}",
                raw=False,
            )
    name = p.get("--name") or "default"
    cluster = p.get("--initial-cluster")
    if cluster and not any(entry.split("=", 1)[0] == name for entry in split(cluster)):
        raise Fatal(f'couldn\'t find local name "{name}" in the initial cluster configuration')


def run(ctx: Context, argv: Sequence[str]) -> int:
    parsed = parse_go_flags(COMPONENT, argv, ctx.version)
    validate(parsed)
    client_urls = _urls(parsed, "--listen-client-urls") or [
        urllib.parse.urlsplit("http://localhost:2379")
    ]
    peer_urls = _urls(parsed, "--listen-peer-urls") or [
        urllib.parse.urlsplit("http://localhost:2380")
    ]
    metric_urls = _urls(parsed, "--listen-metrics-urls")

    def tls_for(cert_flag: str, key_flag: str, ca_flag: str, auth_flag: str, what: str) -> TLSFiles:
        cert, key = parsed.get(cert_flag), parsed.get(key_flag)
        if not cert or not key:
            raise Fatal(
                f"TLS key/cert ({cert_flag}, {key_flag}) must be provided "
                f"for {what} url with HTTPS scheme"
            )
        ca = parsed.get(ca_flag)
        require = flag_bool(parsed, auth_flag, False)
        return TLSFiles(
            cert=ctx.open_path(cert),
            key=ctx.open_path(key),
            client_ca=ctx.open_path(ca) if ca else None,
            require_client_cert=require and bool(ca),
            ciphers=tuple(split(parsed.get("--cipher-suites"))),
        )

    client_tls = None
    if any(u.scheme == "https" for u in client_urls):
        client_tls = server_context(
            tls_for(
                "--cert-file", "--key-file", "--trusted-ca-file", "--client-cert-auth", "client"
            ),
            "",
        )
    peer_tls = None
    if any(u.scheme == "https" for u in peer_urls):
        peer_tls = server_context(
            tls_for(
                "--peer-cert-file",
                "--peer-key-file",
                "--peer-trusted-ca-file",
                "--peer-client-cert-auth",
                "peer",
            ),
            "",
        )

    data_dir = parsed.get("--data-dir") or f"{parsed.get('--name') or 'default'}.etcd"
    host_data = ctx.view.host_path(data_dir)
    if host_data is not None and not ctx.view.read_only(data_dir):
        # Inside a writable mount: the member directory outlives the container, as on a node.
        for sub in ("member/snap", "member/wal"):
            os.makedirs(os.path.join(host_data, sub), mode=0o700, exist_ok=True)

    health = Health(ctx)

    def client_route(req: Request) -> Response:
        if req.path == "/health":
            ok = health.ok
            return Response(
                200 if ok else 503,
                json.dumps({"health": str(ok).lower(), "reason": ""}),
                "application/json",
            )
        if req.path == "/version":
            return Response(200, '{"etcdserver":"3.6.6","etcdcluster":"3.6.0"}', "application/json")
        return Response(404, "404 page not found\n")

    def metrics_route(req: Request) -> Response:
        if req.path == "/health":
            return client_route(req)
        if req.path in ("/livez", "/readyz"):
            return (
                Response(200, "ok")
                if health.ok
                else Response(503, f"{req.path[1:]} check failed\n")
            )
        if req.path == "/metrics":
            return Response(200, "etcd_server_has_leader 1\n")
        return Response(404, "404 page not found\n")

    def peer_route(_req: Request) -> Response:
        return Response(404, "404 page not found\n")

    for url in client_urls:
        serve(
            url.hostname or "",
            url.port or 2379,
            client_route,
            client_tls if url.scheme == "https" else None,
            what="listen tcp",
        )
    for url in peer_urls:
        serve(
            url.hostname or "",
            url.port or 2380,
            peer_route,
            peer_tls if url.scheme == "https" else None,
            what="listen tcp",
        )
    for url in metric_urls:
        serve(
            url.hostname or "",
            url.port or 2381,
            metrics_route,
            client_tls if url.scheme == "https" else None,
            what="listen tcp",
        )
    print(
        zap("info", "serving client traffic securely", address=client_urls[0].netloc),
        file=sys.stderr,
        flush=True,
    )
    health.run()
    return wait_for_termination(ctx)
