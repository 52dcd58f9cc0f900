"""kubeadm patch files that carry cis-tui's fixes through `kubeadm upgrade --patches DIR`
(`[persist] mode = "patches"`; shared/ref/kubeadm-config.md section 4).

cis-tui owns one file per target in the patches directory, named so that kubeadm applies it
after the admin's own (`~` sorts after letters and digits): `kube-apiserver~cis-tui+json.json`
and the like, RFC 6902 operations that only append (`add .../command/-`, a volume, a mount),
because a JSON patch that replaces by index breaks when kubeadm's argument order changes and a
strategic or merge patch of `command` replaces the whole list. The kubelet's fields go into
`kubeletconfiguration~cis-tui+strategic.yaml`, a strategic merge over the KubeletConfiguration.

The directory is read and written like a ConfigMap (`PatchDirectory`), so the engine backs it
up, writes it, takes it back and recovers it with the code it uses for kubeadm's ConfigMaps.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Any

from cis_tui import safeyaml
from cis_tui.audit.node import parse_manifest
from cis_tui.engine.atomic import AtomicWriteError, atomic_write
from cis_tui.engine.statedir import check_trusted
from cis_tui.errors import UserError
from cis_tui.persist.apiclient import ApiError, ConfigMap, Conflict
from cis_tui.persist.clusterconfig import ConfigEditError, ExtraVolume
from cis_tui.persist.mirror import mirror_manifest
from cis_tui.persist.patchnames import (
    PATCHES,
    POD_TARGETS,
    file_name,
    is_own_file,
)
from cis_tui.persist.regen import to_kubeadm_yaml

_COMMAND = "/spec/containers/0/command/-"
_VOLUMES = "/spec/volumes/-"
_MOUNTS = "/spec/containers/0/volumeMounts/-"
#: A patch file bigger than this is not one cis-tui wrote.
_LIMIT = 1 << 20


# --- the pod patches ---------------------------------------------------------------------------


def _flag_name(op: Mapping[str, Any]) -> str | None:
    value = op.get("value")
    if op.get("path") == _COMMAND and isinstance(value, str) and value.startswith("--"):
        return value[2:].split("=", 1)[0]
    return None


def _item_name(op: Mapping[str, Any]) -> str | None:
    value = op.get("value")
    if op.get("path") in (_VOLUMES, _MOUNTS) and isinstance(value, dict):
        return str(value.get("name", ""))
    return None


def _ops(text: str, what: str) -> list[dict[str, Any]]:
    if not text.strip():
        return []
    try:
        ops = json.loads(text)
    except ValueError as exc:
        raise ConfigEditError(f"{what} is not JSON: {exc}") from None
    if not isinstance(ops, list) or not all(
        isinstance(op, dict)
        and op.get("op") == "add"
        and op.get("path") in (_COMMAND, _VOLUMES, _MOUNTS)
        for op in ops
    ):
        raise ConfigEditError(f"{what} holds operations cis-tui does not write; edit it by hand")
    return ops


def _volume_ops(volume: ExtraVolume) -> list[dict[str, Any]]:
    host_path: dict[str, Any] = {"path": volume.host_path}
    if volume.path_type:
        host_path["type"] = volume.path_type
    mount: dict[str, Any] = {"mountPath": volume.mount_path, "name": volume.name}
    if volume.read_only:
        mount["readOnly"] = True
    return [
        {"op": "add", "path": _VOLUMES, "value": {"hostPath": host_path, "name": volume.name}},
        {"op": "add", "path": _MOUNTS, "value": mount},
    ]


@dataclass(frozen=True)
class PodPatch:
    """What cis-tui's patch for one pod appends, or stops appending."""

    set_args: tuple[tuple[str, str], ...] = ()
    remove_args: tuple[str, ...] = ()
    volumes: tuple[ExtraVolume, ...] = ()

    def edit(self, text: str) -> str:
        return edit_pod_patch(text, self.set_args, self.remove_args, self.volumes)


def edit_pod_patch(
    text: str,
    set_args: Iterable[tuple[str, str]],
    remove_args: Iterable[str] = (),
    volumes: Iterable[ExtraVolume] = (),
) -> str:
    """cis-tui's JSON patch for a pod (`text`, empty when there is none) with each flag in
    `set_args` appended (replacing cis-tui's earlier value), each of `remove_args` no longer
    appended, and each volume with its mount added."""
    ops = _ops(text, "the patch file")
    sets = dict(set_args)
    removed = set(remove_args) | set(sets)
    kept = [op for op in ops if _flag_name(op) not in removed]
    new_volumes = {v.name: v for v in volumes}
    kept = [op for op in kept if _item_name(op) not in new_volumes]
    command = [op for op in kept if op["path"] == _COMMAND]
    others = [op for op in kept if op["path"] != _COMMAND]
    command += [{"op": "add", "path": _COMMAND, "value": f"--{n}={v}"} for n, v in sets.items()]
    for volume in new_volumes.values():
        others += _volume_ops(volume)
    return render_ops(command + others)


def render_ops(ops: Sequence[Mapping[str, Any]]) -> str:
    """One operation per line, as a reviewer reads them; empty when there are none (kubeadm
    ignores an empty patch file)."""
    if not ops:
        return ""
    lines = [json.dumps(dict(op), sort_keys=False) for op in ops]
    return "[\n  " + ",\n  ".join(lines) + "\n]\n"


@dataclass(frozen=True)
class Generated:
    """What kubeadm itself writes into a pod before cis-tui's patch is applied: the flag names
    (defaults, extraArgs, the admin's own patches) and the volume names."""

    args: frozenset[str]
    volumes: frozenset[str]


def pod_patch_for(
    component: str, old_text: str, new_text: str, generated: Generated | None, unknown: str
) -> tuple[PodPatch, list[str]]:
    """The patch that carries a manifest fix from `old_text` to `new_text`, and why parts of it
    cannot be carried (one line each). `generated`: what kubeadm writes into the pod, or None
    when it cannot be known (`unknown` says why)."""
    path = Path(f"/etc/kubernetes/manifests/{component}.yaml")
    before = parse_manifest(old_text, path, component).flags.values
    after = parse_manifest(new_text, path, component).flags.values
    mirror = mirror_manifest(component, old_text, new_text)
    sets: list[tuple[str, str]] = []
    removes: list[str] = []
    reasons = list(mirror.beyond_flags)
    unknown_flags: list[str] = []
    for flag, value in after.items():
        name = flag.removeprefix("--")
        if before.get(flag) == value:
            continue
        if generated is None and flag in before:
            # kubeadm writes a subset of the manifest's flags: one the manifest lacks is not
            # kubeadm's; one it has may be
            unknown_flags.append(flag)
        elif generated is not None and name in generated.args:
            reasons.append(
                f"{flag} is written by kubeadm (a default, extraArgs or another patch): a "
                "patch can only append flags; set it in ClusterConfiguration"
            )
        else:
            sets.append((name, value))
    for flag in before:
        if flag in after:
            continue
        name = flag.removeprefix("--")
        if generated is None:
            unknown_flags.append(flag)
        elif name in generated.args:
            reasons.append(
                f"{flag} is written by kubeadm: a patch cannot remove it reliably; take it out "
                "of ClusterConfiguration"
            )
        else:
            removes.append(name)
    if unknown_flags:
        reasons.append(
            f"{', '.join(unknown_flags)}: whether kubeadm writes "
            f"{'it' if len(unknown_flags) == 1 else 'them'} itself is unknown ({unknown}), and a "
            "patch can only append flags"
        )
    names = generated.volumes if generated is not None else frozenset()
    volumes = tuple(v for v in mirror.volumes if v.name not in names)
    return PodPatch(tuple(sets), tuple(removes), volumes), reasons


# --- the kubelet patch -------------------------------------------------------------------------


def edit_kubelet_patch(text: str, fields: Mapping[str, object]) -> str:
    """cis-tui's strategic merge patch over the KubeletConfiguration with `fields` (dotted
    path -> value) set."""
    data: Any = safeyaml.load(text) if text.strip() else None
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise ConfigEditError("the kubelet patch file is not a mapping")
    data.setdefault("apiVersion", "kubelet.config.k8s.io/v1beta1")
    data.setdefault("kind", "KubeletConfiguration")
    for dotted, value in fields.items():
        node = data
        *parents, leaf = dotted.split(".")  # a key holding dots is a leaf's value (mirror)
        for part in parents:
            child = node.setdefault(part, {})
            if not isinstance(child, dict):
                raise ConfigEditError(f"{part} in the kubelet patch file is not a mapping")
            node = child
        node[leaf] = value
    return to_kubeadm_yaml(data)


# --- the directory as a ConfigMap -------------------------------------------------------------


def sha256_text(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


@dataclass
class PatchDirectory:
    """kubeadm's patches directory read and written like a ConfigMap: `get` gives cis-tui's
    patch files (file name -> text, empty for an absent file), `replace` writes those that
    differ, refusing with Conflict when one changed since `get`. An empty text removes the
    file (kubeadm ignores an empty one anyway)."""

    directory: Path

    def __enter__(self) -> PatchDirectory:
        return self

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    def close(self) -> None:
        pass

    def _trusted(self) -> None:
        try:
            if self.directory.exists():
                check_trusted(self.directory, "patches directory")
        except UserError as exc:
            raise ApiError(str(exc), status=403) from None

    def _read(self, name: str) -> str:
        path = self.directory / name
        try:
            st = path.lstat()
        except FileNotFoundError:
            return ""
        except OSError as exc:
            raise ApiError(f"cannot read {path}: {exc.strerror}", status=500) from None
        if not os.path.isfile(path) or path.is_symlink() or st.st_size > _LIMIT:
            raise ApiError(f"{path} is not a regular file cis-tui wrote; refusing", status=403)
        try:
            return path.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            raise ApiError(f"cannot read {path}: {exc}", status=500) from None

    def get(self, name: str = PATCHES, namespace: str = "") -> ConfigMap:
        self._trusted()
        names = [file_name(t) for t in (*POD_TARGETS, "kubelet")]
        data = {n: self._read(n) for n in names}
        version = sha256_text(json.dumps(data, sort_keys=True))
        return ConfigMap({"metadata": {"name": PATCHES, "resourceVersion": version}, "data": data})

    def replace(self, found: ConfigMap, data: Mapping[str, str]) -> ConfigMap:
        self._trusted()
        changed = {k: v for k, v in data.items() if found.data.get(k, "") != v}
        for name in changed:
            if not is_own_file(name):
                raise ApiError(f"{name} is not a cis-tui patch file; refusing", status=403)
            if self._read(name) != found.data.get(name, ""):
                raise Conflict(f"{self.directory / name} changed since it was read", status=409)
        try:
            if changed and not self.directory.exists():
                self.directory.mkdir(mode=0o755, parents=True)
            for name, text in changed.items():
                path = self.directory / name
                if text:
                    atomic_write(
                        path, text.encode("utf-8"), mode=0o600, uid=os.geteuid(), gid=os.getegid()
                    )
                else:
                    path.unlink(missing_ok=True)
        except (OSError, AtomicWriteError) as exc:
            raise ApiError(f"cannot write {self.directory}: {exc}", status=500) from None
        return self.get()
