"""kube-controller-manager and kube-scheduler stand-ins: flags, the kubeconfigs and keys
they load, and /healthz /livez /readyz over TLS on --bind-address:--secure-port (with a
self-signed certificate made at start when --tls-cert-file is absent, as they do)."""

from __future__ import annotations

import re
import sys
from collections.abc import Sequence

from cis_tui.audit.flags import ParsedArgs
from cis_tui.audit.versions import Version
from cis_tui.sandbox.standin import configs
from cis_tui.sandbox.standin.common import (
    Context,
    check_no_positional,
    command_failed,
    flag_int,
    klog,
    parse_kube_flags,
    split,
    valid_ip,
    wait_for_termination,
)
from cis_tui.sandbox.standin.serving import (
    Health,
    Request,
    Response,
    TLSFiles,
    check_tls_options,
    forbidden,
    serve,
    server_context,
    serving_files,
)

DEFAULT_PORTS = {"kube-controller-manager": 10257, "kube-scheduler": 10259}
_CONTROLLER = re.compile(r"^-?(\*|[a-z][a-z0-9-]*)$")


def validate(component: str, p: ParsedArgs, version: Version | None = None) -> list[str]:
    errs: list[str] = []
    port = flag_int(p, "--secure-port", DEFAULT_PORTS[component])
    if not 0 <= port <= 65535:
        errs.append(
            f"--secure-port {port} must be between 0 and 65535, inclusive. "
            "0 for turning off secure port"
        )
    bind = p.get("--bind-address")
    if bind is not None and not valid_ip(bind):
        errs.append(f'--bind-address "{bind}" is not a valid IP address')
    for name in split(p.get("--controllers")):
        if not _CONTROLLER.match(name):
            errs.append(f'"{name}" is not in the list of known controllers')
    errs += check_tls_options(
        split(p.get("--tls-cipher-suites")), p.get("--tls-min-version"), component, version
    )
    if bool(p.get("--tls-cert-file")) != bool(p.get("--tls-private-key-file")):
        errs.append("--tls-cert-file and --tls-private-key-file must be given together")
    return errs


def load_files(ctx: Context, component: str, p: ParsedArgs) -> TLSFiles:
    for flag in ("--kubeconfig", "--authentication-kubeconfig", "--authorization-kubeconfig"):
        value = p.get(flag)
        if value:
            configs.check_kubeconfig(ctx, value, f"{flag.lstrip('-')}: ")
    for flag, prefix in (
        ("--client-ca-file", "unable to load client CA provider: "),
        ("--requestheader-client-ca-file", "unable to load requestheader client CA provider: "),
        ("--root-ca-file", "error reading root-ca-file at {}: "),
        (
            "--service-account-private-key-file",
            "error reading key for service account token controller: ",
        ),
        (
            "--cluster-signing-cert-file",
            "failed to start certificate controller: error reading CA cert file: ",
        ),
        (
            "--cluster-signing-key-file",
            "failed to start certificate controller: error reading CA key file: ",
        ),
    ):
        value = p.get(flag)
        if value:
            ctx.open_path(value, prefix.format(value))
    if component == "kube-scheduler" and p.get("--config"):
        configs.check_scheduler_config(ctx, p.get("--config") or "")
    return serving_files(ctx, p, "serving")


def run(ctx: Context, component: str, argv: Sequence[str]) -> int:
    parsed = parse_kube_flags(component, argv, ctx.version)
    check_no_positional(component, parsed)
    errs = validate(component, parsed, ctx.version)
    if errs:
        raise command_failed(errs[0] if len(errs) == 1 else "[" + ", ".join(errs) + "]")
    tls = load_files(ctx, component, parsed)
    health = Health(ctx)
    always_allow = split(parsed.get("--authorization-always-allow-paths")) or [
        "/healthz",
        "/readyz",
        "/livez",
    ]

    def route(req: Request) -> Response:
        health_path = req.path in ("/healthz", "/livez", "/readyz")
        if health_path and (req.path in always_allow or req.user is not None):
            return health.answer(req.path.lstrip("/"), "verbose" in req.query)
        if req.user is None:
            return forbidden("system:anonymous", req.path)
        return Response(404, "404 page not found\n")

    port = flag_int(parsed, "--secure-port", DEFAULT_PORTS[component])
    host = parsed.get("--bind-address") or "0.0.0.0"
    if port:
        serve(
            host,
            port,
            route,
            server_context(tls, "unable to load server certificate: "),
            what="failed to create listener: failed to listen on",
        )
        print(
            klog("I", "Serving securely on", address=f"{host}:{port}"), file=sys.stderr, flush=True
        )
    health.run()
    return wait_for_termination(ctx)
