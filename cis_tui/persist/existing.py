"""`cis-tui persist`: put into kubeadm's configuration the settings that already pass on the
node but only in its files (fixes made by hand, or before persistence existed), so that the
next `kubeadm upgrade` keeps them. Nothing on the node changes and nothing restarts."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from cis_tui.audit.evaluate import Result
from cis_tui.audit.node import NodeSnapshot, parse_manifest
from cis_tui.benchmarks.catalog import Check
from cis_tui.persist.changes import (
    CLUSTER_CONFIGURATION,
    KUBELET_CONFIGURATION,
    ConfigMapChange,
    kubelet_fields,
)
from cis_tui.persist.clusterconfig import ConfigEditError, ExtraVolume
from cis_tui.persist.mirror import ManifestMirror, apply_kubelet, apply_mirrors
from cis_tui.persist.patchfiles import PodPatch, edit_kubelet_patch
from cis_tui.persist.patchnames import PATCHES, file_name
from cis_tui.persist.status import Regenerated
from cis_tui.remediate.versioned import names_file

#: The flags each audit type that is not a plain flag test judges.
_EXTRA_FLAGS = {"listeners": ("--bind-address", "--address", "--port", "--secure-port")}


@dataclass(frozen=True)
class PersistPlan:
    """The ConfigMap changes `cis-tui persist` makes, and the checks it cannot persist."""

    changes: tuple[ConfigMapChange, ...]
    checks: tuple[str, ...]
    skipped: tuple[tuple[str, str], ...]  # (check id, why)


def plan_persist(
    snap: NodeSnapshot,
    results: Sequence[Result],
    regen: Regenerated,
    texts: dict[tuple[str, str], str],
    patches_dir: Path | None = None,
) -> PersistPlan:
    """What puts each result's passing setting into kubeadm's configuration; `texts` holds the
    current ClusterConfiguration and kubelet configuration by (ConfigMap, key), or with
    `patches_dir` (mode patches) cis-tui's patch files by (PATCHES, file name)."""
    mirrors: dict[str, ManifestMirror] = {}
    fields: dict[str, object] = {}
    checks: list[str] = []
    skipped: list[tuple[str, str]] = []
    for result in results:
        check = result.check
        if check.component == "kubelet":
            found = _kubelet_fields(check, snap)
            if isinstance(found, str):
                skipped.append((check.id, found))
                continue
            fields.update(found)
        elif check.component in snap.manifests:
            mirror = _mirror(check, snap, regen)
            if isinstance(mirror, str):
                skipped.append((check.id, mirror))
                continue
            mirrors[check.component] = _merge(mirrors.get(check.component), mirror)
        else:
            skipped.append((check.id, "kubeadm does not regenerate what this check judges"))
            continue
        checks.append(check.id)
    if patches_dir is not None:
        changes, more = _as_patches(mirrors, fields, regen, snap, texts, patches_dir)
        return PersistPlan(changes, tuple(checks), tuple(skipped + more))
    changes: list[ConfigMapChange] = []
    where = CLUSTER_CONFIGURATION
    text = texts.get(where)
    for mirror in mirrors.values():
        if text is None:
            break
        try:
            new = apply_mirrors(text, [mirror])
        except ConfigEditError as exc:
            skipped.append((mirror.component, str(exc)))
            continue
        changes.append(ConfigMapChange(where[0], where[1], text, new, mirror=mirror))
        text = new
    kubelet = texts.get(KUBELET_CONFIGURATION)
    if fields and kubelet is not None:
        try:
            new = apply_kubelet(kubelet, fields)
            changes.append(
                ConfigMapChange(
                    *KUBELET_CONFIGURATION, kubelet, new, kubelet_fields=kubelet_fields(fields)
                )
            )
        except ConfigEditError as exc:
            skipped.append(("kubelet", str(exc)))
    return PersistPlan(tuple(changes), tuple(checks), tuple(skipped))


def _as_patches(
    mirrors: dict[str, ManifestMirror],
    fields: dict[str, object],
    regen: Regenerated,
    snap: NodeSnapshot,
    texts: dict[tuple[str, str], str],
    patches_dir: Path,
) -> tuple[tuple[ConfigMapChange, ...], list[tuple[str, str]]]:
    """The same settings as cis-tui's kubeadm patch files: a flag kubeadm writes itself (with
    another value, or the check would be kept already) cannot be appended, and is skipped."""
    changes: list[ConfigMapChange] = []
    skipped: list[tuple[str, str]] = []
    for component, mirror in mirrors.items():
        regenerated = regen.manifests.get(component)
        path = snap.manifests[component].path
        kubeadm = parse_manifest(regenerated, path, component) if regenerated else None
        written = kubeadm.flags.values if kubeadm is not None else {}
        sets = []
        for name, value in mirror.set_args:
            if f"--{name}" in written:
                skipped.append(
                    (component, f"--{name} is written by kubeadm: a patch can only append flags")
                )
            else:
                sets.append((name, value))
        names = {v.name for v in kubeadm.volumes} if kubeadm is not None else set()
        volumes = tuple(v for v in mirror.volumes if v.name not in names)
        if not sets and not volumes:
            continue
        key = file_name(component)
        old = texts.get((PATCHES, key), "")
        patch = PodPatch(tuple(sets), (), volumes)
        try:
            new = patch.edit(old)
        except ConfigEditError as exc:
            skipped.append((component, str(exc)))
            continue
        changes.append(
            ConfigMapChange(PATCHES, key, old, new, directory=patches_dir, pod_patch=patch)
        )
    if fields:
        key = file_name("kubelet")
        old = texts.get((PATCHES, key), "")
        try:
            new = edit_kubelet_patch(old, fields)
        except ConfigEditError as exc:
            skipped.append(("kubelet", str(exc)))
        else:
            changes.append(
                ConfigMapChange(
                    PATCHES,
                    key,
                    old,
                    new,
                    kubelet_fields=kubelet_fields(fields),
                    directory=patches_dir,
                )
            )
    return tuple(changes), skipped


def _flags(check: Check) -> list[str]:
    return [t.flag for t in check.audit.tests] + list(_EXTRA_FLAGS.get(check.audit.type, ()))


def _mirror(check: Check, snap: NodeSnapshot, regen: Regenerated) -> ManifestMirror | str:
    component = check.component
    manifest = snap.manifests[component]
    values = manifest.flags.values
    set_args = []
    for flag in _flags(check):
        if flag in values:
            set_args.append((flag.removeprefix("--"), values[flag]))
    if not set_args:
        return "it passes because its flag is absent, and kubeadm writes that flag: needs a patch"
    regenerated = regen.manifests.get(component)
    kubeadm = parse_manifest(regenerated, manifest.path, component) if regenerated else None
    volumes = []
    for name, value in set_args:
        if not names_file(f"--{name}") or not value.startswith("/"):
            continue
        if kubeadm is not None and kubeadm.host_path_of(value) is not None:
            continue  # kubeadm mounts it already
        volume = _volume_for(manifest.volumes, manifest.mounts, value)
        if volume is None:
            return f"{value} is not mounted from the host in {manifest.path.name}"
        volumes.append(volume)
    return ManifestMirror(component, tuple(set_args), (), tuple(volumes), ())


def _volume_for(volumes, mounts, path: str) -> ExtraVolume | None:  # noqa: ANN001
    by_name = {v.name: v for v in volumes}
    best = None
    for mount in mounts:
        volume = by_name.get(mount.name)
        mounted = Path(mount.mount_path)
        if volume is None or not Path(path).is_relative_to(mounted):
            continue
        if best is None or len(mounted.parts) > len(Path(best.mount_path).parts):
            best = ExtraVolume(
                mount.name, volume.path, mount.mount_path, mount.read_only, volume.type
            )
    return best


def _merge(old: ManifestMirror | None, new: ManifestMirror) -> ManifestMirror:
    if old is None:
        return new
    args = dict(old.set_args) | dict(new.set_args)
    volumes = {v.name: v for v in (*old.volumes, *new.volumes)}
    return ManifestMirror(new.component, tuple(args.items()), (), tuple(volumes.values()), ())


def _kubelet_fields(check: Check, snap: NodeSnapshot) -> dict[str, object] | str:
    config = snap.kubelet_config or {}
    found: dict[str, object] = {}
    for test in check.audit.tests:
        if test.config:
            value = _raw(config, test.config)
            if value is not None:
                found[test.config] = value
    if not found:
        if not config:
            return "no kubelet config file to read its setting from"
        return "it passes on a command-line flag or a default, not in the kubelet config file"
    return found


def _raw(config: dict, dotted: str) -> object | None:
    node: object = config
    for part in dotted.split("."):
        if not isinstance(node, dict) or part not in node:
            return None
        node = node[part]
    return node
