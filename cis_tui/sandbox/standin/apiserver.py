"""kube-apiserver stand-in: flags, option validation, the files it loads at start, and
/livez /readyz /healthz over TLS with client-certificate authentication. It is unhealthy
while etcd (--etcd-servers, with the --etcd-* TLS files) does not answer.

It also serves GET and PUT of ConfigMaps from the sandbox's store (kubeadm-config and
kubelet-config, seeded by `sandbox create`), authorized as kubeadm's RBAC would, with
resourceVersion concurrency, and only while etcd answers."""

from __future__ import annotations

import ipaddress
import json
import re
import socket
import ssl
import sys
import urllib.parse
from collections.abc import Callable, Sequence

from cis_tui.audit.flags import ParsedArgs
from cis_tui.audit.versions import Version, fact
from cis_tui.sandbox import configmaps
from cis_tui.sandbox.paths import SandboxPaths
from cis_tui.sandbox.standin import configs
from cis_tui.sandbox.standin.common import (
    Context,
    Fatal,
    check_no_positional,
    command_failed,
    flag_bool,
    flag_int,
    klog,
    parse_kube_flags,
    split,
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
    unauthorized,
)

COMPONENT = "kube-apiserver"
AUTHZ_MODES = ("AlwaysAllow", "AlwaysDeny", "ABAC", "Webhook", "RBAC", "Node")
ADMISSION_PLUGINS = frozenset(
    {
        "AlwaysAdmit",
        "AlwaysDeny",
        "AlwaysPullImages",
        "CertificateApproval",
        "CertificateSigning",
        "CertificateSubjectRestriction",
        "ClusterTrustBundleAttest",
        "DefaultIngressClass",
        "DefaultStorageClass",
        "DefaultTolerationSeconds",
        "DenyServiceExternalIPs",
        "EventRateLimit",
        "ExtendedResourceToleration",
        "ImagePolicyWebhook",
        "LimitPodHardAntiAffinityTopology",
        "LimitRanger",
        "MutatingAdmissionPolicy",
        "MutatingAdmissionWebhook",
        "NamespaceAutoProvision",
        "NamespaceExists",
        "NamespaceLifecycle",
        "NodeRestriction",
        "OwnerReferencesPermissionEnforcement",
        "PersistentVolumeClaimResize",
        "PodNodeSelector",
        "PodSecurity",
        "PodTolerationRestriction",
        "Priority",
        "ResourceQuota",
        "RuntimeClass",
        "ServiceAccount",
        "StorageObjectInUseProtection",
        "TaintNodesByCondition",
        "ValidatingAdmissionPolicy",
        "ValidatingAdmissionWebhook",
    }
)
ADDRESS_TYPES = ("Hostname", "InternalDNS", "InternalIP", "ExternalDNS", "ExternalIP")
#: Public health paths: system:public-info-viewer lets anonymous users read them.
PUBLIC_PATHS = ("/livez", "/readyz", "/healthz", "/version")
CLUSTER_INFO = "/api/v1/namespaces/kube-public/configmaps/cluster-info"
CLUSTER_INFO_BODY = (
    '{"kind":"ConfigMap","apiVersion":"v1","metadata":{"name":"cluster-info",'
    '"namespace":"kube-public"},"data":{}}'
)


CONFIGMAP_PATH = re.compile(r"/api/v1/namespaces/([a-z0-9][-a-z0-9]*)/configmaps/([^/]+)")
#: system:masters passes every authorizer; kubeadm binds kubeadm:cluster-admins (admin.conf
#: since v1.29) to cluster-admin.
PRIVILEGED_GROUP = "system:masters"
CLUSTER_ADMINS = "kubeadm:cluster-admins"
#: kubeadm's Roles kubeadm:nodes-kubeadm-config and kubeadm:kubelet-config: `get` on the two
#: ConfigMaps for nodes and bootstrap tokens.
NODE_READERS = frozenset({"system:nodes", "system:bootstrappers:kubeadm:default-node-token"})
_VERBS = {"GET": "get", "HEAD": "get", "PUT": "update", "POST": "create"}


def status(
    code: int, reason: str, message: str, details: dict[str, object] | None = None
) -> Response:
    """A failure `Status`, as the API server sends it."""
    doc: dict[str, object] = {
        "kind": "Status",
        "apiVersion": "v1",
        "metadata": {},
        "status": "Failure",
        "message": message,
        "reason": reason,
    }
    if details is not None:
        doc["details"] = details
    doc["code"] = code
    return Response(code, json.dumps(doc), "application/json")


def configmap_allowed(
    modes: Sequence[str], groups: Sequence[str], verb: str, namespace: str, name: str
) -> bool:
    """The authorizer chain on a ConfigMap request: the first mode with an opinion decides
    (Node has none on these; Webhook and ABAC are not emulated)."""
    if PRIVILEGED_GROUP in groups:
        return True
    for mode in modes:
        if mode in ("AlwaysAllow", "AlwaysDeny"):
            return mode == "AlwaysAllow"
        if mode == "RBAC" and (
            CLUSTER_ADMINS in groups
            or (
                verb == "get"
                and namespace == configmaps.NAMESPACE
                and name in (configmaps.KUBEADM_CONFIG, configmaps.KUBELET_CONFIG)
                and NODE_READERS.intersection(groups)
            )
        ):
            return True
    return False


def configmap_request(
    paths: SandboxPaths,
    req: Request,
    namespace: str,
    name: str,
    modes: Sequence[str],
    storage: Callable[[], str | None],
) -> Response:
    """GET or PUT one ConfigMap: authorize, reach etcd, then read or compare-and-swap."""
    user = req.user or "system:anonymous"
    groups = (*req.groups, "system:authenticated") if req.user else ("system:unauthenticated",)
    verb = _VERBS.get(req.method, req.method.lower())
    details: dict[str, object] = {"name": name, "kind": "configmaps"}
    if not configmap_allowed(modes, groups, verb, namespace, name):
        return status(
            403,
            "Forbidden",
            f'configmaps "{name}" is forbidden: User "{user}" cannot {verb} resource '
            f'"configmaps" in API group "" in the namespace "{namespace}"',
            details,
        )
    if req.method not in ("GET", "HEAD", "PUT"):
        return status(
            405,
            "MethodNotAllowed",
            "the server does not allow this method on the requested resource",
        )
    if storage() is not None:  # storage.InterpretGetError/InterpretUpdateError: unreachable
        operation = "get" if verb == "get" else "update"
        return status(
            500,
            "ServerTimeout",
            f"The {operation} operation against configmaps could not be completed at this "
            "time, please try again.",
            {"name": operation, "kind": "configmaps", "retryAfterSeconds": 2},
        )
    try:
        if verb == "get":
            found = configmaps.read_configmap(paths, namespace, name)
            if found is None:
                raise configmaps.NotFound(name)
            return Response(200, json.dumps(found), "application/json")
        return _put(paths, req, namespace, name)
    except configmaps.NotFound as exc:
        return status(404, "NotFound", str(exc), details)
    except configmaps.Conflict as exc:
        return status(409, "Conflict", str(exc), details)
    except configmaps.Invalid as exc:
        return status(422, "Invalid", str(exc), details)
    except configmaps.StoreError as exc:
        return status(500, "InternalError", f"Internal error occurred: {exc}")


def _put(paths: SandboxPaths, req: Request, namespace: str, name: str) -> Response:
    try:
        obj = json.loads(req.body)
    except ValueError as exc:
        return status(400, "BadRequest", f"couldn't get version/kind; json parse error: {exc}")
    meta = obj.get("metadata") if isinstance(obj, dict) else None
    if not isinstance(meta, dict):
        return status(400, "BadRequest", "the body of the request is not a ConfigMap")
    if meta.get("name") != name:
        return status(
            400,
            "BadRequest",
            f"the name of the object ({meta.get('name')}) does not match the name on the URL "
            f"({name})",
        )
    if meta.setdefault("namespace", namespace) != namespace:
        return status(
            400,
            "BadRequest",
            "the namespace of the provided object does not match the namespace sent on the request",
        )
    query = urllib.parse.parse_qs(req.query)
    stored = configmaps.replace_configmap(
        paths,
        obj,
        manager=(query.get("fieldManager") or ["unknown"])[0],
        dry_run="All" in query.get("dryRun", []),
    )
    return Response(200, json.dumps(stored), "application/json")


def version_body(version: Version | None) -> str:
    """The /version answer of the version the stand-in plays."""
    played = version or Version(1, 35, 0, "v1.35.0")
    text = str(played) if str(played).startswith("v") else f"v{played}"
    return f'{{"major":"{played.major}","minor":"{played.minor}","gitVersion":"{text}-sandbox"}}'


def known_plugin(name: str, version: Version | None) -> bool:
    """Whether the API server of `version` has an admission plugin (v1.35's list, less what
    came later, plus what was removed since: versions.tsv)."""
    row = fact("plugin", COMPONENT, name)
    if row is not None:
        return version is None or row.present_in(version)
    return name in ADMISSION_PLUGINS


def validate(p: ParsedArgs, version: Version | None = None) -> list[str]:
    """The option validation kube-apiserver runs before it loads anything."""
    errs: list[str] = []
    if not split(p.get("--etcd-servers")):
        errs.append("--etcd-servers must be specified")
    port = flag_int(p, "--secure-port", 6443)
    if not 1 <= port <= 65535:
        errs.append(
            f"--secure-port {port} must be between 1 and 65535, inclusive. "
            "It cannot be turned off with 0"
        )
    if not p.get("--service-account-issuer"):
        errs.append("service-account-issuer is a required flag")
    if not p.get("--service-account-signing-key-file"):
        errs.append("service-account-signing-key-file is a required flag")
    modes = split(p.get("--authorization-mode")) or (
        [] if p.get("--authorization-config") else ["AlwaysAllow"]
    )
    if p.get("--authorization-mode") and p.get("--authorization-config"):
        errs.append("authorization-mode and authorization-config are mutually exclusive")
    seen: set[str] = set()
    for mode in modes:
        if mode not in AUTHZ_MODES:
            errs.append(f'authorization-mode "{mode}" is not a valid mode')
        if mode in seen:
            errs.append(f'authorization-mode "{mode}" has mode specified more than once')
        seen.add(mode)
    if "ABAC" in modes and not p.get("--authorization-policy-file"):
        errs.append("authorization-mode ABAC's authorization policy file not passed")
    if "Webhook" in modes and not p.get("--authorization-webhook-config-file"):
        errs.append("authorization-mode Webhook's authorization config file not passed")
    enabled = split(p.get("--enable-admission-plugins")) + split(p.get("--admission-control"))
    disabled = split(p.get("--disable-admission-plugins"))
    if p.get("--admission-control") is not None and (
        p.get("--enable-admission-plugins") is not None
        or p.get("--disable-admission-plugins") is not None
    ):
        errs.append(
            "admission-control and enable-admission-plugins/disable-admission-plugins flags "
            "are mutually exclusive"
        )
    for flag, names in (
        ("enable-admission-plugins", enabled),
        ("disable-admission-plugins", disabled),
    ):
        for name in names:
            if not known_plugin(name, version):
                errs.append(f'{flag} plugin "{name}" is unknown')
    for name in set(enabled) & set(disabled):
        errs.append(f"{name} in enable-admission-plugins and disable-admission-plugins overlapped")
    for flag in ("--audit-log-maxage", "--audit-log-maxbackup", "--audit-log-maxsize"):
        if flag_int(p, flag, 0) < 0:
            errs.append(f"{flag} {p.get(flag)} can't be a negative number")
    if p.get("--audit-log-format") not in (None, "json", "legacy"):
        errs.append(f'--audit-log-format "{p.get("--audit-log-format")}" is not supported')
    if p.get("--audit-log-mode") not in (None, "batch", "blocking", "blocking-strict"):
        errs.append(f'--audit-log-mode "{p.get("--audit-log-mode")}" is not supported')
    for cidr in split(p.get("--service-cluster-ip-range")):
        try:
            ipaddress.ip_network(cidr, strict=False)
        except ValueError:
            errs.append(f"service-cluster-ip-range[0] {cidr} is not a valid cidr")
    for kind in split(p.get("--kubelet-preferred-address-types")):
        if kind not in ADDRESS_TYPES:
            errs.append(f'--kubelet-preferred-address-types: unsupported address type "{kind}"')
    errs += check_tls_options(
        split(p.get("--tls-cipher-suites")), p.get("--tls-min-version"), COMPONENT, version
    )
    if bool(p.get("--tls-cert-file")) != bool(p.get("--tls-private-key-file")):
        errs.append("--tls-cert-file and --tls-private-key-file must be given together")
    if p.get("--authentication-config") and any(f.startswith("--oidc-") for f in p.values):
        errs.append("authentication-config file and oidc-* flags are mutually exclusive")
    return errs


AUTHN_API_VERSIONS = {f"apiserver.config.k8s.io/{v}" for v in ("v1alpha1", "v1beta1", "v1")}


class AnonymousRule:
    """Which paths an anonymous request may reach: the --anonymous-auth flag (all or none),
    or the anonymous section of --authentication-config (KEP-4633: exact paths)."""

    def __init__(self, enabled: bool, paths: tuple[str, ...] = ()) -> None:
        self.enabled = enabled
        self.paths = paths

    def allows(self, path: str) -> bool:
        return self.enabled and (not self.paths or path in self.paths)


def anonymous_rule(ctx: Context, p: ParsedArgs) -> AnonymousRule:
    """The anonymous authenticator as kube-apiserver sets it up; Fatal as it refuses."""
    path = p.get("--authentication-config")
    flag_set = p.get("--anonymous-auth") is not None
    flag = AnonymousRule(flag_bool(p, "--anonymous-auth", True))
    if not path:
        return flag
    prefix = f'failed to load authentication configuration from file "{path}": '
    text = ctx.read_text(path, prefix)
    if not text.strip():
        raise command_failed(f"{prefix}empty config data")
    data = configs.load_yaml(text, prefix.rstrip(": "))
    kind = data.get("kind") if isinstance(data, dict) else None
    version = data.get("apiVersion") if isinstance(data, dict) else None
    if kind != "AuthenticationConfiguration" or version not in AUTHN_API_VERSIONS:
        raise command_failed(f'{prefix}no kind "{kind}" is registered for version "{version}"')
    section = data.get("anonymous")
    if section is None:
        return flag
    if flag_set:
        raise command_failed(
            "anonymous: Forbidden: --anonymous-auth flag cannot be set when anonymous field is "
            "configured in authentication configuration file"
        )
    section = section if isinstance(section, dict) else {}
    enabled = section.get("enabled") is True
    paths = tuple(
        str(c.get("path")) for c in section.get("conditions") or [] if isinstance(c, dict)
    )
    if paths and not enabled:
        raise command_failed(
            "invalid authentication configuration: anonymous.conditions: Invalid value: "
            f"{list(paths)!r}: enabled should be set to true when conditions are defined"
        )
    return AnonymousRule(enabled, paths)


class EtcdCheck:
    """Can the apiserver talk to etcd over TLS with its client certificate?"""

    def __init__(self, ctx: Context, p: ParsedArgs) -> None:
        url = urllib.parse.urlsplit(split(p.get("--etcd-servers"))[0])
        self.host = url.hostname or "127.0.0.1"
        self.port = url.port or 2379
        self.tls: ssl.SSLContext | None = None
        if url.scheme == "https":
            self.tls = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
            self.tls.check_hostname = False
            cafile = p.get("--etcd-cafile")
            if cafile:
                self.tls.load_verify_locations(cafile=str(ctx.open_path(cafile, _STORAGE)))
            else:
                self.tls.load_default_certs()
            cert, key = p.get("--etcd-certfile"), p.get("--etcd-keyfile")
            if cert and key:
                try:
                    self.tls.load_cert_chain(
                        ctx.open_path(cert, _STORAGE), ctx.open_path(key, _STORAGE)
                    )
                except ssl.SSLError as exc:
                    raise command_failed(f"{_STORAGE}tls: {exc.reason}") from None

    def __call__(self) -> str | None:
        try:
            with socket.create_connection((self.host, self.port), timeout=1.0) as raw:
                sock: socket.socket = (
                    self.tls.wrap_socket(raw, server_hostname=self.host) if self.tls else raw
                )
                request = f"GET /health HTTP/1.1\r\nHost: {self.host}\r\nConnection: close\r\n\r\n"
                sock.sendall(request.encode())
                data = b""
                while len(data) < 4096:
                    chunk = sock.recv(4096)
                    if not chunk:
                        break
                    data += chunk
        except (OSError, ssl.SSLError) as exc:
            return f"etcd at {self.host}:{self.port}: {exc}"
        status = data.split(b"\r\n", 1)[0].split()
        if (
            len(status) < 2
            or status[1] != b"200"
            or b'"health":"true"' not in data.replace(b" ", b"")
        ):
            return f"etcd at {self.host}:{self.port} is not healthy"
        return None


_STORAGE = "error creating storage factory: "


def load_files(ctx: Context, p: ParsedArgs) -> TLSFiles:
    """Everything kube-apiserver reads before it serves; Fatal on the first problem."""

    def need(flag: str, prefix: str) -> None:
        value = p.get(flag)
        if value:
            ctx.open_path(value, prefix)

    need("--client-ca-file", "unable to load client CA provider: ")
    need("--requestheader-client-ca-file", "unable to load requestheader client CA provider: ")
    for key_file in split(p.get("--service-account-key-file")):
        ctx.open_path(key_file, "failed to parse service-account-issuer-key-file: ")
    need("--service-account-signing-key-file", "failed to parse service-account-issuer-key-file: ")
    for flag in ("--etcd-cafile", "--etcd-certfile", "--etcd-keyfile"):
        need(flag, _STORAGE)
    for flag in (
        "--kubelet-client-certificate",
        "--kubelet-client-key",
        "--kubelet-certificate-authority",
    ):
        need(flag, "failed to create kubelet client: ")
    for flag in ("--proxy-client-cert-file", "--proxy-client-key-file"):
        need(flag, "failed to load proxy client certificate: ")
    for flag in (
        "--authorization-policy-file",
        "--authorization-webhook-config-file",
        "--authentication-token-webhook-config-file",
        "--authorization-config",
        "--oidc-ca-file",
        "--egress-selector-config-file",
        "--tracing-config-file",
    ):
        need(flag, f"failed to read {flag.lstrip('-')}: ")
    token_file = p.get("--token-auth-file")
    if token_file:
        for n, line in enumerate(
            ctx.read_text(token_file, "unable to load token file: ").splitlines(), 1
        ):
            if line.strip() and len(line.split(",")) < 3:
                columns = len(line.split(","))
                raise Fatal(
                    f"unable to load token file: token file '{token_file}' must have at least "
                    f"3 columns (token, user name, user uid), found {columns} on line {n}"
                )
    if p.get("--audit-policy-file"):
        configs.check_audit_policy(ctx, p.get("--audit-policy-file") or "")
    audit_log = p.get("--audit-log-path")
    if audit_log and audit_log != "-":
        ctx.writable_file(audit_log, "failed to set up audit log file: ")
    if p.get("--encryption-provider-config"):
        configs.check_encryption_config(ctx, p.get("--encryption-provider-config") or "")
    plugins = set(split(p.get("--enable-admission-plugins")))
    configs.check_admission_config(ctx, p.get("--admission-control-config-file"), plugins)

    return serving_files(ctx, p, "apiserver")


def run(ctx: Context, argv: Sequence[str]) -> int:
    parsed = parse_kube_flags(COMPONENT, argv, ctx.version)
    check_no_positional(COMPONENT, parsed)
    errs = validate(parsed, ctx.version)
    if errs:
        raise command_failed(errs[0] if len(errs) == 1 else "[" + ", ".join(errs) + "]")
    tls = load_files(ctx, parsed)
    anonymous = anonymous_rule(ctx, parsed)
    etcd = EtcdCheck(ctx, parsed)
    modes = split(parsed.get("--authorization-mode")) or ["AlwaysAllow"]
    health = Health(ctx, {"etcd": etcd})

    def route(req: Request) -> Response:
        if req.user is None and not anonymous.allows(req.path):
            return unauthorized()
        user = req.user or "system:anonymous"
        found = CONFIGMAP_PATH.fullmatch(req.path) if req.path != CLUSTER_INFO else None
        if found is not None:
            namespace, name = urllib.parse.unquote(found[1]), urllib.parse.unquote(found[2])
            return configmap_request(ctx.paths, req, namespace, name, modes, etcd)
        if "AlwaysDeny" in modes and "AlwaysAllow" not in modes:
            return forbidden(user, req.path)
        if req.path in ("/livez", "/readyz", "/healthz"):
            return health.answer(req.path.lstrip("/"), "verbose" in req.query)
        if req.path == "/version":
            return Response(200, version_body(ctx.version), "application/json")
        if req.path == CLUSTER_INFO:  # kubeadm's RBAC lets anyone read it, for join discovery
            return Response(200, CLUSTER_INFO_BODY, "application/json")
        if req.user is None and "AlwaysAllow" not in modes:
            return forbidden(user, req.path)
        return Response(404, "404 page not found\n")

    host = parsed.get("--bind-address") or "0.0.0.0"
    port = flag_int(parsed, "--secure-port", 6443)
    serve(
        host,
        port,
        route,
        server_context(tls, "unable to load server certificate: "),
        what="failed to create listener: failed to listen on",
    )
    print(klog("I", "Serving securely on", address=f"{host}:{port}"), file=sys.stderr, flush=True)
    health.run(interval=0.1)
    return wait_for_termination(ctx)
