"""End to end: review a 30-check plan of the installed `cis-tui demo --scenario insecure` in a
real tmux terminal at 80x24 and at 120x40: page down to the end, jump file by file, reach the
last file and the not-planned list. Every wait polls the pane with a deadline.
"""

from __future__ import annotations

import re
import shutil
import time
from pathlib import Path

import pytest

from tests.e2e.test_demo_tmux import Pane, assert_cleaned_up, demo_command

pytestmark = pytest.mark.skipif(
    shutil.which("tmux") is None, reason="tmux is not installed (Debian: apt-get install tmux)"
)

CHECKS = 30


class SizedPane(Pane):
    def start_sized(self, command: str, width: int, height: int) -> None:
        self.tmux("new-session", "-d", "-s", "demo", "-x", str(width), "-y", str(height), command)

    def screen(self) -> str:
        """What is on the screen now (no scrollback)."""
        return self.tmux("capture-pane", "-p", "-t", "demo")

    def wait_change(self, before: str, timeout: float = 10.0) -> str:
        deadline = time.monotonic() + timeout
        while (now := self.screen()) == before:
            if time.monotonic() > deadline:
                raise AssertionError(f"the screen did not change within {timeout:g}s:\n{now}")
            time.sleep(0.05)
        return now


def manifest_of(tmpdir: Path) -> Path:
    (found,) = tmpdir.glob("cis-tui-demo-*/node/etc/kubernetes/manifests/kube-apiserver.yaml")
    return found


def _selected(text: str) -> int:
    found = re.search(r"\b(\d+) selected", text)
    return int(found.group(1)) if found else 0


@pytest.mark.parametrize("size", [(80, 24), (120, 40)], ids=["80x24", "120x40"])
def test_a_30_check_plan_can_be_read_to_its_end(tmp_path, size):
    width, height = size
    tmpdir = tmp_path / "tmp"
    tmpdir.mkdir()
    command = demo_command(tmpdir).replace(" demo;", " demo --scenario insecure;")
    pane = SizedPane(tmp_path)
    try:
        pane.start_sized(command, width, height)
        pane.wait_for(r"\d+/92 checks", timeout=90)
        # failing first: select fixable rows with space, stepping over one that is not
        # (a manual check such as 1.2.20 needs a human: space leaves the cursor on it)
        for _ in range(CHECKS * 2):
            before = pane.screen()
            if _selected(before) == CHECKS:
                break
            pane.keys("Space")
            after = pane.wait_change(before)  # a selection, or a toast saying why not
            if _selected(after) == _selected(before):
                pane.keys("Down")
                pane.wait_change(after)
        pane.wait_for(rf"\b{CHECKS} selected")
        # an admin fixes 1.1.1 by hand meanwhile: the plan lists it as not planned
        manifest_of(tmpdir).chmod(0o600)
        pane.keys("p")
        found = pane.wait_for(
            rf"Plan: fixes {CHECKS - 1} checks in (\d+)\s+files\s+\(1\s+not\s+planned", timeout=60
        )
        files = int(found.group(1))

        # page down to the end: every file's title and the not-planned list go by
        seen: list[str] = []
        screen = pane.screen()
        for _ in range(300):
            seen.append(screen)
            if "(end)" in screen:
                break
            pane.keys("PageDown")
            screen = pane.wait_change(screen)
        else:
            raise AssertionError("page down never reached the end")
        text = "\n".join(seen)
        for index in range(1, files + 1):
            assert f"[{index}/{files}] " in text, f"file {index} never shown"
        assert "Not planned (1)" in text and "1.1.1: already passes" in text
        assert "--profiling=false" in text
        assert f"[{files}/{files}] /" in text  # the last file (the kubelet's config)

        pane.keys("Home")
        pane.wait_for(rf"─ \[1/{files}\] ")  # the sticky title names the file on top
        for index in range(2, files + 1):
            pane.keys("]", literal=True)
            pane.wait_for(rf"─ \[{index}/{files}\] ")
        pane.keys("]", literal=True)
        pane.wait_for(r"─ Not planned \(1\)")
        assert "1.1.1: already passes" in pane.screen()

        pane.keys("Home")
        pane.wait_for(rf"─ \[1/{files}\] ")
        pane.keys("End")
        pane.wait_for(r"1\.1\.1: already passes(.|\n)*\(end\)")
        pane.keys("[", literal=True)  # back to the start of the section in view
        pane.wait_for(rf"─ (\[\d+/{files}\]|Not planned) ")

        pane.keys("Home", *["]"] * (files - 1))
        pane.wait_for(rf"─ \[{files}/{files}\] ")
        pane.keys("z")  # fold the last file: the not-planned list follows right below it
        pane.wait_for(r"folded \(z unfolds\)")
        screen = pane.screen()
        assert re.search(rf"▸ \[{files}/{files}\]", screen)
        assert re.search(r"▾ Not planned \(1\)\s+1\.1\.1: already passes", screen)

        pane.keys("Escape")
        pane.wait_for(r"\d+/92 checks")
        pane.keys("q")
        pane.wait_for(r"EXIT=0", timeout=60)
    finally:
        pane.kill()
    assert_cleaned_up(tmpdir)
