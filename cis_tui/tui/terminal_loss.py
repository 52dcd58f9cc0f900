"""Surviving a lost terminal: a dropped SSH session must not hang the wizard mid-transaction.

When the terminal goes away, writing a frame fails with EIO. Textual's writer thread dies on
that error, its bounded queue fills, and the next frame blocks the event loop for good: the
rollback never finishes and even SIGTERM is ignored (its handler runs on that loop). Reading
the keyboard fails the same way, and Textual turns that into a panic that ends the app at once.

`HangupSafeDriver` is Textual's Linux driver with both ends guarded: a failed write or read
reports the loss once (on the event loop) and every later frame is dropped, so the app keeps
running headless, finishes or rolls back its transaction, and exits by itself.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Callable
from typing import IO, Any

from textual.drivers.linux_driver import LinuxDriver


class GuardedOutput:
    """A text stream that swallows the errors of a terminal that went away."""

    def __init__(self, stream: IO[str], on_lost: Callable[[], None]) -> None:
        self._stream = stream
        self._on_lost = on_lost
        self.lost = False

    def _failed(self) -> None:
        if not self.lost:
            self.lost = True
            self._on_lost()

    def write(self, text: str) -> int:
        if not self.lost:
            try:
                return self._stream.write(text)
            except (OSError, ValueError):  # EIO from a hung-up tty; ValueError once closed
                self._failed()
        return len(text)

    def flush(self) -> None:
        if not self.lost:
            try:
                self._stream.flush()
            except (OSError, ValueError):
                self._failed()

    def fileno(self) -> int:
        return self._stream.fileno()

    def isatty(self) -> bool:
        return not self.lost and self._stream.isatty()

    def __getattr__(self, name: str) -> Any:
        return getattr(self._stream, name)


class HangupSafeDriver(LinuxDriver):
    """Textual's Linux driver, which keeps the app alive (headless) when the terminal is lost.

    The app learns of the loss through `on_terminal_lost()`, called once on its event loop.
    """

    def __init__(self, app: Any, *args: Any, **kwargs: Any) -> None:
        super().__init__(app, *args, **kwargs)
        self._lost_once = threading.Lock()
        self.terminal_lost = False
        self._file = GuardedOutput(self._file, self._report_lost)  # type: ignore[arg-type]

    def _report_lost(self) -> None:
        with self._lost_once:
            if self.terminal_lost:
                return
            self.terminal_lost = True
        self.exit_event.set()  # the keyboard thread stops too (a hung-up tty reads as EOF)
        handler = getattr(self._app, "on_terminal_lost", None)
        if handler is not None:
            with contextlib.suppress(RuntimeError):  # a closed loop: the app is gone already
                self._loop.call_soon_threadsafe(handler)

    def run_input_thread(self) -> None:
        try:
            super().run_input_thread()
        except OSError:  # EIO: the terminal hung up; stop reading, never panic the app
            self._report_lost()
            self.exit_event.wait()

    def write(self, data: str) -> None:
        if self.terminal_lost:
            return  # no frame can reach anyone; don't even queue it
        super().write(data)
