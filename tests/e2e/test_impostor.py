"""An unprivileged local user impersonates kube-scheduler on a live sandbox node.

The impostor is a real process of a real second user, named `kube-scheduler`, with the
arguments the engine waits for and a self-signed TLS listener on the scheduler's probe port,
started the moment the new manifest is written, while the real scheduler crash-loops on the new
flag. Before the fix the engine took it as restart evidence, its answers passed the health gate,
and `1.4.1` was committed; a scan reported its arguments as the running scheduler's.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from cis_tui.audit.node import parse_manifest, take_snapshot
from cis_tui.engine.events import Event, Kind, Outcome, Step
from cis_tui.engine.health import manifest_endpoints
from cis_tui.engine.restart import probe_port
from cis_tui.engine.transaction import Engine
from cis_tui.layout import load_settings
from cis_tui.remediate.plan import FilePlan, Plan
from cis_tui.sandbox import manifests as mf
from cis_tui.sandbox.harness import SandboxRun
from cis_tui.sandbox.pki import self_signed_serving, write_file
from cis_tui.sandbox.settings import Fault
from tests.conftest import run_cli
from tests.e2e.test_engine import CATALOG, catalog_plan, fast
from tests.hostile import SYSTEM_PYTHON, Attacker

#: The impostor: with IMPOSTOR_PORT, serve 200 over TLS on it as soon as it is free.
IMPOSTOR = """
import http.server, os, ssl, time

port = int(os.environ.get("IMPOSTOR_PORT") or 0)
while not port:
    time.sleep(60)


class Ok(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        self.send_response(200)
        self.send_header("Content-Length", "2")
        self.end_headers()
        self.wfile.write(b"ok")

    def log_message(self, *args):
        pass


while True:
    try:
        server = http.server.ThreadingHTTPServer(("127.0.0.1", port), Ok)
        break
    except OSError:
        time.sleep(0.02)
here = os.path.dirname(os.path.abspath(__file__))
context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
context.load_cert_chain(os.path.join(here, "tls.crt"), os.path.join(here, "tls.key"))
server.socket = context.wrap_socket(server.socket, server_side=True)
server.serve_forever()
"""


class Impostor:
    """A `kube-scheduler` of the attacker's, working inside the sandbox (as the real one)."""

    def __init__(self, attacker: Attacker, run: SandboxRun) -> None:
        self.attacker = attacker
        self.run = run
        self.script = attacker.home / "kube-scheduler"
        self.script.write_text(f"#!{SYSTEM_PYTHON}\n{IMPOSTOR}")
        self.script.chmod(0o755)
        pair = self_signed_serving("127.0.0.1")
        write_file(attacker.home / "tls.crt", pair.cert_pem, 0o644)
        write_file(attacker.home / "tls.key", pair.key_pem, 0o600)
        os.chown(attacker.home / "tls.key", attacker.uid, attacker.gid)
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self, args: tuple[str, ...], port: int | None = None) -> int:
        a = self.attacker
        env = {"PATH": "/usr/bin:/bin", "IMPOSTOR_PORT": str(port or "")}
        command = [str(self.script), *args]
        # Started from inside the sandbox (cwd), then it is the attacker's, nothing of root's.
        self.proc = subprocess.Popen(
            ["setpriv", f"--reuid={a.uid}", f"--regid={a.gid}", "--clear-groups", *command],
            cwd=self.run.paths.run_dir,
            env=env,
            start_new_session=True,
        )
        return self.proc.pid

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait()


@pytest.fixture
def impostor(attacker: Attacker) -> Iterator:
    made: list[Impostor] = []

    def make(run: SandboxRun) -> Impostor:
        made.append(Impostor(attacker, run))
        return made[-1]

    yield make
    for one in made:  # before the sandbox's own teardown counts what is left in it
        one.stop()


def scheduler_target(run: SandboxRun) -> tuple[tuple[str, ...], int]:
    """The arguments `1.4.1` gives the scheduler, and its probe port."""
    (file,) = catalog_plan(run, "1.4.1").files
    assert file.new_text is not None and file.path is not None
    manifest = parse_manifest(file.new_text, file.path, "kube-scheduler")
    (port,) = {probe_port(e.url) for e in manifest_endpoints(manifest)}
    return manifest.argv, port


def test_an_impostor_on_the_probe_port_does_not_commit_1_4_1(sandbox_factory, impostor):
    run = sandbox_factory(
        faults=[
            Fault(component="kube-scheduler", argv_contains="--profiling=false", exit_at_start=1)
        ]
    )
    path = load_settings(config=fast(run)).layout.manifest("kube-scheduler")
    original = path.read_bytes()
    args, port = scheduler_target(run)
    fake = impostor(run)
    events: list[Event] = []
    fake_pid: list[int] = []

    def sink(event: Event) -> None:
        events.append(event)
        # The moment the new manifest is in place (and the old scheduler is being stopped).
        if event.kind is Kind.STEP and event.step is Step.RESTART_EVIDENCE and not fake_pid:
            fake_pid.append(fake.start(args, port))
        if event.kind is Kind.ROLLBACK:
            fake.stop()  # let the old configuration have its port back

    engine = Engine(load_settings(config=fast(run)), CATALOG, sink, timeout=10)
    result = asyncio.run(engine.apply(catalog_plan(run, "1.4.1")))
    (file,) = result.files
    assert fake_pid, "the impostor never started"
    assert file.outcome is Outcome.ROLLED_BACK, file.message
    assert result.exit_code == 1
    assert path.read_bytes() == original
    assert "--profiling=false" not in run.args_of("kube-scheduler")
    assert all(e.data.get("pid") != fake_pid[0] for e in events if e.kind is Kind.RESTART)
    rollback = next(i for i, e in enumerate(events) if e.kind is Kind.ROLLBACK)
    assert not any(e.kind is Kind.STABLE for e in events[:rollback])  # the gate never passed
    failed = [e.message for e in events if e.step in (Step.RESTART_EVIDENCE, Step.HEALTH)]
    assert any("exited" in m or "no kube-scheduler" in m or "not restarted" in m for m in failed)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_answers_on_a_port_the_new_process_does_not_hold_do_not_pass_the_gate(
    sandbox_node, impostor
):
    """The change moves the scheduler to another port but its probes stay on the old one, which
    the impostor takes: the kubelet's probes would be answered, by the wrong process."""
    run = sandbox_node
    settings = load_settings(config=fast(run))
    path = settings.layout.manifest("kube-scheduler")
    old = path.read_text()
    (port,) = {
        probe_port(e.url) for e in manifest_endpoints(parse_manifest(old, path, "kube-scheduler"))
    }
    moved = mf.set_flag(old, "--secure-port", str(free_port()))
    plan = Plan("cis-1.12", (), {}, (FilePlan("manifest", "kube-scheduler", path, old, moved, ()),))
    fake = impostor(run)
    events: list[Event] = []

    def sink(event: Event) -> None:
        events.append(event)
        if event.kind is Kind.STEP and event.step is Step.RESTART_EVIDENCE and fake.proc is None:
            fake.start(("--impostor",), port)
        if event.kind is Kind.ROLLBACK:
            fake.stop()

    result = asyncio.run(Engine(settings, CATALOG, sink, timeout=6).apply(plan))
    (file,) = result.files
    assert file.outcome is Outcome.ROLLED_BACK, file.message
    assert path.read_text() == old
    new_pid = next(e.data["pid"] for e in events if e.kind is Kind.RESTART)
    assert f"port {port} is not listened on by kube-scheduler PID {new_pid}" in file.message
    rollback = next(i for i, e in enumerate(events) if e.kind is Kind.ROLLBACK)
    assert any(e.kind is Kind.POLL and e.ok for e in events[:rollback])  # the impostor's 200s


def test_a_scan_does_not_report_an_impostor_as_the_scheduler(capsys, sandbox_node, impostor):
    run = sandbox_node
    real = run.pid_of("kube-scheduler")
    args = (*run.args_of("kube-scheduler"), "--profiling=false")
    fake = impostor(run).start(args)  # newer than the real one, with the fix's flag
    settings = load_settings(config=run.config)
    deadline = time.monotonic() + 10
    snap = take_snapshot(settings)
    while not snap.ignored_processes and time.monotonic() < deadline:
        time.sleep(0.02)  # until the kernel shows the impostor's command line
        snap = take_snapshot(settings)
    assert snap.processes["kube-scheduler"].pid == real
    assert "--profiling=false" not in snap.processes["kube-scheduler"].args
    (ignored,) = snap.ignored_processes
    assert ignored.pid == fake and ignored.component == "kube-scheduler"
    assert "owned by cistui-attacker" in ignored.reason

    code, out, err = run_cli(
        capsys, "--config", str(run.config), "scan", "--check", "1.4.1", "--format", "json"
    )
    (result,) = json.loads(out)["results"]
    assert result["status"] == "FAIL", result
    assert result["evidence"]["live"] != "--profiling=false", result
    assert f"warning: ignored kube-scheduler PID {fake}: owned by cistui-attacker" in err
    assert "Traceback" not in err


def test_a_sandbox_trusts_its_agent_as_the_runtime_and_its_creator_as_the_owner(sandbox_node):
    identity = load_settings(config=sandbox_node.config).identity
    assert identity.uid == os.geteuid()
    assert identity.runtime_pid_files == (sandbox_node.paths.agent_lock,)
    assert Path(sandbox_node.paths.agent_lock).read_text().strip() == str(sandbox_node.process.pid)
