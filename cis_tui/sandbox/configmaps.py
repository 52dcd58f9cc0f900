"""The sandbox's kube-system/kubeadm-config and kube-system/kubelet-config: the file the API
server stand-in serves them from, and what `sandbox create` seeds into it.

The store is one JSON file, `paths.apiserver_store` (DIR/apiserver/configmaps.json):

    {"revision": 7, "configmaps": {"kube-system/kubeadm-config": {<a v1 ConfigMap>}, ...}}

Each object is what a GET returns: metadata with uid, creationTimestamp, managedFields and
resourceVersion, the store's revision at its last write as a string (like etcd's revision
behind a real server). Writers hold an fcntl lock on a sibling lock file and replace the file
atomically, so readers never lock and the stand-in and tests can share it.

Seeding stores what `kubeadm init` uploads for this node (../shared/ref/kubeadm-config.md §1,
§3): a ClusterConfiguration in kubeadm's layout (sorted keys, block style, Go's quoting) whose
values come from the node's own manifests, in v1beta4 (kubeadm v1.31+) or v1beta3; and the
kubelet's config file, signed with kubeadm's component-config hash. A scenario's node was
configured that way at init: every flag it sets beyond what kubeadm writes is an extraArg,
every volume it adds an extraVolume, so a `kubeadm upgrade` of an untouched sandbox keeps it
as it is. Flags a scenario removes cannot be expressed and are left out. Stdlib-only at import:
the API server stand-in imports the store.
"""

from __future__ import annotations

import contextlib
import copy
import fcntl
import hashlib
import json
import os
import re
import tempfile
import time
import uuid
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

from cis_tui.sandbox.paths import SandboxPaths

NAMESPACE = "kube-system"
KUBEADM_CONFIG = "kubeadm-config"
KUBELET_CONFIG = "kubelet-config"
KUBEADM_CONFIG_VERSIONS: tuple[str, ...] = ("v1beta4", "v1beta3")
HASH_ANNOTATION = "kubeadm.kubernetes.io/component-config.hash"
CONFLICT = (
    'Operation cannot be fulfilled on configmaps "{name}": the object has been modified; '
    "please apply your changes to the latest version and try again"
)
#: ClusterConfiguration section of each static pod (etcd's extraArgs live under etcd.local).
SECTIONS: Mapping[str, str] = {
    "kube-apiserver": "apiServer",
    "kube-controller-manager": "controllerManager",
    "kube-scheduler": "scheduler",
}


class StoreError(Exception):
    """The ConfigMap store cannot do what was asked; the message is the API server's."""


class NotFound(StoreError):
    def __init__(self, name: str) -> None:
        super().__init__(f'configmaps "{name}" not found')


class Conflict(StoreError):
    """The object changed since the resourceVersion the writer sent."""

    def __init__(self, name: str) -> None:
        super().__init__(CONFLICT.format(name=name))


class Invalid(StoreError):
    """The object sent is not a ConfigMap this store can hold."""


# -- the store ----------------------------------------------------------------------------
def read_configmap(paths: SandboxPaths, namespace: str, name: str) -> dict[str, Any] | None:
    """The stored ConfigMap (a copy), or None."""
    found = _load(paths.apiserver_store)["configmaps"].get(f"{namespace}/{name}")
    return copy.deepcopy(found) if found is not None else None


def write_configmap(
    paths: SandboxPaths, obj: Mapping[str, Any], *, manager: str = "kubeadm"
) -> dict[str, Any]:
    """Create or overwrite a ConfigMap without conditions (kubeadm's create-or-update at init);
    the stored object with its new resourceVersion."""
    with _locked(paths) as state:
        meta = _metadata(obj)
        old = state["configmaps"].get(f"{meta['namespace']}/{meta['name']}")
        return _store(state, obj, old, manager)


def replace_configmap(
    paths: SandboxPaths, obj: Mapping[str, Any], *, manager: str = "unknown", dry_run: bool = False
) -> dict[str, Any]:
    """PUT semantics: replace an existing ConfigMap if `metadata.resourceVersion` is the
    stored one (Conflict if not; without one the update is unconditional, as ConfigMaps
    allow). An update that changes nothing keeps the resourceVersion, as a real server does."""
    with _locked(paths, write=not dry_run) as state:
        meta = _metadata(obj)
        old = state["configmaps"].get(f"{meta['namespace']}/{meta['name']}")
        if old is None:
            raise NotFound(meta["name"])
        sent = meta.get("resourceVersion")
        if sent and sent != old["metadata"]["resourceVersion"]:
            raise Conflict(meta["name"])
        if old.get("immutable") and any(obj.get(k) != old.get(k) for k in ("data", "binaryData")):
            raise Invalid(
                f'ConfigMap "{meta["name"]}" is invalid: data: Forbidden: field is immutable '
                "when `immutable` is set"
            )
        if all(obj.get(k) == old.get(k) for k in ("data", "binaryData")) and all(
            meta.get(k) == old["metadata"].get(k) for k in ("labels", "annotations")
        ):
            return copy.deepcopy(old)
        if dry_run:
            return _build(obj, old, manager, str(state["revision"] + 1))
        return _store(state, obj, old, manager)


def _metadata(obj: Mapping[str, Any]) -> dict[str, Any]:
    meta = obj.get("metadata")
    if obj.get("kind", "ConfigMap") != "ConfigMap" or obj.get("apiVersion", "v1") != "v1":
        raise Invalid("the object is not a v1 ConfigMap")
    if not isinstance(meta, dict) or not isinstance(meta.get("name"), str) or not meta["name"]:
        raise Invalid("metadata.name: Required value: name is required")
    name = meta["name"]
    for key in ("data", "binaryData"):
        values = obj.get(key) or {}
        if not isinstance(values, dict) or not all(
            isinstance(k, str) and isinstance(v, str) for k, v in values.items()
        ):
            raise Invalid(f'ConfigMap "{name}" is invalid: {key}: values must be strings')
    return {"namespace": "default", **meta}


def _now() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())


def _build(
    obj: Mapping[str, Any], old: Mapping[str, Any] | None, manager: str, revision: str
) -> dict[str, Any]:
    """The object as stored: the client's fields, the server's identity and bookkeeping."""
    meta = _metadata(obj)
    now = _now()
    kept = (
        old["metadata"] if old is not None else {"uid": str(uuid.uuid4()), "creationTimestamp": now}
    )
    fields = [
        e
        for e in (old or {}).get("metadata", {}).get("managedFields", [])
        if e.get("manager") != manager
    ]
    fields.append(
        {
            "manager": manager,
            "operation": "Update",
            "apiVersion": "v1",
            "time": now,
            "fieldsType": "FieldsV1",
            "fieldsV1": {"f:data": {f"f:{key}": {} for key in obj.get("data") or {}}},
        }
    )
    metadata: dict[str, Any] = {
        "name": meta["name"],
        "namespace": meta["namespace"],
        "uid": kept["uid"],
        "resourceVersion": revision,
        "creationTimestamp": kept["creationTimestamp"],
    }
    for key in ("labels", "annotations"):
        if meta.get(key):
            metadata[key] = dict(meta[key])
    metadata["managedFields"] = fields
    stored: dict[str, Any] = {"kind": "ConfigMap", "apiVersion": "v1", "metadata": metadata}
    for key in ("data", "binaryData", "immutable"):
        if obj.get(key) is not None:
            stored[key] = copy.deepcopy(obj[key])
    return stored


def _store(
    state: dict[str, Any], obj: Mapping[str, Any], old: Mapping[str, Any] | None, manager: str
) -> dict[str, Any]:
    state["revision"] += 1
    stored = _build(obj, old, manager, str(state["revision"]))
    key = f"{stored['metadata']['namespace']}/{stored['metadata']['name']}"
    state["configmaps"][key] = stored
    return copy.deepcopy(stored)


def _load(path: Path) -> dict[str, Any]:
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return {"revision": 0, "configmaps": {}}
    except OSError as exc:
        raise StoreError(f"{path}: {exc.strerror or exc}") from None
    try:
        state = json.loads(text)
        if not isinstance(state["revision"], int) or not isinstance(state["configmaps"], dict):
            raise TypeError("wrong field types")
    except (ValueError, KeyError, TypeError) as exc:
        raise StoreError(f"{path}: not a ConfigMap store ({exc})") from None
    return dict(state)


@contextlib.contextmanager
def _locked(paths: SandboxPaths, write: bool = True) -> Iterator[dict[str, Any]]:
    """The store's state under the writers' lock; saved atomically when the block succeeds."""
    path = paths.apiserver_store
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path.with_name(path.name + ".lock"), os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        state = _load(path)
        yield state
        if write:
            _save(path, state)
    finally:
        os.close(fd)  # closing releases the lock


def _save(path: Path, state: Mapping[str, Any]) -> None:
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as out:
            json.dump(state, out, indent=2)
            out.write("\n")
            out.flush()
            os.fsync(out.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
    dir_fd = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(dir_fd)
    finally:
        os.close(dir_fd)


# -- seeding ------------------------------------------------------------------------------
def config_hash(data: Mapping[str, str], binary_data: Mapping[str, str] | None = None) -> str:
    """kubeadm's component-config checksum: SHA-256 over the data values in key order, then
    the binaryData values (componentconfigs/checksums.go)."""
    digest = hashlib.sha256()
    for values in (data, binary_data or {}):
        for key in sorted(values):
            digest.update(values[key].encode())
    return f"sha256:{digest.hexdigest()}"


def node_paths(text: str, root: Path) -> str:
    """A sandbox text with its host paths (DIR/etc/...) back at the node's (/etc/...)."""
    return text.replace(f"unix://{root}/", "unix:///").replace(f"{root}/", "/")


def default_config_version(kubernetes_version: str) -> str:
    """The format the kubeadm of that release uploads: v1beta4 from v1.31 on."""
    m = re.match(r"v?(\d+)\.(\d+)", kubernetes_version)
    return "v1beta4" if m is None or (int(m[1]), int(m[2])) >= (1, 31) else "v1beta3"


def _image(text: str) -> tuple[str, str]:
    """(repository, tag) of a manifest's container image."""
    m = re.search(r"^\s+image: (\S+)/[^/\s]+:(\S+)$", text, re.M)
    if m is None:
        raise ValueError("no container image in manifest")
    return m[1], m[2]


def _extra_args(current: str, fresh: str, root: Path) -> list[tuple[str, str]]:
    """The flags a manifest sets beyond what kubeadm wrote, as (name, value) at node paths."""
    from cis_tui.sandbox import manifests as mf

    base = mf.flags(fresh)
    return [
        # kubeadm only renders --name=value: a bare flag is a boolean set to true.
        (flag.removeprefix("--"), node_paths(value if value is not None else "true", root))
        for flag, value in sorted(mf.flags(current).items())
        if flag not in base or base[flag] != value
    ]


def _extra_volumes(current: str, fresh: str, root: Path) -> list[dict[str, Any]]:
    """The hostPath mounts a manifest has beyond kubeadm's, as HostPathMounts."""
    from cis_tui import safeyaml
    from cis_tui.sandbox.pods import pod_from_data

    def mounts(text: str) -> dict[str, Any]:
        pod = pod_from_data(safeyaml.load(text), Path("manifest"))
        return {m.name: m for m in pod.mounts if m.host_path is not None}

    base = mounts(fresh)
    out: list[dict[str, Any]] = []
    for name, m in sorted(mounts(current).items()):
        if base.get(name) == m:
            continue
        entry: dict[str, Any] = {
            "hostPath": node_paths(m.host_path, root),
            "mountPath": node_paths(m.mount_path, root),
            "name": name,
        }
        if m.host_type:
            entry["pathType"] = m.host_type
        if m.read_only:  # omitempty: kubeadm never writes readOnly: false
            entry["readOnly"] = True
        out.append(entry)
    return out


def _args_field(args: list[tuple[str, str]], api_version: str) -> Any:
    if api_version == "v1beta3":
        return dict(args)
    return [{"name": n, "value": v} for n, v in args]


def cluster_configuration(
    manifests: Mapping[str, str],
    fresh: Mapping[str, str],
    root: Path,
    api_version: str | None = None,
) -> str:
    """The ClusterConfiguration `kubeadm init` stores for this node, as YAML.

    `manifests`: each static pod's manifest text as the node has it; `fresh`: as a fresh
    `kubeadm init` of the same versions writes it (the difference becomes extraArgs and
    extraVolumes); `root`: the sandbox directory; `api_version`: v1beta4 | v1beta3 (default:
    what the node's kubeadm release uploads).
    """
    from cis_tui.sandbox import manifests as mf
    from cis_tui.sandbox.scenarios import KUBEADM_ETCD

    api = mf.flags(manifests["kube-apiserver"])
    kcm = mf.flags(manifests["kube-controller-manager"])
    etcd = mf.flags(manifests["etcd"])
    repository, version = _image(manifests["kube-apiserver"])
    api_version = api_version or default_config_version(version)
    if api_version not in KUBEADM_CONFIG_VERSIONS:
        raise ValueError(f"unknown kubeadm config version {api_version!r}")

    doc: dict[str, Any] = {
        "apiVersion": f"kubeadm.k8s.io/{api_version}",
        "kind": "ClusterConfiguration",
        "certificatesDir": node_paths(os.path.dirname(api["--client-ca-file"] or ""), root),
        "clusterName": kcm.get("--cluster-name") or "kubernetes",
        "controlPlaneEndpoint": f"{api['--advertise-address']}:{api['--secure-port']}",
        "dns": {},
        "imageRepository": repository,
        "kubernetesVersion": version,
    }
    issuer = api.get("--service-account-issuer") or ""
    networking = {"dnsDomain": issuer.rpartition(".svc.")[2] or "cluster.local"}
    if kcm.get("--cluster-cidr"):
        networking["podSubnet"] = kcm["--cluster-cidr"] or ""
    networking["serviceSubnet"] = api.get("--service-cluster-ip-range") or ""
    doc["networking"] = networking
    if api_version == "v1beta4":
        doc.update(
            caCertificateValidityPeriod="87600h0m0s",
            certificateValidityPeriod="8760h0m0s",
            encryptionAlgorithm="RSA-2048",
            proxy={},
        )
    for component, section in SECTIONS.items():
        part: dict[str, Any] = {}
        if api_version == "v1beta3" and section == "apiServer":
            part["timeoutForControlPlane"] = "4m0s"
        args = _extra_args(manifests[component], fresh[component], root)
        if args:
            part["extraArgs"] = _args_field(args, api_version)
        volumes = _extra_volumes(manifests[component], fresh[component], root)
        if volumes:
            part["extraVolumes"] = volumes
        doc[section] = part
    local: dict[str, Any] = {"dataDir": node_paths(etcd.get("--data-dir") or "", root)}
    args = _extra_args(manifests["etcd"], fresh["etcd"], root)
    if args:
        local["extraArgs"] = _args_field(args, api_version)
    # An etcd other than the one kubeadm pins for this release was chosen in the config.
    _, etcd_tag = _image(manifests["etcd"])
    pinned = KUBEADM_ETCD.get(".".join(version.lstrip("v").split(".")[:2]))
    if pinned is not None and etcd_tag != "{}.{}.{}-0".format(*pinned):
        local["imageTag"] = etcd_tag
    doc["etcd"] = {"local": local}
    return dump_kubeadm_yaml(doc)


def dump_kubeadm_yaml(data: Any) -> str:
    """YAML as kubeadm writes it (sigs.k8s.io/yaml over go-yaml v2): sorted keys, block
    style, lists at their key's indent, double quotes on strings YAML 1.1 would read as
    something else ("false", "30", ""). Long values stay on one line (go-yaml would fold
    one with spaces at 80 columns; no kubeadm setting has spaces)."""
    import io

    from ruamel.yaml import YAML
    from ruamel.yaml.nodes import ScalarNode
    from ruamel.yaml.representer import SafeRepresenter
    from ruamel.yaml.resolver import VersionedResolver

    resolver = VersionedResolver(version=(1, 1))
    str_tag = "tag:yaml.org,2002:str"

    class Representer(SafeRepresenter):
        pass

    def represent_str(self: SafeRepresenter, value: str) -> Any:
        plain = value != "" and resolver.resolve(ScalarNode, value, (True, False)) == str_tag
        return self.represent_scalar(str_tag, value, style=None if plain else '"')

    Representer.add_representer(str, represent_str)
    yaml = YAML(typ="safe", pure=True)
    yaml.Representer = Representer
    yaml.default_flow_style = False
    # go-yaml breaks only at spaces and never before a value; a cipher list has no spaces.
    yaml.width = 1 << 16
    out = io.StringIO()
    yaml.dump(data, out)
    return out.getvalue()


def kubeadm_config_map(cluster_config: str) -> dict[str, Any]:
    """kube-system/kubeadm-config as kubeadm uploads it: no labels, no annotations."""
    return {
        "kind": "ConfigMap",
        "apiVersion": "v1",
        "metadata": {"name": KUBEADM_CONFIG, "namespace": NAMESPACE},
        "data": {"ClusterConfiguration": cluster_config},
    }


def kubelet_config_map(kubelet_config: str) -> dict[str, Any]:
    """kube-system/kubelet-config as kubeadm uploads it, signed with its hash."""
    data = {"kubelet": kubelet_config}
    return {
        "kind": "ConfigMap",
        "apiVersion": "v1",
        "metadata": {
            "name": KUBELET_CONFIG,
            "namespace": NAMESPACE,
            "annotations": {HASH_ANNOTATION: config_hash(data)},
        },
        "data": data,
    }


def seed_configmaps(
    paths: SandboxPaths,
    manifests: Mapping[str, str],
    fresh: Mapping[str, str],
    kubelet_config: str,
    api_version: str | None = None,
) -> tuple[dict[str, Any], dict[str, Any]]:
    """Store kubeadm-config and kubelet-config as `kubeadm init` uploads them for this node
    (see `cluster_configuration`); the two stored objects."""
    config = cluster_configuration(manifests, fresh, paths.root, api_version)
    return (
        write_configmap(paths, kubeadm_config_map(config)),
        write_configmap(paths, kubelet_config_map(node_paths(kubelet_config, paths.root))),
    )
