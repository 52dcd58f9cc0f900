"""End to end: the installed `cis-tui demo` in tmux at 80x24 while health gates run.

A two-file apply (the controller-manager, then the scheduler: short gates) shows the section
of the file in flight and the log's newest line on screen while each gate runs; SIGTERM in a
gate rolls back and leaves a one-line summary in the pane once the terminal is restored.
"""

from __future__ import annotations

import json
import os
import re
import signal
from pathlib import Path

from tests.e2e.test_demo_tmux import (
    Pane,
    assert_cleaned_up,
    demo_command,
    demo_pid,
    pytestmark,  # noqa: F401 - skipped without tmux, like the other terminal tests
)

SIZE = (80, 24)
MANIFESTS = "/etc/kubernetes/manifests"
#: A log line: `  12.3s  kube-scheduler: probe ...` (the elapsed time, then the text).
LOG_LINE = re.compile(r"^\s*(\d+\.\d)s  (\S.*)$")


def select(pane: Pane, *check_ids: str) -> None:
    """Search each check by id and select it with space, as an admin would."""
    for check_id in check_ids:
        pane.search(check_id)
        pane.keys("Space")
        pane.wait_for(rf"\b{check_ids.index(check_id) + 1} selected")
        pane.keys("Escape")  # clear the search for the next one
        pane.wait_until(lambda s: "search “" not in s, "the search cleared")


def log_tail(screen: str) -> tuple[float, str]:
    """The newest log line on screen: the last timestamped line above the footer."""
    for line in reversed(screen.rstrip("\n").splitlines()):
        found = LOG_LINE.match(line)
        if found:
            return float(found.group(1)), found.group(2)
    raise AssertionError(f"no log line on screen:\n{screen}")


def gate_running(pane: Pane, component: str, manifest: str) -> str:
    """Wait until `component`'s health gate polls, its section on screen; return the screen."""
    return pane.wait_until(
        lambda s: (
            f"{MANIFESTS}/{manifest}" in s
            and re.search(r"\d+\.\d s / \d+ s", s) is not None
            and f"{component}: probe" in s
        ),
        f"{component}'s gate on screen",
        timeout=90,
    )


def test_two_file_apply_shows_the_gate_in_flight_and_the_log_tail_at_80x24(tmp_path):
    tmpdir = tmp_path / "tmp"
    tmpdir.mkdir()
    pane = Pane(tmp_path)
    try:
        pane.start(demo_command(tmpdir), size=SIZE)
        pane.wait_for(r"\d+/92 checks", timeout=90)
        select(pane, "1.3.2", "1.4.1")
        pane.keys("p")
        pane.wait_for(r"Plan: fixes 1\.3\.2, 1\.4\.1")
        pane.keys("a")
        pane.wait_for(r"Apply this plan\?")
        pane.keys("y")

        for component, manifest in (
            ("kube-controller-manager", "kube-controller-manager.yaml"),
            ("kube-scheduler", "kube-scheduler.yaml"),
        ):
            screen = gate_running(pane, component, manifest)
            when, text = log_tail(screen)
            assert text.startswith(f"{component}:"), f"the log's tail is elsewhere:\n{screen}"
            # The log keeps following its tail while the gate runs: newer lines replace it.
            later = pane.wait_until(
                lambda s, when=when: log_tail(s)[0] > when + 1.0,
                f"newer log lines of {component}'s gate",
                timeout=30,
            )
            assert f"{MANIFESTS}/{manifest}" in later, f"the section left the screen:\n{later}"
            assert log_tail(later)[1].startswith(f"{component}:")

        pane.wait_for(r"committed: 2 committed", timeout=120)
        assert "x cancels" not in pane.text()
        pane.keys("Enter")
        pane.wait_for(r"PASS\s+1\.4\.1")
        pane.keys("q")
        pane.wait_for(r"EXIT=0", timeout=60)
    finally:
        pane.kill()
    assert_cleaned_up(tmpdir)


def test_sigterm_in_a_gate_prints_what_it_left_behind(tmp_path):
    tmpdir = tmp_path / "tmp"
    tmpdir.mkdir()
    pane = Pane(tmp_path)
    try:
        pane.start(demo_command(tmpdir), size=SIZE)
        pane.wait_for(r"\d+/92 checks", timeout=90)
        select(pane, "1.4.1")
        pane.keys("p")
        pane.wait_for(r"Plan: fixes 1\.4\.1")
        pane.keys("a")
        pane.wait_for(r"Apply this plan\?")
        pane.keys("y")
        gate_running(pane, "kube-scheduler", "kube-scheduler.yaml")
        assert "x cancels (rolls back)" in pane.text()
        os.kill(demo_pid(tmpdir), signal.SIGTERM)
        pane.wait_for(r"EXIT=\d+", timeout=150)  # the rollback waits out its own gate
        # -J: the summary is longer than the pane is wide; join what tmux wrapped
        screen = pane.tmux("capture-pane", "-p", "-J", "-t", "demo", "-S", "-200")
    finally:
        pane.kill()
    assert_cleaned_up(tmpdir)
    summary = re.search(r"cis-tui: stopped by SIGTERM: .*", screen)
    assert summary, f"no summary after the exit:\n{screen}"
    line = summary.group(0)
    assert re.fullmatch(
        r"cis-tui: stopped by SIGTERM: kube-scheduler\.yaml rolled back \(backup \S+ in "
        r"the demo sandbox, removed on exit\); nothing else changed",
        line,
    ), screen
    # printed once the terminal was restored: below the wizard's last frame, before the exit code
    lines = screen.splitlines()
    after = lines[next(i for i, text in enumerate(lines) if text == line) :]
    assert any(text.startswith("EXIT=1") for text in after), screen  # rolled back: exit 1
    log = Path(os.environ["XDG_STATE_HOME"]) / "cis-tui" / "log" / "events.jsonl"
    events = [json.loads(text) for text in log.read_text().splitlines()]
    assert [e["outcome"] for e in events if e["kind"] == "outcome"] == ["rolled-back"], events
    assert {"kind": "note", "message": line}.items() <= events[-1].items(), events[-3:]
