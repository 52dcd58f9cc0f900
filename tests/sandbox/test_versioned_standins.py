"""The stand-ins play the version of their image tag (the kubelet: its script's): a flag,
plugin, cipher name or config apiVersion that version does not have stops them as it stops
the real binary. Scenarios for a v1.29 node (CIS 1.11) and a v1.35 node (CIS 2.0)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

import cis_tui.sandbox as sandbox
from cis_tui.audit.versions import flag_table_for, parse_version
from cis_tui.sandbox.paths import SandboxPaths
from cis_tui.sandbox.pods import load_pod
from cis_tui.sandbox.settings import SandboxSettings
from cis_tui.sandbox.standin import apiserver, configs, kubelet, main
from cis_tui.sandbox.standin.common import Context, Fatal, MountView, parse_kube_flags
from cis_tui.sandbox.standin.serving import check_tls_options
from tests.conftest import run_cli
from tests.e2e.conftest import sandbox_factory  # noqa: F401 - a sandbox node, started

V = parse_version


@pytest.fixture(scope="module")
def node(tmp_path_factory: pytest.TempPathFactory) -> SandboxPaths:
    directory = tmp_path_factory.mktemp("node")
    sandbox.create_sandbox(directory, etcd="standin", reuse_keys=True)
    return SandboxPaths(directory.resolve())


def kubeadm_apiserver_args(node: SandboxPaths) -> list[str]:
    return list(load_pod(node.manifest("kube-apiserver")).argv[1:])


def run_main(monkeypatch, node: SandboxPaths, binary: str, image: str, argv: list[str]) -> int:
    monkeypatch.setenv("CIS_TUI_SANDBOX_DIR", str(node.root))
    monkeypatch.setenv("CIS_TUI_SANDBOX_POD", binary)
    monkeypatch.setenv("CIS_TUI_SANDBOX_IMAGE", image)
    return main(binary, argv)


# -- flags ------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("image", "flag"),
    [
        ("registry.k8s.io/kube-apiserver:v1.18.20", "--service-account-extend-token-expiration=false"),
        ("registry.k8s.io/kube-apiserver:v1.24.0", "--insecure-port=0"),
        ("registry.k8s.io/kube-apiserver:v1.29.4", "--authentication-config=/x.yaml"),
    ],
)  # fmt: skip
def test_a_flag_the_version_lacks_stops_the_api_server(monkeypatch, capsys, node, image, flag):
    code = run_main(
        monkeypatch, node, "kube-apiserver", image, [*kubeadm_apiserver_args(node), flag]
    )
    assert code == 1
    name = flag.split("=", 1)[0]
    assert capsys.readouterr().err.strip() == f"Error: unknown flag: {name}"


def test_the_same_flags_are_known_where_the_version_has_them():
    assert parse_kube_flags("kube-apiserver", ["--insecure-port=0"], V("v1.23.17")).values == {
        "--insecure-port": "0"
    }
    parsed = parse_kube_flags(
        "kube-apiserver", ["--service-account-extend-token-expiration=false"], V("v1.35.0")
    )
    assert parsed.get("--service-account-extend-token-expiration") == "false"
    with pytest.raises(Fatal, match="unknown flag: --insecure-port"):
        parse_kube_flags("kube-apiserver", ["--insecure-port=0"], V("v1.35.0"))


def test_controller_manager_of_1_24_refuses_the_removed_port_flag(monkeypatch, capsys, node):
    image = "registry.k8s.io/kube-controller-manager:v1.24.17"
    code = run_main(monkeypatch, node, "kube-controller-manager", image, ["--port=0"])
    assert code == 1 and capsys.readouterr().err.strip() == "Error: unknown flag: --port"


def test_kubelet_plays_its_scripts_version(capsys, node):
    assert main("kubelet", ["--version"], version="v1.24.17") == 0
    assert capsys.readouterr().out.strip() == "Kubernetes v1.24.17"
    code = main("kubelet", ["--seccomp-default=true"], version="v1.24.17")
    assert code == 1
    assert (
        "failed to parse kubelet flag: unknown flag: --seccomp-default" in capsys.readouterr().err
    )
    # kubeadm 1.29's kubeadm-flags.env still passed the pause image; v1.35 removed the flag
    table_29 = flag_table_for("kubelet", V("v1.29.4"))
    assert "--pod-infra-container-image" in table_29
    assert main("kubelet", ["--pod-infra-container-image=x"], version="v1.35.0") == 1
    assert "unknown flag: --pod-infra-container-image" in capsys.readouterr().err


# -- plugins, ciphers, config apiVersions ---------------------------------------------------------
def test_admission_plugins_and_the_legacy_list_per_version():
    deny = parse_kube_flags(
        "kube-apiserver", ["--enable-admission-plugins=NodeRestriction,DenyServiceExternalIPs"]
    )
    assert 'enable-admission-plugins plugin "DenyServiceExternalIPs" is unknown' in (
        apiserver.validate(deny, V("v1.20.15"))
    )
    assert not [e for e in apiserver.validate(deny, V("v1.21.0")) if "plugin" in e]
    psp = parse_kube_flags("kube-apiserver", ["--enable-admission-plugins=PodSecurityPolicy"])
    assert [e for e in apiserver.validate(psp, V("v1.25.0")) if "PodSecurityPolicy" in e]
    assert not [e for e in apiserver.validate(psp, V("v1.24.9")) if "PodSecurityPolicy" in e]
    both = parse_kube_flags(
        "kube-apiserver",
        ["--admission-control=NodeRestriction", "--enable-admission-plugins=AlwaysPullImages"],
    )
    assert (
        "admission-control and enable-admission-plugins/disable-admission-plugins flags are "
        "mutually exclusive"
    ) in apiserver.validate(both, V("v1.23.0"))


def test_tls_1_3_cipher_names_are_refused_before_1_19():
    assert check_tls_options(["TLS_AES_128_GCM_SHA256"], None, "kube-apiserver", V("v1.18.20")) == [
        "Cipher suite TLS_AES_128_GCM_SHA256 not supported or doesn't exist"
    ]
    assert check_tls_options(["TLS_AES_128_GCM_SHA256"], None, "kube-apiserver", V("v1.19.0")) == []
    assert kubelet.validate_config({"tlsCipherSuites": ["TLS_AES_128_GCM_SHA256"]}, V("v1.18.0"))


def _context(node: SandboxPaths, version: str) -> Context:
    return Context(
        binary="kube-apiserver",
        pod="kube-apiserver",
        paths=node,
        view=MountView(None),
        settings=SandboxSettings(),
        argv=(),
        version=V(version),
    )


@pytest.mark.parametrize(
    ("api", "version", "refused"),
    [
        ("audit.k8s.io/v1beta1", "v1.23.17", False),
        ("audit.k8s.io/v1beta1", "v1.24.0", True),
        ("audit.k8s.io/v1", "v1.11.10", True),
        ("audit.k8s.io/v1", "v1.12.0", False),
    ],
)
def test_audit_policy_apiversions_per_version(tmp_path, node, api, version, refused):
    policy = tmp_path / "audit-policy.yaml"
    policy.write_text(f"apiVersion: {api}\nkind: Policy\nrules:\n- level: Metadata\n")
    if refused:
        with pytest.raises(Fatal, match=f'no kind "Policy" is registered for version "{api}"'):
            configs.check_audit_policy(_context(node, version), str(policy))
    else:
        configs.check_audit_policy(_context(node, version), str(policy))


# -- the sandbox plays a version -------------------------------------------------------------
def test_pods_carry_their_image_for_the_stand_in(node):
    assert load_pod(node.manifest("kube-apiserver")).image.endswith("kube-apiserver:v1.35.0")


@pytest.mark.parametrize(
    ("scenario", "kubernetes", "etcd", "benchmark", "checks"),
    [("v1.29", "v1.29.4", "3.5.12-0", "cis-1.11", 93), ("v1.35", "v1.35.0", "3.6.6-0", "cis-2.0", 92)],
)  # fmt: skip
def test_version_scenarios(capsys, tmp_path, scenario, kubernetes, etcd, benchmark, checks):
    directory = tmp_path / scenario
    sandbox.create_sandbox(directory, scenario, etcd="standin", reuse_keys=True)
    paths = SandboxPaths(directory.resolve())
    for comp in ("kube-apiserver", "kube-controller-manager", "kube-scheduler"):
        assert load_pod(paths.manifest(comp)).image == f"registry.k8s.io/{comp}:{kubernetes}"
    assert load_pod(paths.manifest("etcd")).image == f"registry.k8s.io/etcd:{etcd}"
    assert f"version={kubernetes!r}" in paths.standin("kubelet").read_text()
    code, out, _err = run_cli(capsys, "--config", str(paths.config), "scan", "--format", "json")
    doc = json.loads(out)
    assert doc["benchmark"] == benchmark and len(doc["results"]) == checks
    assert doc["node"]["versions"]["kubernetes"] == kubernetes
    statuses = {r["id"]: r["status"] for r in doc["results"]}
    assert "ERROR" not in statuses.values()
    if scenario == "v1.29":
        etcd_args = load_pod(paths.manifest("etcd")).argv
        assert "--experimental-initial-corrupt-check=true" in etcd_args  # etcd 3.5's flags
        flags_env = Path(paths.kubelet_flags_env).read_text()
        assert "--pod-infra-container-image=registry.k8s.io/pause:3.9" in flags_env


def test_a_v1_29_node_runs_and_its_kubelet_tells_its_version(capsys, sandbox_factory):  # noqa: F811
    """Every stand-in accepts what kubeadm 1.29 writes; the scan asks the running kubelet."""
    run = sandbox_factory("v1.29", etcd="standin")
    code, out, _err = run_cli(capsys, "--config", str(run.config), "scan", "--format", "json")
    versions = json.loads(out)["node"]["versions"]["components"]
    assert versions["kubelet"]["version"] == "v1.29.4"
    assert versions["kubelet"]["assumed"] is False and "--version" in versions["kubelet"]["source"]
