"""A log that follows its tail while an engine job runs, unless the admin scrolled up.

Textual's `Log.auto_scroll` only follows while the view is exactly at the end; a relayout
that changes the log's height (a file section growing, a horizontal scrollbar appearing) moves
the end away from the view, and following stops for good. Here following is a state of its
own: it ends when the admin scrolls up and resumes when the view reaches the end again (End, G).
"""

from __future__ import annotations

from collections.abc import Sequence

from textual import events
from textual.reactive import var
from textual.widgets import Log


class FollowLog(Log):
    """Plain-text lines written in batches; the view follows the newest line."""

    #: Whether the view follows the tail (False once the admin scrolled up).
    following: var[bool] = var(True)
    #: Lines written since the admin scrolled up (shown in a hint).
    unseen: var[int] = var(0)

    def __init__(self, *, max_lines: int, id: str | None = None) -> None:
        super().__init__(max_lines=max_lines, auto_scroll=False, id=id)

    def write_batch(self, lines: Sequence[str]) -> None:
        """Append lines (one relayout for the batch); follow them unless scrolled up."""
        if not lines:
            return
        self.write_lines(lines, scroll_end=False)
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
        self.keep_following()
