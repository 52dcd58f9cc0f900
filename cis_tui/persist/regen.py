"""What `kubeadm upgrade apply` writes: the static pods and the kubelet config, regenerated.

Pure functions over text. The ClusterConfiguration (v1beta3 or v1beta4) and the node facts kubeadm
reads elsewhere (`NodeInputs`) become the four Pods kubeadm v1.35 builds. The extraArgs are merged
in the argument order of the emulated kubeadm release, then the patches directory is applied.
The output uses sigs.k8s.io/yaml's layout.
Rules and sources: ../shared/ref/kubeadm-config.md sections 2 and 4.

What is not reproduced (kubeadm decodes into Go structs; this works on plain data):
- older releases' default flags and pod shape: the era changes only the argument order;
- unknown fields are kept, not dropped;
- a patch's zero values are kept where the typed v1.Pod would omit them;
- kubelet durations keep their spelling (`5m`, not `5m0s`);
- a zero value of an `omitempty` kubelet field in the ConfigMap stays (kubeadm drops it);
- kubeadm's kubelet `resolvConf` default, which depends on systemd-resolved on the host;
- etcd's member list on join, RootlessControlPlane, v1.36's removal of `flexvolume-dir`;
- long strings with spaces are not folded at 80 columns; multi-line strings are double-quoted.
"""

from __future__ import annotations

import copy
import functools
import ipaddress
import json
import math
import os
import re
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from cis_tui import safeyaml
from cis_tui.errors import UserError

ERAS = ("map", "sorted-all", "base-sorted")
COMPONENTS = ("kube-apiserver", "kube-controller-manager", "kube-scheduler", "etcd")
#: CA bundle directories kubeadm mounts into the API server and controller manager only when they
#: exist on the host at generation time (`phases/controlplane/volumes.go`).
CA_CERT_DIRS = (
    "/etc/pki/ca-trust",
    "/etc/pki/tls/certs",
    "/etc/ca-certificates",
    "/usr/share/ca-certificates",
    "/usr/local/share/ca-certificates",
)
DEFAULT_CRI_SOCKET = "unix:///var/run/containerd/containerd.sock"

#: First patch release of each minor that carries kubernetes/kubernetes#135400 (extraArgs kept in
#: user order at the end). v1.35.1 lists #135853 and v1.34.4 lists #135852 in their release notes.
#: 1.33.8 and 1.32.12 are *inferred*: the same February 2026 patch batch (#135851, #135850).
_BASE_SORTED_FROM = {32: 12, 33: 8, 34: 4, 35: 1}
#: etcd image tag per Kubernetes minor (`constants.SupportedEtcdVersion`). 35 is confirmed by the
#: baseline manifests (kubeadm v1.35.0 wrote 3.6.6-0). 33 and 34 are from stored copies of
#: constants.go. kubeadm falls back to the nearest minor, with a warning, when one is missing.
_ETCD_TAGS = {33: "3.5.24-0", 34: "3.6.5-0", 35: "3.6.6-0"}
_AUTHZ_MODES = ("AlwaysAllow", "AlwaysDeny", "ABAC", "Webhook", "RBAC", "Node")
_FLEXVOLUME_DIR = "/usr/libexec/kubernetes/kubelet-plugins/volume/exec"
_PATCH_TARGETS = (*COMPONENTS, "kubeletconfiguration", "corednsdeployment")
_PATCH_NAME = re.compile(
    r"^(" + "|".join(_PATCH_TARGETS) + r")([^.+\n]*)?(\+)?(json|merge|strategic)?"
)

Arg = tuple[str, str]


class RegenError(UserError):
    """A ClusterConfiguration, kubelet config or patch that kubeadm would refuse."""


@dataclass(frozen=True)
class NodeInputs:
    """What regeneration needs besides ClusterConfiguration (kubeadm-config.md section 2.4)."""

    node_name: str
    advertise_address: str
    bind_port: int = 6443
    existing_host_paths: frozenset[str] = frozenset()  # which of CA_CERT_DIRS exist on the host
    proxy_env: tuple[tuple[str, str], ...] = ()  # kubeadm's own *_proxy variables, as (name, value)
    external_ca: bool = False  # ca.key absent: the controller manager gets empty signing flags
    control_plane_timeout_s: int = 240  # timeouts.controlPlaneComponentHealthCheck


def era_for(kubeadm_version: str) -> str:
    """The argument-order era of a kubeadm release: "v1.35.0" -> "sorted-all".

    Up to v1.30 the map era; v1.31.x sorts everything; v1.32 to v1.35 sort everything until the
    patch that took #135400 (v1.32.12, v1.33.8, v1.34.4, v1.35.1); v1.36 onward keeps extraArgs
    in user order after the sorted defaults (pre-releases count as their patch release).
    """
    match = re.fullmatch(
        r"v?(\d+)\.(\d+)\.(\d+)(?:-[0-9A-Za-z.-]+)?(?:\+[0-9A-Za-z.-]+)?", kubeadm_version.strip()
    )
    if match is None or match.group(1) != "1":
        raise RegenError(f"kubeadm version {kubeadm_version!r} is not v1.MINOR.PATCH")
    minor, patch = int(match.group(2)), int(match.group(3))
    if minor <= 30:
        return "map"
    if minor >= 36:
        return "base-sorted"
    first = _BASE_SORTED_FROM.get(minor)
    return "base-sorted" if first is not None and patch >= first else "sorted-all"


def arguments_to_command(base: Sequence[Arg], overrides: Sequence[Arg], era: str) -> list[str]:
    """kubeadm's `ArgumentsToCommand`: defaults merged with extraArgs, as `--name=value`."""
    names = {name for name, _ in overrides}
    if era == "map":  # BuildArgumentListFromMap: one value per flag, sorted by name
        merged = dict(base)
        merged.update(dict(overrides))
        args = sorted(merged.items())
    elif era == "sorted-all":  # every default of an overridden name dropped, all sorted
        args = sorted([*overrides, *(a for a in base if a[0] not in names)])
    elif era == "base-sorted":  # sorted defaults, then the overrides in user order
        args = [*(a for a in sorted(base) if a[0] not in names), *overrides]
    else:
        raise ValueError(f"unknown era {era!r}, expected one of {ERAS}")
    return [f"--{name}={value}" for name, value in args]


# --- ClusterConfiguration ---------------------------------------------------------------------


@dataclass(frozen=True)
class _Component:
    args: tuple[Arg, ...] = ()
    volumes: tuple[Mapping[str, Any], ...] = ()
    envs: tuple[Mapping[str, Any], ...] = ()


@dataclass(frozen=True)
class _Cluster:
    api_version: str
    cert_dir: str
    service_subnet: str
    pod_subnet: str
    dns_domain: str
    cluster_name: str
    image_repo: str
    version: str  # v-prefixed
    components: Mapping[str, _Component]
    etcd_local: Mapping[str, Any] | None
    etcd_external: Mapping[str, Any] | None
    etcd: _Component = field(default_factory=_Component)
    startup_timeout_s: float | None = None  # v1beta3 apiServer.timeoutForControlPlane


def _document(text: str, key: str, what: str) -> dict[str, Any]:
    """The one YAML document of `text`; for a ConfigMap, the document in `data[key]`."""
    try:
        data = safeyaml.load(text)
        if isinstance(data, dict) and data.get("kind") == "ConfigMap":
            inner = (data.get("data") or {}).get(key)
            if not isinstance(inner, str):
                raise RegenError(f"{what}: the ConfigMap has no data key {key!r}")
            data = safeyaml.load(inner)
    except RegenError:
        raise
    except Exception as exc:  # ruamel's YAMLError, YamlLimitError
        raise RegenError(f"{what} is not valid YAML: {_first_line(exc)}") from exc
    if not isinstance(data, dict):
        raise RegenError(f"{what} is not a YAML mapping")
    return data


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


def _mapping(data: Mapping[str, Any], key: str, where: str) -> Mapping[str, Any]:
    value = data.get(key)
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise RegenError(f"failed to decode cluster configuration data: {where}{key} is not a map")
    return value


def _string(value: Any, where: str) -> str:
    if not isinstance(value, str):
        # kubeadm decodes YAML to JSON first, so an unquoted `false` or `20` is not a string.
        raise RegenError(
            f"failed to decode cluster configuration data: {where} must be a string (quote it)"
        )
    return value


def _args(section: Mapping[str, Any], where: str, api_version: str) -> tuple[Arg, ...]:
    raw = section.get("extraArgs")
    if raw is None:
        return ()
    if api_version == "kubeadm.k8s.io/v1beta3":
        if not isinstance(raw, dict):
            raise RegenError(
                f"failed to decode cluster configuration data: {where}extraArgs must be a map "
                f"of flag: value in {api_version}"
            )
        pairs = [(str(k), _string(v, f"{where}extraArgs.{k}")) for k, v in raw.items()]
        return tuple(sorted(pairs))  # conversion to the internal list sorts (convertToArgs)
    if not isinstance(raw, list):
        raise RegenError(
            f"failed to decode cluster configuration data: {where}extraArgs must be a list of "
            f"{{name, value}} in {api_version}"
        )
    args = []
    for i, item in enumerate(raw):
        if not isinstance(item, dict) or "name" not in item:
            raise RegenError(
                f"failed to decode cluster configuration data: {where}extraArgs[{i}] needs a name"
            )
        name = _string(item["name"], f"{where}extraArgs[{i}].name")
        args.append((name, _string(item.get("value", ""), f"{where}extraArgs[{i}].value")))
    return tuple(args)


def _list_of_maps(section: Mapping[str, Any], key: str, where: str) -> tuple[dict, ...]:
    raw = section.get(key) or []
    if not isinstance(raw, list) or not all(isinstance(x, dict) for x in raw):
        raise RegenError(f"failed to decode cluster configuration data: {where}{key} is not a list")
    return tuple(raw)


def _component(section: Mapping[str, Any], where: str, api_version: str) -> _Component:
    volumes = _list_of_maps(section, "extraVolumes", where)
    for i, vol in enumerate(volumes):
        for key in ("name", "hostPath", "mountPath"):
            _string(vol.get(key), f"{where}extraVolumes[{i}].{key}")
    envs = _list_of_maps(section, "extraEnvs", where) if api_version.endswith("v1beta4") else ()
    return _Component(_args(section, where, api_version), volumes, envs)


def _version(value: Any) -> str:
    text = str(value or "")
    if not re.fullmatch(r"v?\d+\.\d+\.\d+\S*", text):
        raise RegenError(
            f"kubernetesVersion {text!r} is not a version (labels such as stable-1 need the "
            "network to resolve)"
        )
    return text if text.startswith("v") else "v" + text


def _parse_cluster(text: str) -> _Cluster:
    doc = _document(text, "ClusterConfiguration", "ClusterConfiguration")
    api_version = doc.get("apiVersion")
    if api_version not in ("kubeadm.k8s.io/v1beta3", "kubeadm.k8s.io/v1beta4"):
        raise RegenError(f"ClusterConfiguration apiVersion {api_version!r} is not v1beta3/v1beta4")
    if doc.get("kind") != "ClusterConfiguration":
        raise RegenError(f"kind {doc.get('kind')!r} is not ClusterConfiguration")
    net = _mapping(doc, "networking", "")
    sections = {
        "kube-apiserver": "apiServer",
        "kube-controller-manager": "controllerManager",
        "kube-scheduler": "scheduler",
    }
    components = {
        name: _component(_mapping(doc, key, ""), f"{key}.", api_version)
        for name, key in sections.items()
    }
    etcd = _mapping(doc, "etcd", "")
    external = _mapping(etcd, "external", "etcd.") or None
    local = None if external else dict(_mapping(etcd, "local", "etcd."))
    etcd_component = _component(local or {}, "etcd.local.", api_version)
    timeout = None
    if api_version.endswith("v1beta3"):
        raw = _mapping(doc, "apiServer", "").get("timeoutForControlPlane")
        timeout = _go_duration_s(str(raw)) if raw is not None else None
    return _Cluster(
        api_version=api_version,
        cert_dir=str(doc.get("certificatesDir") or "/etc/kubernetes/pki"),
        service_subnet=str(net.get("serviceSubnet") or "10.96.0.0/12"),
        pod_subnet=str(net.get("podSubnet") or ""),
        dns_domain=str(net.get("dnsDomain") or "cluster.local"),
        cluster_name=str(doc.get("clusterName") or "kubernetes"),
        image_repo=str(doc.get("imageRepository") or "registry.k8s.io"),
        version=_version(doc.get("kubernetesVersion")),
        components=components,
        etcd_local=local,
        etcd_external=external,
        etcd=etcd_component,
        startup_timeout_s=timeout,
    )


def _go_duration_s(text: str) -> float:
    """Seconds in a Go duration such as `4m0s` or `1h30m`."""
    units = {"ns": 1e-9, "us": 1e-6, "µs": 1e-6, "ms": 1e-3, "s": 1, "m": 60, "h": 3600}
    parts = re.findall(r"(\d+(?:\.\d*)?|\.\d+)(ns|us|µs|ms|s|m|h)", text)
    if not parts or "".join(n + u for n, u in parts) != text.lstrip("+"):
        raise RegenError(f"duration {text!r} is not a Go duration such as 4m0s")
    return sum(float(n) * units[u] for n, u in parts)


# --- the Pods -----------------------------------------------------------------------------------


def _last(args: Sequence[Arg], name: str) -> str | None:
    """The value of the last `name` in extraArgs (kubeadm's `GetArgValue(..., -1)`)."""
    values = [value for n, value in args if n == name]
    return values[-1] if values else None


def _set(args: list[Arg], name: str, value: str) -> None:
    """kubeadm's `SetArgValues(args, name, value, 1)`: replace the first, or append."""
    for i, (n, _) in enumerate(args):
        if n == name:
            args[i] = (name, value)
            return
    args.append((name, value))


def _host(address: str) -> str:
    return f"[{address}]" if ":" in address else address


def _authz_modes(requested: str) -> str:
    modes = [m for m in requested.split(",") if m in _AUTHZ_MODES] if requested else []
    return ",".join(modes or ["Node", "RBAC"])


def _probe_host(address: str) -> str:
    return "" if address in ("0.0.0.0", "::") else address  # "" means the pod IP


def _probe(host: str, path: str, scheme: str, timing: tuple[int, int, int, int]) -> dict:
    initial, timeout, failures, period = timing
    get = {"path": path, "port": "probe-port", "scheme": scheme}
    if host:
        get["host"] = host
    probe = {
        "failureThreshold": failures,
        "httpGet": get,
        "periodSeconds": period,
        "timeoutSeconds": timeout,
    }
    if initial:
        probe["initialDelaySeconds"] = initial
    return probe


def _probes(
    host: str, scheme: str, paths: tuple[str, str | None, str], startup_failures: int
) -> dict[str, dict]:
    """Liveness, readiness (when a path is given) and startup probes (`util/staticpod`)."""
    live, ready, start = paths
    probes = {"livenessProbe": _probe(host, live, scheme, (10, 15, 8, 10))}
    if ready is not None:
        probes["readinessProbe"] = _probe(host, ready, scheme, (0, 15, 3, 1))
    probes["startupProbe"] = _probe(host, start, scheme, (10, 15, startup_failures, 10))
    return probes


def _merge_envs(*lists: Sequence[Mapping[str, Any]]) -> list[dict]:
    """kubeadm's `MergeKubeadmEnvVars`: later wins per name, sorted by name."""
    merged: dict[str, dict] = {}
    for envs in lists:
        for env in envs:
            merged[str(env.get("name", ""))] = dict(env)
    return [merged[name] for name in sorted(merged)]


def _container(name: str, image: str, command: list[str], port: int, cpu: str) -> dict:
    return {
        "command": command,
        "image": image,
        "imagePullPolicy": "IfNotPresent",
        "name": name,
        "ports": [{"containerPort": port, "name": "probe-port", "protocol": "TCP"}],
        "resources": {"requests": {"cpu": cpu}},
    }


def _pod(container: dict, volumes: list[dict], annotations: Mapping[str, str]) -> dict:
    """kubeadm's `ComponentPod`."""
    name = container["name"]
    metadata: dict[str, Any] = {
        "labels": {"component": name, "tier": "control-plane"},
        "name": name,
        "namespace": "kube-system",
    }
    if annotations:
        metadata["annotations"] = dict(annotations)
    spec: dict[str, Any] = {
        "containers": [container],
        "hostNetwork": True,
        "priority": 2000001000,
        "priorityClassName": "system-node-critical",
        "securityContext": {"seccompProfile": {"type": "RuntimeDefault"}},
    }
    if volumes:
        spec["volumes"] = volumes
    return {"apiVersion": "v1", "kind": "Pod", "metadata": metadata, "spec": spec, "status": {}}


Mounts = dict[str, tuple[dict, dict]]  # volume name -> (volume, volumeMount)


def _mount(mounts: Mounts, name: str, host: str, path: str, read_only: bool, kind: str) -> None:
    mount: dict[str, Any] = {"mountPath": path, "name": name}
    if read_only:
        mount["readOnly"] = True
    mounts[name] = ({"hostPath": {"path": host, "type": kind}, "name": name}, mount)


def _etcd_cert_dirs(external: Mapping[str, Any], cert_dir: str) -> list[str]:
    """Directories of the external etcd's CA, cert and key (`getEtcdCertVolumes`)."""
    dirs: set[str] = set()
    for path in (external.get("caFile"), external.get("certFile"), external.get("keyFile")):
        directory = os.path.dirname(str(path or "")) or "."
        if directory == "." or any(
            directory.startswith(p) for p in (*CA_CERT_DIRS, "/etc/ssl/certs", cert_dir)
        ):
            continue
        if any(directory.startswith(d) for d in dirs if not d.startswith(directory)):
            continue
        dirs = {d for d in dirs if not d.startswith(directory)} | {directory}
    return sorted(dirs)


def _control_plane_mounts(c: _Cluster, n: NodeInputs) -> dict[str, Mounts]:
    """Per component, the fixed volumes and then the extraVolumes (`volumes.go`)."""
    dir_or_create, file_or_create = "DirectoryOrCreate", "FileOrCreate"
    result: dict[str, Mounts] = {name: {} for name in COMPONENTS[:3]}
    api, kcm, sched = (result[name] for name in COMPONENTS[:3])
    for mounts in (api, kcm):
        _mount(mounts, "k8s-certs", c.cert_dir, c.cert_dir, True, dir_or_create)
        _mount(mounts, "ca-certs", "/etc/ssl/certs", "/etc/ssl/certs", True, dir_or_create)
    if c.etcd_external is not None:
        for i, directory in enumerate(_etcd_cert_dirs(c.etcd_external, c.cert_dir)):
            _mount(api, f"etcd-certs-{i}", directory, directory, True, dir_or_create)
    kubeconfig = "/etc/kubernetes/controller-manager.conf"
    _mount(kcm, "kubeconfig", kubeconfig, kubeconfig, True, file_or_create)
    flex = _last(c.components["kube-controller-manager"].args, "flex-volume-plugin-dir")
    flex = _FLEXVOLUME_DIR if flex is None else flex
    _mount(kcm, "flexvolume-dir", flex, flex, False, dir_or_create)
    kubeconfig = "/etc/kubernetes/scheduler.conf"
    _mount(sched, "kubeconfig", kubeconfig, kubeconfig, True, file_or_create)
    for path in CA_CERT_DIRS:
        if path in n.existing_host_paths:
            for mounts in (api, kcm):
                _mount(mounts, path.replace("/", "-")[1:], path, path, True, dir_or_create)
    for name, mounts in result.items():
        for vol in c.components[name].volumes:
            # The same name replaces a default; pathType omitted is a pointer to "" (no check).
            _mount(
                mounts,
                vol["name"],
                vol["hostPath"],
                vol["mountPath"],
                bool(vol.get("readOnly")),
                str(vol.get("pathType") or ""),
            )
    return result


def _attach(container: dict, mounts: Mounts, env: list[dict]) -> list[dict]:
    """Sorted mounts into the container (and env when any); the sorted volumes for the pod."""
    if env:
        container["env"] = env
    names = sorted(mounts)
    if names:
        container["volumeMounts"] = [mounts[name][1] for name in names]
    return [mounts[name][0] for name in names]


def _apiserver(c: _Cluster, n: NodeInputs, era: str, mounts: Mounts, startup: int) -> dict:
    cd, extra = c.cert_dir, c.components["kube-apiserver"]
    base: list[Arg] = [
        ("advertise-address", n.advertise_address),
        ("enable-admission-plugins", "NodeRestriction"),
        ("service-cluster-ip-range", c.service_subnet),
        ("service-account-key-file", f"{cd}/sa.pub"),
        ("service-account-signing-key-file", f"{cd}/sa.key"),
        ("service-account-issuer", f"https://kubernetes.default.svc.{c.dns_domain}"),
        ("client-ca-file", f"{cd}/ca.crt"),
        ("tls-cert-file", f"{cd}/apiserver.crt"),
        ("tls-private-key-file", f"{cd}/apiserver.key"),
        ("kubelet-client-certificate", f"{cd}/apiserver-kubelet-client.crt"),
        ("kubelet-client-key", f"{cd}/apiserver-kubelet-client.key"),
        ("enable-bootstrap-token-auth", "true"),
        ("secure-port", str(n.bind_port)),
        ("allow-privileged", "true"),
        ("kubelet-preferred-address-types", "InternalIP,ExternalIP,Hostname"),
        ("requestheader-username-headers", "X-Remote-User"),
        ("requestheader-group-headers", "X-Remote-Group"),
        ("requestheader-extra-headers-prefix", "X-Remote-Extra-"),
        ("requestheader-client-ca-file", f"{cd}/front-proxy-ca.crt"),
        ("requestheader-allowed-names", "front-proxy-client"),
        ("proxy-client-cert-file", f"{cd}/front-proxy-client.crt"),
        ("proxy-client-key-file", f"{cd}/front-proxy-client.key"),
    ]
    if c.etcd_external is not None:
        ext = c.etcd_external
        _set(base, "etcd-servers", ",".join(str(e) for e in ext.get("endpoints") or []))
        if ext.get("caFile"):
            _set(base, "etcd-cafile", str(ext["caFile"]))
        if ext.get("certFile") and ext.get("keyFile"):
            _set(base, "etcd-certfile", str(ext["certFile"]))
            _set(base, "etcd-keyfile", str(ext["keyFile"]))
    else:
        local = "::1" if ":" in n.advertise_address else "127.0.0.1"
        _set(base, "etcd-servers", f"https://{_host(local)}:2379")
        _set(base, "etcd-cafile", f"{cd}/etcd/ca.crt")
        _set(base, "etcd-certfile", f"{cd}/apiserver-etcd-client.crt")
        _set(base, "etcd-keyfile", f"{cd}/apiserver-etcd-client.key")
        advertised = _last(c.etcd.args, "advertise-client-urls")
        if advertised is not None:
            _set(base, "etcd-servers", advertised)
    if _last(extra.args, "authorization-config") is None:
        _set(
            base, "authorization-mode", _authz_modes(_last(extra.args, "authorization-mode") or "")
        )
    command = ["kube-apiserver", *arguments_to_command(base, extra.args, era)]
    container = _container(
        "kube-apiserver", _image(c, "kube-apiserver"), command, n.bind_port, "250m"
    )
    host = _probe_host(n.advertise_address)
    container.update(_probes(host, "HTTPS", ("/livez", "/readyz", "/livez"), startup))
    volumes = _attach(container, mounts, _merge_envs(_proxy_envs(n), extra.envs))
    endpoint = f"{_host(n.advertise_address)}:{n.bind_port}"
    return _pod(
        container,
        volumes,
        {"kubeadm.kubernetes.io/kube-apiserver.advertise-address.endpoint": endpoint},
    )


def _controller_manager(c: _Cluster, n: NodeInputs, era: str, mounts: Mounts, startup: int) -> dict:
    cd, extra = c.cert_dir, c.components["kube-controller-manager"]
    kubeconfig = "/etc/kubernetes/controller-manager.conf"
    base: list[Arg] = [
        ("bind-address", "127.0.0.1"),
        ("leader-elect", "true"),
        ("kubeconfig", kubeconfig),
        ("authentication-kubeconfig", kubeconfig),
        ("authorization-kubeconfig", kubeconfig),
        ("client-ca-file", f"{cd}/ca.crt"),
        ("requestheader-client-ca-file", f"{cd}/front-proxy-ca.crt"),
        ("root-ca-file", f"{cd}/ca.crt"),
        ("service-account-private-key-file", f"{cd}/sa.key"),
        ("cluster-signing-cert-file", f"{cd}/ca.crt"),
        ("cluster-signing-key-file", f"{cd}/ca.key"),
        ("use-service-account-credentials", "true"),
        ("controllers", "*,bootstrapsigner,tokencleaner"),
    ]
    if n.external_ca:  # empty values make the csrsigning controller fail to start, on purpose
        _set(base, "cluster-signing-key-file", "")
        _set(base, "cluster-signing-cert-file", "")
    if c.pod_subnet:
        _set(base, "allocate-node-cidrs", "true")
        _set(base, "cluster-cidr", c.pod_subnet)
        if c.service_subnet:
            _set(base, "service-cluster-ip-range", c.service_subnet)
    if c.cluster_name:
        _set(base, "cluster-name", c.cluster_name)
    command = ["kube-controller-manager", *arguments_to_command(base, extra.args, era)]
    container = _container(
        "kube-controller-manager", _image(c, "kube-controller-manager"), command, 10257, "200m"
    )
    host = _probe_host(_last(extra.args, "bind-address") or "127.0.0.1")
    container.update(_probes(host, "HTTPS", ("/healthz", None, "/healthz"), startup))
    volumes = _attach(container, mounts, _merge_envs(_proxy_envs(n), extra.envs))
    return _pod(container, volumes, {})


def _scheduler(c: _Cluster, n: NodeInputs, era: str, mounts: Mounts, startup: int) -> dict:
    extra = c.components["kube-scheduler"]
    kubeconfig = "/etc/kubernetes/scheduler.conf"
    base: list[Arg] = [
        ("bind-address", "127.0.0.1"),
        ("leader-elect", "true"),
        ("kubeconfig", kubeconfig),
        ("authentication-kubeconfig", kubeconfig),
        ("authorization-kubeconfig", kubeconfig),
    ]
    command = ["kube-scheduler", *arguments_to_command(base, extra.args, era)]
    container = _container("kube-scheduler", _image(c, "kube-scheduler"), command, 10259, "100m")
    host = _probe_host(_last(extra.args, "bind-address") or "127.0.0.1")
    container.update(_probes(host, "HTTPS", ("/livez", "/readyz", "/livez"), startup))
    volumes = _attach(container, mounts, _merge_envs(_proxy_envs(n), extra.envs))
    return _pod(container, volumes, {})


def etcd_image_tag(cluster_config_text: str) -> str:
    """The etcd tag kubeadm deploys: etcd.local.imageTag, else the one for the Kubernetes minor."""
    return _etcd_tag(_parse_cluster(cluster_config_text))


def _etcd_tag(c: _Cluster) -> str:
    if c.etcd_local and c.etcd_local.get("imageTag"):
        return str(c.etcd_local["imageTag"])
    minor = int(c.version[1:].split(".")[1])
    nearest = min(_ETCD_TAGS, key=lambda m: (abs(m - minor), -m))
    return _ETCD_TAGS[nearest]


def _semver_at_least(tag: str, floor: tuple[int, int, int]) -> bool:
    match = re.match(r"v?(\d+)\.(\d+)\.(\d+)(-[^+]*)?", tag)
    if match is None:
        return False
    core = tuple(int(match.group(i)) for i in (1, 2, 3))
    # A pre-release sorts below its release: 3.6.0-0 is not yet 3.6.0.
    return core > floor or (core == floor and match.group(4) is None)


def _etcd(c: _Cluster, n: NodeInputs, era: str, startup: int) -> dict:
    local = c.etcd_local or {}
    cd, data_dir = c.cert_dir, str(local.get("dataDir") or "/var/lib/etcd")
    ip6 = ":" in n.advertise_address
    loopback = "::1" if ip6 else "127.0.0.1"
    client = f"https://{_host(n.advertise_address)}:2379"
    peer = f"https://{_host(n.advertise_address)}:2380"
    tag = _etcd_tag(c)
    base: list[Arg] = [
        ("name", n.node_name),
        ("listen-client-urls", f"https://{_host(loopback)}:2379,{client}"),
        ("advertise-client-urls", client),
        ("listen-peer-urls", peer),
        ("initial-advertise-peer-urls", peer),
        ("data-dir", data_dir),
        ("cert-file", f"{cd}/etcd/server.crt"),
        ("key-file", f"{cd}/etcd/server.key"),
        ("trusted-ca-file", f"{cd}/etcd/ca.crt"),
        ("client-cert-auth", "true"),
        ("peer-cert-file", f"{cd}/etcd/peer.crt"),
        ("peer-key-file", f"{cd}/etcd/peer.key"),
        ("peer-trusted-ca-file", f"{cd}/etcd/ca.crt"),
        ("peer-client-cert-auth", "true"),
        ("snapshot-count", "10000"),
        ("listen-metrics-urls", f"http://{_host(loopback)}:2381"),
        ("initial-cluster", f"{n.node_name}={peer}"),
    ]
    if _semver_at_least(tag, (3, 6, 0)):
        base += [
            ("feature-gates", "InitialCorruptCheck=true"),
            ("watch-progress-notify-interval", "5s"),
        ]
    else:
        base += [
            ("experimental-initial-corrupt-check", "true"),
            ("experimental-watch-progress-notify-interval", "5s"),
        ]
    command = ["etcd", *arguments_to_command(base, c.etcd.args, era)]
    host, port, scheme = loopback, 2381, "HTTP"
    metrics = _last(c.etcd.args, "listen-metrics-urls")
    if metrics is not None:  # GetEtcdProbeEndpoint: the first URL of the last occurrence
        match = re.match(r"^(\w+)://(\[[^\]]*\]|[^:/]*)(?::(\d+))?", metrics.split(",")[0])
        if match is not None:
            scheme = "HTTPS" if match.group(1) == "https" else "HTTP"
            host = match.group(2).strip("[]") or loopback
            port = int(match.group(3)) if match.group(3) else 2381
    repo = str(local.get("imageRepository") or c.image_repo)
    container = _container("etcd", f"{repo}/etcd:{tag}", command, port, "100m")
    container["resources"]["requests"]["memory"] = "100Mi"
    container.update(_probes(host, scheme, ("/livez", "/readyz", "/readyz"), startup))
    env = _merge_envs(c.etcd.envs)
    if env:
        container["env"] = env
    # Mounts keep kubeadm's fixed order; only the volumes are sorted.
    container["volumeMounts"] = [
        {"mountPath": data_dir, "name": "etcd-data"},
        {"mountPath": f"{cd}/etcd", "name": "etcd-certs"},
    ]
    volumes = [
        {"hostPath": {"path": f"{cd}/etcd", "type": "DirectoryOrCreate"}, "name": "etcd-certs"},
        {"hostPath": {"path": data_dir, "type": "DirectoryOrCreate"}, "name": "etcd-data"},
    ]
    return _pod(container, volumes, {"kubeadm.kubernetes.io/etcd.advertise-client-urls": client})


def _image(c: _Cluster, component: str) -> str:
    return f"{c.image_repo}/{component}:{c.version.replace('+', '_')}"


def _proxy_envs(n: NodeInputs) -> list[dict]:
    return [{"name": name, "value": value} for name, value in n.proxy_env]


def render_pods(
    cluster_config_text: str, inputs: NodeInputs, era: str, patches_dir: Path | None = None
) -> dict[str, str]:
    """Component -> the manifest kubeadm writes for it (etcd only with local etcd).

    `cluster_config_text` is the ClusterConfiguration, or the kubeadm-config ConfigMap holding it.
    """
    if era not in ERAS:
        raise ValueError(f"unknown era {era!r}, expected one of {ERAS}")
    c = _parse_cluster(cluster_config_text)
    timeout = c.startup_timeout_s if era == "map" and c.startup_timeout_s else None
    startup = math.ceil((timeout or inputs.control_plane_timeout_s) / 10)
    mounts = _control_plane_mounts(c, inputs)
    pods = {
        "kube-apiserver": _apiserver(c, inputs, era, mounts["kube-apiserver"], startup),
        "kube-controller-manager": _controller_manager(
            c, inputs, era, mounts["kube-controller-manager"], startup
        ),
        "kube-scheduler": _scheduler(c, inputs, era, mounts["kube-scheduler"], startup),
    }
    if c.etcd_external is None:
        pods["etcd"] = _etcd(c, inputs, era, startup)
    patch_sets = _load_patches(patches_dir) if patches_dir is not None else []
    result = {}
    for name, pod in pods.items():
        patched = _apply_patches(pod, name, patch_sets, _POD_SCHEMA)
        if patched is not pod:
            if patched.get("apiVersion") != "v1" or patched.get("kind") != "Pod":
                raise RegenError(f"the patched {name} manifest is no longer a v1 Pod", patches_dir)
            patched = _drop_directives(patched)  # decoding into v1.Pod ignores them
        result[name] = to_kubeadm_yaml(patched)
    return result


# --- the kubelet config -------------------------------------------------------------------------

#: What marshalling a v1beta1 KubeletConfiguration writes for fields the ConfigMap leaves unset:
#: struct-typed fields have no omitempty (durations write `0s`), as kubeadm v1.35 wrote them in
#: kubeadm-manifests/kubelet-config.yaml. `containerRuntimeEndpoint` has no omitempty either.
_KUBELET_ALWAYS: dict[str, Any] = {
    "authentication": {"anonymous": {}, "webhook": {"cacheTTL": "0s"}, "x509": {}},
    "authorization": {"webhook": {"cacheAuthorizedTTL": "0s", "cacheUnauthorizedTTL": "0s"}},
    "containerRuntimeEndpoint": "",
    "cpuManagerReconcilePeriod": "0s",
    "crashLoopBackOff": {},
    "evictionPressureTransitionPeriod": "0s",
    "fileCheckFrequency": "0s",
    "httpCheckFrequency": "0s",
    "imageMaximumGCAge": "0s",
    "imageMinimumGCAge": "0s",
    "logging": {
        "flushFrequency": 0,
        "options": {"json": {"infoBufferSize": "0"}, "text": {"infoBufferSize": "0"}},
        "verbosity": 0,
    },
    "memorySwap": {},
    "nodeStatusReportFrequency": "0s",
    "nodeStatusUpdateFrequency": "0s",
    "runtimeRequestTimeout": "0s",
    "shutdownGracePeriod": "0s",
    "shutdownGracePeriodCriticalPods": "0s",
    "streamingConnectionIdleTimeout": "0s",
    "syncFrequency": "0s",
    "volumeStatsAggPeriod": "0s",
}


def _fill(data: dict[str, Any], defaults: Mapping[str, Any]) -> dict[str, Any]:
    """`data` with every key of `defaults` it lacks, recursively (what it has is kept)."""
    out = dict(data)
    for key, value in defaults.items():
        if key not in out:
            out[key] = copy.deepcopy(value)
        elif isinstance(out[key], dict) and isinstance(value, dict):
            out[key] = _fill(out[key], value)
    return out


def _submap(parent: dict[str, Any], key: str, where: str) -> dict[str, Any]:
    value = parent.setdefault(key, {})
    if not isinstance(value, dict):
        raise RegenError(f"kubelet config {where}{key} is not a map")
    return value


def _kubeadm_kubelet_defaults(cfg: dict[str, Any], c: _Cluster | None) -> dict[str, Any]:
    """kubeadm's defaults for the kubelet component config, applied when it reads the ConfigMap
    (`componentconfigs/kubelet.go` Default, *inferred* from the code): unset fields only, except
    rotateCertificates, which kubeadm forces to true."""
    cert_dir = c.cert_dir if c else "/etc/kubernetes/pki"
    subnet = (c.service_subnet if c else "10.96.0.0/12").split(",")[0]
    try:
        dns_ip = str(ipaddress.ip_network(subnet, strict=False)[10])  # constants.GetDNSIP
    except (ValueError, IndexError):
        dns_ip = "10.96.0.10"
    out = copy.deepcopy(cfg)
    auth = _submap(out, "authentication", "")
    if not out.get("staticPodPath"):
        out["staticPodPath"] = "/etc/kubernetes/manifests"
    if out.get("clusterDNS") is None:
        out["clusterDNS"] = [dns_ip]
    if not out.get("clusterDomain"):
        out["clusterDomain"] = c.dns_domain if c else "cluster.local"
    x509 = _submap(auth, "x509", "authentication.")
    if not x509.get("clientCAFile"):
        x509["clientCAFile"] = f"{cert_dir}/ca.crt"
    anonymous = _submap(auth, "anonymous", "authentication.")
    if anonymous.get("enabled") is None:
        anonymous["enabled"] = False
    authorization = _submap(out, "authorization", "")
    if not authorization.get("mode"):
        authorization["mode"] = "Webhook"
    webhook = _submap(auth, "webhook", "authentication.")
    if webhook.get("enabled") is None:
        webhook["enabled"] = True
    if not out.get("healthzBindAddress"):
        out["healthzBindAddress"] = "127.0.0.1"
    if out.get("healthzPort") is None:
        out["healthzPort"] = 10248
    out["rotateCertificates"] = True
    if not out.get("cgroupDriver"):
        out["cgroupDriver"] = "systemd"
    return out


def render_kubelet_config(
    kubelet_configmap_text: str,
    patches_dir: Path | None = None,
    *,
    cluster_config_text: str | None = None,
    cri_socket: str | None = DEFAULT_CRI_SOCKET,
) -> str:
    """`/var/lib/kubelet/config.yaml` as `kubeadm upgrade` rewrites it from kubelet-config.

    The ConfigMap's KubeletConfiguration (or the bare document), kubeadm's defaults for unset
    fields (from `cluster_config_text` when given), the kubeletconfiguration patches, then the
    node's CRI socket as instance-config.yaml's strategic merge (NodeLocalCRISocket; None: skip).
    """
    cfg = _document(kubelet_configmap_text, "kubelet", "kubelet config")
    if cfg.get("kind") != "KubeletConfiguration":
        raise RegenError(f"kubelet config kind {cfg.get('kind')!r} is not KubeletConfiguration")
    cluster = _parse_cluster(cluster_config_text) if cluster_config_text is not None else None
    cfg = _fill(_kubeadm_kubelet_defaults(cfg, cluster), _KUBELET_ALWAYS)
    patch_sets = _load_patches(patches_dir) if patches_dir is not None else []
    cfg = _apply_patches(cfg, "kubeletconfiguration", patch_sets, {})
    if cri_socket is not None:
        cfg = _smp_map(cfg, {"containerRuntimeEndpoint": cri_socket}, {})
    return to_kubeadm_yaml(cfg)


# --- patches (kubeadm `util/patches`) --------------------------------------------------------


@dataclass(frozen=True)
class _PatchSet:
    path: Path
    target: str
    kind: str  # json | merge | strategic
    docs: tuple[Any, ...]


def _walk(directory: Path) -> Iterator[Path]:
    """Files in lexical order, descending into sub-directories as Go's filepath.Walk does."""
    for entry in sorted(directory.iterdir(), key=lambda p: p.name):
        if entry.is_dir():
            yield from _walk(entry)
        elif entry.is_file():
            yield entry


def _load_patches(directory: Path) -> list[_PatchSet]:
    """Every patch file of a directory, in the order kubeadm applies them."""
    if not directory.is_dir():
        raise RegenError("could not list patch files: not a directory", directory)
    sets = []
    for path in _walk(directory):
        if not re.fullmatch(r".+\.(json|yaml)", path.name):
            continue  # "[patches] Ignoring file": wrong extension
        match = _PATCH_NAME.match(path.name)
        if match is None:
            continue  # unknown target: ignored too
        if match.group(3) and not match.group(4):
            raise RegenError(
                "unknown or missing patch type after '+', must be one of json, merge, strategic",
                path,
            )
        try:
            text = path.read_text(encoding="utf-8")
            if not text.strip():
                continue
            docs = tuple(d for d in safeyaml.load_all(text) if d is not None)
        except Exception as exc:  # OSError, UnicodeDecodeError, YAMLError, YamlLimitError
            raise RegenError(f"could not read the patch: {_first_line(exc)}", path) from exc
        sets.append(_PatchSet(path, match.group(1), match.group(4) or "strategic", docs))
    return sets


def _apply_patches(
    target: dict[str, Any], name: str, sets: Sequence[_PatchSet], schema: _Schema
) -> dict[str, Any]:
    result = target
    for patch_set in (s for s in sets if s.target == name):
        for doc in patch_set.docs:
            try:
                if patch_set.kind == "json":
                    result = _json_patch(result, doc)
                elif not isinstance(doc, dict):
                    raise _PatchFailed(f"a {patch_set.kind} patch must be a mapping")
                elif patch_set.kind == "merge":
                    result = _merge_patch(result, doc)
                else:
                    result = _smp_map(result, doc, schema)
            except _PatchFailed as exc:
                raise RegenError(
                    f"could not apply the {patch_set.kind} patch to target {name!r}: {exc}",
                    patch_set.path,
                ) from exc
            if not isinstance(result, dict):
                raise RegenError(f"the patched {name} is no longer a mapping", patch_set.path)
    return result


class _PatchFailed(Exception):
    pass


def _drop_directives(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _drop_directives(v) for k, v in value.items() if not str(k).startswith("$")}
    if isinstance(value, list):
        return [_drop_directives(v) for v in value]
    return value


# RFC 6902 (evanphx/json-patch semantics: a missing parent fails the whole patch).


def _tokens(pointer: Any) -> list[str]:
    if not isinstance(pointer, str) or (pointer and not pointer.startswith("/")):
        raise _PatchFailed(f"invalid JSON pointer {pointer!r}")
    return [t.replace("~1", "/").replace("~0", "~") for t in pointer.split("/")[1:]]


def _index(token: str, items: list, *, allow_end: bool) -> int:
    if token == "-" and allow_end:
        return len(items)
    if not re.fullmatch(r"0|[1-9]\d*", token):
        raise _PatchFailed(f"invalid array index {token!r}")
    index = int(token)
    if index > len(items) or (index == len(items) and not allow_end):
        raise _PatchFailed(f"array index {index} out of bounds")
    return index


def _parent(doc: Any, tokens: list[str], pointer: str) -> Any:
    node = doc
    for token in tokens[:-1]:
        if isinstance(node, dict) and token in node:
            node = node[token]
        elif (
            isinstance(node, list) and re.fullmatch(r"0|[1-9]\d*", token) and int(token) < len(node)
        ):
            node = node[int(token)]
        else:
            raise _PatchFailed(f"doc is missing path: {pointer!r}")
    if not isinstance(node, (dict, list)):
        raise _PatchFailed(f"doc is missing path: {pointer!r}")
    return node


def _get(doc: Any, pointer: str) -> Any:
    tokens = _tokens(pointer)
    if not tokens:
        return doc
    parent, last = _parent(doc, tokens, pointer), tokens[-1]
    if isinstance(parent, dict):
        if last not in parent:
            raise _PatchFailed(f"doc is missing key: {pointer!r}")
        return parent[last]
    return parent[_index(last, parent, allow_end=False)]


def _put(doc: Any, pointer: str, value: Any, *, replace: bool) -> Any:
    tokens = _tokens(pointer)
    if not tokens:
        return value
    parent, last = _parent(doc, tokens, pointer), tokens[-1]
    if isinstance(parent, dict):
        if replace and last not in parent:
            raise _PatchFailed(f"replace: doc is missing key: {pointer!r}")
        parent[last] = value
    elif replace:
        parent[_index(last, parent, allow_end=False)] = value
    else:
        parent.insert(_index(last, parent, allow_end=True), value)
    return doc


def _remove(doc: Any, pointer: str) -> Any:
    tokens = _tokens(pointer)
    if not tokens:
        raise _PatchFailed("cannot remove the whole document")
    parent, last = _parent(doc, tokens, pointer), tokens[-1]
    if isinstance(parent, dict):
        if last not in parent:
            raise _PatchFailed(f"remove: doc is missing key: {pointer!r}")
        del parent[last]
    else:
        del parent[_index(last, parent, allow_end=False)]
    return doc


def _json_patch(doc: Any, ops: Any) -> Any:
    if not isinstance(ops, list):
        raise _PatchFailed("a json patch must be a list of operations")
    doc = copy.deepcopy(doc)
    for op in ops:
        if not isinstance(op, dict) or "op" not in op or "path" not in op:
            raise _PatchFailed(f"invalid operation {op!r}")
        kind, path = op["op"], op["path"]
        if kind in ("add", "replace", "test") and "value" not in op:
            raise _PatchFailed(f"{kind} {path}: missing value")
        if kind == "add":
            doc = _put(doc, path, copy.deepcopy(op["value"]), replace=False)
        elif kind == "replace":
            doc = _put(doc, path, copy.deepcopy(op["value"]), replace=True)
        elif kind == "remove":
            doc = _remove(doc, path)
        elif kind in ("move", "copy"):
            value = copy.deepcopy(_get(doc, op.get("from", "")))
            if kind == "move":
                doc = _remove(doc, op.get("from", ""))
            doc = _put(doc, path, value, replace=False)
        elif kind == "test":
            if _get(doc, path) != op["value"]:
                raise _PatchFailed(f"test {path}: value differs")
        else:
            raise _PatchFailed(f"unknown operation {kind!r}")
    return doc


def _merge_patch(target: Any, patch: Any) -> Any:
    """RFC 7386: null deletes, maps merge, everything else (lists too) replaces."""
    if not isinstance(patch, dict):
        return copy.deepcopy(patch)
    result = dict(target) if isinstance(target, dict) else {}
    for key, value in patch.items():
        if value is None:
            result.pop(key, None)
        else:
            result[key] = _merge_patch(result.get(key), value)
    return result


# Strategic merge patch (k8s.io/apimachinery strategicpatch `mergeMap`/`mergeSlice`), with the
# patch strategies of the v1.Pod fields a static pod uses; every other list is replaced.


@dataclass(frozen=True)
class _Field:
    merge: bool = False  # patchStrategy "merge"; otherwise the list is replaced
    key: str | None = None  # patchMergeKey of a list of maps; None for a list of scalars
    sub: Mapping[str, _Field] = field(default_factory=dict)


_Schema = Mapping[str, _Field]
_CONTAINER: _Schema = {
    "ports": _Field(True, "containerPort"),
    "env": _Field(True, "name"),
    "volumeMounts": _Field(True, "mountPath"),
    "volumeDevices": _Field(True, "devicePath"),
}
_POD_SCHEMA: _Schema = {
    "metadata": _Field(
        sub={
            "finalizers": _Field(True),
            "ownerReferences": _Field(True, "uid"),
        }
    ),
    "spec": _Field(
        sub={
            "containers": _Field(True, "name", _CONTAINER),
            "initContainers": _Field(True, "name", _CONTAINER),
            "ephemeralContainers": _Field(True, "name", _CONTAINER),
            "volumes": _Field(True, "name"),
            "imagePullSecrets": _Field(True, "name"),
            "hostAliases": _Field(True, "ip"),
            "topologySpreadConstraints": _Field(True, "topologyKey"),
            "schedulingGates": _Field(True, "name"),
            "resourceClaims": _Field(True, "name"),
        }
    ),
}


def _kind(value: Any) -> str:
    """The Go type a decoded JSON value has (every number is a float64)."""
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, (int, float)):
        return "number"
    return {dict: "map", list: "list", str: "string"}.get(type(value), "null")


def _smp_map(original: Mapping[str, Any] | None, patch: Mapping[str, Any], schema: _Schema) -> dict:
    patch = dict(patch)
    if "$patch" in patch:
        directive = patch.pop("$patch")
        if directive == "replace":
            return patch
        if directive == "delete":
            return {}
        raise _PatchFailed(f"unknown $patch directive {directive!r} in a map")
    result = dict(original or {})
    if "$retainKeys" in patch:
        keep = patch.pop("$retainKeys")
        if not isinstance(keep, list):
            raise _PatchFailed("$retainKeys must be a list")
        for key, value in patch.items():
            if value is not None and not key.startswith("$") and key not in keep:
                raise _PatchFailed(f"{key} is in the patch but not in $retainKeys")
        result = {k: v for k, v in result.items() if k in keep}
    for directive in [k for k in patch if k.startswith("$setElementOrder/")]:
        order, name = patch.pop(directive), directive.split("/", 1)[1]
        if not isinstance(order, list):
            raise _PatchFailed(f"{directive} must be a list")
        rule = schema.get(name, _Field())
        old, new = result.get(name), patch.pop(name, None)
        if old is None and new is None:
            continue
        merged = new if old is None else old if new is None else _smp_list(old, new, rule, False)
        result[name] = _order(merged, order, old or [], rule.key)
    for key, value in patch.items():
        is_delete_list = key.startswith("$deleteFromPrimitiveList/")
        if is_delete_list:
            key = key.split("/", 1)[1]
            if key not in result:
                continue
        if value is None:
            result.pop(key, None)
            continue
        if key not in result or _kind(result[key]) != _kind(value):
            result[key] = value  # taken as is, directives and all (as mergeMap does)
            continue
        rule = schema.get(key, _Field())
        if isinstance(value, dict):
            result[key] = _smp_map(result[key], value, rule.sub)
        elif isinstance(value, list):
            result[key] = _smp_list(result[key], value, rule, is_delete_list)
        else:
            result[key] = value
    return result


def _smp_list(original: list, patch: list, rule: _Field, is_delete_list: bool) -> list:
    if not rule.merge:
        return patch
    if not original and not patch:
        return original
    kinds = {_kind(item) for item in [*original, *patch]}
    if len(kinds) > 1 or "list" in kinds:
        raise _PatchFailed("list element types are not identical (or a list of lists)")
    if kinds != {"map"}:
        if is_delete_list:
            return [item for item in original if item not in patch]
        merged = []
        for item in [*original, *patch]:
            if item not in merged:
                merged.append(item)
        return _order(merged, patch, original, None)
    key = rule.key
    if key is None:
        raise _PatchFailed("cannot merge lists without merge key")
    plain, replace = [], False
    for item in patch:
        if "$patch" not in item:
            plain.append(item)
        elif item["$patch"] == "delete":
            if key not in item:
                raise _PatchFailed(f"map: {item} does not contain declared merge key: {key}")
            original = [o for o in original if o.get(key) != item[key]]
        elif item["$patch"] == "replace":
            replace = True
        elif item["$patch"] == "merge":
            raise _PatchFailed("merging lists cannot yet be specified in the patch")
        else:
            raise _PatchFailed(f"unknown $patch directive {item['$patch']!r} in a list")
    if replace:
        return plain
    merged = list(original)
    for item in plain:
        if key not in item:
            raise _PatchFailed(f"map: {item} does not contain declared merge key: {key}")
        at = _position(merged, item, key)
        if at >= 0:
            merged[at] = _smp_map(merged[at], item, rule.sub)
        else:
            merged.append(item)
    return _order(merged, plain, original, key)


def _position(order: Sequence[Any], item: Any, key: str | None) -> int:
    """Where `item` is in `order`: by value, or by its merge key (a `$setElementOrder` entry is
    a map holding only the key)."""
    for i, candidate in enumerate(order):
        if key is None:
            if candidate == item:
                return i
        elif isinstance(candidate, dict) and key in candidate and candidate[key] == item.get(key):
            return i
    return -1


def _order(merged: list, patch_order: list, server_order: list, key: str | None) -> list:
    """`normalizeElementOrder`: patch items in patch order, server-only items in server order,
    interleaved by their positions in the server list; an item new to the server goes first."""
    in_patch = sorted(
        (m for m in merged if _position(patch_order, m, key) >= 0),
        key=lambda m: _position(patch_order, m, key),
    )
    server_only = sorted(
        (m for m in merged if _position(patch_order, m, key) < 0),
        key=lambda m: _position(server_order, m, key),
    )
    out, i, j = [], 0, 0
    while i < len(server_only) or j < len(in_patch):
        if j >= len(in_patch):
            out.append(server_only[i])
            i += 1
            continue
        if i < len(server_only):
            left = _position(server_order, server_only[i], key)
            right = _position(server_order, in_patch[j], key)
            if 0 <= left < right:
                out.append(server_only[i])
                i += 1
                continue
        out.append(in_patch[j])
        j += 1
    return out


# --- sigs.k8s.io/yaml layout ------------------------------------------------------------------

_YAML11_SPECIAL = re.compile(
    r"""(?x)
    y|Y|yes|Yes|YES|n|N|no|No|NO|true|True|TRUE|false|False|FALSE|on|On|ON|off|Off|OFF
    |~|null|Null|NULL|<<
    |[-+]?(?:0b[01_]+|0x[0-9a-fA-F_]+|0o?[0-7_]+|[0-9][0-9_]*)
    |[-+]?(?:\.[0-9]+|[0-9][0-9_]*(?:\.[0-9_]*)?)(?:[eE][-+]?[0-9]+)?
    |[-+]?\.(?:inf|Inf|INF)|\.(?:nan|NaN|NAN)
    |[-+]?[0-9][0-9_]*(?::[0-5]?[0-9])+(?:\.[0-9_]*)?
    |\d{4}-\d\d?-\d\d?
     (?:(?:[Tt]|[ \t]+)\d\d?:\d\d:\d\d(?:\.\d*)?(?:[ \t]*(?:Z|[-+]\d\d?(?::\d\d)?))?)?
    """
)


def _plain_allowed(text: str) -> bool:
    """libyaml's analysis for a block-context plain scalar."""
    if text.startswith((" ", "---", "...")) or text.endswith((" ", ":")):
        return False
    if text[0] in "?:-" and (len(text) == 1 or text[1] == " "):
        return False
    if text[0] in ",[]{}#&*!|>'\"%@`":
        return False
    return ": " not in text and " #" not in text


def _printable(text: str) -> bool:
    return all(ch == "\n" or (ch.isprintable() and ch != "\t") for ch in text)


def _scalar(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        if math.isnan(value):
            return ".NaN"
        if math.isinf(value):
            return ".Inf" if value > 0 else "-.Inf"
        text = repr(value)
        return text[:-2] if text.endswith(".0") else text
    text = str(value)
    # A string that would read back as another type is double-quoted (go-yaml's encoder); one
    # that merely cannot be plain is single-quoted (the emitter's fallback).
    if text == "" or _YAML11_SPECIAL.fullmatch(text) or "\n" in text or not _printable(text):
        return json.dumps(text, ensure_ascii=False)
    if _plain_allowed(text):
        return text
    return "'" + text.replace("'", "''") + "'"


def _natural_less(a: str, b: str) -> int:
    """go-yaml v2's key order: letters by code point, non-letters before letters, digit runs
    by numeric value."""
    for i in range(min(len(a), len(b))):
        x, y = a[i], b[i]
        if x == y:
            continue
        xl, yl = x.isalpha(), y.isalpha()
        if xl and yl:
            return -1 if x < y else 1
        if xl or yl:
            return 1 if xl else -1
        an = bn = 0
        if x == "0" or y == "0":
            j = i - 1
            while j >= 0 and a[j].isdigit():
                if a[j] != "0":
                    an = bn = 1
                    break
                j -= 1
        ai, bi = i, i
        while ai < len(a) and a[ai].isdigit():
            an = an * 10 + int(a[ai])
            ai += 1
        while bi < len(b) and b[bi].isdigit():
            bn = bn * 10 + int(b[bi])
            bi += 1
        if an != bn:
            return -1 if an < bn else 1
        if ai != bi:
            return -1 if ai < bi else 1
        return -1 if x < y else 1
    return (len(a) > len(b)) - (len(a) < len(b))


def _block(value: Any, indent: int) -> list[str]:
    pad = " " * indent
    lines: list[str] = []
    if isinstance(value, dict):
        order = functools.cmp_to_key(_natural_less)
        for key, item in sorted(((str(k), v) for k, v in value.items()), key=lambda i: order(i[0])):
            head = f"{pad}{_scalar(key)}:"
            if isinstance(item, dict) and item:
                lines += [head, *_block(item, indent + 2)]
            elif isinstance(item, list) and item:
                lines += [head, *_block(item, indent)]  # go-yaml does not indent a sequence
            else:
                lines.append(f"{head} {_inline(item)}")
        return lines
    for item in value:
        if isinstance(item, (dict, list)) and item:
            nested = _block(item, indent + 2)
            lines += [f"{pad}- {nested[0].lstrip()}", *nested[1:]]
        else:
            lines.append(f"{pad}- {_inline(item)}")
    return lines


def _inline(value: Any) -> str:
    if isinstance(value, dict):
        return "{}"
    if isinstance(value, list):
        return "[]"
    return _scalar(value)


def to_kubeadm_yaml(data: Mapping[str, Any]) -> str:
    """YAML as kubeadm writes it through sigs.k8s.io/yaml: sorted keys, block style."""
    return "\n".join(_block(dict(data), 0)) + "\n"
