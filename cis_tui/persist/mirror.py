"""What a planned fix means for kubeadm's stored configuration (pure: texts in, texts out).

A manifest fix becomes extraArgs and extraVolumes of the component's ClusterConfiguration
section, by kubeadm's own rules (shared/ref/kubeadm-config.md section 2): extraArgs override
kubeadm's default arguments, an extraVolume of a default volume's name replaces it, and what
kubeadm always writes cannot be taken away through the ClusterConfiguration at all. A kubelet
config fix becomes the changed fields of the kubelet-config ConfigMap's KubeletConfiguration.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cis_tui.audit.node import Manifest, VolumeMount, parse_manifest
from cis_tui.persist.clusterconfig import (
    ClusterConfigText,
    ConfigEditError,
    ExtraVolume,
    KubeletConfigText,
)
from cis_tui.remediate import yamltext as yt
from cis_tui.remediate.yamltext import EditError

#: The arguments kubeadm (v1.31+) writes into each static pod by default, conditional ones
#: included (the condition held if the flag is in the manifest). kubeadm-config.md section 2.1.
KUBEADM_DEFAULT_ARGS: dict[str, frozenset[str]] = {
    "kube-apiserver": frozenset(
        {
            "advertise-address",
            "enable-admission-plugins",
            "service-cluster-ip-range",
            "service-account-key-file",
            "service-account-signing-key-file",
            "service-account-issuer",
            "client-ca-file",
            "tls-cert-file",
            "tls-private-key-file",
            "kubelet-client-certificate",
            "kubelet-client-key",
            "enable-bootstrap-token-auth",
            "secure-port",
            "allow-privileged",
            "kubelet-preferred-address-types",
            "requestheader-username-headers",
            "requestheader-group-headers",
            "requestheader-extra-headers-prefix",
            "requestheader-client-ca-file",
            "requestheader-allowed-names",
            "proxy-client-cert-file",
            "proxy-client-key-file",
            "etcd-servers",  # local or external etcd
            "etcd-cafile",
            "etcd-certfile",
            "etcd-keyfile",
            "authorization-mode",  # unless extraArgs hold authorization-config
        }
    ),
    "kube-controller-manager": frozenset(
        {
            "bind-address",
            "leader-elect",
            "kubeconfig",
            "authentication-kubeconfig",
            "authorization-kubeconfig",
            "client-ca-file",
            "requestheader-client-ca-file",
            "root-ca-file",
            "service-account-private-key-file",
            "cluster-signing-cert-file",  # empty with an external CA
            "cluster-signing-key-file",
            "use-service-account-credentials",
            "controllers",
            "allocate-node-cidrs",  # with networking.podSubnet
            "cluster-cidr",
            "service-cluster-ip-range",
            "cluster-name",  # with clusterName
        }
    ),
    "kube-scheduler": frozenset(
        {
            "bind-address",
            "leader-elect",
            "kubeconfig",
            "authentication-kubeconfig",
            "authorization-kubeconfig",
        }
    ),
    "etcd": frozenset(
        {
            "name",
            "listen-client-urls",
            "advertise-client-urls",
            "listen-peer-urls",
            "initial-advertise-peer-urls",
            "data-dir",
            "cert-file",
            "key-file",
            "trusted-ca-file",
            "client-cert-auth",
            "peer-cert-file",
            "peer-key-file",
            "peer-trusted-ca-file",
            "peer-client-cert-auth",
            "snapshot-count",
            "listen-metrics-urls",
            "feature-gates",  # etcd >= 3.6
            "watch-progress-notify-interval",
            "experimental-initial-corrupt-check",  # etcd < 3.6
            "experimental-watch-progress-notify-interval",
            "initial-cluster",
            "initial-cluster-state",  # on join
        }
    ),
}

#: Arguments kubeadm derives from the node's own address or name: one cluster-wide extraArg
#: would give every control-plane node this node's value.
NODE_SPECIFIC_ARGS: dict[str, frozenset[str]] = {
    "kube-apiserver": frozenset({"advertise-address"}),
    "etcd": frozenset(
        {
            "name",
            "listen-client-urls",
            "advertise-client-urls",
            "listen-peer-urls",
            "initial-advertise-peer-urls",
            "initial-cluster",
            "initial-cluster-state",
        }
    ),
}

#: The volumes kubeadm always mounts (kubeadm-config.md section 2.3; the CA directories only
#: where they exist on the host).
KUBEADM_DEFAULT_VOLUMES: dict[str, frozenset[str]] = {
    "kube-apiserver": frozenset(
        {
            "k8s-certs",
            "ca-certs",
            "etc-pki-ca-trust",
            "etc-pki-tls-certs",
            "etc-ca-certificates",
            "usr-share-ca-certificates",
            "usr-local-share-ca-certificates",
        }
    ),
    "kube-controller-manager": frozenset(
        {
            "k8s-certs",
            "ca-certs",
            "etc-pki-ca-trust",
            "etc-pki-tls-certs",
            "etc-ca-certificates",
            "usr-share-ca-certificates",
            "usr-local-share-ca-certificates",
            "kubeconfig",
            "flexvolume-dir",
        }
    ),
    "kube-scheduler": frozenset({"kubeconfig"}),
    "etcd": frozenset({"etcd-data", "etcd-certs"}),
}

_PATCH = "needs a patches file"


@dataclass(frozen=True)
class ManifestMirror:
    """The ClusterConfiguration edits that make a manifest change survive `kubeadm upgrade`."""

    component: str
    set_args: tuple[tuple[str, str], ...]  # (name without --, value) added or changed
    remove_args: tuple[str, ...]  # dropped flags kubeadm does not write: out of extraArgs
    volumes: tuple[ExtraVolume, ...]  # hostPath volumes with their mount, added or changed
    unpersistable: tuple[str, ...]  # why parts of the change cannot be persisted (one line each)
    #: The part of `unpersistable` that is not about flags (volumes, the rest of the pod).
    beyond_flags: tuple[str, ...] = ()


def mirror_manifest(component: str, old_text: str, new_text: str) -> ManifestMirror:
    """The mirror of changing a static pod manifest from `old_text` to `new_text`."""
    path = Path(f"/etc/kubernetes/manifests/{component}.yaml")
    old = parse_manifest(old_text, path, component)
    new = parse_manifest(new_text, path, component)
    set_args, remove_args, reasons = _args(component, old, new)
    volumes, volume_reasons = _volumes(component, old, new)
    other = _other_change(old_text, new_text)
    if other:
        volume_reasons.append(
            f"the change to {other} is outside the command and volumes; it {_PATCH}"
        )
    return ManifestMirror(
        component=component,
        set_args=tuple(set_args),
        remove_args=tuple(remove_args),
        volumes=tuple(volumes),
        unpersistable=tuple(reasons + volume_reasons),
        beyond_flags=tuple(volume_reasons),
    )


def apply_mirrors(config_text: str, mirrors: Sequence[ManifestMirror]) -> str:
    """`config_text` (a ClusterConfiguration) with the mirrors' edits; unchanged when it
    already holds them. ConfigEditError when the text cannot take them."""
    config = ClusterConfigText(config_text)
    for mirror in mirrors:
        for name in mirror.remove_args:
            config.remove_arg(mirror.component, name)
        for name, value in mirror.set_args:
            config.set_arg(mirror.component, name, value)
        for volume in mirror.volumes:
            config.add_volume(mirror.component, volume)
    return config.text()


def mirror_kubelet(old_text: str, new_text: str) -> dict[str, object]:
    """The fields (dotted path -> new value) that `new_text` adds or changes against
    `old_text`, both KubeletConfiguration files. A map whose keys hold dots (evictionHard:
    `memory.available`) is one field."""
    old, new = _kubelet_data(old_text), _kubelet_data(new_text)
    fields: dict[str, object] = {}
    _changed_fields(old, new, "", fields)
    return fields


def apply_kubelet(config_text: str, fields: Mapping[str, object]) -> str:
    """`config_text` (a KubeletConfiguration) with `fields` set (unchanged when it has them)."""
    config = KubeletConfigText(config_text)
    for dotted, value in fields.items():
        config.set(dotted, value)
    return config.text()


# --- flags -------------------------------------------------------------------------------------


def _args(
    component: str, old: Manifest, new: Manifest
) -> tuple[list[tuple[str, str]], list[str], list[str]]:
    before, after = old.flags.values, new.flags.values
    defaults = KUBEADM_DEFAULT_ARGS.get(component, frozenset())
    node_specific = NODE_SPECIFIC_ARGS.get(component, frozenset())
    set_args: list[tuple[str, str]] = []
    remove_args: list[str] = []
    reasons: list[str] = []
    for flag, value in after.items():
        if before.get(flag) == value:
            continue
        name = flag.removeprefix("--")
        if name in node_specific:
            reasons.append(
                f"--{name} is specific to this node: as an extraArg every control-plane node "
                f"would get {value}; it {_PATCH}"
            )
            continue
        set_args.append((name, value))  # kubeadm: extraArgs override its defaults
    for flag in before:
        if flag in after:
            continue
        name = flag.removeprefix("--")
        replaced = name == "authorization-mode" and "--authorization-config" in after
        if name in defaults and not replaced:
            reasons.append(f"kubeadm always writes --{name}; removing it {_PATCH}")
        else:  # in case extraArgs hold it; kubeadm itself does not write it
            remove_args.append(name)
    return set_args, remove_args, reasons


# --- volumes -----------------------------------------------------------------------------------


def _volumes(component: str, old: Manifest, new: Manifest) -> tuple[list[ExtraVolume], list[str]]:
    old_volumes = {v.name: v for v in old.volumes}
    new_names = {v.name for v in new.volumes}
    volumes: list[ExtraVolume] = []
    reasons: list[str] = []
    for volume in new.volumes:
        mounts = _mounts(new, volume.name)
        if old_volumes.get(volume.name) == volume and _mounts(old, volume.name) == mounts:
            continue
        if not mounts:
            continue  # a volume nothing mounts changes nothing in the container
        if component == "etcd":
            reasons.append(f"kubeadm has no extraVolumes for etcd; volume {volume.name} {_PATCH}")
            continue
        if len(mounts) > 1:
            reasons.append(
                f"volume {volume.name} is mounted {len(mounts)} times; extraVolumes hold one "
                f"mount per volume, the others need a patches file"
            )
        mount = mounts[0]
        volumes.append(
            ExtraVolume(
                name=volume.name,
                host_path=volume.path,
                mount_path=mount.mount_path,
                read_only=mount.read_only,
                path_type=volume.type,
            )
        )
    for name in old_volumes:
        if name not in new_names and name in KUBEADM_DEFAULT_VOLUMES.get(component, ()):
            reasons.append(f"kubeadm always mounts volume {name}; removing it {_PATCH}")
    return volumes, reasons


def _mounts(manifest: Manifest, name: str) -> list[VolumeMount]:
    return [m for m in manifest.mounts if m.name == name]


# --- the rest of the pod -----------------------------------------------------------------------


def _other_change(old_text: str, new_text: str) -> str | None:
    """The first place where the pods differ outside what extraArgs and extraVolumes express
    (command, args, volumes, volumeMounts); None when they do not."""
    old, new = _without_mirrored(old_text), _without_mirrored(new_text)
    return _first_difference(old, new, "")


def _without_mirrored(text: str) -> Any:
    data = yt.load(text)
    spec = data.get("spec") if isinstance(data, dict) else None
    if isinstance(spec, dict):
        spec.pop("volumes", None)
        for container in spec.get("containers") or []:
            if isinstance(container, dict):
                for key in ("command", "args", "volumeMounts"):
                    container.pop(key, None)
    return data


def _first_difference(old: Any, new: Any, where: str) -> str | None:
    if isinstance(old, dict) and isinstance(new, dict):
        for key in [*old, *(k for k in new if k not in old)]:
            found = _first_difference(old.get(key), new.get(key), f"{where}.{key}".lstrip("."))
            if found:
                return found
        return None
    if isinstance(old, list) and isinstance(new, list) and len(old) == len(new):
        for i, (a, b) in enumerate(zip(old, new, strict=True)):
            found = _first_difference(a, b, f"{where}[{i}]")
            if found:
                return found
        return None
    return None if yt.same(old, new) else where or "the document"


# --- kubelet -----------------------------------------------------------------------------------


def _kubelet_data(text: str) -> dict[str, Any]:
    try:
        data = yt.load(text)
    except EditError as exc:
        raise ConfigEditError(f"KubeletConfiguration: {exc}") from None
    if not isinstance(data, dict) or data.get("kind") != "KubeletConfiguration":
        raise ConfigEditError("KubeletConfiguration: the file is not a KubeletConfiguration")
    return data


def _changed_fields(old: Any, new: dict[str, Any], prefix: str, out: dict[str, object]) -> None:
    for key, value in new.items():
        dotted = f"{prefix}{key}"
        before = old.get(key) if isinstance(old, dict) else None
        if yt.same(before, value):
            continue
        if isinstance(value, dict) and value and all("." not in str(k) for k in value):
            _changed_fields(before, value, f"{dotted}.", out)
        else:
            out[dotted] = value
