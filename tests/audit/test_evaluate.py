"""Evaluation semantics on real manifests: flag forms, lists, numbers, live processes."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from cis_tui.audit.evaluate import Status, evaluate
from cis_tui.audit.node import take_snapshot
from cis_tui.benchmarks.catalog import load_catalog
from cis_tui.layout import load_settings
from tests.nodetree import manifest_text, write

CATALOG = load_catalog("cis-1.12")


def verdicts(root: Path, *ids: str, live: bool = False, config: Path | None = None) -> dict:
    settings = load_settings(config=config, root=None if config else root)
    snap = take_snapshot(settings, live=live)
    return {r.id: r for r in evaluate(CATALOG, snap, ids)}


def set_apiserver(root: Path, *items: str, args: list[str] | None = None) -> Path:
    """Replace the apiserver's flag list with `items` (YAML list items, verbatim)."""
    text = manifest_text("kube-apiserver")
    start = text.index("    - --advertise-address")
    end = text.index("    image:")
    body = "".join(f"    - {item}\n" for item in items)
    if args is not None:
        body += "    args:\n" + "".join(f"    - {a}\n" for a in args)
    return write(
        root / "etc/kubernetes/manifests/kube-apiserver.yaml",
        text[:start] + body + text[end:],
        0o600,
    )


@pytest.mark.parametrize(
    ("items", "status"),
    [
        (["--profiling=false"], Status.PASS),
        (["--profiling", "false"], Status.FAIL),  # bool: true + stray positional
        (["--profiling=False"], Status.PASS),
        (['"--profiling=false"'], Status.PASS),  # quoted item
        (["--profiling=false  # disabled for CIS 1.2.15"], Status.PASS),  # trailing comment
        (["--profiling=false", "--profiling=true"], Status.FAIL),  # last wins
        (["--profiling=true", "--profiling=false"], Status.PASS),
        (["--profiling"], Status.FAIL),  # bare bool is true
        ([], Status.FAIL),  # absent: the default is true
    ],
)
def test_boolean_flag_forms(kubeadm_node, items, status):
    set_apiserver(kubeadm_node, *items)
    assert verdicts(kubeadm_node, "1.2.15")["1.2.15"].status is status


@pytest.mark.parametrize(
    ("items", "status"),
    [
        (["--audit-log-maxage=30"], Status.PASS),
        (["--audit-log-maxage", "30"], Status.PASS),  # kube-bench#2095 reads this as "true"
        (["--audit-log-maxage='45'"], Status.FAIL),  # a quoted number in the value is not a number
        (["--audit-log-maxage=29"], Status.FAIL),
        (["--audit-log-maxage=100"], Status.PASS),  # numbers, not strings: "100" >= "30"
        (["--audit-log-maxage=abc"], Status.FAIL),
    ],
)
def test_numeric_flags_and_space_form(kubeadm_node, items, status):
    set_apiserver(kubeadm_node, *items)
    assert verdicts(kubeadm_node, "1.2.17")["1.2.17"].status is status


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("NodeRestriction", Status.PASS),
        ("NodeRestrictionX", Status.FAIL),  # element-wise, not substring
        ("NamespaceLifecycle, NodeRestriction", Status.PASS),
        ("XNodeRestriction,Other", Status.FAIL),
    ],
)
def test_list_flags_are_compared_element_wise(kubeadm_node, value, expected):
    set_apiserver(kubeadm_node, f'"--enable-admission-plugins={value}"')
    assert verdicts(kubeadm_node, "1.2.14")["1.2.14"].status is expected


def test_always_admit_near_miss(kubeadm_node):
    set_apiserver(kubeadm_node, "--enable-admission-plugins=AlwaysAdmitNot,NodeRestriction")
    assert verdicts(kubeadm_node, "1.2.10")["1.2.10"].status is Status.PASS
    set_apiserver(kubeadm_node, "--enable-admission-plugins=NodeRestriction,AlwaysAdmit")
    assert verdicts(kubeadm_node, "1.2.10")["1.2.10"].status is Status.FAIL


def test_command_followed_by_args(kubeadm_node):
    set_apiserver(
        kubeadm_node, "kube-apiserver", args=["--profiling=false", "--audit-log-maxage", "31"]
    )
    got = verdicts(kubeadm_node, "1.2.15", "1.2.17")
    assert got["1.2.15"].status is Status.PASS
    assert got["1.2.17"].status is Status.PASS


def test_removal_checks(kubeadm_node):
    set_apiserver(kubeadm_node, "--token-auth-file=/etc/kubernetes/tokens.csv")
    assert verdicts(kubeadm_node, "1.2.2")["1.2.2"].status is Status.FAIL


def test_cipher_suites_subset(kubeadm_node):
    strong = "TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256,TLS_AES_128_GCM_SHA256"
    set_apiserver(kubeadm_node, f"--tls-cipher-suites={strong}")
    assert verdicts(kubeadm_node, "1.2.29")["1.2.29"].status is Status.PASS
    set_apiserver(kubeadm_node, f"--tls-cipher-suites={strong},TLS_RSA_WITH_RC4_128_SHA")
    assert verdicts(kubeadm_node, "1.2.29")["1.2.29"].status is Status.WARN  # manual check


def test_kubelet_command_line_wins_over_config(kubeadm_node):
    env = kubeadm_node / "var/lib/kubelet/kubeadm-flags.env"
    env.write_text('KUBELET_KUBEADM_ARGS="--anonymous-auth=true --read-only-port=10255"\n')
    got = verdicts(kubeadm_node, "4.2.1", "4.2.4")
    assert got["4.2.1"].status is Status.FAIL  # config says false, the flag says true
    assert got["4.2.1"].file_value == "--anonymous-auth=true"
    assert got["4.2.4"].status is Status.WARN


def test_kubelet_config_values(kubeadm_node):
    cfg = kubeadm_node / "var/lib/kubelet/config.yaml"
    cfg.write_text(
        cfg.read_text()
        + "readOnlyPort: 0\nfeatureGates:\n  RotateKubeletServerCertificate: false\n"
    )
    got = verdicts(kubeadm_node, "4.2.4", "4.2.11")
    assert got["4.2.4"].status is Status.PASS
    assert got["4.2.11"].status is Status.WARN


@pytest.mark.parametrize(
    ("flag", "config", "status"),
    [
        (None, "0s", Status.PASS),  # kubeadm's default file: zero in the file means 4h
        (None, "0", Status.PASS),
        (None, "5m", Status.PASS),
        ("0", "4h", Status.WARN),  # the flag wins, and zero there is really zero
        ("0s", "4h", Status.WARN),
        ("0h0m0s", None, Status.WARN),
        ("5m0s", "0s", Status.PASS),
    ],
)
def test_idle_timeouts_are_durations(kubeadm_node, flag, config, status):
    cfg = kubeadm_node / "var/lib/kubelet/config.yaml"
    text = cfg.read_text().replace("streamingConnectionIdleTimeout: 0s\n", "")
    if config is not None:
        text += f"streamingConnectionIdleTimeout: {config}\n"
    cfg.write_text(text)
    if flag is not None:
        env = kubeadm_node / "var/lib/kubelet/kubeadm-flags.env"
        env.write_text(f'KUBELET_KUBEADM_ARGS="--streaming-connection-idle-timeout={flag}"\n')
    result = verdicts(kubeadm_node, "4.2.5")["4.2.5"]
    assert result.status is status, result.file_value  # 4.2.5 is manual: a failure is WARN


def test_etcd_environment_variables_are_read(kubeadm_node):
    path = kubeadm_node / "etc/kubernetes/manifests/etcd.yaml"
    text = path.read_text().replace(
        "    image: registry",
        '    env:\n    - name: ETCD_AUTO_TLS\n      value: "true"\n    image: registry',
    )
    path.write_text(text)
    assert verdicts(kubeadm_node, "2.3")["2.3"].status is Status.FAIL


def test_file_modes(kubeadm_node):
    manifest = kubeadm_node / "etc/kubernetes/manifests/kube-apiserver.yaml"
    for mode, status in (
        (0o600, Status.PASS),
        (0o400, Status.PASS),
        (0o640, Status.FAIL),
        (0o700, Status.FAIL),
    ):
        manifest.chmod(mode)
        assert verdicts(kubeadm_node, "1.1.1")["1.1.1"].status is status, oct(mode)
    key = kubeadm_node / "etc/kubernetes/pki/etcd/peer.key"
    key.chmod(0o644)
    result = verdicts(kubeadm_node, "1.1.21")["1.1.21"]
    assert result.status is Status.WARN and str(key) in result.reason


@pytest.mark.skipif(os.geteuid() != 0, reason="changing a file's owner needs root")
def test_file_owner(kubeadm_node):
    conf = kubeadm_node / "etc/kubernetes/admin.conf"
    os.chown(conf, 65534, 65534)
    result = verdicts(kubeadm_node, "1.1.14")["1.1.14"]
    assert result.status is Status.FAIL and str(conf) in result.reason


# ---- the live process beside the file ----


@pytest.fixture
def fake_apiserver(tmp_path):
    """A real process whose command line reads `kube-apiserver <args>`, in its own cwd."""
    procs = []

    def start(*args: str) -> subprocess.Popen:
        bindir = tmp_path / "bin"
        bindir.mkdir(exist_ok=True)
        script = bindir / "kube-apiserver"
        script.write_text(f"#!{sys.executable}\nimport time\ntime.sleep(120)\n")
        script.chmod(0o755)
        proc = subprocess.Popen([str(script), *args], cwd=tmp_path)
        procs.append(proc)
        deadline = time.monotonic() + 10
        import psutil

        while time.monotonic() < deadline:  # wait until the kernel shows the command line
            try:
                if psutil.Process(proc.pid).cmdline()[1:2] == [str(script)]:
                    return proc
            except psutil.NoSuchProcess:
                pass
            time.sleep(0.01)
        raise AssertionError("fake apiserver did not start")

    yield start
    for proc in procs:
        proc.kill()
        proc.wait()


def _this_test_is_the_runtime(tmp_path) -> str:
    """[processes] keys under which this test process starts components (as a sandbox agent)."""
    pid_file = tmp_path / "runtime.pid"
    pid_file.write_text(f"{os.getpid()}\n")
    pid_file.chmod(0o644)
    return f"user = {os.geteuid()}\nruntime_pid_files = ['{pid_file}']\n"


def test_live_process_disagreement_is_reported(kubeadm_node, tmp_path, fake_apiserver):
    set_apiserver(kubeadm_node, "--profiling=false")
    fake_apiserver("--profiling=true", "--audit-log-maxage", "30")
    config = tmp_path / "node.toml"
    config.write_text(
        f"[layout]\nmanifests_dir = '{kubeadm_node}/etc/kubernetes/manifests'\n"
        f"[processes]\nroot = '{tmp_path}'\n{_this_test_is_the_runtime(tmp_path)}"
    )
    got = verdicts(kubeadm_node, "1.2.15", "1.2.17", live=True, config=config)
    profiling = got["1.2.15"]
    assert profiling.status is Status.FAIL
    assert profiling.file_value == "--profiling=false"
    assert profiling.live_value == "--profiling=true"
    assert profiling.disagreement == (
        "the file says --profiling=false, the running kube-apiserver still has --profiling=true"
    )
    assert got["1.2.17"].live_value == "--audit-log-maxage=30"


def test_processes_outside_the_node_root_are_not_this_nodes(kubeadm_node, tmp_path, fake_apiserver):
    fake_apiserver("--profiling=true")
    elsewhere = tmp_path / "other-node"
    elsewhere.mkdir()
    config = tmp_path / "node.toml"
    config.write_text(
        f"[layout]\nmanifests_dir = '{kubeadm_node}/etc/kubernetes/manifests'\n"
        f"[processes]\nroot = '{elsewhere}'\n{_this_test_is_the_runtime(tmp_path)}"
    )
    assert verdicts(kubeadm_node, "1.2.15", live=True, config=config)["1.2.15"].live_value is None
