"""The "fixable" marker is readable in a real terminal: 256 colours, truecolor and NO_COLOR.

tmux's `capture-pane -e` gives the screen with its SGR sequences; the colours in force at the
first ○ are decoded and compared: the marker must never be drawn in (or near) its background.
"""

from __future__ import annotations

import re

import pytest

from tests.e2e.test_demo_tmux import Pane, assert_cleaned_up, demo_command

SGR = re.compile(r"\x1b\[([0-9;]*)m")


def _xterm256(n: int) -> tuple[int, int, int]:
    if n < 16:
        base = [
            (0, 0, 0), (128, 0, 0), (0, 128, 0), (128, 128, 0), (0, 0, 128), (128, 0, 128),
            (0, 128, 128), (192, 192, 192), (128, 128, 128), (255, 0, 0), (0, 255, 0),
            (255, 255, 0), (0, 0, 255), (255, 0, 255), (0, 255, 255), (255, 255, 255),
        ]  # fmt: skip
        return base[n]
    if n < 232:
        n -= 16
        steps = [0, 95, 135, 175, 215, 255]
        return steps[n // 36], steps[n // 6 % 6], steps[n % 6]
    level = 8 + (n - 232) * 10
    return level, level, level


def colours_at(line: str, char: str) -> tuple[object, object]:
    """(foreground, background) in force where `char` first appears on an SGR-coded line."""
    fg: object = "default"
    bg: object = "default"
    pos = 0
    for match in SGR.finditer(line):
        if char in line[pos : match.start()]:
            break
        codes = [int(c) if c else 0 for c in match.group(1).split(";")]
        i = 0
        while i < len(codes):
            c = codes[i]
            if c == 0:
                fg, bg = "default", "default"
            elif 30 <= c <= 37 or 90 <= c <= 97:
                fg = _xterm256(c - 30 if c < 90 else c - 82)
            elif 40 <= c <= 47 or 100 <= c <= 107:
                bg = _xterm256(c - 40 if c < 100 else c - 92)
            elif c in (38, 48) and codes[i + 1 : i + 2] == [5]:
                value = _xterm256(codes[i + 2])
                fg, bg = (value, bg) if c == 38 else (fg, value)
                i += 2
            elif c in (38, 48) and codes[i + 1 : i + 2] == [2]:
                value = tuple(codes[i + 2 : i + 5])
                fg, bg = (value, bg) if c == 38 else (fg, value)
                i += 4
            elif c == 39:
                fg = "default"
            elif c == 49:
                bg = "default"
            i += 1
        pos = match.end()
    return fg, bg


def _distance(a: object, b: object) -> float:
    assert isinstance(a, tuple) and isinstance(b, tuple)
    return sum((x - y) ** 2 for x, y in zip(a, b, strict=True)) ** 0.5


@pytest.mark.parametrize(
    "env",
    [
        "TERM=screen-256color",
        "TERM=screen-256color COLORTERM=truecolor",
        "TERM=screen-256color NO_COLOR=1",
    ],
)
def test_the_fixable_marker_stands_out_from_its_row(tmp_path, env):
    tmpdir = tmp_path / "tmp"
    tmpdir.mkdir()
    pane = Pane(tmp_path)
    if "truecolor" in env:
        pane.conf.write_text(pane.conf.read_text() + 'set -ga terminal-overrides ",*:Tc"\n')
    command = demo_command(tmpdir).replace("TERM=screen-256color", env, 1)
    try:
        pane.start(command)
        pane.wait_for(r"\d+/92 checks", timeout=90)
        screen = pane.tmux("capture-pane", "-e", "-p", "-t", "demo")
        rows = [line for line in screen.splitlines() if "○" in line]
        assert len(rows) >= 3, screen
        for row in rows[1:4]:  # past the cursor row, on both zebra stripes
            fg, bg = colours_at(row, "○")
            if fg == "default" or bg == "default":
                continue  # the terminal's own foreground on its own background
            assert _distance(fg, bg) > 120, f"○ drawn {fg} on {bg}: {row!r}"
        pane.keys("q")
        pane.wait_for(r"EXIT=0", timeout=60)
    finally:
        pane.kill()
    assert_cleaned_up(tmpdir)
