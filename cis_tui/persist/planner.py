"""Attach to a plan the kubeadm configuration changes that make each fix survive `kubeadm
upgrade` (issue 14): `kubeadm upgrade` rebuilds the static pod manifests from the
ClusterConfiguration in kube-system/kubeadm-config and the kubelet's config file from
kube-system/kubelet-config, so a fix that lives only in the node's files is undone by it.

Which mode applies: `[persist] mode` (default `auto`: kubeadm-config on a kubeadm node, whose
admin.conf reaches the API server; off under `--root` or without admin.conf, and said so;
`patches`: cis-tui's kubeadm patch files in `[persist] patches_dir`, cis_tui.persist.patchfiles).
"""

from __future__ import annotations

import shutil
import tempfile
from dataclasses import dataclass, replace
from pathlib import Path

from cis_tui.audit.node import InputError, parse_manifest
from cis_tui.errors import UserError
from cis_tui.layout import Settings
from cis_tui.persist.apiclient import (
    ApiError,
    ClusterAccess,
    ConfigMapClient,
    ConfigStore,
    read_kubeconfig,
)
from cis_tui.persist.changes import (
    CLUSTER_CONFIGURATION,
    KUBELET_CONFIGURATION,
    NAMESPACE,
    ConfigMapChange,
    kubelet_fields,
)
from cis_tui.persist.clusterconfig import ConfigEditError
from cis_tui.persist.mirror import apply_kubelet, apply_mirrors, mirror_kubelet, mirror_manifest
from cis_tui.persist.patchfiles import Generated, PatchDirectory, pod_patch_for
from cis_tui.persist.patchnames import PATCHES, file_name, is_own_file
from cis_tui.persist.regen import NodeInputs, RegenError, render_pods
from cis_tui.remediate.plan import FilePlan, Plan

KUBEADM_CONFIG = "kubeadm-config"
PATCH_FILES = "patches"
OFF = "off"
UPGRADE_REVERTS = "kubeadm upgrade will revert this"


@dataclass(frozen=True)
class Persistence:
    """How a plan's fixes are made permanent, and why."""

    mode: str  # kubeadm-config | patches | off
    reason: str  # why this mode: shown with the plan
    access: ClusterAccess | None = None
    patches_dir: Path | None = None  # mode patches: where cis-tui's patch files go
    #: A kubeadm node whose configuration could not be read or written: every fix it makes is
    #: reported not persisted and the command exits 1.
    failed: str = ""

    def short(self) -> str:
        """One sentence for the wizard's plan summary."""
        if self.failed:
            return f"NOT persisted ({self.failed}): {UPGRADE_REVERTS}."
        if self.mode == OFF:
            return f"Not persisted ({self.reason}): kubeadm upgrade reverts these fixes."
        if self.mode == PATCH_FILES:
            return f"Persisted in kubeadm patch files: {self.upgrade_hint()}."
        return f"Persisted in {self.reason.split(' via ', 1)[0]}."

    def upgrade_hint(self) -> str:
        """Patch files count only when kubeadm is told where they are, every time."""
        return f"run every kubeadm upgrade with --patches {self.patches_dir}"

    def describe(self) -> str:
        if self.failed:
            return f"Persistence: not possible: {self.failed}; {UPGRADE_REVERTS}"
        if self.mode == OFF:
            return f"Persistence: off ({self.reason}); {UPGRADE_REVERTS}"
        if self.mode == PATCH_FILES:
            return f"Persistence: patches ({self.reason}); {self.upgrade_hint()}"
        return f"Persistence: {self.mode} ({self.reason})"


def open_store(persistence: Persistence, change: ConfigMapChange) -> ConfigStore:
    """Where `change` is written: the API server, or the patches directory."""
    if change.directory is not None:
        return PatchDirectory(change.directory)
    if persistence.access is None:
        raise UserError(f"cannot write {change.label}: {persistence.failed or persistence.reason}")
    return ConfigMapClient(persistence.access)


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
    if mode == PATCH_FILES:
        directory = settings.persist.patches_dir
        access = None
        if path.exists():  # optional: to learn which flags kubeadm writes itself
            try:
                access = read_kubeconfig(path)
            except UserError:
                access = None
        return Persistence(PATCH_FILES, f"cis-tui's files in {directory}", access, directory)
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
    if persistence.mode == PATCH_FILES:
        return _attach_patches(plan, persistence)
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


def _attach_patches(plan: Plan, persistence: Persistence) -> Plan:
    """Mode patches: each fix as cis-tui's patch files carry it (cumulative, in plan order)."""
    directory = persistence.patches_dir
    assert directory is not None
    try:
        with PatchDirectory(directory) as patches:
            texts = dict(patches.get().data)
    except ApiError as exc:
        failed = f"cannot read the patches directory: {exc}"
        return replace(plan, persistence=replace(persistence, failed=failed))
    generated, unknown = _kubeadm_writes(persistence, directory)
    files: list[FilePlan] = []
    for file in plan.files:
        if file.old_text is None or file.new_text is None:
            files.append(file)
            continue
        if file.kind == "manifest":
            key = file_name(file.component)
            try:
                patch, reasons = pod_patch_for(
                    file.component,
                    file.old_text,
                    file.new_text,
                    generated.get(file.component) if generated is not None else None,
                    unknown,
                )
            except InputError as exc:
                reasons, patch = [str(exc)], None
            notes = tuple(f"not persisted: {why}; {UPGRADE_REVERTS}" for why in reasons)
            if patch is None or not (patch.set_args or patch.remove_args or patch.volumes):
                files.append(replace(file, notes=file.notes + notes))
                continue
            change = ConfigMapChange(
                PATCHES, key, texts[key], "", directory=directory, pod_patch=patch
            )
        elif file.kind == "kubelet-config":
            fields = mirror_kubelet(file.old_text, file.new_text)
            if not fields:
                files.append(file)
                continue
            key, notes = file_name("kubelet"), ()
            change = ConfigMapChange(
                PATCHES,
                key,
                texts[key],
                "",
                kubelet_fields=kubelet_fields(fields),
                directory=directory,
            )
        else:
            files.append(file)
            continue
        try:
            new = change.edit(texts[key])
        except ConfigEditError as exc:
            why = f"not persisted: {change.label}: {exc}; {UPGRADE_REVERTS}"
            files.append(replace(file, notes=(*file.notes, *notes, why)))
            continue
        texts[key] = new
        files.append(replace(file, persist=replace(change, new_text=new), notes=file.notes + notes))
    return replace(plan, files=tuple(files), persistence=persistence)


def _kubeadm_writes(
    persistence: Persistence, directory: Path
) -> tuple[dict[str, Generated] | None, str]:
    """What kubeadm writes into each pod before cis-tui's patches (its ClusterConfiguration,
    read from the API server, and the admin's own patch files), or None and why not."""
    if persistence.access is None:
        return None, "no admin kubeconfig to read ClusterConfiguration with"
    try:
        with ConfigMapClient(persistence.access) as client:
            found = client.get(CLUSTER_CONFIGURATION[0], NAMESPACE)
    except ApiError as exc:
        return None, f"cannot read ClusterConfiguration: {exc}"
    text = found.data.get(CLUSTER_CONFIGURATION[1], "")
    inputs = NodeInputs(node_name="node", advertise_address="127.0.0.1")
    with tempfile.TemporaryDirectory(prefix="cis-tui-patches-") as tmp:
        theirs = None
        if directory.is_dir():
            theirs = Path(tmp)
            for path in directory.iterdir():
                if path.is_file() and not path.is_symlink() and not is_own_file(path.name):
                    shutil.copyfile(path, theirs / path.name)
        try:
            pods = render_pods(text, inputs, "base-sorted", theirs)
        except (RegenError, ValueError) as exc:
            return None, f"cannot regenerate kubeadm's manifests: {exc}"
    generated = {}
    for component, manifest_text in pods.items():
        path = Path(f"/etc/kubernetes/manifests/{component}.yaml")
        try:
            manifest = parse_manifest(manifest_text, path, component)
        except InputError as exc:
            return None, str(exc)
        args = frozenset(flag.removeprefix("--") for flag in manifest.flags.values)
        generated[component] = Generated(args, frozenset(v.name for v in manifest.volumes))
    return generated, ""


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


def stored_at(settings: Settings, name: str, label: str) -> tuple[ConfigStore, str]:
    """The store and data key a `configmap` backup (`name`: its component, `label`: its path)
    was taken from; UserError when it cannot be reached, or names a patch file outside
    `[persist] patches_dir`."""
    if name == PATCHES:
        path = Path(label)
        if path.parent != settings.persist.patches_dir or not is_own_file(path.name):
            raise UserError(
                f"{label} is not a cis-tui patch file in [persist] patches_dir "
                f"({settings.persist.patches_dir}); refusing"
            )
        return PatchDirectory(path.parent), path.name
    persistence = decide(settings)
    if persistence.access is None:
        why = persistence.failed or persistence.reason
        raise UserError(f"cannot reach the API server for {label}: {why}")
    return ConfigMapClient(persistence.access), label.rsplit(" ", 1)[-1]


def current_configmap_text(settings: Settings, name: str, label: str) -> str:
    """The text a `configmap` backup's data key holds now (UserError when it cannot be read)."""
    store, key = stored_at(settings, name, label)
    try:
        with store:
            return store.get(name, NAMESPACE).data.get(key, "")
    except ApiError as exc:
        raise UserError(f"cannot read {label}: {exc}") from None
