"""kubelet stand-in: flags, the KubeletConfiguration (--config) with command-line flags
winning over it, /healthz over HTTP on healthzBindAddress:healthzPort, the authenticated
HTTPS port, and the read-only port when one is configured."""

from __future__ import annotations

import os
import sys
from collections.abc import Mapping, Sequence
from typing import Any

from cis_tui.audit.flags import ParsedArgs, parse_args, parse_bool, parse_duration
from cis_tui.audit.versions import Version, flag_table_for, has
from cis_tui.sandbox.standin import configs
from cis_tui.sandbox.standin.common import (
    Context,
    Fatal,
    command_failed,
    klog,
    split,
    valid_ip,
    wait_for_termination,
)
from cis_tui.sandbox.standin.serving import (
    GO_CIPHERS,
    TLS_VERSIONS,
    Health,
    Request,
    Response,
    TLSFiles,
    forbidden,
    serve,
    server_context,
    unauthorized,
)

BOOL_FIELDS = {
    "enableServer",
    "rotateCertificates",
    "serverTLSBootstrap",
    "makeIPTablesUtilChains",
    "protectKernelDefaults",
    "seccompDefault",
    "failSwapOn",
    "enableDebuggingHandlers",
    "enableContentionProfiling",
    "cgroupsPerQOS",
    "registerNode",
    "enableControllerAttachDetach",
    "localStorageCapacityIsolation",
    "enableSystemLogHandler",
    "enableSystemLogQuery",
    "kernelMemcgNotification",
    "serializeImagePulls",
    "failCgroupV1",
    "enableProfilingHandler",
    "enableDebugFlagsHandler",
}
INT_FIELDS = {
    "port",
    "readOnlyPort",
    "healthzPort",
    "podPidsLimit",
    "eventRecordQPS",
    "eventBurst",
    "maxPods",
    "registryPullQPS",
    "registryBurst",
    "kubeAPIQPS",
    "kubeAPIBurst",
    "maxOpenFiles",
    "imageGCHighThresholdPercent",
    "imageGCLowThresholdPercent",
    "nodeStatusMaxImages",
    "containerLogMaxFiles",
    "oomScoreAdj",
    "podsPerCore",
    "maxParallelImagePulls",
    "containerLogMaxWorkers",
}
DURATION_FIELDS = {
    "syncFrequency",
    "fileCheckFrequency",
    "httpCheckFrequency",
    "streamingConnectionIdleTimeout",
    "nodeStatusUpdateFrequency",
    "nodeStatusReportFrequency",
    "imageMinimumGCAge",
    "imageMaximumGCAge",
    "volumeStatsAggPeriod",
    "cpuManagerReconcilePeriod",
    "runtimeRequestTimeout",
    "evictionPressureTransitionPeriod",
    "shutdownGracePeriod",
    "shutdownGracePeriodCriticalPods",
    "containerLogMonitorInterval",
}
STRING_FIELDS = {
    "address",
    "healthzBindAddress",
    "staticPodPath",
    "tlsCertFile",
    "tlsPrivateKeyFile",
    "tlsMinVersion",
    "cgroupDriver",
    "resolvConf",
    "containerRuntimeEndpoint",
    "clusterDomain",
    "providerID",
    "hairpinMode",
    "podCIDR",
    "cgroupRoot",
    "staticPodURL",
    "imageServiceEndpoint",
}
LIST_FIELDS = {"tlsCipherSuites", "clusterDNS"}

#: Flags that override a config-file field (path in the config, flag type).
FLAG_FIELDS: Mapping[str, tuple[tuple[str, ...], str]] = {
    "--address": (("address",), "str"),
    "--port": (("port",), "int"),
    "--read-only-port": (("readOnlyPort",), "int"),
    "--healthz-port": (("healthzPort",), "int"),
    "--healthz-bind-address": (("healthzBindAddress",), "str"),
    "--anonymous-auth": (("authentication", "anonymous", "enabled"), "bool"),
    "--authorization-mode": (("authorization", "mode"), "str"),
    "--client-ca-file": (("authentication", "x509", "clientCAFile"), "str"),
    "--tls-cert-file": (("tlsCertFile",), "str"),
    "--tls-private-key-file": (("tlsPrivateKeyFile",), "str"),
    "--tls-min-version": (("tlsMinVersion",), "str"),
    "--tls-cipher-suites": (("tlsCipherSuites",), "list"),
    "--rotate-certificates": (("rotateCertificates",), "bool"),
}


def _type_error(field: str, got: Any, want: str) -> str:
    kind = {
        bool: "bool",
        int: "number",
        float: "number",
        str: "string",
        list: "array",
        dict: "object",
    }
    return (
        f"json: cannot unmarshal {kind.get(type(got), 'value')} into Go struct field "
        f"KubeletConfiguration.{field} of type {want}"
    )


def decode_config(data: Any) -> list[str]:
    """Type errors in a decoded KubeletConfiguration (unknown fields are tolerated, as the
    kubelet falls back to lenient decoding)."""
    if not isinstance(data, dict):
        return ["Object 'Kind' is missing in the config file"]
    kind, version = data.get("kind"), data.get("apiVersion")
    if kind != "KubeletConfiguration" or version != "kubelet.config.k8s.io/v1beta1":
        if not kind:
            return ["Object 'Kind' is missing in the config file"]
        return [
            f'no kind "{kind}" is registered for version "{version}" '
            'in scheme "pkg/kubelet/apis/config/scheme/scheme.go:28"'
        ]
    errs: list[str] = []
    for key, value in data.items():
        if key in BOOL_FIELDS and not isinstance(value, bool):
            errs.append(_type_error(key, value, "bool"))
        elif key in INT_FIELDS and (isinstance(value, bool) or not isinstance(value, int)):
            errs.append(_type_error(key, value, "int32"))
        elif key in DURATION_FIELDS and (
            not isinstance(value, str) or parse_duration(value) is None
        ):
            errs.append(
                f'time: invalid duration "{value}"'
                if isinstance(value, str)
                else _type_error(key, value, "string")
            )
        elif key in STRING_FIELDS and not isinstance(value, str):
            errs.append(_type_error(key, value, "string"))
        elif key in LIST_FIELDS and (
            not isinstance(value, list) or not all(isinstance(v, str) for v in value)
        ):
            errs.append(_type_error(key, value, "[]string"))
        elif key == "featureGates" and (
            not isinstance(value, dict) or not all(isinstance(v, bool) for v in value.values())
        ):
            errs.append(_type_error(key, value, "map[string]bool"))
    auth = data.get("authentication", {})
    if auth is not None and not isinstance(auth, dict):
        errs.append(_type_error("authentication", auth, "KubeletAuthentication"))
    elif isinstance(auth, dict):
        anon = (auth.get("anonymous") or {}).get("enabled")
        if anon is not None and not isinstance(anon, bool):
            errs.append(_type_error("authentication.anonymous.enabled", anon, "bool"))
        webhook = (auth.get("webhook") or {}).get("enabled")
        if webhook is not None and not isinstance(webhook, bool):
            errs.append(_type_error("authentication.webhook.enabled", webhook, "bool"))
    return errs


def validate_config(cfg: Mapping[str, Any], version: Version | None = None) -> list[str]:
    """The kubelet's ValidateKubeletConfiguration, for the fields a benchmark touches (cipher
    names as the kubelet of `version` knows them)."""
    errs: list[str] = []
    for field, flag, low in (
        ("port", "--port", 1),
        ("readOnlyPort", "--read-only-port", 0),
        ("healthzPort", "--healthz-port", 0),
    ):
        value = cfg.get(field)
        if value is not None and not low <= int(value) <= 65535:
            errs.append(
                f"invalid configuration: {field} ({flag}) {value} "
                f"must be between {low} and 65535, inclusive"
            )
    mode = ((cfg.get("authorization") or {}).get("mode")) or "Webhook"
    if mode not in ("AlwaysAllow", "Webhook"):
        errs.append(
            f"invalid configuration: authorization.mode ({mode}) must be AlwaysAllow or Webhook"
        )
    driver = cfg.get("cgroupDriver")
    if driver not in (None, "", "systemd", "cgroupfs"):
        errs.append(
            f'invalid configuration: cgroupDriver ({driver}) must be "systemd" or "cgroupfs"'
        )
    if (cfg.get("eventRecordQPS") or 0) < 0:
        errs.append(
            f"invalid configuration: eventRecordQPS ({cfg.get('eventRecordQPS')}) "
            "must not be a negative number"
        )
    if (cfg.get("podPidsLimit") or 0) < -1:
        errs.append("invalid configuration: podPidsLimit must be -1 or greater")
    for name in cfg.get("tlsCipherSuites") or []:
        if name not in GO_CIPHERS or not has("cipher", "kubelet", name, version):
            errs.append(
                f"invalid configuration: option tlsCipherSuites contains unsupported cipher {name}"
            )
    version = cfg.get("tlsMinVersion")
    if version and version not in TLS_VERSIONS:
        errs.append(f'invalid configuration: option tlsMinVersion "{version}" is not supported')
    for field in ("address", "healthzBindAddress"):
        value = cfg.get(field)
        if value and not valid_ip(str(value)):
            errs.append(f'invalid configuration: {field} "{value}" is not a valid IP address')
    return errs


def _set(cfg: dict[str, Any], path: tuple[str, ...], value: Any) -> None:
    node = cfg
    for key in path[:-1]:
        child = node.get(key)
        if not isinstance(child, dict):
            child = {}
            node[key] = child
        node = child
    node[path[-1]] = value


def effective_config(ctx: Context, p: ParsedArgs) -> dict[str, Any]:
    """The config file (if any) with command-line flags applied over it."""
    cfg: dict[str, Any] = {}
    path = p.get("--config")
    if path:
        prefix = (
            f"failed to load kubelet config file, path: {path}, "
            f"error: failed to load Kubelet config file {path}, error "
        )
        if not os.path.exists(path):
            raise command_failed(
                f'{prefix}failed to read kubelet config file "{path}", '
                f"error: open {path}: no such file or directory"
            )
        try:
            text = open(path, encoding="utf-8").read()  # noqa: SIM115 - read once
        except OSError as exc:
            raise command_failed(
                f'{prefix}failed to read kubelet config file "{path}", '
                f"error: open {path}: {(exc.strerror or '').lower()}"
            ) from None
        try:
            data = configs.load_yaml(text, "failed to decode")
        except Fatal as exc:
            raise command_failed(f"{prefix}{exc.message}") from None
        errs = decode_config(data)
        if errs:
            raise command_failed(f"{prefix}failed to decode: {errs[0]}")
        cfg = dict(data)
    for flag, (field_path, kind) in FLAG_FIELDS.items():
        value = p.get(flag)
        if value is None:
            continue
        converted: Any = value
        if kind == "int":
            converted = int(value, 0)
        elif kind == "bool":
            converted = parse_bool(value)
        elif kind == "list":
            converted = split(value)
        _set(cfg, field_path, converted)
    return cfg


def run(ctx: Context, argv: Sequence[str]) -> int:
    parsed = parse_args("kubelet", list(argv), flag_table_for("kubelet", ctx.version))
    if parsed.errors:
        raise command_failed(f"failed to parse kubelet flag: {parsed.errors[0]}")
    positional = [a for a in parsed.positional if a]
    if positional:
        raise command_failed(f"unknown command {positional[0]}")
    cfg = effective_config(ctx, parsed)
    errs = validate_config(cfg, ctx.version)
    if errs:
        raise command_failed(
            "failed to validate kubelet configuration, error: "
            + (errs[0] if len(errs) == 1 else "[" + ", ".join(errs) + "]")
        )

    auth = cfg.get("authentication") or {}
    client_ca = (auth.get("x509") or {}).get("clientCAFile")
    if client_ca:
        ctx.open_path(client_ca, f"unable to load client CA file {client_ca}: ")
    kubeconfig = parsed.get("--kubeconfig")
    if kubeconfig and os.path.exists(kubeconfig):
        configs.check_kubeconfig(ctx, kubeconfig, "invalid kubeconfig: ")
    cert, key = cfg.get("tlsCertFile"), cfg.get("tlsPrivateKeyFile")
    if bool(cert) != bool(key):
        raise command_failed(
            "failed to validate kubelet configuration, error: invalid configuration: "
            "tlsCertFile and tlsPrivateKeyFile must be set together"
        )
    if not cert:
        # The kubelet's --cert-dir default (/var/lib/kubelet/pki), inside the sandbox.
        cert_dir = parsed.get("--cert-dir") or str(ctx.paths.kubelet_pki)
        cert, key = f"{cert_dir}/kubelet.crt", f"{cert_dir}/kubelet.key"
    tls = TLSFiles(
        cert=ctx.open_path(str(cert), "failed to load TLS certificate: "),
        key=ctx.open_path(str(key), "failed to load TLS key: "),
        client_ca=ctx.open_path(client_ca) if client_ca else None,
        ciphers=tuple(cfg.get("tlsCipherSuites") or ()),
        min_version=cfg.get("tlsMinVersion"),
    )

    health = Health(ctx)
    anonymous = bool((auth.get("anonymous") or {}).get("enabled", True))
    mode = (cfg.get("authorization") or {}).get("mode") or "Webhook"

    def healthz_route(req: Request) -> Response:
        if req.path in ("/healthz", "/healthz/ping", "/healthz/syncloop"):
            return health.answer("healthz")
        return Response(404, "404 page not found\n")

    def secure_route(req: Request) -> Response:
        if req.user is None and not anonymous:
            return unauthorized()
        if req.user is None and mode != "AlwaysAllow":
            return forbidden("system:anonymous", req.path)
        return (
            healthz_route(req)
            if req.path.startswith("/healthz")
            else Response(404, "404 page not found\n")
        )

    healthz_port = int(cfg.get("healthzPort", 10248))
    healthz_host = str(cfg.get("healthzBindAddress") or "127.0.0.1")
    if healthz_port:
        serve(healthz_host, healthz_port, healthz_route, None, what="failed to listen on")
    if cfg.get("enableServer", True):
        serve(
            str(cfg.get("address") or "0.0.0.0"),
            int(cfg.get("port", 10250)),
            secure_route,
            server_context(tls, "failed to load TLS configuration: "),
            what="failed to listen on",
        )
    read_only = int(cfg.get("readOnlyPort") or 0)
    if read_only:
        serve(
            str(cfg.get("address") or "0.0.0.0"),
            read_only,
            healthz_route,
            None,
            what="failed to listen on",
        )
    print(klog("I", "Started kubelet"), file=sys.stderr, flush=True)
    health.run()
    return wait_for_termination(ctx)
