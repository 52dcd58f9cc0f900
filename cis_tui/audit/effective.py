"""The configuration a component computes for itself, where it is more than its command line.

The kubelet builds its configuration from the KubeletConfiguration defaults, its --config file,
the `*.conf` drop-ins of its --config-dir and, last, its flags. Without --config the command
line's own defaults apply instead, and three of those are the insecure legacy ones (anonymous
requests, AlwaysAllow, read-only port 10255). etcd given --config-file (or ETCD_CONFIG_FILE)
reads only that YAML file and ignores every other flag and ETCD_* variable.
(Facts and sources: ../shared/ref/k8s-versions.md, sections 3 to 5.)
"""

from __future__ import annotations

import ipaddress
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from cis_tui.audit.flags import split_list
from cis_tui.audit.versions import Version, default_at

#: Where a kubelet value came from when no flag gave it.
CONFIG_FILE = "config file"
CONFIG_FILE_DEFAULT = "config file default"
FLAG_DEFAULT = "flag default"


def config_value(config: Mapping[str, Any] | None, dotted: str) -> str | None:
    """A (dotted) field of a config file as text; None when absent or null."""
    node: Any = config
    for part in dotted.split("."):
        if not isinstance(node, Mapping) or part not in node:
            return None
        node = node[part]
    if node is None:
        return None
    if isinstance(node, bool):
        return "true" if node else "false"
    if isinstance(node, list):
        return ",".join(str(v) for v in node)
    if isinstance(node, Mapping):
        return ",".join(f"{k}={config_value(node, str(k))}" for k in node)
    return str(node)


@dataclass(frozen=True)
class KubeletDefault:
    """A KubeletConfiguration field's value when nothing sets it."""

    in_file: str  # a --config file omits it: the v1beta1 default (SetDefaults_KubeletConfiguration)
    flags_only: str  # no --config file: the command-line default (applyLegacyDefaults)


#: Every field a CIS 4.2.x check reads that has a default (k8s-versions.md section 5). Fields
#: without one (clientCAFile, tlsCertFile, tlsCipherSuites) stay absent.
KUBELET_DEFAULTS: dict[str, KubeletDefault] = {
    "authentication.anonymous.enabled": KubeletDefault("false", "true"),
    "authentication.webhook.enabled": KubeletDefault("true", "false"),
    "authentication.webhook.cacheTTL": KubeletDefault("2m0s", "2m0s"),
    "authorization.mode": KubeletDefault("Webhook", "AlwaysAllow"),
    "readOnlyPort": KubeletDefault("0", "10255"),
    "streamingConnectionIdleTimeout": KubeletDefault("4h0m0s", "4h0m0s"),
    "makeIPTablesUtilChains": KubeletDefault("true", "true"),
    "eventRecordQPS": KubeletDefault("50", "50"),
    "eventBurst": KubeletDefault("100", "100"),
    "rotateCertificates": KubeletDefault("false", "false"),
    "serverTLSBootstrap": KubeletDefault("false", "false"),
    # Beta, on, since 1.12 (off before: versions.tsv).
    "featureGates.RotateKubeletServerCertificate": KubeletDefault("true", "true"),
    "protectKernelDefaults": KubeletDefault("false", "false"),
    "tlsMinVersion": KubeletDefault("VersionTLS12", "VersionTLS12"),
    "podPidsLimit": KubeletDefault("-1", "-1"),
    "seccompDefault": KubeletDefault("false", "false"),
}


def kubelet_default(
    dotted: str, with_config_file: bool, version: Version | None = None
) -> str | None:
    """A field's default: the kubelet version's where it changed (versions.tsv `default`
    rows: eventRecordQPS was 5 before 1.27, RotateKubeletServerCertificate off before 1.12)."""
    name = dotted.removeprefix("featureGates.")
    by_version = default_at("kubelet", name, version)
    if by_version is not None:
        return by_version
    default = KUBELET_DEFAULTS.get(dotted)
    if default is None:
        return None
    return default.in_file if with_config_file else default.flags_only


@dataclass(frozen=True)
class KubeletConfigView:
    """The files one kubelet command line reads: its --config file and --config-dir drop-ins."""

    base: Mapping[str, Any] | None = None  # None: no --config, the flag defaults apply
    dropins: tuple[tuple[Path, Mapping[str, Any]], ...] = ()  # in the order they are merged
    version: Version | None = None  # the kubelet's: defaults changed across versions

    def lookup(self, dotted: str) -> tuple[str | None, str]:
        """The field's value before flags, and its source: the drop-in, CONFIG_FILE or a
        default. The kubelet merges each drop-in over the result so far (a JSON merge patch:
        maps merge key by key, lists and scalars are replaced), so the last one setting the
        field wins. Fields without a default and set nowhere give (None, "")."""
        path = self.dropin_setting(dotted)
        if path is not None:
            return config_value(dict(self.dropins)[path], dotted), f"drop-in {path}"
        value = config_value(self.base, dotted)
        if value is not None:
            return value, CONFIG_FILE
        default = kubelet_default(dotted, self.base is not None, self.version)
        if default is None:
            return None, ""
        return default, CONFIG_FILE_DEFAULT if self.base is not None else FLAG_DEFAULT

    def dropin_setting(self, dotted: str) -> Path | None:
        """The drop-in whose value of the field the kubelet uses, if one sets it."""
        for path, doc in reversed(self.dropins):
            if config_value(doc, dotted) is not None:
                return path
        return None


# ---- etcd ----

#: etcd flags whose config-file key is not the flag name without `--` (etcd.conf.yml.sample).
_ETCD_CONFIG_KEYS = {
    "--cert-file": "client-transport-security.cert-file",
    "--key-file": "client-transport-security.key-file",
    "--client-cert-auth": "client-transport-security.client-cert-auth",
    "--trusted-ca-file": "client-transport-security.trusted-ca-file",
    "--auto-tls": "client-transport-security.auto-tls",
    "--client-crl-file": "client-transport-security.crl-file",
    "--peer-cert-file": "peer-transport-security.cert-file",
    "--peer-key-file": "peer-transport-security.key-file",
    "--peer-client-cert-auth": "peer-transport-security.client-cert-auth",
    "--peer-trusted-ca-file": "peer-transport-security.trusted-ca-file",
    "--peer-auto-tls": "peer-transport-security.auto-tls",
    "--peer-crl-file": "peer-transport-security.crl-file",
    "--peer-cert-allowed-cn": "peer-transport-security.allowed-cn",
}


def etcd_config_key(flag: str) -> str:
    """The key etcd's config file uses for a flag (dotted for the TLS sections)."""
    return _ETCD_CONFIG_KEYS.get(flag, flag.removeprefix("--"))


def etcd_env_name(flag: str) -> str:
    """The ETCD_* variable etcd reads for a flag not given on its command line."""
    return "ETCD_" + flag.removeprefix("--").upper().replace("-", "_")


@dataclass(frozen=True)
class EtcdConfigFile:
    """The YAML file etcd reads instead of its flags and environment."""

    path: Path  # where cis-tui read it (under --root)
    named: str  # as the command line or environment names it
    named_by: str  # "--config-file" or "ETCD_CONFIG_FILE"
    data: Mapping[str, Any]

    def lookup(self, flag: str) -> tuple[str | None, str]:
        """The value for a flag's setting, and the key it is read from."""
        key = etcd_config_key(flag)
        return config_value(self.data, key), key


def etcd_config_named(flags: Mapping[str, str], env: Mapping[str, str]) -> tuple[str, str] | None:
    """The config file etcd reads, and what names it; None when it reads flags."""
    if flags.get("--config-file"):
        return flags["--config-file"], "--config-file"
    if env.get("ETCD_CONFIG_FILE") and "--config-file" not in flags:
        return env["ETCD_CONFIG_FILE"], "ETCD_CONFIG_FILE"
    return None


def _local_url(url: str) -> bool:
    """Whether a listen URL is reachable only from this host (loopback, or a unix socket)."""
    try:
        parts = urlsplit(url.strip())
    except ValueError:
        return False
    if parts.scheme in {"unix", "unixs"}:
        return True
    host = parts.hostname or ""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def etcd_without_peers(
    setting: Callable[[str], str | None], config_file: str | None = None
) -> str | None:
    """Why etcd has no peer traffic to protect, or None when it may have: a single member
    (no discovery, --initial-cluster naming no other member) whose peer listener is on
    loopback only. `setting` gives the value etcd uses for a flag (None: its default);
    `config_file`: the file etcd reads its settings from instead of flags."""
    if setting("--discovery") or setting("--discovery-srv"):
        return None
    cluster = setting("--initial-cluster") or ""
    members = {item.partition("=")[0].strip() for item in split_list(cluster)}
    if len(members) > 1:
        return None
    listen = setting("--listen-peer-urls") or "http://localhost:2380"  # etcd's default
    if not all(_local_url(url) for url in split_list(listen)):
        return None
    name = "--initial-cluster" if config_file is None else "initial-cluster"
    named = f"{name} {cluster}" if cluster else f"no {name}"
    if config_file is not None:
        named += f" in {config_file}"
    return (
        f"not applicable: a single-member etcd ({named}) whose peer listener {listen} "
        "is on loopback only has no peer traffic to protect"
    )
