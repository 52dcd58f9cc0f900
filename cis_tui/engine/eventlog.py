"""events.jsonl: every engine event as a JSON line, in the user's log directory, bounded.

Past `max_bytes` the file is renamed events.jsonl.1 (the older ones shift up to `keep`, the
oldest is dropped) and a new one is started, so the log never takes more than about
(keep + 1) x max_bytes. Another process that rotated the file is noticed (the path no longer
names the file written to) and followed. Writing the log never stops a transaction: errors
are swallowed.
"""

from __future__ import annotations

import contextlib
import os
from pathlib import Path

from cis_tui.layout import EventLogSettings

EVENTS_FILE = "events.jsonl"


def rotated(path: Path, index: int) -> Path:
    return path.with_name(f"{path.name}.{index}")


class RotatingLog:
    """Appends lines to a size-bounded log file (see the module docstring)."""

    def __init__(self, path: Path, settings: EventLogSettings | None = None) -> None:
        self.path = path
        self.settings = settings or EventLogSettings()
        self._fd: int | None = None

    def _open(self) -> int:
        self.path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        flags = os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_NOFOLLOW | os.O_CLOEXEC
        self._fd = os.open(self.path, flags, 0o600)
        return self._fd

    def _rotate(self) -> int:
        self.close()
        keep = self.settings.keep
        with contextlib.suppress(FileNotFoundError):
            rotated(self.path, keep + 1).unlink()  # left by a smaller `keep` earlier
        for index in range(keep - 1, 0, -1):
            with contextlib.suppress(FileNotFoundError):
                os.replace(rotated(self.path, index), rotated(self.path, index + 1))
        with contextlib.suppress(FileNotFoundError):
            if keep > 0:
                os.replace(self.path, rotated(self.path, 1))
            else:
                self.path.unlink()
        return self._open()

    def write(self, line: str) -> None:
        """Append one line (a newline is added); never raises."""
        data = (line + "\n").encode("utf-8", errors="replace")
        with contextlib.suppress(OSError):
            fd = self._open() if self._fd is None else self._fd
            mine = os.fstat(fd)
            try:
                now = os.stat(self.path)
                moved = (now.st_dev, now.st_ino) != (mine.st_dev, mine.st_ino)
            except FileNotFoundError:
                moved = True
            if moved:  # rotated (or removed) by someone else: write to the new file
                self.close()
                fd = self._open()
                mine = os.fstat(fd)
            if mine.st_size and mine.st_size + len(data) > self.settings.max_bytes:
                fd = self._rotate()
            os.write(fd, data)

    def close(self) -> None:
        if self._fd is not None:
            with contextlib.suppress(OSError):
                os.close(self._fd)
            self._fd = None
