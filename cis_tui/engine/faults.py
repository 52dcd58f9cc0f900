"""Crash points for tests: `CIS_TUI_CRASH_AT=NAME` makes the process kill -9 itself at NAME.

A real SIGKILL at an exact step (mid-compaction, say) cannot be timed from outside; the tests
that prove crash safety set this variable on the subprocess they run. Unset, it costs one
dictionary lookup.
"""

from __future__ import annotations

import os
import signal

CRASH_ENV = "CIS_TUI_CRASH_AT"


def crash_point(name: str) -> None:
    """Die by SIGKILL here when the environment asks for it (tests only)."""
    if os.environ.get(CRASH_ENV) == name:
        os.kill(os.getpid(), signal.SIGKILL)
