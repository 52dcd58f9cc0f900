"""What a fix may add on this node: only what the component's version has, and only files the
node has.

A flag, admission plugin, feature gate, cipher suite name or config apiVersion that the version
does not know stops the component at start (`unknown flag: --x`); a fix that would add one is
not planned, and says why, naming the version (the facts: cis_tui.audit.versions).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from typing import TYPE_CHECKING

from cis_tui.audit.flags import ParsedArgs, split_list, split_map
from cis_tui.audit.versions import Version, api_version_of, missing
from cis_tui.benchmarks.catalog import Check
from cis_tui.remediate.edits import PodManifest

if TYPE_CHECKING:
    from cis_tui.audit.node import Manifest
    from cis_tui.remediate.recipes import CompanionFile

ENABLE_PLUGINS = "--enable-admission-plugins"
DISABLE_PLUGINS = "--disable-admission-plugins"
LEGACY_PLUGINS = "--admission-control"

#: Flags whose elements are admission plugin names.
_PLUGIN_LISTS = (ENABLE_PLUGINS, DISABLE_PLUGINS, LEGACY_PLUGINS)


def admission_list(pod: PodManifest, flag: str) -> str:
    """The flag that holds the enabled plugins on this API server: the legacy
    `--admission-control` when the manifest uses it (the API server refuses it next to
    `--enable-admission-plugins`, and before 1.10 has nothing else), else `flag`."""
    if flag == ENABLE_PLUGINS and pod.flags().get(LEGACY_PLUGINS) is not None:
        return LEGACY_PLUGINS
    return flag


def legacy_note(item: str) -> str:
    return (
        f"{item} goes into --admission-control, the list this API server already uses: that "
        "flag replaces the whole plugin list, in order, and the API server refuses it next to "
        "--enable-admission-plugins"
    )


def manifest_problems(
    component: str,
    version: Version | None,
    before: ParsedArgs,
    after: ParsedArgs,
    on_node: Callable[[str, str], str | None],
) -> list[str]:
    """Why the flags a fix adds (`before` -> `after`) would stop `component` at `version`;
    `on_node(flag, path)` says why the file a new flag names cannot be opened (None: it can)."""
    problems: list[str] = []
    if why_ignored := etcd_config_file_problem(component, before, after):
        problems.append(why_ignored)
    added = [f for f in after.values if f not in before.values]
    for flag in added:
        why = missing("flag", component, flag, version)
        if why:
            problems.append(why)
    plugin_flags = [f for f in (ENABLE_PLUGINS, DISABLE_PLUGINS) if after.get(f) is not None]
    both = plugin_flags and after.get(LEGACY_PLUGINS) is not None
    if both and (any(f in added for f in plugin_flags) or LEGACY_PLUGINS in added):
        problems.append(f"{component} refuses --admission-control together with {plugin_flags[0]}")
    for flag in _PLUGIN_LISTS:
        for plugin in _new_items(before.get(flag), after.get(flag)):
            why = missing("plugin", component, plugin, version)
            if why:
                problems.append(why)
    for name in _new_items(before.get("--tls-cipher-suites"), after.get("--tls-cipher-suites")):
        why = missing("cipher", component, name, version)
        if why:
            problems.append(why)
    old_gates = split_map(before.get("--feature-gates") or "")
    for gate in split_map(after.get("--feature-gates") or ""):
        if gate not in old_gates and (why := missing("gate", component, gate, version)):
            problems.append(why)
    for flag, value in after.values.items():
        if value == before.get(flag) or not names_file(flag) or not value.startswith("/"):
            continue
        why = on_node(flag, value)
        if why:
            problems.append(f"{flag}={value}: {why}")
    return problems


def _new_items(old: str | None, new: str | None) -> list[str]:
    have = set(split_list(old or ""))
    return [i for i in split_list(new or "") if i not in have]


def config_problems(version: Version | None, keys: Iterable[str]) -> list[str]:
    """Why KubeletConfiguration fields a fix sets do not exist in the kubelet's version."""
    return [why for key in keys if (why := missing("config", "kubelet", key, version))]


def companion_problems(
    component: str, version: Version | None, companions: Iterable[CompanionFile]
) -> list[str]:
    """Why companion config files a fix writes use an apiVersion the version does not read."""
    problems = []
    for comp in companions:
        if comp.content is None:
            continue
        api = api_version_of(comp.content.decode("utf-8", "replace"))
        if api and (why := missing("api", component, api, version)):
            problems.append(f"{comp.node_path}: {why}")
    return problems


def known_defaults(
    check: Check, params: Mapping[str, str], given: Mapping[str, str], version: Version | None
) -> dict[str, str]:
    """List parameters left at their defaults, less the names the version does not know (a
    v1.18 API server refuses the TLS 1.3 cipher names the default list holds)."""
    out = dict(params)
    for param in check.remediation.params:
        if param.type != "list" or param.name in given or param.name not in out:
            continue
        items = split_list(out[param.name])
        kept = [i for i in items if not missing("cipher", check.component, i, version)]
        if kept and kept != items:
            out[param.name] = ",".join(kept)
    return out


#: Flags that name the cluster CA certificate, in the order a fix looks for one.
_CA_FLAGS = ("--client-ca-file", "--root-ca-file", "--cluster-signing-cert-file")


def cluster_ca(manifest: Manifest | None) -> str | None:
    """The cluster CA a component's manifest already names (absolute), if any."""
    if manifest is None:
        return None
    for flag in _CA_FLAGS:
        value = manifest.flags.get(flag)
        if value and value.startswith("/"):
            return value
    return None


def etcd_config_file_problem(component: str, before: ParsedArgs, after: ParsedArgs) -> str | None:
    """etcd given --config-file ignores every other flag: a flag edit would change nothing."""
    config = before.get("--config-file") or ("" if "--config-file" in before.unknown else None)
    if component != "etcd" or config is None:
        return None
    changed = [f for f, v in after.values.items() if before.get(f) != v]
    if not changed:
        return None
    return (
        f"etcd reads its settings only from its --config-file {config}".rstrip()
        + f" and ignores {changed[0]}; set the matching key in that file by hand"
    )


def names_file(flag: str) -> bool:
    """Whether a flag's value is a file or directory the component opens at start."""
    return flag.endswith(
        ("-file", "-certfile", "-keyfile", "-cafile", "-certificate", "-key")
    ) or flag in {
        "--kubeconfig",
        "--authentication-kubeconfig",
        "--authorization-kubeconfig",
        "--encryption-provider-config",
        "--authentication-config",
        "--audit-log-path",
        "--kubelet-certificate-authority",
        "--client-ca-file",
    }
