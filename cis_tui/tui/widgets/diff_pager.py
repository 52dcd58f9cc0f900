"""A pager for titled sections of text and diffs (a plan's files), as one line-API widget.

Only the rows in view are rendered, so a plan of any size is one widget and paints at once.
Sections fold; moves go by line, page, hunk and section. The pager has no keys of its own: a
screen lists `PAGER_BINDINGS` and routes `pager(<move>)` to `DiffPager.move`, so the keys show in
that screen's footer, help and command palette, and the arrows and page keys keep paging while
an input has the focus (it takes the letters).
"""

from __future__ import annotations

from bisect import bisect_left, bisect_right
from collections.abc import Sequence
from dataclasses import dataclass
from enum import Enum
from typing import ClassVar, NamedTuple

from rich.segment import Segment
from textual import events
from textual.binding import Binding, BindingType
from textual.cache import LRUCache
from textual.content import Content
from textual.geometry import Size
from textual.message import Message
from textual.scroll_view import ScrollView
from textual.strip import Strip


@dataclass(frozen=True)
class PagerSection:
    """One block of the pager: a title, lines kept when folded, prose and a diff that fold."""

    #: Identity across updates (a file's path): folds and the position survive a re-plan.
    key: str
    title: Content
    #: Shown even when the section is folded (what it fixes, what restarts).
    summary: tuple[Content, ...] = ()
    #: Word-wrapped prose (notes, risks); continuation rows are indented by `indent`.
    notes: tuple[Content, ...] = ()
    #: A unified diff, one Content per line; long lines fold at the edge.
    diff: tuple[Content, ...] = ()
    indent: int = 0


class RowKind(Enum):
    TITLE = "title"
    TEXT = "text"
    HUNK = "hunk"
    END = "end"


class Row(NamedTuple):
    section: int
    kind: RowKind
    content: Content


#: Each move: its keys, its name in the footer and help, and what it does.
_MOVES: tuple[tuple[str, str, str, str], ...] = (
    ("right_square_bracket", "next_file", "Next file", "Jump to the next file, then not planned"),
    ("left_square_bracket", "previous_file", "Previous file", "Start of this file, then previous"),
    ("n", "next_hunk", "Next hunk", "Jump to the next @@ hunk of the diff"),
    ("N", "previous_hunk", "Previous hunk", "Jump to the previous @@ hunk of the diff"),
    ("z", "fold", "Fold file", "Fold or unfold the file on top (or click its title)"),
    ("Z", "fold_all", "Fold all", "Fold every file, or unfold them all when all are folded"),
    ("j,down", "line_down", "Scroll down", "Scroll one line down (the mouse wheel too)"),
    ("k,up", "line_up", "Scroll up", "Scroll one line up"),
    ("space,pagedown", "page_down", "Page down", "Scroll one page down"),
    ("b,pageup", "page_up", "Page up", "Scroll one page up"),
    ("g,home", "top", "Top", "Go to the start"),
    ("G,end", "bottom", "End", "Go to the end (the not-planned list)"),
)  # fmt: skip

MOVES = frozenset(move for _keys, move, _what, _why in _MOVES)

#: The pager's keys, for a screen's BINDINGS: each runs the screen's `action_pager(move)`.
#: A move's name is its binding id (cis_tui.keymap), so `[keys]` in the config can rebind it.
PAGER_BINDINGS: list[BindingType] = [
    Binding(keys, f"pager('{move}')", what, tooltip=why, id=move)
    for keys, move, what, why in _MOVES
]

#: What a narrow footer leaves out first (help and the command palette list every key).
PAGER_FOOTER_OPTIONAL: tuple[str, ...] = tuple(
    f"pager('{move}')"
    for move in (
        "line_down",
        "line_up",
        "page_down",
        "page_up",
        "top",
        "bottom",
        "fold_all",
        "previous_hunk",
        "previous_file",
        "next_hunk",
        "fold",
    )
)

_CONTINUED = Content.styled("↪", "$text-muted")


def wrap_line(line: Content, width: int, *, indent: int = 0, words: bool = True) -> list[Content]:
    """`line` in rows of at most `width` cells: at spaces with an indent (prose), or cut at the
    edge after a ↪ marker (diff lines, whose every character counts)."""
    text = line.plain
    if len(text) <= width or width < 12:
        return [line]
    prefix = Content(" " * indent) if words else _CONTINUED
    room, start, pieces = width, 0, []
    while len(text) - start > room:
        end = start + room
        cut = text.rfind(" ", start + 1, end + 1) if words else -1
        if cut > start:
            pieces.append((start, cut))
            start = cut + 1
        else:
            pieces.append((start, end))
            start = end
        room = width - prefix.cell_length
    if text[start:].strip() or not words:
        pieces.append((start, len(text)))
    rows = [line[a:b] for a, b in pieces]
    return [rows[0], *(prefix + row for row in rows[1:])]


class DiffPager(ScrollView, can_focus=True, inherit_bindings=False):
    """Sections (a title, a summary, notes, a diff) scrolled as one document.

    It takes no keys itself (not even ScrollView's): the screen's PAGER_BINDINGS move it.
    """

    COMPONENT_CLASSES: ClassVar[set[str]] = {"diff-pager--title", "diff-pager--hunk"}
    DEFAULT_CSS = """
    DiffPager {
        height: 1fr;
        padding: 0 1;
        border-top: solid $primary-darken-2;
        border-title-color: $text;
        border-title-style: bold;
        scrollbar-gutter: stable;
        overflow-x: hidden;
    }
    DiffPager:focus { border-top: solid $accent; background-tint: $foreground 3%; }
    DiffPager > .diff-pager--title { background: $primary 25%; text-style: bold; }
    DiffPager > .diff-pager--hunk { background: $primary 8%; }
    """

    class Painted(Message):
        """The first frame with new content is being drawn (after `show`, a fold, a resize)."""

        def __init__(self, pager: DiffPager) -> None:
            super().__init__()
            self.pager = pager

        @property
        def control(self) -> DiffPager:
            return self.pager

    def __init__(
        self,
        sections: Sequence[PagerSection] = (),
        *,
        empty: Content | None = None,
        id: str | None = None,
        classes: str | None = None,
    ) -> None:
        super().__init__(id=id, classes=classes)
        self._sections: tuple[PagerSection, ...] = tuple(sections)
        self._empty = empty or Content.styled("(nothing to show)", "$text-muted")
        self._folded: set[str] = set()
        self._rows: list[Row] = []
        self._starts: list[int] = []  # the title row of each section
        self._hunks: list[int] = []  # the @@ row of each unfolded hunk
        self._width = 0
        self._cache: LRUCache[tuple[int, int], Strip] = LRUCache(1024)
        #: Bumped whenever the rows change; `Painted` says when a generation reaches the screen.
        self.generation = 0
        self._painted = 0

    # -- content -------------------------------------------------------------------------
    @property
    def sections(self) -> tuple[PagerSection, ...]:
        return self._sections

    @property
    def rows(self) -> list[Row]:
        """The rows as laid out for the current width (folded sections collapsed)."""
        return self._rows

    def show(self, sections: Sequence[PagerSection]) -> None:
        """Replace the sections, keeping folds and the section in view (matched by key)."""
        anchor = self._anchor()
        self._sections = tuple(sections)
        self._folded &= {s.key for s in self._sections}
        self._layout(anchor)

    def is_folded(self, key: str) -> bool:
        return key in self._folded

    def set_folded(self, key: str, folded: bool) -> None:
        anchor = self._anchor()
        if folded and anchor is not None and anchor[0] == key:
            anchor = (key, 0)  # the folded file's title stays on top, not the rows after it
        if folded:
            self._folded.add(key)
        else:
            self._folded.discard(key)
        self._layout(anchor)

    # -- where the reader is ---------------------------------------------------------------
    @property
    def top(self) -> int:
        """The row at the top of the view."""
        return round(self.scroll_y)

    @property
    def page_height(self) -> int:
        return max(1, self.scrollable_content_region.height)

    def current_section(self) -> int:
        """The section whose title is at or above the top of the view."""
        if not self._starts:
            return -1
        return max(0, bisect_right(self._starts, self.top) - 1)

    def visible_rows(self) -> list[Row]:
        return self._rows[self.top : self.top + self.page_height]

    # -- moves -----------------------------------------------------------------------------
    def move(self, name: str) -> None:
        """Run one of MOVES (what the screen's `pager(<move>)` action calls)."""
        if name not in MOVES:
            raise ValueError(f"unknown pager move {name!r}")
        getattr(self, f"_move_{name}")()

    def scroll_to_row(self, row: int) -> None:
        self.scroll_to(y=max(0, row), animate=False, immediate=True)

    def _move_line_down(self) -> None:
        self.scroll_to_row(min(self.top + 1, self._last_top()))

    def _move_line_up(self) -> None:
        self.scroll_to_row(self.top - 1)

    def _move_page_down(self) -> None:
        self.scroll_to_row(min(self.top + max(1, self.page_height - 1), self._last_top()))

    def _move_page_up(self) -> None:
        self.scroll_to_row(self.top - max(1, self.page_height - 1))

    def _move_top(self) -> None:
        self.scroll_to_row(0)

    def _move_bottom(self) -> None:
        self.scroll_to_row(self._last_top())

    def _move_next_file(self) -> None:
        index = bisect_right(self._starts, self.top)
        if index < len(self._starts):
            self.scroll_to_row(self._starts[index])
        else:
            self.app.bell()

    def _move_previous_file(self) -> None:
        index = bisect_left(self._starts, self.top) - 1
        if index >= 0:
            self.scroll_to_row(self._starts[index])
        else:
            self.app.bell()

    def _move_next_hunk(self) -> None:
        index = bisect_right(self._hunks, self.top)
        if index < len(self._hunks):
            self.scroll_to_row(self._hunks[index])
        else:
            self.app.bell()

    def _move_previous_hunk(self) -> None:
        index = bisect_left(self._hunks, self.top) - 1
        if index >= 0:
            self.scroll_to_row(self._hunks[index])
        else:
            self.app.bell()

    def _move_fold(self) -> None:
        index = self.current_section()
        if index >= 0:
            key = self._sections[index].key
            self.set_folded(key, key not in self._folded)

    def _move_fold_all(self) -> None:
        keys = {s.key for s in self._sections}
        anchor = self._anchor()
        self._folded = set() if keys <= self._folded else keys
        if self._folded and anchor is not None:
            anchor = (anchor[0], 0)  # folded: the title of the file on top stays on top
        self._layout(anchor)

    def _last_top(self) -> int:
        """The top row that shows the end of the content (rows past it are padding)."""
        return max(0, len(self._rows) - self.page_height)

    # -- layout ----------------------------------------------------------------------------
    def _anchor(self) -> tuple[str, int] | None:
        """The section at the top and how far into it the view is."""
        index = self.current_section()
        if index < 0 or index >= len(self._sections):
            return None
        return self._sections[index].key, self.top - self._starts[index]

    def _layout(self, anchor: tuple[str, int] | None = None) -> None:
        width = self.scrollable_content_region.width
        if width <= 0:  # not laid out yet: on_resize lays it out
            return
        self._width = width
        self._build_rows(width)
        self._cache.clear()
        self.generation += 1
        self._update_virtual_size()
        if anchor is not None:
            key, offset = anchor
            for index, section in enumerate(self._sections):
                if section.key == key:
                    end = self._starts[index + 1] if index + 1 < len(self._starts) else None
                    limit = (end if end is not None else len(self._rows)) - 1
                    self.scroll_to_row(min(self._starts[index] + max(0, offset), limit))
                    break
        self._update_title()
        self.refresh()

    def _update_virtual_size(self) -> None:
        # Padding below the end lets every section's title reach the top of the view, so the
        # next-file key always lands on the title and the title line names the right file.
        last = self._starts[-1] if self._starts else 0
        height = max(len(self._rows), last + self.page_height)
        self.virtual_size = Size(self._width, height)

    def _build_rows(self, width: int) -> None:
        rows: list[Row] = []
        starts: list[int] = []
        hunks: list[int] = []
        blank = Content("")
        for index, section in enumerate(self._sections):
            if index:
                rows.append(Row(index - 1, RowKind.TEXT, blank))
            starts.append(len(rows))
            folded = section.key in self._folded
            marker = Content.styled("▸ " if folded else "▾ ", "$text-accent")
            title = Content.assemble(marker, section.title)
            rows.extend(Row(index, RowKind.TITLE, r) for r in wrap_line(title, width, indent=2))
            for line in section.summary:
                rows.extend(Row(index, RowKind.TEXT, r) for r in wrap_line(line, width, indent=2))
            if folded:
                hidden = len(section.notes) + len(section.diff)
                if hidden:
                    note = f"  … {hidden} line{'s' if hidden != 1 else ''} folded (z unfolds)"
                    rows.append(Row(index, RowKind.TEXT, Content.styled(note, "$text-muted")))
                continue
            for line in section.notes:
                rows.extend(
                    Row(index, RowKind.TEXT, r)
                    for r in wrap_line(line, width, indent=section.indent)
                )
            if section.diff:
                rows.append(Row(index, RowKind.TEXT, blank))
            for line in section.diff:
                kind = RowKind.TEXT
                if line.plain.startswith("@@"):
                    hunks.append(len(rows))
                    kind = RowKind.HUNK
                parts = wrap_line(line, width, words=False)
                rows.append(Row(index, kind, parts[0]))
                rows.extend(Row(index, RowKind.TEXT, r) for r in parts[1:])
        if self._sections:
            end = Content.styled("(end)", "$text-muted")
            rows.append(Row(len(self._sections) - 1, RowKind.END, end))
        else:
            rows.append(Row(-1, RowKind.TEXT, self._empty))
        self._rows, self._starts, self._hunks = rows, starts, hunks

    def _update_title(self) -> None:
        index = self.current_section()
        if index < 0:
            self.border_title = None
            return
        section = self._sections[index]
        parts: list[Content | str | tuple[str, str]] = [section.title]  # the sticky title
        start = self._starts[index]
        end = self._starts[index + 1] if index + 1 < len(self._starts) else len(self._rows)
        own = [h for h in self._hunks if start <= h < end]
        if own:
            at = bisect_right(own, self.top)
            parts.append((f" · hunk {max(at, 1)}/{len(own)}", "$text-muted"))
        if section.key in self._folded:
            parts.append((" · folded", "$text-warning"))
        shown_end = min(len(self._rows), self.top + self.page_height)
        percent = 100 if shown_end >= len(self._rows) else 100 * shown_end // len(self._rows)
        title = Content.assemble(" ", *parts, (f" · {percent}%", "$text-muted"), " ")
        if title.cell_length > self.size.width - 4:  # a long path: the position gives way
            title = Content.assemble(" ", *parts, " ")
        self.border_title = title

    # -- Textual hooks ---------------------------------------------------------------------
    def on_resize(self, event: events.Resize) -> None:
        if self.scrollable_content_region.width != self._width:
            self._layout(self._anchor())
        else:
            self._update_virtual_size()
            self._update_title()

    def watch_scroll_y(self, old_value: float, new_value: float) -> None:
        super().watch_scroll_y(old_value, new_value)
        if round(old_value) != round(new_value):
            self._update_title()

    def notify_style_update(self) -> None:
        super().notify_style_update()
        self._cache.clear()  # a theme change restyles every row

    def on_click(self, event: events.Click) -> None:
        offset = event.get_content_offset(self)
        if offset is None:
            return
        row = self.top + offset.y
        if 0 <= row < len(self._rows) and self._rows[row].kind is RowKind.TITLE:
            section = self._sections[self._rows[row].section]
            self.set_folded(section.key, section.key not in self._folded)

    def render_line(self, y: int) -> Strip:
        if self._painted != self.generation:
            self._painted = self.generation
            self.post_message(self.Painted(self))
        row = self.top + y
        width = self.scrollable_content_region.width
        key = (row, width)
        cached = self._cache.get(key)
        if cached is not None:
            return cached
        if row >= len(self._rows):
            strip = Strip.blank(width, self.rich_style)
        else:
            strip = self._render_row(self._rows[row], width)
        self._cache[key] = strip
        return strip

    def _render_row(self, row: Row, width: int) -> Strip:
        if row.kind is RowKind.TITLE:
            base = self.get_visual_style("diff-pager--title")
        elif row.kind is RowKind.HUNK:
            base = self.get_visual_style("diff-pager--hunk")
        else:
            base = self.visual_style
        segments = [
            Segment(text, style.rich_style) for text, style in row.content.render(base, end="")
        ]
        return Strip(segments, row.content.cell_length).crop_extend(0, width, base.rich_style)
