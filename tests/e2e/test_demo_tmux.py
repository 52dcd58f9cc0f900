"""End to end: the installed `cis-tui demo` in a real tmux terminal (TERM=screen-256color, 100x30).

Selects a failing check, previews, applies through the real health gate, sees it pass,
restores the backup, quits, and checks that nothing is left behind. Every wait polls the
pane with a deadline.
"""

from __future__ import annotations

import json
import os
import re
import shlex
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import psutil
import pytest

pytestmark = pytest.mark.skipif(
    shutil.which("tmux") is None, reason="tmux is not installed (Debian: apt-get install tmux)"
)

CIS_TUI = Path(sys.executable).with_name("cis-tui")
TMUX_CONF = """\
set -g remain-on-exit on
set -g default-terminal screen-256color
set -sg escape-time 0
set -g status off
set -g default-size 100x30
"""


class Pane:
    """A tmux session on a private server, driven like a user at a terminal."""

    def __init__(self, directory: Path) -> None:
        self.socket = directory / "tmux.sock"
        self.conf = directory / "tmux.conf"
        self.conf.write_text(TMUX_CONF)

    def tmux(self, *args: str) -> str:
        done = subprocess.run(
            ["tmux", "-S", str(self.socket), "-f", str(self.conf), *args],
            capture_output=True,
            text=True,
            timeout=30,
            check=True,
        )
        return done.stdout

    def start(self, command: str, size: tuple[int, int] = (100, 30)) -> None:
        width, height = size
        self.tmux("new-session", "-d", "-s", "demo", "-x", str(width), "-y", str(height), command)

    def text(self) -> str:
        return self.tmux("capture-pane", "-p", "-t", "demo", "-S", "-200")

    def keys(self, *keys: str, literal: bool = False) -> None:
        self.tmux("send-keys", "-t", "demo", *(["-l"] if literal else []), *keys)

    def wait_for(self, pattern: str, timeout: float = 60.0) -> re.Match[str]:
        deadline = time.monotonic() + timeout
        while True:
            text = self.text()
            found = re.search(pattern, text)
            if found:
                return found
            if time.monotonic() > deadline:
                raise AssertionError(f"no {pattern!r} within {timeout:g}s; the pane shows:\n{text}")
            time.sleep(0.1)

    def search(self, check_id: str) -> None:
        """Filter the checks table down to one check, as a user does: `/`, the id, enter."""
        self.keys("/")
        self.wait_for(r"search id or title")  # type only once the search box has the focus
        self.keys(check_id, literal=True)
        self.keys("Enter")
        self.wait_for(rf"\b1/92 checks · .*search “{re.escape(check_id)}”")

    def wait_until(self, test: Callable[[str], bool], what: str, timeout: float = 30.0) -> str:
        """Poll the screen until `test(screen)` holds."""
        deadline = time.monotonic() + timeout
        while True:
            text = self.text()
            if test(text):
                return text
            if time.monotonic() > deadline:
                raise AssertionError(
                    f"not true within {timeout:g}s: {what}; the pane shows:\n{text}"
                )
            time.sleep(0.1)

    def kill(self) -> None:
        subprocess.run(
            ["tmux", "-S", str(self.socket), "kill-server"], capture_output=True, check=False
        )


def processes_under(directory: Path) -> list[str]:
    """Live processes whose command line or working directory is inside `directory`."""
    found = []
    for proc in psutil.process_iter(["pid", "cmdline", "cwd", "status"]):
        try:
            if proc.info["status"] == psutil.STATUS_ZOMBIE:
                continue
            text = " ".join(proc.info["cmdline"] or []) + " " + (proc.info["cwd"] or "")
        except (psutil.NoSuchProcess, psutil.AccessDenied):
            continue
        if str(directory) in text:
            found.append(f"{proc.pid} {text[:120]}")
    return found


def demo_command(tmpdir: Path) -> str:
    """`cis-tui demo` with the test's isolated XDG dirs, a private TMPDIR (where the demo puts
    its sandbox), and the terminal an SSH session into tmux usually has: 256 colours, no
    COLORTERM."""
    if not CIS_TUI.exists():
        pytest.skip(f"the cis-tui console script is not installed ({CIS_TUI}); pip install -e .")
    env = {k: v for k, v in os.environ.items() if k.startswith("XDG_")}
    env["TMPDIR"] = str(tmpdir)
    exports = " ".join(f"{k}={shlex.quote(v)}" for k, v in env.items())
    unset = "-u COLORTERM -u COLUMNS -u LINES"  # the size comes from the terminal itself
    return f"env {unset} TERM=screen-256color {exports} {CIS_TUI} demo; echo EXIT=$?"


def demo_pid(tmpdir: Path) -> int:
    """The demo's own process (the one whose TMPDIR is ours)."""
    for proc in psutil.process_iter(["pid", "cmdline"]):
        try:
            cmdline = proc.info["cmdline"] or []
            is_demo = any(a.endswith("cis-tui") for a in cmdline[:2]) and "demo" in cmdline
            if is_demo and proc.environ().get("TMPDIR") == str(tmpdir):
                return proc.pid
        except (psutil.NoSuchProcess, psutil.AccessDenied):
            continue
    raise LookupError("no cis-tui demo process")


def assert_cleaned_up(tmpdir: Path) -> None:
    deadline = time.monotonic() + 30
    while (processes_under(tmpdir) or list(tmpdir.iterdir())) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert processes_under(tmpdir) == [], "the demo left processes behind"
    assert list(tmpdir.iterdir()) == [], "the demo left its sandbox behind"


def test_demo_select_apply_restore_quit(tmp_path):
    tmpdir = tmp_path / "tmp"
    tmpdir.mkdir()
    command = demo_command(tmpdir)
    pane = Pane(tmp_path)
    try:
        pane.start(command)
        pane.wait_for(r"\d+/92 checks", timeout=90)
        assert re.search(r"FAIL\s+1\.4\.1", pane.text())

        pane.search("1.4.1")
        pane.keys("Space")
        pane.wait_for(r"1 selected")
        pane.keys("p")
        pane.wait_for(r"Plan: fixes 1\.4\.1 in 1 file; restarts")
        assert "+    - --profiling=false" in pane.text()

        pane.keys("a")
        pane.wait_for(r"Apply this plan\?")
        pane.keys("y")
        pane.wait_for(r"committed: 1 committed", timeout=120)
        pane.wait_for(r"now: 1\.4\.1 PASS")
        pane.keys("Enter")
        pane.wait_for(r"PASS\s+1\.4\.1")

        pane.keys("b")
        # the manifest's backup, and kubeadm-config's (the fix was persisted), newest first
        pane.wait_for(r"2 backups in")
        pane.keys("Down")  # the manifest's: restoring it takes the persisted fix back too
        pane.keys("r")
        pane.wait_for(r"Restore this backup\?")
        assert "kube-scheduler.yaml" in pane.text()
        pane.keys("y")
        pane.wait_for(r"committed: 1 committed", timeout=120)
        pane.wait_for(r"now: 1\.4\.1 FAIL")
        pane.keys("Enter")
        pane.wait_for(r"restored")
        pane.keys("Escape")
        pane.wait_for(r"FAIL\s+1\.4\.1")

        pane.keys("q")
        pane.wait_for(r"EXIT=0", timeout=60)
        assert re.search(r"sandbox node in \S+", pane.text())
    finally:
        pane.kill()
    assert_cleaned_up(tmpdir)


def test_demo_hangup_cleans_up(tmp_path):
    """Closing the terminal (SIGHUP, like a dropped SSH session) removes the sandbox."""
    tmpdir = tmp_path / "tmp"
    tmpdir.mkdir()
    pane = Pane(tmp_path)
    try:
        pane.start(demo_command(tmpdir))
        pane.wait_for(r"\d+/92 checks", timeout=90)
        assert list(tmpdir.iterdir()), "the sandbox lives in TMPDIR while the demo runs"
        pane.tmux("kill-session", "-t", "demo")
        assert_cleaned_up(tmpdir)
    finally:
        pane.kill()


def test_demo_sigterm_during_the_gate_rolls_back_then_cleans_up(tmp_path):
    """SIGTERM while the health gate runs: the change is rolled back, then everything goes."""
    tmpdir = tmp_path / "tmp"
    tmpdir.mkdir()
    pane = Pane(tmp_path)
    try:
        pane.start(demo_command(tmpdir))
        pane.wait_for(r"\d+/92 checks", timeout=90)
        pane.search("1.4.1")
        pane.keys("p")
        pane.wait_for(r"Plan: fixes 1\.4\.1")
        pane.keys("a")
        pane.wait_for(r"Apply this plan\?")
        pane.keys("y")
        pane.wait_for(r"… health", timeout=60)
        os.kill(demo_pid(tmpdir), signal.SIGTERM)
        pane.wait_for(r"EXIT=1", timeout=90)  # cancelled and rolled back: exit 1
    finally:
        pane.kill()
    assert_cleaned_up(tmpdir)
    log = Path(os.environ["XDG_STATE_HOME"]) / "cis-tui" / "log" / "events.jsonl"
    events = [json.loads(line) for line in log.read_text().splitlines()]
    outcomes = [(e["outcome"], e["message"]) for e in events if e["kind"] == "outcome"]
    assert [o for o, _ in outcomes] == ["rolled-back"], outcomes
    assert outcomes[0][1].endswith("stopped by SIGTERM"), outcomes  # not "by the admin"


def test_demo_ssh_drop_mid_gate_finishes_headless_and_cleans_up(tmp_path):
    """`tmux kill-session` two seconds into a health gate: the terminal is gone (frames fail
    with EIO, the keyboard reads EOF). The wizard must not hang: it rolls back headless, logs
    it, removes the sandbox and exits, within the gate's own time."""
    tmpdir = tmp_path / "tmp"
    tmpdir.mkdir()
    pane = Pane(tmp_path)
    try:
        pane.start(demo_command(tmpdir))
        pane.wait_for(r"\d+/92 checks", timeout=90)
        pane.search("1.3.2")
        pane.keys("p")
        pane.wait_for(r"Plan: fixes 1\.3\.2")
        pane.keys("a")
        pane.wait_for(r"Apply this plan\?")
        pane.keys("y")
        pane.wait_for(r"health …|… health", timeout=60)
        demo = psutil.Process(demo_pid(tmpdir))
        # Inside the gate: the new process answered once, the stability window still runs.
        pane.wait_for(r"answers healthy", timeout=60)
        dropped = time.monotonic()
        pane.tmux("kill-session", "-t", "demo")
        demo.wait(timeout=150)  # the controller-manager's gate timeout is 120 s
        took = time.monotonic() - dropped
    finally:
        pane.kill()
    assert took < 120, f"the demo took {took:.0f}s to finish after the terminal was lost"
    assert_cleaned_up(tmpdir)
    log = Path(os.environ["XDG_STATE_HOME"]) / "cis-tui" / "log" / "events.jsonl"
    events = [json.loads(line) for line in log.read_text().splitlines()]
    assert any("terminal was lost" in e.get("message", "") for e in events)
    outcomes = [(e["outcome"], e["message"]) for e in events if e["kind"] == "outcome"]
    assert [o for o, _ in outcomes] == ["rolled-back"], outcomes
    # whichever the wizard heard first names the stop: SIGHUP, or the write that failed on the
    # lost terminal (then SIGHUP "(the terminal was lost)"); never "cancelled by the admin"
    assert re.search(r"stopped by SIGHUP( \(the terminal was lost\))?$", outcomes[0][1]), outcomes
    # the apply's end, then the wizard's one-line summary of what the stop left behind
    assert [e["kind"] for e in events[-2:]] == ["done", "note"]
    assert events[-1]["message"].startswith("cis-tui: stopped by SIGHUP")
