"""The pieces of the node model: kubeadm-style text edits, pods as the kubelet reads them,
the kubelet's systemd unit, and sandbox.toml."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from cis_tui.errors import UserError
from cis_tui.sandbox import manifests as mf
from cis_tui.sandbox.pods import (
    ManifestError,
    PodStore,
    load_pod,
    manifest_files,
    prepare_host_paths,
)
from cis_tui.sandbox.settings import (
    Fault,
    SandboxSettings,
    dump_sandbox_settings,
    load_sandbox_settings,
    update_sandbox_settings,
)
from cis_tui.sandbox.systemd import UnitError, load_service, parse_env_file

SCHEDULER = mf.template("kube-scheduler.yaml")


# -- text edits ----------------------------------------------------------------------------
def test_set_flag_inserts_in_sorted_position_and_replaces() -> None:
    text = mf.set_flag(SCHEDULER, "--profiling", "false")
    names = list(mf.flags(text))
    assert names == sorted(names) and mf.flags(text)["--profiling"] == "false"
    assert text.count("\n") == SCHEDULER.count("\n") + 1
    again = mf.set_flag(text, "--profiling", "true")
    assert mf.flags(again)["--profiling"] == "true" and again.count("--profiling") == 1
    assert mf.remove_flag(again, "--profiling") == SCHEDULER
    first = mf.set_flag(SCHEDULER, "--allow-metric-labels", "a=b")
    assert next(iter(mf.flags(first))) == "--allow-metric-labels"
    bare = mf.set_flag(SCHEDULER, "--profiling", None)
    assert "    - --profiling\n" in bare and mf.flags(bare)["--profiling"] is None


def test_add_volume_keeps_volumes_and_mounts_sorted_by_name() -> None:
    api = mf.template("kube-apiserver.yaml")
    vol = mf.HostPathVolume("audit-log", "/var/log/k/audit", "/var/log/k/audit", read_only=False)
    text = mf.add_volume(api, vol)
    assert "    - mountPath: /var/log/k/audit\n      name: audit-log\n    - mountPath" in text
    assert "  - hostPath:\n      path: /var/log/k/audit\n      type: DirectoryOrCreate\n" in text
    assert text.index("name: audit-log") < text.index("name: ca-certs")
    lines_added = text.count("\n") - api.count("\n")
    assert lines_added == 6


def test_set_top_level_keeps_kubelet_config_sorted() -> None:
    cfg = mf.template("kubelet-config.yaml")
    text = mf.set_top_level(cfg, "readOnlyPort", " 0")
    keys = [ln.split(":")[0] for ln in text.splitlines() if ln and not ln.startswith((" ", "-"))]
    assert keys == sorted(keys) and "readOnlyPort: 0" in text
    text = mf.set_top_level(text, "tlsCipherSuites", "\n- A\n- B")
    assert "tlsCipherSuites:\n- A\n- B\n" in text
    assert mf.set_top_level(text, "readOnlyPort", " 0") == text


def test_rewrite_host_paths_leaves_urls_alone() -> None:
    root = Path("/sb")
    text = (
        "- --service-account-issuer=https://kubernetes.default.svc.cluster.local\n"
        "- --client-ca-file=/etc/kubernetes/pki/ca.crt\n"
        "EnvironmentFile=-/etc/default/kubelet\n"
        "  path: /usr/share/ca-certificates\n"
        "endpoint: unix:///var/run/containerd/containerd.sock\n"
        "  image: registry.k8s.io/etcd:3.6.6-0\n"
        "  path: /livez\n"
    )
    out = mf.rewrite_host_paths(text, root)
    assert "https://kubernetes.default.svc.cluster.local" in out
    assert "--client-ca-file=/sb/etc/kubernetes/pki/ca.crt" in out
    assert "EnvironmentFile=-/sb/etc/default/kubelet" in out
    assert "path: /sb/usr/share/ca-certificates" in out
    assert "unix:///sb/var/run/containerd" in out
    assert "registry.k8s.io/etcd" in out and "path: /livez" in out


# -- pods ----------------------------------------------------------------------------------
def write(path: Path, text: str) -> Path:
    path.write_text(text)
    return path


def test_a_manifest_is_read_as_the_kubelet_reads_it(tmp_path: Path) -> None:
    pod = load_pod(write(tmp_path / "s.yaml", SCHEDULER))
    assert pod.key == "kube-system/kube-scheduler" and pod.command[0] == "kube-scheduler"
    assert [p.kind for p in pod.probes] == ["startupProbe", "readinessProbe", "livenessProbe"]
    assert pod.health_probe is not None and pod.health_probe.port == 10259  # named port resolved
    assert pod.mounts[0].host_path == "/etc/kubernetes/scheduler.conf"
    # Comments and formatting do not change the pod; its file path does.
    same = load_pod(write(tmp_path / "s.yaml", "# a comment\n" + SCHEDULER))
    assert same.uid == pod.uid
    moved = load_pod(write(tmp_path / "t.yaml", SCHEDULER))
    assert moved.uid != pod.uid
    changed = load_pod(write(tmp_path / "s.yaml", mf.set_flag(SCHEDULER, "--v", "2")))
    assert changed.uid != pod.uid


@pytest.mark.parametrize(
    ("content", "problem"),
    [
        ("", "exactly one"),
        ("kind: Pod\n", "metadata.name"),
        ("apiVersion: v1\nkind: Service\nmetadata: {name: x}\n", "not Pod"),
        ("[1, 2", "invalid YAML"),
        ("kind: Pod\nmetadata: {name: x}\nspec: {containers: []}\n", "containers"),
        ("---\nkind: Pod\n---\nkind: Pod\n", "exactly one"),
    ],
)
def test_unusable_manifests_are_reported(tmp_path: Path, content: str, problem: str) -> None:
    with pytest.raises(ManifestError, match=problem):
        load_pod(write(tmp_path / "x.yaml", content))


def test_binary_files_are_reported(tmp_path: Path) -> None:
    (tmp_path / "b").write_bytes(b"\xff\xfe\x00garbage")
    with pytest.raises(ManifestError):
        load_pod(tmp_path / "b")


def test_every_non_dot_regular_file_counts(tmp_path: Path) -> None:
    for name in ("a.yaml", "a.yaml.bak", "notes.txt", ".hidden.yaml", ".a.yaml.tmp"):
        (tmp_path / name).write_text("x")
    (tmp_path / "subdir").mkdir()
    os.symlink(tmp_path / "a.yaml", tmp_path / "link.yaml")
    names = [p.name for p in manifest_files(tmp_path)]
    assert names == ["a.yaml", "a.yaml.bak", "link.yaml", "notes.txt"]


def test_the_store_resolves_name_clashes_like_the_kubelet(tmp_path: Path) -> None:
    new = load_pod(write(tmp_path / "kube-scheduler.yaml", mf.set_flag(SCHEDULER, "--v", "2")))
    old = load_pod(write(tmp_path / "kube-scheduler.yaml.bak", SCHEDULER))
    store = PodStore()
    store.replace([new, old])
    assert store.pods[new.key] is old  # relist: the later file in sorted order wins
    store.add(new)
    assert store.pods[new.key] is new  # an inotify event: the written file wins
    store.remove_file(old.file)
    assert new.key not in store.pods  # deleting the backup removes the pod it last defined


def test_host_paths_are_checked_and_created_inside_the_sandbox(tmp_path: Path) -> None:
    root = tmp_path / "sb"
    (root / "etc").mkdir(parents=True)

    def pod_with(volumes: str) -> Path:
        text = (
            "apiVersion: v1\nkind: Pod\nmetadata: {name: p}\n"
            "spec:\n  containers:\n  - command: [kube-scheduler]\n    name: p\n"
            f"  volumes:\n{volumes}"
        )
        return write(tmp_path / "p.yaml", text)

    dirs = f"  - hostPath: {{path: {root}/var/new, type: DirectoryOrCreate}}\n    name: a\n"
    dirs += f"  - hostPath: {{path: {root}/etc/f.conf, type: FileOrCreate}}\n    name: b\n"
    prepare_host_paths(load_pod(pod_with(dirs)), root)
    assert (root / "var/new").is_dir() and (root / "etc/f.conf").is_file()
    missing = f"  - hostPath: {{path: {root}/etc/nope.yaml, type: File}}\n    name: c\n"
    with pytest.raises(ManifestError, match='volume "c" : hostPath type check failed'):
        prepare_host_paths(load_pod(pod_with(missing)), root)
    outside = "  - hostPath: {path: /definitely/not/here, type: DirectoryOrCreate}\n    name: d\n"
    with pytest.raises(ManifestError, match="outside the sandbox"):
        prepare_host_paths(load_pod(pod_with(outside)), root)
    assert not Path("/definitely").exists()


# -- systemd -------------------------------------------------------------------------------
def test_the_kubelet_command_line_comes_from_unit_dropin_and_env_files(tmp_path: Path) -> None:
    unit = write(tmp_path / "kubelet.service", mf.template("kubelet.service"))
    dropins = tmp_path / "kubelet.service.d"
    dropins.mkdir()
    dropin = mf.template("10-kubeadm.conf").replace("/var/lib/kubelet", str(tmp_path))
    write(dropins / "10-kubeadm.conf", dropin)
    write(tmp_path / "kubeadm-flags.env", 'KUBELET_KUBEADM_ARGS="--node-ip=1.2.3.4 --v=2"\n')
    service = load_service(unit, dropins)
    assert service.argv == (
        "/usr/bin/kubelet",
        "--bootstrap-kubeconfig=/etc/kubernetes/bootstrap-kubelet.conf",
        "--kubeconfig=/etc/kubernetes/kubelet.conf",
        f"--config={tmp_path}/config.yaml",
        "--node-ip=1.2.3.4",
        "--v=2",
    )
    assert service.restart_seconds == 10.0
    write(dropins / "20-broken.conf", "[Service]\nEnvironmentFile=/no/such/file\n")
    with pytest.raises(UnitError, match="/no/such/file"):
        load_service(unit, dropins)


def test_env_files_and_braced_variables() -> None:
    env = parse_env_file('# c\nA="x y"\nB=z\n\nC=\n')
    assert env == {"A": "x y", "B": "z", "C": ""}


# -- sandbox.toml --------------------------------------------------------------------------
def test_settings_round_trip_and_faults_match(tmp_path: Path) -> None:
    fault = Fault(
        component="kube-apiserver", argv_contains="--profiling=false", crash_after_healthy=2.0
    )
    settings = SandboxSettings(faults=(fault, Fault(exit_at_start=3)))
    (tmp_path / "sandbox.toml").write_text(dump_sandbox_settings(settings))
    loaded = load_sandbox_settings(tmp_path / "sandbox.toml")
    assert loaded == settings
    assert fault.matches("kube-apiserver", ["--profiling=false", "--v=2"])
    assert not fault.matches("kube-apiserver", ["--profiling=true"])
    assert not fault.matches("kube-scheduler", ["--profiling=false"])
    assert loaded.faults_for("etcd", []) == (Fault(exit_at_start=3),)
    updated = update_sandbox_settings(tmp_path, ready_delay={"etcd": 0.1}, backoff_max_seconds=2.0)
    assert updated.delay_for("etcd") == 0.1 and updated.delay_for("kube-apiserver") == 1.0
    assert updated.agent.backoff_max_seconds == 2.0 and updated.faults == settings.faults


@pytest.mark.parametrize(
    "text",
    [
        "[agent]\nnope = 1\n",
        '[agent]\netcd = "maybe"\n',
        "[ready_delay]\nkube-proxy = 1\n",
        "[ready_delay]\netcd = -1\n",
        "[[faults]]\ncolour = 1\n",
        "faults = 3\n",
        "[agent\n",
    ],
)
def test_bad_settings_are_user_errors(tmp_path: Path, text: str) -> None:
    (tmp_path / "sandbox.toml").write_text(text)
    with pytest.raises(UserError):
        load_sandbox_settings(tmp_path / "sandbox.toml")
