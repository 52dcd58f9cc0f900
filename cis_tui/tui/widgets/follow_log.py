"""A log that follows its tail while an engine job runs, unless the admin scrolled up.

Textual's `Log.auto_scroll` only follows while the view is exactly at the end; a relayout
that changes the log's height (a file section growing, a horizontal scrollbar appearing) moves
the end away from the view, and following stops for good. Here following is a state of its
own: it ends when the admin scrolls up and resumes when the view reaches the end again (End, G).

Lines are wrapped to the log's width (continuations indented), and wrapped again when the
width changes: at 80 columns a probe's answer is read, not cut at the edge.
"""

from __future__ import annotations

import re
import textwrap
from collections import deque
from collections.abc import Iterable, Sequence

from textual import events
from textual.reactive import var
from textual.widgets import Log


class FollowLog(Log):
    """Plain-text lines written in batches; the view follows the newest line."""

    #: Whether the view follows the tail (False once the admin scrolled up).
    following: var[bool] = var(True)
    #: Lines written since the admin scrolled up (shown in a hint).
    unseen: var[int] = var(0)

    #: Continuation lines of a wrapped line start under the text after the elapsed time
    #: (`  12.4s  `), or this far in.
    INDENT = "    "
    _ELAPSED = re.compile(r" *\d+(\.\d+)?s  ")

    def __init__(self, *, max_lines: int, id: str | None = None) -> None:
        super().__init__(max_lines=max_lines, auto_scroll=False, id=id)
        self._written: deque[str] = deque(maxlen=max_lines)  # as given, for a re-wrap
        self._wrapped_at = 0

    def _wrap_width(self) -> int:
        """The text width, leaving room for a vertical scrollbar (0: not laid out yet)."""
        return max(0, self.size.width - self.styles.scrollbar_size_vertical)

    def _wrapped(self, lines: Iterable[str]) -> list[str]:
        width = self._wrapped_at
        if width <= len(self.INDENT) * 2:
            return list(lines)
        out: list[str] = []
        for line in lines:
            if len(line) <= width:
                out.append(line)
                continue
            elapsed = self._ELAPSED.match(line)
            indent = " " * (elapsed.end() + 2) if elapsed else self.INDENT
            out += textwrap.wrap(
                line,
                width,
                subsequent_indent=indent if len(indent) * 3 < width else self.INDENT,
                break_on_hyphens=False,
            ) or [line]
        return out

    def write_batch(self, lines: Sequence[str]) -> None:
        """Append lines (one relayout for the batch); follow them unless scrolled up."""
        if not lines:
            return
        self._written.extend(lines)
        self._wrapped_at = self._wrapped_at or self._wrap_width()
        self.write_lines(self._wrapped(lines), scroll_end=False)
        if self.following:
            self.scroll_end(animate=False, immediate=True, x_axis=False)
        else:
            self.unseen += len(lines)

    def keep_following(self) -> None:
        """Back to the tail if a relayout moved it out of view while following."""
        if self.following and self.scroll_offset.y != self.max_scroll_y:
            self.scroll_end(animate=False, immediate=True, x_axis=False)

    def follow(self) -> None:
        """Follow the tail again (End, G)."""
        self.following = True
        self.scroll_end(animate=False, immediate=True, x_axis=False)

    def watch_following(self, following: bool) -> None:
        if following:
            self.unseen = 0

    def watch_scroll_y(self, old_value: float, new_value: float) -> None:
        super().watch_scroll_y(old_value, new_value)
        at_end = new_value >= self.max_scroll_y
        # Only the admin scrolls up (a taller log clamps the offset down to the new end).
        if new_value < old_value and not at_end:
            self.following = False
        elif at_end and not self.following:
            self.following = True

    def on_resize(self, event: events.Resize) -> None:
        width = self._wrap_width()
        if width != self._wrapped_at:
            self._wrapped_at = width
            if self._written:  # wrapped for the old width: again, from the lines as given
                self.clear()
                self.write_lines(self._wrapped(self._written), scroll_end=False)
        self.keep_following()
