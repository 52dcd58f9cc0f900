"""`sandbox create`: a kubeadm node's files, modes and config, all inside DIR."""

from __future__ import annotations

import os
import re
import stat
from pathlib import Path

import pytest
from cryptography import x509

import cis_tui.sandbox as sandbox
from cis_tui.errors import UserError
from cis_tui.layout import load_settings
from cis_tui.sandbox import create as create_mod
from cis_tui.sandbox import manifests as mf
from cis_tui.sandbox.__main__ import main as sandbox_main
from cis_tui.sandbox.paths import STATIC_COMPONENTS, SandboxPaths
from cis_tui.sandbox.pods import load_pod
from cis_tui.sandbox.settings import load_sandbox_settings
from cis_tui.sandbox.standin.common import MountView

FILE_FLAG = re.compile(
    r"(-file|-certfile|-keyfile|-cafile|kubeconfig|-certificate|-key|^--config)$"
)


@pytest.fixture(scope="module")
def node(tmp_path_factory: pytest.TempPathFactory) -> SandboxPaths:
    directory = tmp_path_factory.mktemp("node")
    sandbox.create_sandbox(directory, etcd="standin", reuse_keys=True)
    return SandboxPaths(directory.resolve())


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_the_config_describes_the_node_and_loads(node: SandboxPaths) -> None:
    settings = load_settings(config=node.config)
    layout = settings.layout
    for name in (
        "manifests_dir",
        "kubelet_config",
        "kubelet_kubeconfig",
        "kubelet_service",
        "kubelet_flags_env",
        "pki_dir",
        "admin_conf",
        "etcd_data_dir",
        "audit_policy_file",
        "encryption_config",
    ):
        path = getattr(layout, name)
        assert path.is_relative_to(node.root), name
    assert layout.manifests_dir == node.manifests
    assert layout.kubelet_config.is_file() and layout.kubelet_service.is_file()
    assert settings.state_dir == node.state_dir
    assert settings.process_root == node.root
    assert settings.kubelet_restart_command[-2:] == ("restart-kubelet", str(node.root))
    assert settings.health.client_cert is not None and settings.health.client_cert.is_file()


def test_files_have_kubeadms_modes(node: SandboxPaths) -> None:
    for comp in STATIC_COMPONENTS:
        assert mode(node.manifest(comp)) == 0o600
    for conf in ("admin", "super-admin", "kubelet", "scheduler", "controller-manager"):
        assert mode(node.etc_kubernetes / f"{conf}.conf") == 0o600
    certs = list(node.pki.rglob("*.crt"))
    keys = list(node.pki.rglob("*.key"))
    assert len(certs) == 10 and len(keys) == 11
    assert all(mode(c) == 0o644 for c in certs)
    assert all(mode(k) == 0o600 for k in keys)
    assert mode(node.pki / "sa.pub") == 0o600
    assert mode(node.kubelet_config) == 0o644
    assert mode(node.kubelet_dropin) == 0o644
    assert mode(node.etcd_data) == 0o700
    assert node.kubelet_flags_env.is_file()


def test_every_host_path_is_inside_the_sandbox(node: SandboxPaths) -> None:
    texts = [node.manifest(c).read_text() for c in STATIC_COMPONENTS]
    texts += [node.kubelet_config.read_text(), node.kubelet_dropin.read_text()]
    for text in texts:
        assert "10.0.0.10" not in text
        # Host paths have two or more components; probe paths (/livez) have one.
        for path in re.findall(r"(?<=[=\s])-?(/[\w.-]+/[\w./-]+)", text):
            assert Path(path).is_relative_to(node.root), path
    assert f"unix://{node.root}/" in node.kubelet_config.read_text()


def test_manifests_keep_kubeadms_format(node: SandboxPaths) -> None:
    for comp in STATIC_COMPONENTS:
        ours = node.manifest(comp).read_text().replace(str(node.root), "")
        theirs = mf.template(f"{comp}.yaml")
        ours_lines, theirs_lines = ours.splitlines(), theirs.splitlines()
        extra = 1 if comp in ("kube-controller-manager", "kube-scheduler") else 0
        assert len(ours_lines) == len(theirs_lines) + extra, comp
        changed = [a for a in ours_lines if a not in theirs_lines]
        assert len(changed) <= 8, (comp, changed)
        assert list(mf.flags(ours)) == sorted(mf.flags(ours)), comp


def test_probes_point_at_the_sandbox_ports(node: SandboxPaths) -> None:
    ports = set()
    for comp in STATIC_COMPONENTS:
        pod = load_pod(node.manifest(comp))
        assert pod.probes, comp
        for probe in pod.probes:
            assert probe.host == "127.0.0.1"
            assert probe.port not in (6443, 10257, 10259, 2381)
        ports.add(pod.health_probe.port if pod.health_probe else 0)
        args = dict(a.split("=", 1) for a in pod.args or pod.argv[1:] if "=" in a)
        if comp == "etcd":
            assert args["--listen-metrics-urls"].endswith(f":{pod.health_probe.port}")
            assert pod.health_probe.path == "/readyz"  # the stand-in speaks etcd 3.6
        else:
            assert args["--secure-port"] == str(pod.health_probe.port)
            assert pod.health_probe.scheme == "HTTPS"
    assert len(ports) == 4
    kubelet = node.kubelet_config.read_text()
    assert "healthzPort: 10248" not in kubelet and re.search(r"^port: \d+$", kubelet, re.M)


def test_file_flags_are_visible_through_the_pod_mounts(node: SandboxPaths) -> None:
    for comp in STATIC_COMPONENTS:
        pod = load_pod(node.manifest(comp))
        view = MountView.from_json(pod.mounts_json())
        for arg in pod.argv[1:]:
            flag, _, value = arg.partition("=")
            if FILE_FLAG.search(flag) and value:
                host = view.host_path(value)
                assert host is not None and Path(host).is_file(), (comp, arg)


def test_certificates_chain_and_name_the_sandbox(node: SandboxPaths) -> None:
    ca = x509.load_pem_x509_certificate((node.pki / "ca.crt").read_bytes())
    server = x509.load_pem_x509_certificate((node.pki / "apiserver.crt").read_bytes())
    server.verify_directly_issued_by(ca)
    sans = server.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert "127.0.0.1" in {str(ip) for ip in sans.get_values_for_type(x509.IPAddress)}
    etcd_ca = x509.load_pem_x509_certificate((node.pki / "etcd/ca.crt").read_bytes())
    for name in ("etcd/server.crt", "etcd/peer.crt", "apiserver-etcd-client.crt"):
        x509.load_pem_x509_certificate((node.pki / name).read_bytes()).verify_directly_issued_by(
            etcd_ca
        )
    port = load_pod(node.manifest("kube-apiserver")).health_probe.port  # type: ignore[union-attr]
    for conf in ("admin.conf", "scheduler.conf", "kubelet.conf"):
        assert f"server: https://127.0.0.1:{port}\n" in (node.etc_kubernetes / conf).read_text()
    current = node.kubelet_pki / "kubelet-client-current.pem"
    assert current.is_symlink() and str(current.resolve()).startswith(str(node.kubelet_pki))


def test_sandbox_settings_and_standin_scripts(node: SandboxPaths) -> None:
    settings = load_sandbox_settings(node.sandbox_settings)
    assert settings.agent.etcd == "standin"
    assert settings.delay_for("kube-apiserver") == 1.0
    for binary in ("etcd", "kube-apiserver", "kubelet"):
        script = node.standin(binary)
        assert os.access(script, os.X_OK)
        assert script.read_text().startswith("#!/")


def test_scenarios_are_listed_once() -> None:
    assert sandbox.SCENARIOS == create_mod.SCENARIOS


@pytest.mark.parametrize("scenario", ["hardened", "insecure", "stray-backup"])
def test_scenarios_build_consistent_nodes(tmp_path: Path, scenario: str) -> None:
    sandbox.create_sandbox(tmp_path / "n", scenario, etcd="standin", reuse_keys=True)
    node = SandboxPaths((tmp_path / "n").resolve())
    for comp in STATIC_COMPONENTS:
        pod = load_pod(node.manifest(comp))
        view = MountView.from_json(pod.mounts_json())
        for arg in pod.argv[1:]:
            flag, _, value = arg.partition("=")
            if FILE_FLAG.search(flag) and value:
                assert view.host_path(value) is not None, (scenario, comp, arg)
        names = [m.name for m in pod.mounts]
        if comp != "etcd":
            assert names == sorted(names), (scenario, comp)


def test_hardened_adds_companion_files_and_tightens_modes(tmp_path: Path) -> None:
    sandbox.create_sandbox(tmp_path / "n", "hardened", etcd="standin", reuse_keys=True)
    node = SandboxPaths((tmp_path / "n").resolve())
    settings = load_settings(config=node.config)
    for path in (settings.layout.audit_policy_file, settings.layout.encryption_config):
        assert path.is_file() and mode(path) == 0o600
    assert settings.layout.audit_log_dir.is_dir()
    assert mode(node.kubelet_config) == 0o600 and mode(node.kubelet_dropin) == 0o600
    api = mf.flags(node.manifest("kube-apiserver").read_text())
    # Anonymous stays on: the kubelet's anonymous probes would otherwise restart it (kubeadm#798).
    assert "--anonymous-auth" not in api and api["--profiling"] == "false"
    assert api["--audit-log-path"].startswith(str(settings.layout.audit_log_dir))


def test_stray_backup_is_a_second_manifest(tmp_path: Path) -> None:
    sandbox.create_sandbox(tmp_path / "n", "stray-backup", etcd="standin", reuse_keys=True)
    manifests = SandboxPaths((tmp_path / "n").resolve()).manifests
    assert sorted(p.name for p in manifests.iterdir()) == [
        "etcd.yaml",
        "kube-apiserver.yaml",
        "kube-apiserver.yaml.bak",
        "kube-controller-manager.yaml",
        "kube-scheduler.yaml",
    ]


def test_refuses_a_non_empty_directory(tmp_path: Path) -> None:
    (tmp_path / "x").write_text("")
    with pytest.raises(UserError, match="not empty"):
        sandbox.create_sandbox(tmp_path)


def test_refuses_an_unknown_scenario_or_a_strange_path(tmp_path: Path) -> None:
    with pytest.raises(UserError, match="unknown scenario"):
        sandbox.create_sandbox(tmp_path / "a", "nope")
    with pytest.raises(UserError, match="may only contain"):
        sandbox.create_sandbox(tmp_path / "with space")
    with pytest.raises(UserError, match="etcd mode"):
        sandbox.create_sandbox(tmp_path / "b", etcd="maybe")


def test_cli_errors_are_one_line_exit_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "x").write_text("")
    assert sandbox_main(["create", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "not empty" in err and "Traceback" not in err
    assert sandbox_main(["run", str(tmp_path)]) == 2
    assert "not a sandbox directory" in capsys.readouterr().err
    assert sandbox_main(["restart-kubelet", str(tmp_path / "missing")]) == 2


def test_restart_kubelet_without_an_agent_fails(
    node: SandboxPaths, capsys: pytest.CaptureFixture[str]
) -> None:
    assert sandbox.restart_kubelet(node.root) == 1
    assert "no agent is running" in capsys.readouterr().err


def test_adapt_etcd_for_older_versions() -> None:
    text = mf.template("etcd.yaml")
    assert create_mod.adapt_etcd(text, (3, 6, 6)) == text
    old = create_mod.adapt_etcd(text, (3, 4, 23))
    flags = mf.flags(old)
    assert "--feature-gates" not in flags and "--watch-progress-notify-interval" not in flags
    assert flags["--experimental-initial-corrupt-check"] == "true"
    assert flags["--experimental-watch-progress-notify-interval"] == "5s"
    assert list(flags) == sorted(flags)
    assert "readinessProbe" not in old and "/health?serializable=false" in old
    mid = create_mod.adapt_etcd(text, (3, 5, 17))
    assert "readinessProbe" in mid and "/readyz" in mid
