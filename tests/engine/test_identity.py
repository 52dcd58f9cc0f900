"""A process is a component only when it is one: owner, starter and the port it listens on.

Real processes throughout: a copy of `sleep` named `kube-scheduler`, started by this test (an
ordinary parent), by a copy of `bash` named like a runtime shim, or by a real second user.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import psutil
import pytest

from cis_tui.audit.processes import find_processes, listens_on, scan_processes
from cis_tui.engine.restart import pid_alive, port_problem, wait_for_process
from cis_tui.layout import ProcessIdentity, load_settings
from tests.conftest import run_cli
from tests.hostile import Attacker

SLEEP = shutil.which("sleep") or "/bin/sleep"
BASH = shutil.which("bash") or "/bin/bash"
ME = ProcessIdentity(uid=os.geteuid())  # the expected owner is whoever runs the tests


def named_copy(directory: Path, name: str, source: str) -> Path:
    """`source` under another name: the kernel names the process after the file it runs."""
    target = directory / name
    shutil.copy2(source, target)
    target.chmod(0o755)
    return target


def wait_child(parent: int, name: str) -> psutil.Process:
    """The child of `parent` named `name`, once the kernel shows it."""
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        try:
            for child in psutil.Process(parent).children():
                if child.name() == name and child.cmdline()[1:] == ["60"]:
                    return child
        except psutil.NoSuchProcess:
            pass
        time.sleep(0.01)
    raise AssertionError(f"no {name} child of PID {parent} appeared")


@pytest.fixture
def spawn() -> Iterator:
    """Start a process group; every one is killed at teardown."""
    started: list[subprocess.Popen] = []

    def start(argv: list[str], cwd: Path, **kwargs) -> subprocess.Popen:
        proc = subprocess.Popen(argv, cwd=cwd, start_new_session=True, **kwargs)
        started.append(proc)
        return proc

    yield start
    for proc in started:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()


def test_a_component_named_process_with_an_ordinary_parent_is_an_impostor(tmp_path, spawn):
    scheduler = named_copy(tmp_path, "kube-scheduler", SLEEP)
    spawn([str(scheduler), "60"], tmp_path)
    impostor = wait_child(os.getpid(), "kube-scheduler")
    scan = scan_processes(["kube-scheduler"], tmp_path, identity=ME)
    assert scan.live == {}
    (ignored,) = scan.ignored
    assert ignored.pid == impostor.pid and ignored.args == ("60",)
    assert "not started by the container runtime" in ignored.reason
    assert f"parent PID {os.getpid()}" in ignored.reason
    assert find_processes(["kube-scheduler"], tmp_path, identity=ME) == {}


@pytest.mark.parametrize("runtime", ["conmon", "containerd-shim-runc-v2"])
def test_the_same_process_started_by_a_runtime_is_the_component(tmp_path, spawn, runtime):
    scheduler = named_copy(tmp_path, "kube-scheduler", SLEEP)
    shim = named_copy(tmp_path, runtime, BASH)  # 23 characters: the kernel keeps 15
    parent = spawn([str(shim), "-c", f"{scheduler} 60 & wait"], tmp_path)
    child = wait_child(parent.pid, "kube-scheduler")
    scan = scan_processes(["kube-scheduler"], tmp_path, identity=ME)
    assert scan.ignored == ()
    assert scan.live["kube-scheduler"].pid == child.pid
    assert scan.live["kube-scheduler"].args == ("60",)
    # The kubelet is started by its service manager, not by the container runtime.
    kubelet = named_copy(tmp_path, "kubelet", SLEEP)
    shim_of_kubelet = spawn([str(shim), "-c", f"{kubelet} 60 & wait"], tmp_path)
    wait_child(shim_of_kubelet.pid, "kubelet")
    scan = scan_processes(["kubelet"], tmp_path, identity=ME)
    assert scan.live == {}
    assert "not started by its service manager" in scan.ignored[0].reason


def test_a_process_of_another_user_is_refused(attacker: Attacker, spawn):
    home = attacker.home
    scheduler = named_copy(home, "kube-scheduler", SLEEP)
    shim = named_copy(home, "conmon", BASH)
    as_attacker = [
        "setpriv",
        f"--reuid={attacker.uid}",
        f"--regid={attacker.gid}",
        "--clear-groups",
    ]
    parent = spawn([*as_attacker, str(shim), "-c", f"{scheduler} 60 & wait"], home)
    child = wait_child(parent.pid, "kube-scheduler")
    assert child.uids().real == attacker.uid
    scan = scan_processes(["kube-scheduler"], home, identity=ProcessIdentity())
    assert scan.live == {}
    (ignored,) = scan.ignored
    assert ignored.pid == child.pid
    assert ignored.reason == f"owned by {attacker.name} (uid {attacker.uid}), not root (uid 0)"
    # Only the owner refused it: with that user expected, the same process is the component.
    accepted = find_processes(["kube-scheduler"], home, identity=ProcessIdentity(uid=attacker.uid))
    assert accepted["kube-scheduler"].pid == child.pid


def test_a_runtime_pid_file_names_the_parent_only_if_no_one_else_may_write_it(tmp_path, spawn):
    scheduler = named_copy(tmp_path, "kube-scheduler", SLEEP)
    spawn([str(scheduler), "60"], tmp_path)
    child = wait_child(os.getpid(), "kube-scheduler")
    pid_file = tmp_path / "agent.lock"
    pid_file.write_text(f"{os.getpid()}\n")
    pid_file.chmod(0o644)
    link = tmp_path / "link.lock"
    link.symlink_to(pid_file)

    def found(path: Path) -> bool:
        identity = ProcessIdentity(uid=os.geteuid(), runtime_pid_files=(path,))
        live = find_processes(["kube-scheduler"], tmp_path, identity=identity)
        return live.get("kube-scheduler") is not None and live["kube-scheduler"].pid == child.pid

    assert found(pid_file)
    assert not found(link)  # never through a symlink
    pid_file.chmod(0o664)
    assert not found(pid_file)  # a group could name any process the runtime


def test_a_runtime_cgroup_identifies_the_component(tmp_path, spawn):
    scheduler = named_copy(tmp_path, "kube-scheduler", SLEEP)
    spawn([str(scheduler), "60"], tmp_path)
    child = wait_child(os.getpid(), "kube-scheduler")
    lines = Path(f"/proc/{child.pid}/cgroup").read_text().splitlines()
    paths = [line.split(":", 2)[2] for line in lines if line.split(":", 2)[2] != "/"]
    if not paths:
        pytest.skip("this process sits in the root cgroup: no cgroup path to trust")
    top = paths[0].strip("/").split("/")[0]
    trusted = ProcessIdentity(uid=os.geteuid(), runtimes=(), cgroups=(top,))
    assert find_processes(["kube-scheduler"], tmp_path, identity=trusted)
    # A prefix matches whole path components only.
    partial = ProcessIdentity(uid=os.geteuid(), runtimes=(), cgroups=(top[:-1] or "x",))
    assert find_processes(["kube-scheduler"], tmp_path, identity=partial) == {}


def test_an_impostor_is_no_restart_evidence(tmp_path, spawn):
    scheduler = named_copy(tmp_path, "kube-scheduler", SLEEP)
    spawn([str(scheduler), "60"], tmp_path)
    impostor = wait_child(os.getpid(), "kube-scheduler")
    evidence = asyncio.run(
        wait_for_process(
            "kube-scheduler",
            tmp_path,
            ("60",),
            None,
            time.monotonic() + 0.5,
            lambda: False,
            identity=ME,
        )
    )
    assert evidence.process is None
    assert evidence.message.startswith("no kube-scheduler process appeared (ignored kube-")
    assert f"PID {impostor.pid}: not started by the container runtime" in evidence.message


def test_the_port_must_be_listened_on_by_that_very_pid(tmp_path, spawn):
    code = (
        "import socket, time\n"
        "s = socket.socket()\n"
        "s.bind(('127.0.0.1', 0))\n"
        "s.listen()\n"
        "print(s.getsockname()[1], flush=True)\n"
        "time.sleep(60)\n"
    )
    server = spawn([sys.executable, "-c", code], tmp_path, stdout=subprocess.PIPE, text=True)
    port = int(server.stdout.readline())
    other = spawn([SLEEP, "60"], tmp_path)
    assert listens_on(server.pid, port)
    assert not listens_on(other.pid, port)
    assert not listens_on(os.getpid(), port)
    assert not listens_on(server.pid, port + 1 if port < 65535 else port - 1)
    url = f"https://127.0.0.1:{port}/livez"
    assert port_problem("kube-scheduler", server.pid, [url]) is None
    assert port_problem("kube-scheduler", other.pid, [url]) == (
        f"port {port} is not listened on by kube-scheduler PID {other.pid}"
    )
    os.killpg(server.pid, signal.SIGKILL)
    server.wait()
    assert not listens_on(server.pid, port)


def test_identity_keys_load_from_the_config(tmp_path):
    config = tmp_path / "config.toml"
    config.write_text(
        "[processes]\n"
        'runtimes = ["crun"]\n'
        'cgroups = ["machine.slice"]\n'
        'runtime_pid_files = ["/run/agent.pid"]\n'
        "[processes.user]\n"
        'etcd = "root"\n'
        "kube-apiserver = 4242\n"
    )
    identity = load_settings(config=config).identity
    assert identity.runtimes == ("crun",) and identity.cgroups == ("machine.slice",)
    assert identity.runtime_pid_files == (Path("/run/agent.pid"),)
    assert identity.uid_for("etcd") == 0 and identity.uid_for("kube-apiserver") == 4242
    assert identity.uid_for("kube-scheduler") == 0
    assert identity.parents_for("kubelet") == ("systemd",)


@pytest.mark.parametrize(
    ("table", "problem"),
    [
        ('user = "no-such-user-cistui"', "processes.user: no user 'no-such-user-cistui'"),
        ("user = -1", "processes.user must be a user name or a numeric uid"),
        ('runtimes = "conmon"', "processes.runtimes must be a list of non-empty strings"),
        ('cgroups = [""]', "processes.cgroups must be a list of non-empty strings"),
        ('runtime_pid_files = ["run/a.pid"]', "processes.runtime_pid_files must be an absolute"),
        ('runtime_pid_files = "/run/a.pid"', "processes.runtime_pid_files must be a list"),
        ("[processes.user]\nkube-foo = 0", "unknown component 'kube-foo' in [processes.user]"),
        ("owner = 0", "unknown key 'owner' in [processes]"),
    ],
)
def test_a_wrong_identity_key_is_a_one_line_error(capsys, tmp_path, table, problem):
    config = tmp_path / "config.toml"
    config.write_text(f"[processes]\n{table}\n")
    code, out, err = run_cli(capsys, "--config", str(config), "scan")
    assert code == 2 and out == ""
    lines = err.strip().splitlines()
    assert len(lines) == 1 and str(config) in lines[0] and problem in lines[0], err


def test_an_interpreted_component_is_found_only_when_started_like_one(tmp_path, spawn):
    """`python3 kube-scheduler ...` (how stand-ins run): the interpreter's command line is
    read only when its parent or cgroup could make it a component (issue 17)."""
    script = tmp_path / "kube-scheduler"
    script.write_text("import time\ntime.sleep(60)\n")
    spawn([sys.executable, str(script), "60"], tmp_path)  # an ordinary parent: not a candidate
    shim = named_copy(tmp_path, "conmon", BASH)
    parent = spawn([str(shim), "-c", f"{sys.executable} {script} 60 & wait"], tmp_path)
    deadline = time.monotonic() + 10
    found = {}
    while time.monotonic() < deadline and not found:
        found = find_processes(["kube-scheduler"], tmp_path, identity=ME)
    assert psutil.Process(found["kube-scheduler"].pid).ppid() == parent.pid
    scan = scan_processes(["kube-scheduler"], tmp_path, identity=ME)
    assert scan.ignored == ()  # the other one was never a candidate


def test_a_reused_pid_is_not_the_watched_process(tmp_path, spawn):
    """The gate watches one process: if it dies and the kernel hands its PID to another, the
    watched one is gone (its start time no longer matches), not alive again."""
    proc = spawn([SLEEP, "60"], tmp_path)
    started = psutil.Process(proc.pid).create_time()
    assert pid_alive(proc.pid, started)
    # The same PID seen with another start time: what a reuse of the PID looks like.
    assert not pid_alive(proc.pid, started - 5.0)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    assert not pid_alive(proc.pid, started)
