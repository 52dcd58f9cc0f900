"""Errors a user can cause: printed as one line, exit code 2, never a traceback."""

from __future__ import annotations

from pathlib import Path


class UserError(Exception):
    """Bad input or usage: one line naming the file (if any) and the problem."""

    exit_code = 2

    def __init__(self, message: str, path: Path | str | None = None) -> None:
        self.message = message
        self.path = Path(path) if path is not None else None
        super().__init__(str(self))

    def __str__(self) -> str:
        return f"{self.path}: {self.message}" if self.path is not None else self.message


class NodeLocked(Exception):
    """Another cis-tui transaction holds the node lock (exit 4)."""

    exit_code = 4
