"""`cis-tui sandbox upgrade DIR [--to VERSION]`: what `kubeadm upgrade apply` does to the node.

The steps of `kubeadm upgrade apply` on a single control-plane node
(../shared/ref/kubeadm-config.md §3 and §6, static-pods.md §3), in kubeadm's order:

1. read kube-system/kubeadm-config and kubelet-config from the sandbox's ConfigMap store;
   with `--to`, the in-memory ClusterConfiguration gets the new kubernetesVersion;
2. regenerate the static pods with `persist.regen` for the node kubeadm's reference files were
   written for (cp-1, 10.0.0.10, kubeadm's ports, node paths), in the argument order of the
   target release, with the patches directory DIR/etc/kubernetes/patches when it exists; then map
   them onto the sandbox (host paths under DIR, 127.0.0.1, its own ports) like `sandbox create`;
3. etcd first, only when its image tag goes up (its data directory is backed up first); then the
   API server, controller manager and scheduler: a manifest that differs semantically from the
   current one replaces it (0600, atomic rename), the old one kept in
   DIR/etc/kubernetes/tmp/kubeadm-backup-manifests-<timestamp>/;
4. upload-config: with `--to`, the new kubernetesVersion is stored back;
5. the kubelet config is rewritten from kubelet-config (the old one copied to
   DIR/etc/kubernetes/tmp/kubeadm-kubelet-config<random>/config.yaml); kubeadm-flags.env stays.

Nothing is restarted here: the node agent restarts a pod whose manifest changed, as a kubelet
does. kubeadm does not restart the kubelet either (`restart_kubelet=True` does what the docs'
`systemctl restart kubelet` does).

Not emulated: the preflight and version-skew checks beyond "one minor at a time"; the waits for
each new pod and the rollback after one fails its health check (a failure to move files is rolled
back); kubeadm >= v1.31 re-uploading a v1beta3 ClusterConfiguration as v1beta4 (the stored format
is kept); the etcd data backup when etcd is not upgraded (kubeadm copies it before comparing).
"""

from __future__ import annotations

import json
import os
import re
import shutil
import tempfile
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path

from cis_tui import safeyaml
from cis_tui.errors import UserError
from cis_tui.persist.regen import (
    CA_CERT_DIRS,
    DEFAULT_CRI_SOCKET,
    NodeInputs,
    era_for,
    etcd_image_tag,
    render_kubelet_config,
    render_pods,
)
from cis_tui.sandbox import configmaps as cm
from cis_tui.sandbox import control
from cis_tui.sandbox import manifests as mf
from cis_tui.sandbox.create import (
    MAPPED_PORTS,
    REFERENCE_ADDRESS,
    sandbox_kubelet_config,
    sandbox_manifest,
    write_ports,
)
from cis_tui.sandbox.paths import NODE_NAME, STATIC_COMPONENTS, SandboxPaths
from cis_tui.sandbox.pki import write_file

#: kubeadm upgrades etcd first, then these (`constants.ControlPlaneComponents`).
CONTROL_PLANE: tuple[str, ...] = ("kube-apiserver", "kube-controller-manager", "kube-scheduler")
#: The ports `sandbox_manifest` and `sandbox_kubelet_config` map kubeadm's onto.
NEEDED_PORTS: tuple[str, ...] = MAPPED_PORTS
_VERSION = re.compile(r"v?1\.(\d+)\.(\d+)(?:-[0-9A-Za-z.-]+)?(?:\+[0-9A-Za-z.-]+)?")


class UpgradeError(UserError):
    """The sandbox cannot be upgraded as asked (or a step of the upgrade failed)."""


@dataclass(frozen=True)
class Regeneration:
    """What `kubeadm upgrade apply` would write to the sandbox node, mapped onto the sandbox."""

    stored_version: str  # kubernetesVersion in kube-system/kubeadm-config
    version: str  # the version upgraded to (the stored one without --to)
    era: str  # kubeadm's extraArgs order for that release (`regen.era_for`)
    cluster_config: str  # the ClusterConfiguration as upload-config stores it
    patches: Path | None  # the patches directory applied, if any
    ports: Mapping[str, int]
    ports_recovered: bool  # ports.json was missing: read from the manifests instead
    manifests: Mapping[str, str]  # component -> manifest (etcd whatever its tag)
    kubelet_config: str


def regenerate(directory: Path, to_version: str | None = None) -> Regeneration:
    """The manifests and kubelet config kubeadm would write for the sandbox at DIR (like
    `kubeadm upgrade diff`); nothing is written."""
    return _regenerate(control.sandbox_paths(directory), to_version)


def upgrade_sandbox(
    directory: Path,
    to_version: str | None = None,
    *,
    restart_kubelet: bool = False,
    echo: Callable[[str], None] | None = None,
) -> list[str]:
    """Upgrade the sandbox at DIR as `kubeadm upgrade apply VERSION` upgrades a node; the lines
    saying what was done (each also passed to `echo` as it happens).

    `to_version`: the Kubernetes version to go to (default: the stored one, which regenerates
    the node from its stored configuration); `restart_kubelet`: restart the kubelet through the
    running agent afterwards (it then reads its rewritten config).
    """
    lines: list[str] = []

    def say(line: str) -> None:
        lines.append(line)
        if echo is not None:
            echo(line)

    paths = control.sandbox_paths(directory)
    if restart_kubelet and control.agent_pid(paths) is None:
        raise UpgradeError("--restart-kubelet: no agent is running for this sandbox", paths.root)
    current = {comp: _current_manifest(paths, comp) for comp in STATIC_COMPONENTS}
    plan = _regenerate(paths, to_version)
    if to_version is not None:
        say(f'[upgrade/version] You have chosen to change the cluster version to "{plan.version}"')
    else:
        say(f'[upgrade/version] Regenerating the node for the stored version "{plan.version}"')
    if plan.ports_recovered:
        write_ports(paths, plan.ports)
        say(f"[sandbox] Ports recovered from the manifests and stored in {paths.ports}")
    if plan.patches is not None:
        say(f'[patches] Reading patches from "{plan.patches}"')
    say(
        f"[upgrade/staticpods] Regenerated the static pods as kubeadm {plan.version} writes them "
        f"(extraArgs order: {plan.era})"
    )
    with _StaticPodUpgrade(paths, say) as upgrade:
        if "etcd" in plan.manifests:
            _upgrade_etcd(upgrade, paths, current["etcd"], plan.manifests["etcd"], say)
        else:
            say("[upgrade/etcd] External etcd in ClusterConfiguration, etcd.yaml left alone")
        for comp in CONTROL_PLANE:
            upgrade.component(comp, current[comp], plan.manifests[comp])

    if to_version is not None:
        _upload_config(paths, plan.cluster_config)
        say(
            f'[upload-config] Storing the configuration used in ConfigMap "{cm.KUBEADM_CONFIG}" '
            f'in the "{cm.NAMESPACE}" Namespace'
        )
    _write_kubelet_config(paths, plan.kubelet_config, say)
    say("[upgrade/kubelet-config] The kubelet configuration for this node was upgraded")
    if restart_kubelet:
        if control.restart_kubelet(paths.root) != 0:
            raise UpgradeError("the node was upgraded but the kubelet did not restart", paths.root)
        say("[kubelet] Restarted the kubelet (systemctl restart kubelet)")
    return lines


def _regenerate(paths: SandboxPaths, to_version: str | None) -> Regeneration:
    cluster = _configmap(paths, cm.KUBEADM_CONFIG, "ClusterConfiguration")
    kubelet = _configmap(paths, cm.KUBELET_CONFIG, "kubelet")
    stored = _stored_version(cluster)
    target = stored
    if to_version is not None:
        target = _target_version(stored, to_version)
        cluster = set_kubernetes_version(cluster, target)
    era = era_for(target)
    patches = paths.patches if paths.patches.is_dir() else None
    ports, recovered = sandbox_ports(paths)
    rendered = render_pods(
        _with_kubeadm_etcd(cluster, target), reference_inputs(paths), era, patches
    )
    manifests = {
        comp: sandbox_manifest(comp, text, paths, ports) for comp, text in rendered.items()
    }
    return Regeneration(
        stored_version=stored,
        version=target,
        era=era,
        cluster_config=cluster,
        patches=patches,
        ports=ports,
        ports_recovered=recovered,
        manifests=manifests,
        kubelet_config=_kubelet_text(paths, kubelet, cluster, target, patches, ports),
    )


# -- inputs -------------------------------------------------------------------------------
def _first(exc: BaseException) -> str:
    """An exception's first line (ruamel's errors span several)."""
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


def _configmap(paths: SandboxPaths, name: str, key: str) -> str:
    """The text under `key` of kube-system/`name` in the sandbox's store."""
    try:
        obj = cm.read_configmap(paths, cm.NAMESPACE, name)
    except cm.StoreError as exc:
        raise UpgradeError(str(exc)) from None
    if obj is None:
        raise UpgradeError(
            f"{cm.NAMESPACE}/{name}: no such ConfigMap in the sandbox's store",
            paths.apiserver_store,
        )
    value = (obj.get("data") or {}).get(key)
    if not isinstance(value, str):
        raise UpgradeError(
            f"unexpected error when reading {name} ConfigMap: {key} key value pair missing",
            paths.apiserver_store,
        )
    return value


def _stored_version(cluster: str) -> str:
    try:
        doc = safeyaml.load(cluster)
    except Exception as exc:  # ruamel's YAMLError, YamlLimitError
        raise UpgradeError(f"kube-system/kubeadm-config is not valid YAML: {_first(exc)}") from None
    version = doc.get("kubernetesVersion") if isinstance(doc, dict) else None
    if not isinstance(version, str) or not _VERSION.fullmatch(version):
        raise UpgradeError(
            f"kube-system/kubeadm-config: kubernetesVersion {version!r} is not v1.MINOR.PATCH"
        )
    return version if version.startswith("v") else f"v{version}"


def _target_version(stored: str, requested: str) -> str:
    """`--to`, checked against kubeadm's version skew policy (one minor at a time)."""
    m = _VERSION.fullmatch(requested.strip())
    if m is None:
        raise UpgradeError(f"--to {requested!r}: not a Kubernetes version such as v1.35.1")
    target = requested.strip()
    target = target if target.startswith("v") else f"v{target}"
    old = _VERSION.fullmatch(stored)
    assert old is not None
    old_minor, new_minor = int(old[1]), int(m[1])
    if new_minor > old_minor + 1:
        raise UpgradeError(
            f'Specified version to upgrade to "{target}" is too high; '
            "kubeadm can upgrade only 1 minor version at a time"
        )
    if new_minor < old_minor - 1:
        raise UpgradeError(
            f'Specified version to downgrade to "{target}" is too low; '
            "kubeadm can downgrade only 1 minor version at a time"
        )
    return target


def set_kubernetes_version(cluster: str, version: str) -> str:
    """The ClusterConfiguration text with another kubernetesVersion; nothing else changes."""
    new, count = re.subn(
        r"^kubernetesVersion:.*$", f"kubernetesVersion: {version}", cluster, count=1, flags=re.M
    )
    if count != 1:
        raise UpgradeError("kube-system/kubeadm-config: no top-level kubernetesVersion to change")
    return new


def _with_kubeadm_etcd(cluster: str, version: str) -> str:
    """The ClusterConfiguration to render: regen's etcd table starts at v1.33, so for a release
    whose etcd the sandbox knows (its scenarios' v1.29) the tag that kubeadm pins is set."""
    from cis_tui.sandbox.scenarios import KUBEADM_ETCD  # create imports scenarios

    minor = ".".join(version.lstrip("v").split(".")[:2])
    pinned = KUBEADM_ETCD.get(minor)
    doc = safeyaml.load(cluster)
    etcd = doc.get("etcd")
    local = etcd.get("local") if isinstance(etcd, dict) else None
    if pinned is None or not isinstance(local, dict) or local.get("imageTag"):
        return cluster
    tag = "{}.{}.{}-0".format(*pinned)
    if etcd_image_tag(cluster) == tag:
        return cluster
    local["imageTag"] = tag
    return cm.dump_kubeadm_yaml(doc)


def reference_inputs(paths: SandboxPaths) -> NodeInputs:
    """The node facts kubeadm reads besides ClusterConfiguration, for the node the sandbox's
    kubeadm files were written for: cp-1 at 10.0.0.10:6443, no proxy variables, and the CA
    bundle directories that exist on this node (kubeadm stats the host's)."""
    return NodeInputs(
        node_name=NODE_NAME,
        advertise_address=REFERENCE_ADDRESS,
        bind_port=6443,
        existing_host_paths=frozenset(d for d in CA_CERT_DIRS if paths.host(d).is_dir()),
        external_ca=not (paths.pki / "ca.key").is_file(),
    )


def sandbox_ports(paths: SandboxPaths) -> tuple[dict[str, int], bool]:
    """The ports chosen at create (DIR/ports.json), and False; for a sandbox created before
    they were stored, the ports its manifests and kubelet config use, and True."""
    try:
        data = json.loads(paths.ports.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return recover_ports(paths), True
    except (OSError, ValueError) as exc:
        raise UpgradeError(f"cannot read the sandbox's ports: {exc}", paths.ports) from None
    if not isinstance(data, dict) or not all(
        isinstance(data.get(name), int) for name in NEEDED_PORTS
    ):
        raise UpgradeError(
            f"needs an integer port for each of {', '.join(NEEDED_PORTS)}", paths.ports
        )
    return dict(data), False


def recover_ports(paths: SandboxPaths) -> dict[str, int]:
    """The sandbox's ports as its current manifests and kubelet config use them."""

    def port_of(component: str, flag: str) -> int:
        path = paths.manifest(component)
        try:
            value = mf.flags(path.read_text(encoding="utf-8")).get(flag) or ""
        except (OSError, ValueError) as exc:
            raise UpgradeError(f"cannot recover the sandbox's ports: {exc}", path) from None
        # The first URL's port (etcd's --listen-*-urls), or the bare port (--secure-port).
        m = (
            re.match(r"\w+://[^/,]*:(\d+)", value)
            if "://" in value
            else re.fullmatch(r"(\d+)", value)
        )
        if m is None:
            raise UpgradeError(f"cannot recover the sandbox's ports: no port in {flag}", path)
        return int(m[1])

    ports = {
        "etcd-client": port_of("etcd", "--listen-client-urls"),
        "etcd-peer": port_of("etcd", "--listen-peer-urls"),
        "etcd-metrics": port_of("etcd", "--listen-metrics-urls"),
        **{comp: port_of(comp, "--secure-port") for comp in CONTROL_PLANE},
    }
    try:
        kubelet = safeyaml.load(paths.kubelet_config.read_text(encoding="utf-8"))
    except Exception as exc:  # OSError, ruamel's YAMLError
        raise UpgradeError(
            f"cannot recover the kubelet's ports: {_first(exc)}", paths.kubelet_config
        ) from None
    for name, key in (
        ("kubelet-healthz", "healthzPort"),
        ("kubelet", "port"),
        ("kubelet-read-only", "readOnlyPort"),  # only a node that serves it has one
    ):
        value = kubelet.get(key) if isinstance(kubelet, dict) else None
        if isinstance(value, int) and value > 0:
            ports[name] = value
        elif name != "kubelet-read-only":
            raise UpgradeError(
                f"cannot recover the kubelet's ports: no {key}", paths.kubelet_config
            )
    return ports


def _current_manifest(paths: SandboxPaths, component: str) -> str:
    path = paths.manifest(component)
    try:
        text = path.read_text(encoding="utf-8")
        pod = safeyaml.load(text)
    except FileNotFoundError:
        raise UpgradeError("static pod manifest not found", path) from None
    except Exception as exc:  # OSError, ruamel's YAMLError
        raise UpgradeError(f"cannot read the static pod manifest: {_first(exc)}", path) from None
    if not isinstance(pod, dict) or pod.get("kind") != "Pod":
        raise UpgradeError("not a Pod manifest", path)
    return text


# -- the static pods ----------------------------------------------------------------------
def _image_tag(text: str) -> str:
    pod = safeyaml.load(text)
    image = str(pod["spec"]["containers"][0].get("image", ""))
    return image.rpartition(":")[2] if ":" in image.rpartition("/")[2] else ""


def _semver(tag: str) -> tuple[int, int, int] | None:
    m = re.match(r"v?(\d+)\.(\d+)\.(\d+)", tag)
    return (int(m[1]), int(m[2]), int(m[3])) if m else None


def _upgrade_etcd(
    upgrade: _StaticPodUpgrade,
    paths: SandboxPaths,
    current: str,
    wanted: str,
    say: Callable[[str], None],
) -> None:
    """kubeadm's `performEtcdStaticPodUpgrade`: only a newer etcd image replaces the manifest."""
    old_tag, new_tag = _image_tag(current), _image_tag(wanted)
    old, new = _semver(old_tag), _semver(new_tag)
    if old_tag == new_tag:
        say(f"[upgrade/etcd] etcd stays at {old_tag}: etcd.yaml is not regenerated")
        return
    if old is not None and new is not None and new < old:
        say(
            "[upgrade/etcd] Non fatal issue encountered during upgrade: the desired etcd version "
            f'"{new_tag}" is older than the currently installed "{old_tag}". '
            "Skipping etcd upgrade"
        )
        return
    backup = upgrade.timestamped("kubeadm-backup-etcd") / "etcd"
    shutil.copytree(paths.etcd_data, backup, symlinks=True)
    say(f'[upgrade/etcd] Backed up the etcd data directory to "{backup}"')
    upgrade.component("etcd", current, wanted)


class _StaticPodUpgrade:
    """One run's directories (kubeadm's path manager) and its components, in order; a failure
    to move files puts back every manifest this run replaced, as `rollbackOldManifests` does."""

    def __init__(self, paths: SandboxPaths, say: Callable[[str], None]) -> None:
        self.paths = paths
        self.say = say
        self.stamp = time.strftime("%Y-%m-%d-%H-%M-%S")
        self.backup_dir: Path | None = None
        self.replaced: dict[str, Path] = {}  # component -> its backup

    def __enter__(self) -> _StaticPodUpgrade:
        self.paths.kubeadm_tmp.mkdir(mode=0o700, parents=True, exist_ok=True)
        self.new_dir = Path(
            tempfile.mkdtemp(prefix="kubeadm-upgraded-manifests", dir=self.paths.kubeadm_tmp)
        )
        return self

    def __exit__(self, kind: object, exc: BaseException | None, tb: object) -> None:
        shutil.rmtree(self.new_dir, ignore_errors=True)  # kubeadm's CleanupDirs
        if isinstance(exc, OSError):
            self.rollback(exc)

    def timestamped(self, name: str) -> Path:
        """DIR/etc/kubernetes/tmp/<name>-<timestamp>, 0700 (a suffix if this second has one)."""
        base = self.paths.kubeadm_tmp / f"{name}-{self.stamp}"
        path, n = base, 1
        while True:
            try:
                path.mkdir(mode=0o700)
                return path
            except FileExistsError:
                n += 1
                path = base.with_name(f"{base.name}.{n}")

    def component(self, component: str, current: str, wanted: str) -> None:
        """kubeadm's `upgradeComponent`: replace the manifest when it differs semantically."""
        real = self.paths.manifest(component)
        new = self.new_dir / real.name
        write_file(new, wanted.encode(), 0o600)
        if safeyaml.load(current) == safeyaml.load(wanted):
            self.say(
                f"[upgrade/staticpods] Current and new manifests of {component} are equal, "
                "skipping upgrade"
            )
            return
        if self.backup_dir is None:
            self.backup_dir = self.timestamped("kubeadm-backup-manifests")
        backup = self.backup_dir / real.name
        # A hard link then a rename over the old name: the manifest never goes missing, so the
        # agent sees one change, not a removal and an addition.
        try:
            os.link(real, backup)
        except OSError:
            shutil.copy2(real, backup)
        self.replaced[component] = backup
        os.replace(new, real)
        self.say(
            f'[upgrade/staticpods] Moving new manifest to "{real}" and backing up old manifest '
            f'to "{backup}"'
        )

    def rollback(self, exc: OSError) -> None:
        errors = [str(exc)]
        for component, backup in self.replaced.items():
            real = self.paths.manifest(component)
            restored = real.with_name(f".{real.name}.rollback")  # the kubelet skips dot-files
            try:
                shutil.copy2(backup, restored)
                os.replace(restored, real)
            except OSError as again:
                errors.append(str(again))
        raise UpgradeError(
            "couldn't upgrade control plane. kubeadm has tried to recover everything into the "
            f"earlier state. Errors faced: {'; '.join(errors)}"
        ) from exc


# -- upload-config and the kubelet ----------------------------------------------------------
def _upload_config(paths: SandboxPaths, cluster: str) -> None:
    """kubeadm's upload-config: its in-memory ClusterConfiguration replaces the key, whatever
    was written in between (create-or-mutate, no resourceVersion)."""
    try:
        stored = cm.read_configmap(paths, cm.NAMESPACE, cm.KUBEADM_CONFIG)
        if stored is None:
            cm.write_configmap(paths, cm.kubeadm_config_map(cluster))
            return
        stored["metadata"].pop("resourceVersion", None)
        stored["data"] = {**(stored.get("data") or {}), "ClusterConfiguration": cluster}
        cm.replace_configmap(paths, stored, manager="kubeadm")
    except cm.StoreError as exc:
        raise UpgradeError(f"upload-config: {exc}", paths.apiserver_store) from None


def _cri_socket(paths: SandboxPaths) -> str:
    """The node's CRI socket: instance-config.yaml's (NodeLocalCRISocket), else the reference
    node's containerd socket."""
    instance = paths.kubelet_dir / "instance-config.yaml"
    try:
        doc = safeyaml.load(instance.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return DEFAULT_CRI_SOCKET
    except Exception as exc:  # OSError, ruamel's YAMLError
        raise UpgradeError(f"cannot read the instance config: {_first(exc)}", instance) from None
    endpoint = doc.get("containerRuntimeEndpoint") if isinstance(doc, dict) else None
    return cm.node_paths(endpoint, paths.root) if isinstance(endpoint, str) else DEFAULT_CRI_SOCKET


def _kubelet_text(
    paths: SandboxPaths,
    data: str,
    cluster: str,
    version: str,
    patches: Path | None,
    ports: Mapping[str, int],
) -> str:
    """The kubelet config kubeadm `version` writes from kubelet-config, as the sandbox's."""
    text = render_kubelet_config(
        data, patches, cluster_config_text=cluster, cri_socket=_cri_socket(paths)
    )
    m = _VERSION.fullmatch(version)
    if m is not None and int(m[1]) < 32 and "crashLoopBackOff" not in (safeyaml.load(data) or {}):
        # The KubeletConfiguration field is new in v1.32; an older kubeadm never writes it.
        text = text.replace("crashLoopBackOff: {}\n", "")
    return sandbox_kubelet_config(text, paths, ports)


def _write_kubelet_config(paths: SandboxPaths, text: str, say: Callable[[str], None]) -> None:
    """kubeadm's kubelet-config phase: back the file up, then overwrite it."""
    target = paths.kubelet_config
    if target.exists():
        backup_dir = Path(tempfile.mkdtemp(prefix="kubeadm-kubelet-config", dir=paths.kubeadm_tmp))
        shutil.copyfile(target, backup_dir / "config.yaml")
        os.chmod(backup_dir / "config.yaml", target.stat().st_mode & 0o7777)
        say(f'[upgrade] Backing up kubelet config file to "{backup_dir / "config.yaml"}"')
    say(f'[kubelet-start] Writing kubelet configuration to file "{target}"')
    # os.WriteFile(path, data, 0644): 0644 for a new file, an existing file keeps its mode.
    fd = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
    with os.fdopen(fd, "wb") as out:
        out.write(text.encode())
