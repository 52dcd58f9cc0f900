"""Whether each passing check would still pass after the next `kubeadm upgrade` (issue 14
item 4): the node's manifests and kubelet config as kubeadm would regenerate them from its
stored configuration (cis_tui.persist.regen), judged like the node itself.

`True`: the setting is in kubeadm's configuration (or is kubeadm's own default); `False`:
`kubeadm upgrade` reverts it; no entry (`null`): it cannot be known (no API server to ask, as
under `--root`, or a check on a file kubeadm does not regenerate).
"""

from __future__ import annotations

import copy
import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from cis_tui.audit.evaluate import Result, Status, evaluate
from cis_tui.audit.node import InputError, NodeSnapshot, load_yaml_document, parse_manifest
from cis_tui.benchmarks.catalog import Catalog
from cis_tui.errors import UserError
from cis_tui.layout import STATIC_COMPONENTS, Settings
from cis_tui.persist.apiclient import ApiError, ClusterAccess, ConfigMapClient, read_kubeconfig
from cis_tui.persist.changes import CLUSTER_CONFIGURATION, KUBELET_CONFIGURATION, NAMESPACE
from cis_tui.persist.planner import kubeconfig_path
from cis_tui.persist.regen import (
    NodeInputs,
    RegenError,
    era_for,
    render_kubelet_config,
    render_pods,
)

#: The mode kubeadm writes each regenerated file with (kubeadm-config.md sections 2.4 and 3).
REGENERATED_MODES = {"manifest": 0o600, "kubelet-config": 0o644}
_ENDPOINT = re.compile(r"kube-apiserver\.advertise-address\.endpoint:\s*\"?([^\"\s]+):(\d+)")


@dataclass(frozen=True)
class Regenerated:
    """What `kubeadm upgrade` would write: manifest texts by component, the kubelet config."""

    manifests: dict[str, str]
    kubelet_config: dict | None


def read_access(settings: Settings) -> ClusterAccess | None:
    """The admin credentials to read kubeadm's configuration with (None: there are none)."""
    if settings.has_root_override:
        return None
    path = kubeconfig_path(settings)
    if not path.exists():
        return None
    try:
        return read_kubeconfig(path)
    except UserError:
        return None


def regenerate(snap: NodeSnapshot, access: ClusterAccess) -> Regenerated | None:
    """The node as the next `kubeadm upgrade` would rewrite it (None: it cannot be known)."""
    try:
        with ConfigMapClient(access) as client:
            cluster = client.get(CLUSTER_CONFIGURATION[0], NAMESPACE).data
            try:
                kubelet = client.get(KUBELET_CONFIGURATION[0], NAMESPACE).data
            except ApiError:
                kubelet = {}
    except ApiError:
        return None
    text = cluster.get(CLUSTER_CONFIGURATION[1])
    if not text:
        return None
    version = snap.versions.of("kube-apiserver")
    era = era_for(str(version)) if version is not None else "base-sorted"
    patches = snap.settings.persist.patches_dir
    try:
        manifests = render_pods(text, _inputs(snap), era, patches if patches.is_dir() else None)
        config = None
        if kubelet.get(KUBELET_CONFIGURATION[1]):
            rendered = render_kubelet_config(
                kubelet[KUBELET_CONFIGURATION[1]],
                patches if patches.is_dir() else None,
                cluster_config_text=text,
            )
            config = load_yaml_document(rendered, Path("kubelet-config"), "kubelet config")
    except (RegenError, InputError, ValueError):
        return None
    return Regenerated(manifests, config if isinstance(config, dict) else None)


def _inputs(snap: NodeSnapshot) -> NodeInputs:
    """The node facts kubeadm reads besides its configuration (the API server's endpoint
    annotation, etcd's member name); they decide no CIS setting."""
    address, port, name = "127.0.0.1", 6443, "node"
    apiserver = snap.manifests.get("kube-apiserver")
    if apiserver is not None:
        try:
            m = _ENDPOINT.search(apiserver.path.read_text(encoding="utf-8"))
        except OSError:
            m = None
        if m:
            address, port = m[1], int(m[2])
    etcd = snap.manifests.get("etcd")
    if etcd is not None and etcd.flags.get("--name"):
        name = str(etcd.flags.get("--name"))
    return NodeInputs(node_name=name, advertise_address=address, bind_port=port)


def persisted(
    snap: NodeSnapshot, catalog: Catalog, results: Sequence[Result], settings: Settings
) -> dict[str, bool]:
    """check id -> whether its pass survives `kubeadm upgrade`, for the passing checks that
    can be known."""
    access = read_access(settings)
    if access is None:
        return {}
    regen = regenerate(snap, access)
    if regen is None:
        return {}
    after = copy.copy(snap)
    after.manifests = dict(snap.manifests)
    for component, text in regen.manifests.items():
        if component in snap.manifests and component in STATIC_COMPONENTS:
            path = snap.manifests[component].path
            after.manifests[component] = parse_manifest(text, path, component)
    if regen.kubelet_config is not None:
        after.kubelet_config = regen.kubelet_config
    after.processes = {}  # what the files say once kubeadm rewrote them
    after.live = False
    passing = [r for r in results if r.status is Status.PASS]
    judged = {r.id: r for r in evaluate(catalog, after, [r.id for r in passing])}
    out: dict[str, bool] = {}
    for result in passing:
        audit = result.check.audit
        if audit.type in {"file-mode", "file-owner"}:
            kind = _regenerated_kind(audit.target or "")
            if kind is None:
                continue
            if audit.type == "file-mode":
                assert audit.max_mode is not None
                out[result.id] = not REGENERATED_MODES[kind] & ~audit.max_mode
            else:
                out[result.id] = audit.owner == "root:root"
            continue
        if result.check.component not in (*STATIC_COMPONENTS, "kubelet"):
            continue
        if result.check.component == "kubelet" and regen.kubelet_config is None:
            continue
        out[result.id] = judged[result.id].status is Status.PASS
    return out


def _regenerated_kind(target: str) -> str | None:
    if target.endswith("-manifest"):
        return "manifest"
    if target == "kubelet-config":
        return "kubelet-config"
    return None
