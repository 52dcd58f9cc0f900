"""The sandbox is a believable node: processes and arguments, probes, TLS, restarts, crash loops."""

from __future__ import annotations

import os
import shutil
import signal
import socket
import ssl
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import psutil
import pytest

from cis_tui.layout import load_settings
from cis_tui.sandbox import events as ev
from cis_tui.sandbox import manifests as mf
from cis_tui.sandbox.harness import SandboxRun
from cis_tui.sandbox.paths import COMPONENTS, STATIC_COMPONENTS, SandboxPaths
from cis_tui.sandbox.pods import load_pod
from cis_tui.sandbox.settings import Fault
from cis_tui.sandbox.systemd import load_service
from tests.e2e.conftest import SandboxFactory, needs_etcd


def write_atomically(path: Path, text: str) -> None:
    """Replace a manifest the way the engine does: a dot-file in the same dir, then rename."""
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(text)
    os.chmod(tmp, 0o600)
    os.replace(tmp, path)


def edit(path: Path, change: Callable[[str], str]) -> float:
    """Edit a manifest; returns the time just before the change (for `since=`)."""
    before = time.time()
    write_atomically(path, change(path.read_text()))
    return before


def get(url: str, cert: tuple[Path, Path] | None = None, timeout: float = 5.0) -> int:
    """GET over HTTPS without verification (like a kubelet probe); the status code."""
    import http.client
    import urllib.parse

    ctx = ssl.create_default_context()
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    if cert is not None:
        ctx.load_cert_chain(*cert)
    parts = urllib.parse.urlsplit(url)
    if parts.scheme == "https":
        conn: http.client.HTTPConnection = http.client.HTTPSConnection(
            parts.hostname, parts.port, context=ctx, timeout=timeout
        )
    else:
        conn = http.client.HTTPConnection(parts.hostname, parts.port, timeout=timeout)
    try:
        conn.request("GET", parts.path + (f"?{parts.query}" if parts.query else ""))
        return conn.getresponse().status
    finally:
        conn.close()


def _status(url: str) -> int | None:
    try:
        return get(url, timeout=1.0)
    except OSError:
        return None  # not listening yet


def probe_url(run: SandboxRun, component: str) -> str:
    probe = load_pod(run.paths.manifest(component)).health_probe
    assert probe is not None
    return probe.url


def kubelet_healthz(run: SandboxRun) -> str:
    text = run.paths.kubelet_config.read_text()
    port = next(ln.split()[1] for ln in text.splitlines() if ln.startswith("healthzPort:"))
    return f"http://127.0.0.1:{port}/healthz"


def crashed(run: SandboxRun, component: str, since: float) -> ev.Event:
    """The first failed exit (non-zero, with the component's last words) after `since`."""
    return run.wait_for(
        lambda e: (
            e.component == component
            and e.event == ev.EXITED
            and e.time >= since
            and e.get("code") not in (0, None)
            and "message" in e.details
        ),
        what=f"{component} crash",
    )


def etcd_health(host: str, port: int, ctx: ssl.SSLContext) -> bytes:
    """GET /health on an etcd client URL over TLS; the raw response."""
    with (
        socket.create_connection((host, port), timeout=5) as raw,
        ctx.wrap_socket(raw, server_hostname=host) as tls,
    ):
        tls.sendall(b"GET /health HTTP/1.1\r\nHost: etcd\r\nConnection: close\r\n\r\n")
        data = b""
        while chunk := tls.recv(4096):
            data += chunk
        return data


def refused(host: str, port: int, ctx: ssl.SSLContext) -> bool:
    """Whether etcd turns this TLS client away (with TLS 1.3 the alert may come on read)."""
    try:
        return b'"health":"true"' not in etcd_health(host, port, ctx)
    except (ssl.SSLError, ConnectionError):
        return True


def client_cert(run: SandboxRun) -> tuple[Path, Path]:
    pki = run.paths.pki
    return pki / "apiserver-kubelet-client.crt", pki / "apiserver-kubelet-client.key"


def test_every_component_runs_with_the_manifest_arguments(sandbox_node: SandboxRun) -> None:
    run = sandbox_node
    settings = load_settings(config=run.config)
    assert settings.process_root == run.dir
    assert settings.layout.manifests_dir == run.paths.manifests
    for component in STATIC_COMPONENTS:
        pod = load_pod(run.paths.manifest(component))
        procs = run.processes(component)
        assert len(procs) == 1, (component, procs)
        proc, args = procs[0]
        assert args == list(pod.argv[1:]), component
        assert Path(proc.cwd()).is_relative_to(run.dir)
        assert proc.pid == run.pid_of(component)
        # `ps -C` (kube-bench's way) finds it by name too.
        assert proc.name().startswith(component[:15])
        assert get(probe_url(run, component)) == 200, component
    unit = load_service(run.paths.kubelet_unit, run.paths.kubelet_dropin.parent)
    assert run.args_of("kubelet") == list(unit.argv[1:])
    assert any(a.startswith("--config=") for a in run.args_of("kubelet"))
    assert get(kubelet_healthz(run)) == 200
    # Every healthy event follows its component's start.
    for component in COMPONENTS:
        started = run.events(component, ev.STARTED)[-1]
        healthy = run.events(component, ev.HEALTHY)[-1]
        assert healthy.time >= started.time
        assert healthy.pid == started.pid


def test_editing_a_manifest_restarts_exactly_that_component(sandbox_node: SandboxRun) -> None:
    run = sandbox_node
    before = {c: run.pid_of(c) for c in COMPONENTS}
    # Identical bytes rewritten: same pod hash, no restart (checked after the next change).
    api = run.paths.manifest("kube-apiserver")
    write_atomically(api, api.read_text())
    since = edit(
        run.paths.manifest("kube-scheduler"), lambda t: mf.set_flag(t, "--profiling", "false")
    )
    restarted = run.wait_event("kube-scheduler", ev.RESTARTING, since)
    assert restarted.pid == before["kube-scheduler"]
    started = run.wait_event("kube-scheduler", ev.STARTED, since)
    exited = run.wait_event("kube-scheduler", ev.EXITED, since)
    assert exited.time <= started.time  # the old process was gone before the new one started
    healthy = run.wait_healthy("kube-scheduler", since)
    assert healthy.pid == started.pid != before["kube-scheduler"]
    assert "--profiling=false" in run.args_of("kube-scheduler")
    assert run.args_of("kube-scheduler") == list(
        load_pod(run.paths.manifest("kube-scheduler")).argv[1:]
    )
    for component in COMPONENTS:
        if component != "kube-scheduler":
            assert run.pid_of(component) == before[component], component
            assert not run.events(component, ev.STARTED, since), component


BAD_ARGUMENTS = [
    # (component, edit, what the component says)
    (
        "kube-scheduler",
        lambda t: mf.set_flag(t, "--no-such-flag", "1"),
        "Error: unknown flag: --no-such-flag",
    ),
    (
        "kube-scheduler",
        lambda t: mf.set_flag(t, "--profiling", "maybe"),
        'Error: invalid argument "maybe" for "--profiling" flag: strconv.ParseBool',
    ),
    (
        "kube-scheduler",
        lambda t: mf.set_flag(t, "--secure-port", "99999"),
        "--secure-port 99999 must be between 0 and 65535",
    ),
    (
        "kube-controller-manager",
        lambda t: t.replace(
            "- --bind-address=127.0.0.1\n", "- --bind-address\n    - 127.0.0.1\n    - x\n"
        ),
        'Error: "kube-controller-manager" does not take any arguments, got ["x"]',
    ),
    (
        "kube-apiserver",
        lambda t: mf.set_flag(t, "--authorization-mode", "Node,RBAC,Magic"),
        'authorization-mode \\"Magic\\" is not a valid mode',
    ),
]


def test_a_bad_flag_keeps_the_component_from_becoming_healthy(sandbox_node: SandboxRun) -> None:
    run = sandbox_node
    for component, change, message in BAD_ARGUMENTS:
        manifest = run.paths.manifest(component)
        original = manifest.read_text()
        since = edit(manifest, change)
        first = crashed(run, component, since)
        assert first.get("code") == 1
        assert message in first.get("message"), (message, first.get("message"))
        # CrashLoopBackOff: retried after a delay, failing the same way.
        run.wait_event(component, ev.BACKOFF, first.time)
        again = crashed(run, component, first.time + 1e-6)
        assert message in again.get("message")
        assert not run.events(component, ev.HEALTHY, since)
        # Restoring the file ends the crash loop at once (a new pod, no back-off).
        restored = edit(manifest, lambda _t, text=original: text)
        run.wait_healthy(component, restored, timeout=10)


def test_a_missing_or_unmounted_file_keeps_the_apiserver_down(sandbox_node: SandboxRun) -> None:
    run = sandbox_node
    manifest = run.paths.manifest("kube-apiserver")
    policy = run.paths.host("/etc/kubernetes/audit-policy.yaml")

    # 1. The file does not exist.
    since = edit(manifest, lambda t: mf.set_flag(t, "--audit-policy-file", str(policy)))
    assert f"open {policy}: no such file or directory" in crashed(run, "kube-apiserver", since).get(
        "message"
    )
    # 2. It exists on the host, but no volume mounts it into the pod: still invisible.
    policy.write_text("apiVersion: audit.k8s.io/v1\nkind: Policy\nrules:\n- level: Metadata\n")
    since = edit(manifest, lambda t: mf.set_flag(t, "--audit-log-maxage", "30"))
    assert f"open {policy}: no such file or directory" in crashed(run, "kube-apiserver", since).get(
        "message"
    )
    assert not run.events("kube-apiserver", ev.HEALTHY, since)
    # 3. Mounted: healthy again, serving with the new flags.
    vol = mf.HostPathVolume("audit-policy", str(policy), str(policy), "File")
    since = edit(manifest, lambda t: mf.add_volume(t, vol))
    run.wait_healthy("kube-apiserver", since)
    assert f"--audit-policy-file={policy}" in run.args_of("kube-apiserver")


def test_an_unwritable_audit_log_directory_is_fatal(sandbox_node: SandboxRun) -> None:
    run = sandbox_node
    manifest = run.paths.manifest("kube-apiserver")
    log_dir = run.paths.host("/var/log/kubernetes/audit")
    since = edit(manifest, lambda t: mf.set_flag(t, "--audit-log-path", f"{log_dir}/audit.log"))
    exited = crashed(run, "kube-apiserver", since)
    assert "no such file or directory" in exited.get("message")
    # A read-only mount is no better than none.
    vol = mf.HostPathVolume(
        "audit-log", str(log_dir), str(log_dir), "DirectoryOrCreate", read_only=True
    )
    since = edit(manifest, lambda t: mf.add_volume(t, vol))
    exited = crashed(run, "kube-apiserver", since)
    assert "read-only file system" in exited.get("message")
    assert log_dir.is_dir()  # DirectoryOrCreate: the agent created it, like the kubelet
    since = edit(
        manifest, lambda t: t.replace("name: audit-log\n      readOnly: true", "name: audit-log")
    )
    run.wait_healthy("kube-apiserver", since)
    assert (log_dir / "audit.log").exists()


def test_anonymous_auth_off_answers_401_anonymous_and_200_with_a_client_cert(
    sandbox_factory: SandboxFactory,
) -> None:
    run = sandbox_factory("hardened")
    url = probe_url(run, "kube-apiserver")
    assert get(url) == 200  # the hardened node keeps anonymous health checks (kubeadm#798)
    since = edit(
        run.paths.manifest("kube-apiserver"), lambda t: mf.set_flag(t, "--anonymous-auth", "false")
    )
    run.wait_event("kube-apiserver", ev.STARTED, since)
    assert "--anonymous-auth=false" in run.args_of("kube-apiserver")
    deadline = time.monotonic() + 30
    while _status(url) != 401:  # the new process listens once its certificates are loaded
        assert time.monotonic() < deadline, "no 401 to anonymous requests within 30 s"
        time.sleep(0.05)
    assert get(url, cert=client_cert(run)) == 200
    # A client certificate from another CA fails the TLS handshake.
    with tempfile.TemporaryDirectory() as other:
        from cis_tui.sandbox.pki import make_ca, make_cert

        stranger = make_cert(make_ca("someone-else"), "intruder", client=True)
        (Path(other) / "c.crt").write_bytes(stranger.cert_pem)
        (Path(other) / "c.key").write_bytes(stranger.key_pem)
        with pytest.raises((ssl.SSLError, ConnectionError)):
            get(url, cert=(Path(other) / "c.crt", Path(other) / "c.key"))
    # The serving certificate chains to the cluster CA (a health gate can verify it).
    ctx = ssl.create_default_context(cafile=str(run.paths.ca_cert))
    ctx.check_hostname = False
    ctx.load_cert_chain(*client_cert(run))
    port = int(url.split(":")[2].split("/")[0])
    with socket.create_connection(("127.0.0.1", port)) as raw, ctx.wrap_socket(raw) as tls:
        assert tls.getpeercert()["subject"][0][0] == ("commonName", "kube-apiserver")
    # The kubelet's secure port refuses anonymous requests too (anonymous.enabled: false).
    kubelet_port = next(
        ln.split()[1]
        for ln in run.paths.kubelet_config.read_text().splitlines()
        if ln.startswith("port:")
    )
    assert get(f"https://127.0.0.1:{kubelet_port}/healthz") == 401
    assert get(f"https://127.0.0.1:{kubelet_port}/healthz", cert=client_cert(run)) == 200
    # kube-scheduler's health paths stay open (authorization-always-allow-paths).
    assert get(probe_url(run, "kube-scheduler")) == 200


def test_crash_after_first_healthy_loops_only_with_the_faulty_arguments(
    sandbox_factory: SandboxFactory,
) -> None:
    fault = Fault(
        component="kube-scheduler", argv_contains="--profiling=false", crash_after_healthy=0.2
    )
    run = sandbox_factory(faults=[fault])
    manifest = run.paths.manifest("kube-scheduler")
    original = manifest.read_text()
    since = edit(manifest, lambda t: mf.set_flag(t, "--profiling", "false"))
    healthy = run.wait_healthy("kube-scheduler", since)
    crash = run.wait_event("kube-scheduler", ev.FAULT, healthy.time)
    exited = run.wait_event("kube-scheduler", ev.EXITED, crash.time)
    assert exited.get("code") == 1 and exited.pid == healthy.pid
    run.wait_event("kube-scheduler", ev.BACKOFF, exited.time)
    again = run.wait_healthy("kube-scheduler", exited.time)  # the loop goes on
    run.wait_event("kube-scheduler", ev.FAULT, again.time)
    restored = edit(manifest, lambda _t: original)
    steady = run.wait_healthy("kube-scheduler", restored)
    # Barrier: restart another component; the scheduler must not have crashed meanwhile.
    since = edit(
        run.paths.manifest("kube-controller-manager"), lambda t: mf.set_flag(t, "--v", "2")
    )
    run.wait_healthy("kube-controller-manager", since)
    assert not run.events("kube-scheduler", ev.FAULT, steady.time)
    assert run.pid_of("kube-scheduler") == steady.pid


def test_restart_kubelet_rereads_its_config(sandbox_node: SandboxRun) -> None:
    run = sandbox_node
    config = run.paths.kubelet_config
    original = config.read_text()
    old_pid = run.pid_of("kubelet")
    since = time.time()
    config.write_text(original.replace("kind: KubeletConfiguration", "kind: KubeletConfig"))
    assert run.restart_kubelet() == 0
    exited = crashed(run, "kubelet", since)
    assert 'no kind \\"KubeletConfig\\" is registered' in exited.get("message")  # klog-quoted
    config.write_text(
        original.replace("rotateCertificates: true", "rotateCertificates: true\nreadOnlyPort: 0")
    )
    since = time.time()
    assert run.restart_kubelet() == 0
    healthy = run.wait_healthy("kubelet", since)
    assert healthy.pid not in (old_pid, exited.pid)
    assert get(kubelet_healthz(run)) == 200


def test_an_etcd_outage_shows_on_the_apiserver(sandbox_node: SandboxRun) -> None:
    run = sandbox_node
    api = probe_url(run, "kube-apiserver")
    etcd_pid = run.pid_of("etcd")
    since = time.time()
    os.kill(etcd_pid, signal.SIGKILL)
    run.wait_event("kube-apiserver", ev.UNHEALTHY, since)
    # The agent restarts etcd after a back-off; the apiserver recovers without a restart.
    etcd_back = run.wait_healthy("etcd", since)
    assert etcd_back.pid != etcd_pid
    recovered = run.wait_healthy("kube-apiserver", etcd_back.time - 1)
    assert recovered.get("first") is False  # the same process, healthy again
    assert get(api) == 200
    assert not run.events("kube-apiserver", ev.STARTED, since)


@needs_etcd
def test_real_etcd_runs_with_tls_client_auth(sandbox_factory: SandboxFactory) -> None:
    run = sandbox_factory(etcd="real")
    ((proc, args),) = run.processes("etcd")
    assert proc.cmdline()[0] == "etcd"
    assert Path(proc.exe()).name == "etcd" and not Path(proc.exe()).is_relative_to(run.dir)
    assert args == list(load_pod(run.paths.manifest("etcd")).argv[1:])
    client = next(a.split("=", 1)[1] for a in args if a.startswith("--listen-client-urls="))
    etcd_pki = run.paths.pki / "etcd"
    ca = ssl.create_default_context(cafile=str(etcd_pki / "ca.crt"))
    ca.load_cert_chain(etcd_pki / "healthcheck-client.crt", etcd_pki / "healthcheck-client.key")
    host, port = client.removeprefix("https://").split(":")
    assert b'"health":"true"' in etcd_health(host, int(port), ca)
    anonymous = ssl.create_default_context(cafile=str(etcd_pki / "ca.crt"))
    assert refused(host, int(port), anonymous)
    assert (run.paths.etcd_data / "member").is_dir()
    assert get(probe_url(run, "etcd")) == 200


def test_standin_etcd_requires_client_certificates(sandbox_factory: SandboxFactory) -> None:
    run = sandbox_factory(etcd="standin")
    ((proc, args),) = run.processes("etcd")
    assert Path(proc.cmdline()[1]) == run.paths.standin("etcd")
    client = next(a.split("=", 1)[1] for a in args if a.startswith("--listen-client-urls="))
    host, port = client.removeprefix("https://").split(":")
    anonymous = ssl.create_default_context(cafile=str(run.paths.pki / "etcd" / "ca.crt"))
    assert refused(host, int(port), anonymous)
    assert get(probe_url(run, "etcd")) == 200


def test_a_stray_backup_in_the_manifests_dir_is_a_pod_and_wins(
    sandbox_factory: SandboxFactory,
) -> None:
    run = sandbox_factory("stray-backup")
    manifest = run.paths.manifest("kube-apiserver")
    assert "--profiling=false" in manifest.read_text()
    backup = load_pod(manifest.with_name("kube-apiserver.yaml.bak"))
    assert run.args_of("kube-apiserver") == list(backup.argv[1:])  # the old spec runs
    assert len(run.processes("kube-apiserver")) == 1
    # A dot-file is ignored, however broken; a plain file is read (and reported).
    since = time.time()
    (run.paths.manifests / ".scratch.yaml").write_text("{{{ not yaml")
    (run.paths.manifests / "notes.txt").write_text("{{{ not yaml")
    run.wait_for(
        lambda e: (
            e.event == ev.MANIFEST_ERROR
            and e.time >= since
            and e.get("file", "").endswith("notes.txt")
        ),
        what="manifest error for notes.txt",
    )
    assert not [
        e for e in run.events(event=ev.MANIFEST_ERROR, since=since) if ".scratch" in e.get("file")
    ]
    # Removing the backup removes the pod it defined until the next relist.
    since = time.time()
    manifest.with_name("kube-apiserver.yaml.bak").unlink()
    run.wait_event("kube-apiserver", ev.REMOVED, since)
    run.wait_event("kube-apiserver", ev.STOPPING, since)


def test_two_sandboxes_run_side_by_side(sandbox_factory: SandboxFactory) -> None:
    first = sandbox_factory(etcd="standin")
    second = sandbox_factory(etcd="standin")
    for component in STATIC_COMPONENTS:
        assert probe_url(first, component) != probe_url(second, component)
        assert get(probe_url(first, component)) == get(probe_url(second, component)) == 200
    # Each run sees only its own processes.
    assert {p.pid for p, _ in first.processes("kube-apiserver")} == {first.pid_of("kube-apiserver")}
    assert first.stop() == 0
    first.wait_no_processes()
    assert get(probe_url(second, "kube-apiserver")) == 200


def test_the_agent_leaves_nothing_behind(sandbox_factory: SandboxFactory) -> None:
    graceful = sandbox_factory(etcd="standin")
    pids = {c: graceful.pid_of(c) for c in COMPONENTS}
    assert graceful.stop() == 0
    graceful.wait_no_processes()
    for component, pid in pids.items():
        assert not psutil.pid_exists(pid) or psutil.Process(pid).status() == psutil.STATUS_ZOMBIE
        assert graceful.events(component, ev.EXITED)[-1].pid == pid
    assert graceful.events("agent")[-1].event == ev.AGENT_STOPPED

    killed = sandbox_factory()
    assert killed.live_processes()
    killed.kill()  # kill -9: PR_SET_PDEATHSIG takes the components down with it
    killed.wait_no_processes()


def test_a_second_agent_on_the_same_node_is_refused(sandbox_node: SandboxRun) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "cis_tui.sandbox", "run", str(sandbox_node.dir)],
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    assert result.returncode == 2
    assert "already runs" in result.stderr and "Traceback" not in result.stderr


def _unprivileged_command() -> tuple[list[str], Callable[[], None] | None]:
    """How to run as an ordinary user: `nobody` if it can run this Python, else uid 1000 in a
    user namespace (no capabilities on the host; the venv may live under root's 0700 home)."""
    nobody = 65534

    def as_nobody() -> None:
        os.setgroups([])
        os.setgid(nobody)
        os.setuid(nobody)

    try:
        subprocess.run([sys.executable, "-c", "pass"], preexec_fn=as_nobody, check=True, timeout=30)
    except (OSError, subprocess.CalledProcessError):
        userns = ["unshare", "--user", "--map-user=1000", "--map-group=1000", "--"]
        try:
            subprocess.run([*userns, sys.executable, "-c", "pass"], check=True, timeout=30)
        except (OSError, subprocess.CalledProcessError):
            pytest.skip("nobody cannot run this Python, and user namespaces are unavailable")
        return userns, None
    return [], as_nobody


@pytest.mark.skipif(os.geteuid() != 0, reason="already an ordinary user: every other test shows it")
def test_an_ordinary_user_can_create_and_run_a_sandbox() -> None:
    prefix, preexec = _unprivileged_command()
    base = Path(tempfile.mkdtemp(prefix="cis-tui-user-", dir="/tmp"))
    if preexec is not None:
        os.chown(base, 65534, 65534)
    node = base / "node"
    env = {**os.environ, "HOME": str(base)}
    try:
        created = subprocess.run(
            [*prefix, sys.executable, "-m", "cis_tui.sandbox", "create", str(node)],
            preexec_fn=preexec,
            env=env,
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        assert created.returncode == 0, created.stderr
        fast = "\n".join(f"{c} = 0.05" for c in COMPONENTS)
        settings = (node / "sandbox.toml").read_text()
        (node / "sandbox.toml").write_text(
            settings.split("[ready_delay]")[0] + "[ready_delay]\n" + fast + "\n"
        )
        agent = subprocess.Popen(
            [*prefix, sys.executable, "-m", "cis_tui.sandbox", "run", str(node)],
            preexec_fn=preexec,
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        run = SandboxRun(SandboxPaths(node), agent, time.time())
        try:
            run.wait_all_healthy(timeout=30)
            assert run.events("agent", ev.AGENT_STARTED)[-1].get("uid") != 0
        finally:
            assert run.stop() == 0
        run.wait_no_processes()
    finally:
        shutil.rmtree(base, ignore_errors=True)
