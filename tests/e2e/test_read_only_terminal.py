"""`cis-tui demo --read-only` in a real tmux terminal at 80x24 (issue 12 item 14): the plan
shows its diff, apply is absent from the footer and refused with "read-only mode", the engine
never runs, and quitting leaves nothing behind."""

from __future__ import annotations

import os
from pathlib import Path

from tests.e2e.test_demo_tmux import Pane, assert_cleaned_up, demo_command


def footer(text: str) -> str:
    return text.rstrip("\n").splitlines()[-1]


def test_read_only_demo_plans_but_never_applies(tmp_path):
    tmpdir = tmp_path / "tmp"
    tmpdir.mkdir()
    command = demo_command(tmpdir).replace(" demo;", " demo --read-only;")
    assert "demo --read-only;" in command
    pane = Pane(tmp_path)
    try:
        pane.start(command, size=(80, 24))
        pane.wait_for(r"\d+/92 checks", timeout=90)
        assert "read-only" in pane.text().splitlines()[0]  # the header says so

        pane.search("1.4.1")
        pane.keys("p")
        pane.wait_for(r"Plan: fixes 1\.4\.1 in 1 file")
        pane.wait_for(r"\+    - --profiling=false")  # the diff, at 80x24
        assert "Apply" not in footer(pane.text())

        pane.keys("a")
        pane.wait_for(r"Read-only mode", timeout=10)
        assert "Apply this plan?" not in pane.text()

        pane.keys("Escape")
        pane.wait_until(lambda text: "Plan: fixes" not in text, "escape goes back to the checks")
        pane.keys("q")
        pane.wait_for(r"EXIT=0", timeout=60)
    finally:
        pane.kill()
    assert_cleaned_up(tmpdir)
    # The engine never ran: it would have logged its events here.
    log = Path(os.environ["XDG_STATE_HOME"]) / "cis-tui" / "log" / "events.jsonl"
    assert not log.exists() or log.read_text() == ""
