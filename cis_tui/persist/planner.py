"""Attach to a plan the kubeadm configuration changes that make each fix survive `kubeadm
upgrade` (issue 14): `kubeadm upgrade` rebuilds the static pod manifests from the
ClusterConfiguration in kube-system/kubeadm-config and the kubelet's config file from
kube-system/kubelet-config, so a fix that lives only in the node's files is undone by it.

Which mode applies: `[persist] mode` (default `auto`: kubeadm-config on a kubeadm node, whose
admin.conf reaches the API server; off under `--root` or without admin.conf, and said so).
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path

from cis_tui.audit.node import InputError
from cis_tui.errors import UserError
from cis_tui.layout import Settings
from cis_tui.persist.apiclient import ApiError, ClusterAccess, ConfigMapClient, read_kubeconfig
from cis_tui.persist.changes import (
    CLUSTER_CONFIGURATION,
    KUBELET_CONFIGURATION,
    NAMESPACE,
    ConfigMapChange,
    kubelet_fields,
)
from cis_tui.persist.clusterconfig import ConfigEditError
from cis_tui.persist.mirror import apply_kubelet, apply_mirrors, mirror_kubelet, mirror_manifest
from cis_tui.remediate.plan import FilePlan, Plan

KUBEADM_CONFIG = "kubeadm-config"
OFF = "off"
UPGRADE_REVERTS = "kubeadm upgrade will revert this"


@dataclass(frozen=True)
class Persistence:
    """How a plan's fixes are made permanent, and why."""

    mode: str  # kubeadm-config | off
    reason: str  # why this mode: shown with the plan
    access: ClusterAccess | None = None
    #: A kubeadm node whose configuration could not be read or written: every fix it makes is
    #: reported not persisted and the command exits 1.
    failed: str = ""

    def short(self) -> str:
        """One sentence for the wizard's plan summary."""
        if self.failed:
            return f"NOT persisted ({self.failed}): {UPGRADE_REVERTS}."
        if self.mode == OFF:
            return f"Not persisted ({self.reason}): kubeadm upgrade reverts these fixes."
        return f"Persisted in {self.reason.split(' via ', 1)[0]}."

    def describe(self) -> str:
        if self.failed:
            return f"Persistence: not possible: {self.failed}; {UPGRADE_REVERTS}"
        if self.mode == OFF:
            return f"Persistence: off ({self.reason}); {UPGRADE_REVERTS}"
        return f"Persistence: {self.mode} ({self.reason})"


def kubeconfig_path(settings: Settings) -> Path:
    return settings.persist.kubeconfig or settings.layout.admin_conf


def decide(settings: Settings) -> Persistence:
    """The mode for this node, before anything is read from the API server."""
    mode = settings.persist.mode
    if mode == OFF:
        where = f" in {settings.config_path}" if settings.config_path else ""
        return Persistence(OFF, f"[persist] mode = off{where}")
    if settings.has_root_override:
        return Persistence(OFF, "a --root tree has no API server")
    path = kubeconfig_path(settings)
    if not path.exists():
        if mode == "auto":
            return Persistence(OFF, f"no {path}: not a kubeadm control-plane node")
        raise UserError("[persist] mode = kubeadm-config needs this kubeconfig", path)
    try:
        access = read_kubeconfig(path)
    except UserError as exc:
        return Persistence(KUBEADM_CONFIG, "", failed=str(exc))
    return Persistence(KUBEADM_CONFIG, f"kube-system/kubeadm-config via {path}", access)


def attach_persistence(plan: Plan, settings: Settings) -> Plan:
    """The plan with each file's ConfigMap change (cumulative, in plan order) and the mode."""
    persistence = decide(settings)
    if persistence.mode == OFF or persistence.failed or not plan.files:
        return replace(plan, persistence=persistence)
    assert persistence.access is not None
    texts: dict[tuple[str, str], str] = {}
    files: list[FilePlan] = []
    try:
        with ConfigMapClient(persistence.access) as client:
            for file in plan.files:
                files.append(_with_change(file, client, texts))
    except ApiError as exc:
        failed = replace(persistence, failed=f"cannot read the kubeadm configuration: {exc}")
        return replace(plan, persistence=failed)
    found = texts.get(CLUSTER_CONFIGURATION)
    reason = persistence.reason
    if found is not None:
        reason += f", {_api_version(found)}"
    return replace(plan, files=tuple(files), persistence=replace(persistence, reason=reason))


def _with_change(
    file: FilePlan, client: ConfigMapClient, texts: dict[tuple[str, str], str]
) -> FilePlan:
    if file.old_text is None or file.new_text is None:
        return file  # attributes: kubeadm does not store modes
    if file.kind == "manifest":
        where = CLUSTER_CONFIGURATION
        try:
            mirror = mirror_manifest(file.component, file.old_text, file.new_text)
        except InputError as exc:
            return replace(file, notes=(*file.notes, f"not persisted: {exc}; {UPGRADE_REVERTS}"))
        notes = tuple(f"not persisted: {why}; {UPGRADE_REVERTS}" for why in mirror.unpersistable)
        if not (mirror.set_args or mirror.remove_args or mirror.volumes):
            return replace(file, notes=file.notes + notes)
        old = _text(client, where, texts)
        try:
            new = apply_mirrors(old, [mirror])
        except ConfigEditError as exc:
            why = f"not persisted: {where[0]} {where[1]}: {exc}; {UPGRADE_REVERTS}"
            return replace(file, notes=(*file.notes, *notes, why))
        change = ConfigMapChange(where[0], where[1], old, new, mirror=mirror)
    elif file.kind == "kubelet-config":
        where = KUBELET_CONFIGURATION
        fields = mirror_kubelet(file.old_text, file.new_text)
        if not fields:
            return file
        notes = ()
        old = _text(client, where, texts)
        try:
            new = apply_kubelet(old, fields)
        except ConfigEditError as exc:
            why = f"not persisted: {where[0]} {where[1]}: {exc}; {UPGRADE_REVERTS}"
            return replace(file, notes=(*file.notes, why))
        change = ConfigMapChange(
            where[0], where[1], old, new, kubelet_fields=kubelet_fields(fields)
        )
    else:
        return file
    texts[where] = new
    return replace(file, persist=change, notes=file.notes + notes)


def _text(
    client: ConfigMapClient, where: tuple[str, str], texts: dict[tuple[str, str], str]
) -> str:
    if where not in texts:
        found = client.get(where[0], NAMESPACE)
        if where[1] not in found.data:
            raise ApiError(f"{NAMESPACE}/{where[0]} has no {where[1]} key", status=None)
        texts[where] = found.data[where[1]]
    return texts[where]


def _api_version(text: str) -> str:
    for line in text.splitlines():
        if line.startswith("apiVersion:"):
            return line.split(":", 1)[1].strip()
    return "apiVersion unknown"


def current_configmap_text(settings: Settings, name: str, label: str) -> str:
    """The text a `configmap` backup's data key holds now (UserError when it cannot be read)."""
    persistence = decide(settings)
    if persistence.access is None:
        why = persistence.failed or persistence.reason
        raise UserError(f"cannot read {label} from the API server: {why}")
    key = label.rsplit(" ", 1)[-1]
    try:
        with ConfigMapClient(persistence.access) as client:
            return client.get(name, NAMESPACE).data.get(key, "")
    except ApiError as exc:
        raise UserError(f"cannot read {label}: {exc}") from None
