"""Stand-ins behave like the real binaries where cis-tui depends on them."""

from __future__ import annotations

import base64
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

import cis_tui.sandbox as sandbox
from cis_tui.audit.flags import parse_args
from cis_tui.sandbox import manifests as mf
from cis_tui.sandbox.paths import SandboxPaths
from cis_tui.sandbox.pods import load_pod
from cis_tui.sandbox.settings import SandboxSettings
from cis_tui.sandbox.standin import apiserver, configs, kubelet
from cis_tui.sandbox.standin.common import Context, Fatal, MountView, parse_go_flags


@pytest.fixture(scope="module")
def node(tmp_path_factory: pytest.TempPathFactory) -> SandboxPaths:
    directory = tmp_path_factory.mktemp("node")
    sandbox.create_sandbox(directory, etcd="standin", reuse_keys=True)
    return SandboxPaths(directory.resolve())


def context(node: SandboxPaths, mounts: list[tuple[str, str, bool]] | None) -> Context:
    return Context(
        binary="kube-apiserver",
        pod="kube-apiserver",
        paths=node,
        view=MountView(tuple(mounts) if mounts is not None else None),
        settings=SandboxSettings(),
        argv=(),
    )


def run_standin(
    node: SandboxPaths, binary: str, args: list[str], mounts: str | None = None
) -> subprocess.CompletedProcess[str]:
    """Run a stand-in script directly, as the agent would (it must exit by itself here)."""
    env = {**os.environ, "CIS_TUI_SANDBOX_DIR": str(node.root), "CIS_TUI_SANDBOX_POD": binary}
    if mounts is not None:
        env["CIS_TUI_SANDBOX_MOUNTS"] = mounts
    return subprocess.run(
        [str(node.standin(binary)), *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )


# -- the container's view ------------------------------------------------------------------
def test_mount_view_translates_container_paths() -> None:
    view = MountView(
        (
            ("/etc/kubernetes/pki", "/host/pki", True),
            ("/etc/kubernetes/pki/etcd", "/host/etcd-pki", False),
            ("/etc/kubernetes/scheduler.conf", "/host/sched.conf", True),
        )
    )
    assert view.host_path("/etc/kubernetes/pki/ca.crt") == "/host/pki/ca.crt"
    assert view.host_path("/etc/kubernetes/pki/etcd/ca.crt") == "/host/etcd-pki/ca.crt"
    assert view.host_path("/etc/kubernetes/scheduler.conf") == "/host/sched.conf"
    assert view.host_path("/etc/kubernetes/pki-other/x") is None
    assert view.host_path("/etc/kubernetes/audit.yaml") is None
    assert view.read_only("/etc/kubernetes/pki/ca.crt")
    assert not view.read_only("/etc/kubernetes/pki/etcd/x")
    assert MountView(None).host_path("/anything") == "/anything"


def test_an_unmounted_file_cannot_be_opened(node: SandboxPaths) -> None:
    ca = str(node.ca_cert)
    visible = context(node, [(str(node.pki), str(node.pki), True)])
    assert visible.open_path(ca) == Path(ca)
    hidden = context(node, [(str(node.etc_kubernetes / "manifests"), str(node.manifests), True)])
    with pytest.raises(Fatal, match=f"open {ca}: no such file or directory"):
        hidden.open_path(ca)
    with pytest.raises(Fatal, match="read-only file system"):
        visible.writable_file(str(node.pki / "audit.log"))


# -- option validation ---------------------------------------------------------------------
def apiserver_args(node: SandboxPaths, *changes: tuple[str, str | None]) -> list[str]:
    text = node.manifest("kube-apiserver").read_text()
    for flag, value in changes:
        text = mf.set_flag(text, flag, value) if value is not None else mf.remove_flag(text, flag)
    return list(mf_argv(text))


def mf_argv(text: str) -> list[str]:
    return [f"{k}={v}" if v is not None else k for k, v in mf.flags(text).items()]


@pytest.mark.parametrize(
    ("change", "error"),
    [
        (("--etcd-servers", None), "--etcd-servers must be specified"),
        (("--secure-port", "0"), "--secure-port 0 must be between 1 and 65535"),
        (
            ("--authorization-mode", "Node,RBAC,RBAC"),
            'mode "RBAC" has mode specified more than once',
        ),
        (("--authorization-mode", "ABAC"), "authorization policy file not passed"),
        (("--enable-admission-plugins", "NodeRestriction,Bogus"), 'plugin "Bogus" is unknown'),
        (("--tls-cipher-suites", "TLS_FAKE"), "Cipher suite TLS_FAKE not supported"),
        (("--tls-min-version", "VersionTLS99"), 'unknown tls version "VersionTLS99"'),
        (("--audit-log-maxage", "-1"), "can't be a negative number"),
        (("--service-cluster-ip-range", "10.96.0.0/99"), "is not a valid cidr"),
    ],
)
def test_apiserver_option_validation(
    node: SandboxPaths, change: tuple[str, str | None], error: str
) -> None:
    parsed = parse_args("kube-apiserver", apiserver_args(node, change))
    assert not parsed.errors
    assert any(error in e for e in apiserver.validate(parsed)), apiserver.validate(parsed)


def test_the_kubeadm_apiserver_flags_are_valid(node: SandboxPaths) -> None:
    assert apiserver.validate(parse_args("kube-apiserver", apiserver_args(node))) == []


def test_go_errors_quote_like_go() -> None:
    parsed = parse_args("kube-apiserver", ["--profiling=maybe"])
    assert parsed.errors[0].endswith('parsing "maybe": invalid syntax')
    with pytest.raises(Fatal, match="flag provided but not defined: -nope") as exc:
        parse_go_flags("etcd", ["--nope=1"])
    assert exc.value.code == 2
    with pytest.raises(Fatal, match='invalid value "x" for flag -snapshot-count: parse error'):
        parse_go_flags("etcd", ["--snapshot-count=x"])


# -- config files --------------------------------------------------------------------------
def test_encryption_config_checks(node: SandboxPaths, tmp_path: Path) -> None:
    ctx = context(node, None)
    good = base64.b64encode(b"k" * 32).decode()
    bad = base64.b64encode(b"k" * 10).decode()
    template = (
        "apiVersion: apiserver.config.k8s.io/v1\nkind: EncryptionConfiguration\n"
        "resources:\n- resources: [secrets]\n  providers:\n"
        "  - aescbc:\n      keys:\n      - name: k1\n        secret: {}\n  - identity: {{}}\n"
    )
    (tmp_path / "ok.yaml").write_text(template.format(good))
    configs.check_encryption_config(ctx, str(tmp_path / "ok.yaml"))
    (tmp_path / "short.yaml").write_text(template.format(bad))
    with pytest.raises(Fatal, match="expected length, got 10"):
        configs.check_encryption_config(ctx, str(tmp_path / "short.yaml"))
    (tmp_path / "kind.yaml").write_text(template.format(good).replace("Encryption", "Decryption"))
    with pytest.raises(Fatal, match='no kind "DecryptionConfiguration"'):
        configs.check_encryption_config(ctx, str(tmp_path / "kind.yaml"))


def test_audit_policy_and_admission_checks(node: SandboxPaths, tmp_path: Path) -> None:
    ctx = context(node, None)
    (tmp_path / "empty.yaml").write_text("")
    with pytest.raises(Fatal, match="loading audit policy file"):
        configs.check_audit_policy(ctx, str(tmp_path / "empty.yaml"))
    (tmp_path / "norules.yaml").write_text("apiVersion: audit.k8s.io/v1\nkind: Policy\n")
    with pytest.raises(Fatal, match="0 rules"):
        configs.check_audit_policy(ctx, str(tmp_path / "norules.yaml"))
    with pytest.raises(Fatal, match='couldn\'t init admission plugin "EventRateLimit"'):
        configs.check_admission_config(ctx, None, {"EventRateLimit"})
    configs.check_admission_config(ctx, None, {"NodeRestriction"})


def test_kubelet_config_decoding_and_validation() -> None:
    base = {"apiVersion": "kubelet.config.k8s.io/v1beta1", "kind": "KubeletConfiguration"}
    assert kubelet.decode_config({**base, "unknownField": 1}) == []  # lenient, like the kubelet
    assert "cannot unmarshal string" in kubelet.decode_config({**base, "readOnlyPort": "x"})[0]
    assert (
        "invalid duration"
        in kubelet.decode_config({**base, "streamingConnectionIdleTimeout": "5 minutes"})[0]
    )
    assert "is registered" in kubelet.decode_config({**base, "kind": "Nope"})[0]
    assert kubelet.validate_config({"readOnlyPort": 70000})[0].startswith(
        "invalid configuration: readOnlyPort (--read-only-port) 70000"
    )
    assert (
        "AlwaysAllow or Webhook" in kubelet.validate_config({"authorization": {"mode": "RBAC"}})[0]
    )
    assert kubelet.validate_config({"tlsCipherSuites": ["TLS_NOPE"]})


# -- real stand-in processes ---------------------------------------------------------------
def test_standins_refuse_bad_command_lines_in_their_binarys_words(node: SandboxPaths) -> None:
    result = run_standin(node, "kube-scheduler", ["--bogus"])
    assert (result.returncode, result.stderr.strip()) == (1, "Error: unknown flag: --bogus")
    result = run_standin(node, "kube-controller-manager", ["--profiling=perhaps"])
    assert result.returncode == 1
    assert result.stderr.strip() == (
        'Error: invalid argument "perhaps" for "--profiling" flag: '
        'strconv.ParseBool: parsing "perhaps": invalid syntax'
    )
    result = run_standin(node, "kube-apiserver", ["stray"])
    assert result.returncode == 1
    assert 'Error: "kube-apiserver" does not take any arguments, got ["stray"]' in result.stderr
    result = run_standin(node, "etcd", ["--bogus"])
    assert (result.returncode, result.stderr.strip()) == (
        2,
        "flag provided but not defined: -bogus",
    )
    result = run_standin(node, "kubelet", ["--bogus"])
    assert result.returncode == 1
    assert (
        '"command failed" err="failed to parse kubelet flag: unknown flag: --bogus"'
        in result.stderr
    )


def test_the_etcd_standin_checks_feature_gates_and_its_name(node: SandboxPaths) -> None:
    result = run_standin(node, "etcd", ["--feature-gates=NoSuchGate=true"])
    assert result.returncode == 1
    fatal = json.loads(result.stderr.strip().splitlines()[-1])
    assert fatal["level"] == "fatal" and "unrecognized feature gate: NoSuchGate" in fatal["error"]
    result = run_standin(node, "etcd", ["--name=a", "--initial-cluster=b=https://127.0.0.1:1"])
    assert 'couldn\'t find local name \\"a\\"' in result.stderr
    result = run_standin(node, "etcd", ["positional"])
    assert result.returncode == 1 and "'positional' is not a valid flag" in result.stderr


def test_a_file_outside_the_mounts_stops_the_apiserver(node: SandboxPaths) -> None:
    pod = load_pod(node.manifest("kube-apiserver"))
    result = run_standin(node, "kube-apiserver", list(pod.argv[1:]), mounts="[]")
    assert result.returncode == 1
    assert "no such file or directory" in result.stderr and '"command failed"' in result.stderr
    assert "Traceback" not in result.stderr


def test_standins_start_fast_and_import_no_ui(node: SandboxPaths) -> None:
    code = (
        "import sys, time; t = time.perf_counter();"
        "import cis_tui.sandbox.standin.apiserver, cis_tui.sandbox.standin.kubelet;"
        "import cis_tui.sandbox.standin.etcd, cis_tui.sandbox.standin.controlplane;"
        "bad = [m for m in ('textual', 'httpx', 'watchfiles', 'psutil') if m in sys.modules];"
        "print(bad, time.perf_counter() - t)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    bad, seconds = out.stdout.rsplit(" ", 1)
    assert bad == "[]"
    assert float(seconds) < 1.0
    # The agent and harness never import the UI either.
    code = (
        "import sys; import cis_tui.sandbox.agent, cis_tui.sandbox.harness, cis_tui.sandbox.create;"
        "print('textual' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


def test_fault_exit_at_start(node: SandboxPaths) -> None:
    from cis_tui.sandbox.settings import Fault, update_sandbox_settings

    update_sandbox_settings(node.root, faults=[Fault(component="kube-scheduler", exit_at_start=7)])
    try:
        since = time.time()
        assert run_standin(node, "kube-scheduler", []).returncode == 7
        events = [json.loads(line) for line in node.events.read_text().splitlines()]
        assert any(e["event"] == "fault" and e["time"] >= since for e in events)
    finally:
        update_sandbox_settings(node.root, faults=[])
