"""Config files the components parse at start, checked as strictly as they matter.

Each `check_*` returns nothing or raises Fatal with a message in the component's words.
ruamel.yaml is imported lazily: only stand-ins given such a file pay for it.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Callable
from typing import Any

from cis_tui.audit.versions import Version, has
from cis_tui.sandbox.standin.common import Context, Fatal


def load_yaml(text: str, what: str) -> Any:
    """One YAML (or JSON) document as plain Python data; Fatal when it does not parse."""
    from ruamel.yaml.error import YAMLError

    from cis_tui.safeyaml import load  # bounded: an alias bomb is refused, not built

    try:
        return load(text)
    except (YAMLError, ValueError) as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise Fatal(f"{what}: error converting YAML to JSON: yaml: {first}") from None


def _kind(data: Any, kinds: dict[str, set[str]], what: str, version: Version | None = None) -> str:
    """The file's kind, refused (Fatal) unless `kinds` lists its apiVersion and the API server
    of `version` reads that apiVersion (audit.k8s.io/v1beta1 is gone from 1.24, ...)."""
    if not isinstance(data, dict):
        raise Fatal(f"{what}: Object 'Kind' is missing in '{data!r}'")
    kind = data.get("kind")
    api_version = data.get("apiVersion")
    if not kind:
        raise Fatal(f"{what}: Object 'Kind' is missing in the file")
    if (
        kind not in kinds
        or api_version not in kinds[kind]
        or not has("api", "kube-apiserver", f"{api_version}/{kind}", version)
    ):
        raise Fatal(f'{what}: no kind "{kind}" is registered for version "{api_version}"')
    return str(kind)


def check_kubeconfig(ctx: Context, path: str, prefix: str) -> None:
    """A kubeconfig client-go can load (and whose credential files exist)."""
    text = ctx.read_text(path, prefix)
    if not text.strip():
        raise Fatal(f"{prefix}invalid configuration: no configuration has been provided")
    data = load_yaml(text, f'{prefix}error loading config file "{path}"')
    if not isinstance(data, dict) or not data.get("clusters"):
        raise Fatal(f"{prefix}invalid configuration: no configuration has been provided")
    for user in data.get("users") or []:
        creds = (user or {}).get("user") or {}
        for key in ("client-certificate", "client-key"):
            if creds.get(key):
                ctx.read_bytes(str(creds[key]), prefix)


AUDIT_LEVELS = {"None", "Metadata", "Request", "RequestResponse"}


def check_audit_policy(ctx: Context, path: str) -> None:
    prefix = "loading audit policy file: "
    text = ctx.read_text(path, f'{prefix}failed to read file path "{path}": ')
    what = f'{prefix}failed decoding file "{path}"'
    if not text.strip():
        raise Fatal(f"{what}: Object 'Kind' is missing in ''")
    data = load_yaml(text, what)
    _kind(data, {"Policy": {"audit.k8s.io/v1", "audit.k8s.io/v1beta1"}}, what, ctx.version)
    rules = data.get("rules")
    if not isinstance(rules, list) or not rules:
        raise Fatal(f"{prefix}loaded illegal policy with 0 rules from file {path}")
    for i, rule in enumerate(rules):
        level = rule.get("level") if isinstance(rule, dict) else None
        if level not in AUDIT_LEVELS:
            raise Fatal(
                f'{prefix}invalid audit policy: rules[{i}].level: Unsupported value: "{level}"'
            )


_KEY_LENGTHS: dict[str, tuple[int, ...]] = {
    "aescbc": (16, 24, 32),
    "aesgcm": (16, 24, 32),
    "secretbox": (32,),
}


def check_encryption_config(ctx: Context, path: str) -> None:
    prefix = "error while parsing file: "
    text = ctx.read_text(
        path, f'{prefix}error reading encryption provider configuration file "{path}": '
    )
    what = f'{prefix}error decoding encryption provider configuration file "{path}"'
    data = load_yaml(text, what)
    _kind(
        data,
        {
            "EncryptionConfiguration": {
                "apiserver.config.k8s.io/v1",
                "apiserver.config.k8s.io/v1beta1",
            }
        },
        what,
        ctx.version,
    )
    resources = data.get("resources")
    if not isinstance(resources, list) or not resources:
        raise Fatal(
            f"{prefix}resources: Required value: "
            "EncryptionConfiguration.Resources must contain at least one resource"
        )
    for i, res in enumerate(resources):
        base = f"resources[{i}]"
        if not isinstance(res, dict) or not res.get("resources"):
            raise Fatal(f"{prefix}{base}.resources: Required value: at least one resource")
        providers = res.get("providers")
        if not isinstance(providers, list) or not providers:
            raise Fatal(f"{prefix}{base}.providers: Required value: at least one provider")
        for j, provider in enumerate(providers):
            pbase = f"{base}.providers[{j}]"
            if not isinstance(provider, dict) or len(provider) != 1:
                raise Fatal(
                    f"{prefix}{pbase}: Invalid value: exactly one provider must be configured"
                )
            ((name, conf),) = provider.items()
            if name == "identity":
                continue
            if name == "kms":
                if not isinstance(conf, dict) or not conf.get("name"):
                    raise Fatal(f"{prefix}{pbase}.kms.name: Required value")
                continue
            if name not in _KEY_LENGTHS:
                raise Fatal(f'{prefix}{pbase}: Invalid value: unknown provider "{name}"')
            keys = (conf or {}).get("keys") if isinstance(conf, dict) else None
            if not isinstance(keys, list) or not keys:
                raise Fatal(f"{prefix}{pbase}.{name}.keys: Required value")
            for k, key in enumerate(keys):
                kbase = f"{pbase}.{name}.keys[{k}]"
                secret = (key or {}).get("secret") if isinstance(key, dict) else None
                if not (key or {}).get("name"):
                    raise Fatal(f"{prefix}{kbase}.name: Required value")
                try:
                    raw = base64.b64decode(str(secret or ""), validate=True)
                except (binascii.Error, ValueError):
                    raise Fatal(
                        f'{prefix}{kbase}.secret: Invalid value: "REDACTED": '
                        "secrets must be base64 encoded"
                    ) from None
                if len(raw) not in _KEY_LENGTHS[name]:
                    raise Fatal(
                        f'{prefix}{kbase}.secret: Invalid value: "REDACTED": secret is not of the '
                        f"expected length, got {len(raw)}, "
                        f"expected one of {list(_KEY_LENGTHS[name])}"
                    )


EVENT_LIMIT_TYPES = {"Server", "Namespace", "User", "SourceAndObject"}


def _check_event_rate_limit(data: Any, prefix: str) -> None:
    what = f'{prefix}couldn\'t init admission plugin "EventRateLimit"'
    _kind(data, {"Configuration": {"eventratelimit.admission.k8s.io/v1alpha1"}}, what)
    limits = data.get("limits")
    if not isinstance(limits, list) or not limits:
        raise Fatal(f"{what}: limits: Required value: must not be empty")
    for i, limit in enumerate(limits):
        if not isinstance(limit, dict) or limit.get("type") not in EVENT_LIMIT_TYPES:
            kind = limit.get("type") if isinstance(limit, dict) else None
            raise Fatal(f'{what}: limits[{i}].type: Unsupported value: "{kind}"')
        for key in ("qps", "burst"):
            value = limit.get(key)
            if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
                raise Fatal(f"{what}: limits[{i}].{key}: Invalid value: {value}: must be positive")


def check_admission_config(ctx: Context, path: str | None, plugins: set[str]) -> None:
    """--admission-control-config-file, and the plugins that cannot run without it."""
    prefix = "failed to initialize admission: "
    configs: dict[str, Any] = {}
    if path:
        text = ctx.read_text(
            path, f"{prefix}unable to read admission control configuration from {path!r} ["
        )
        what = f"{prefix}unable to decode {path!r}"
        data = load_yaml(text, what)
        _kind(
            data,
            {
                "AdmissionConfiguration": {
                    "apiserver.config.k8s.io/v1",
                    "apiserver.config.k8s.io/v1alpha1",
                    "apiserver.k8s.io/v1alpha1",
                }
            },
            what,
            ctx.version,
        )
        base = path.rsplit("/", 1)[0]
        for plugin in data.get("plugins") or []:
            if not isinstance(plugin, dict) or not plugin.get("name"):
                raise Fatal(f"{what}: plugins: name is required")
            name = str(plugin["name"])
            if plugin.get("configuration") is not None:
                configs[name] = plugin["configuration"]
            elif plugin.get("path"):
                sub = str(plugin["path"])
                sub = sub if sub.startswith("/") else f"{base}/{sub}"
                configs[name] = load_yaml(ctx.read_text(sub, f"{prefix}"), f"{prefix}{sub}")
    checkers: dict[str, Callable[[Any, str], None]] = {"EventRateLimit": _check_event_rate_limit}
    for plugin, checker in checkers.items():
        if plugin in plugins:
            if plugin not in configs:
                raise Fatal(
                    f'{prefix}couldn\'t init admission plugin "{plugin}": '
                    "limits: Required value: must not be empty"
                )
            checker(configs[plugin], prefix)


def check_scheduler_config(ctx: Context, path: str) -> None:
    text = ctx.read_text(path)
    what = f'failed to decode config file "{path}"'
    data = load_yaml(text, what)
    _kind(data, {"KubeSchedulerConfiguration": {"kubescheduler.config.k8s.io/v1"}}, what)
