"""Surgical YAML text edits: find nodes by character offset, change only the lines they own.

ruamel.yaml composes the document into nodes whose start/end marks are character offsets; every
edit is a `Span` replacing one range of the original text, so lines an edit does not touch stay
byte-identical. Nothing here dumps YAML: a dump would reflow lines and change quoting.
"""

from __future__ import annotations

import bisect
import math
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from ruamel.yaml.composer import ComposerError
from ruamel.yaml.emitter import Emitter
from ruamel.yaml.error import YAMLError
from ruamel.yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode
from ruamel.yaml.resolver import VersionedResolver

from cis_tui import safeyaml

_STR_TAG = "tag:yaml.org,2002:str"
# Kubernetes reads YAML with go-yaml (1.1: `yes`, `on` are booleans); ruamel defaults to 1.2.
_RESOLVERS = (VersionedResolver(version=(1, 1)), VersionedResolver(version=(1, 2)))
_EMITTER = Emitter(None, allow_unicode=True)
_ITEM_PREFIX = re.compile(r"[ \t]*-[ \t]+")
_PRINTABLE = re.compile("[\t\n\r\x20-\x7e\xa0-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")
_ESCAPES = {"\\": "\\\\", '"': '\\"', "\n": "\\n", "\t": "\\t", "\r": "\\r", "\0": "\\0"}


class EditError(Exception):
    """An edit that cannot be made safely; a one-line message, the caller adds the path."""


@dataclass(frozen=True)
class Span:
    """Replace `text[start:end]` with `new`."""

    start: int
    end: int
    new: str


@dataclass(frozen=True)
class Indents:
    """How a file indents nested blocks, relative to the parent key's column."""

    map: int = 2  # child keys of a mapping value
    seq: int = 0  # the `-` of a sequence value (kubeadm writes 0)


# --- parsing -----------------------------------------------------------------------------------


def compose(text: str) -> Node | None:
    """The node tree of a single-document YAML text (None when empty), within safeyaml's bounds."""
    try:
        return safeyaml.compose(text)
    except safeyaml.YamlLimitError as exc:
        raise EditError(f"refused: {exc}") from None
    except ComposerError as exc:
        if "another document" in str(exc):
            raise EditError("expected a single YAML document") from None
        raise EditError(f"malformed YAML: {_first_line(exc)}") from None
    except YAMLError as exc:
        raise EditError(f"malformed YAML: {_first_line(exc)}") from None


def construct(node: Node) -> Any:
    """The plain Python data of a tree from `compose`, without parsing the text again."""
    try:
        return safeyaml.construct(node)
    except YAMLError as exc:
        raise EditError(f"malformed YAML: {_first_line(exc)}") from None


def load(text: str) -> Any:
    """The plain Python data of a single-document YAML text, within safeyaml's bounds."""
    try:
        return safeyaml.load(text)
    except safeyaml.YamlLimitError as exc:
        raise EditError(f"refused: {exc}") from None
    except YAMLError as exc:
        raise EditError(f"malformed YAML: {_first_line(exc)}") from None


def _first_line(exc: Exception) -> str:
    problem = getattr(exc, "problem", None)
    mark = getattr(exc, "problem_mark", None)
    if problem and mark is not None:
        return f"{problem} (line {mark.line + 1})"
    return str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__


def check_line_breaks(text: str) -> None:
    if re.search(r"\r(?!\n)", text):
        raise EditError("bare CR line endings are not supported")


def find_key(mapping: MappingNode, key: str) -> tuple[Node, Node] | None:
    """The (key, value) pair of `key`; EditError when the key is duplicated."""
    found = [(k, v) for k, v in mapping.value if isinstance(k, ScalarNode) and k.value == key]
    if len(found) > 1:
        raise EditError(f"duplicate key {key!r} (line {found[1][0].start_mark.line + 1})")
    return found[0] if found else None


def is_null(node: Node | None) -> bool:
    return node is None or (isinstance(node, ScalarNode) and str(node.tag).endswith(":null"))


def is_block(node: Node) -> bool:
    return isinstance(node, (MappingNode, SequenceNode)) and not node.flow_style


def scalar(node: Node | None) -> str | None:
    return node.value if isinstance(node, ScalarNode) else None


# --- positions ---------------------------------------------------------------------------------


def eol(text: str) -> str:
    """The file's line break: CRLF files stay CRLF."""
    return "\r\n" if text.count("\r\n") * 2 > text.count("\n") else "\n"


def line_start(text: str, pos: int) -> int:
    return text.rfind("\n", 0, pos) + 1


def line_end(text: str, pos: int) -> int:
    """Offset of the line break ending the line holding `pos` (or the end of the text)."""
    nl = text.find("\n", pos)
    if nl == -1:
        return len(text)
    return nl - 1 if nl > 0 and text[nl - 1] == "\r" else nl


def next_line(text: str, pos: int) -> int:
    nl = text.find("\n", pos)
    return len(text) if nl == -1 else nl + 1


def colon_end(text: str, key: Node) -> int:
    """Offset just after the `:` that follows a mapping key."""
    pos = key.end_mark.index
    while pos < len(text) and text[pos] in " \t":
        pos += 1
    if pos >= len(text) or text[pos] != ":":
        raise EditError(f"unsupported key layout at line {key.start_mark.line + 1}")
    return pos + 1


def content_end(text: str, node: Node) -> int:
    """Offset just after the last character that belongs to `node` (comments excluded)."""
    if isinstance(node, MappingNode) and not node.flow_style and node.value:
        return pair_end(text, *node.value[-1])
    if isinstance(node, SequenceNode) and not node.flow_style and node.value:
        return content_end(text, node.value[-1])
    end = node.end_mark.index
    if isinstance(node, ScalarNode) and node.style in ("|", ">"):
        while end > node.start_mark.index and text[end - 1] in " \t\r\n":
            end -= 1
    return end


def item_prefix(text: str, node: Node) -> str:
    """The `    - ` before a block sequence item; EditError for layouts we do not edit."""
    start = node.start_mark.index
    prefix = text[line_start(text, start) : start]
    if not _ITEM_PREFIX.fullmatch(prefix):
        raise EditError(f"unsupported list layout at line {node.start_mark.line + 1}")
    if start < len(text) and text[start] in "&*!":
        raise EditError(
            f"anchors, aliases and tags are not supported (line {node.start_mark.line + 1})"
        )
    return prefix


def dash_column(text: str, item: Node) -> int:
    return len(item_prefix(text, item).split("-", 1)[0])


def detect_indents(text: str, root: Node) -> Indents:
    """The first nested mapping and block sequence offsets found in the document."""
    found: dict[str, int] = {}

    def walk(node: Node) -> None:
        if len(found) == 2:
            return
        if isinstance(node, MappingNode) and not node.flow_style:
            for key, value in node.value:
                column = key.start_mark.column
                if is_block(value) and value.value:
                    if isinstance(value, MappingNode):
                        found.setdefault("map", value.value[0][0].start_mark.column - column)
                    elif _ITEM_PREFIX.fullmatch(_line_prefix(text, value.value[0])):
                        found.setdefault("seq", dash_column(text, value.value[0]) - column)
                walk(value)
        elif isinstance(node, SequenceNode) and not node.flow_style:
            for item in node.value:
                walk(item)

    walk(root)
    return Indents(map=max(found.get("map", 2), 1), seq=max(found.get("seq", 0), 0))


def _line_prefix(text: str, node: Node) -> str:
    start = node.start_mark.index
    return text[line_start(text, start) : start]


# --- text spans --------------------------------------------------------------------------------


def apply_spans(text: str, spans: Iterable[Span]) -> str:
    """Apply non-overlapping spans (insertions at one offset keep their given order)."""
    ordered = sorted(enumerate(spans), key=lambda p: (p[1].start, p[1].end, p[0]))
    out: list[str] = []
    pos = 0
    for _, span in ordered:
        if span.start < pos:
            raise EditError("internal: overlapping edits")
        out.append(text[pos : span.start])
        out.append(span.new)
        pos = span.end
    out.append(text[pos:])
    return "".join(out)


def delete_lines(text: str, ranges: Iterable[tuple[int, int]]) -> list[Span]:
    """Spans removing the whole lines that hold each (first, last) offset range."""
    merged: list[list[int]] = []
    for first, last in sorted((line_start(text, a), next_line(text, b)) for a, b in ranges):
        if merged and first <= merged[-1][1]:
            merged[-1][1] = max(merged[-1][1], last)
        else:
            merged.append([first, last])
    spans = []
    for first, last in merged:
        if last == len(text) and not text.endswith("\n") and first > 0:
            # No final newline: drop the break before the block so none appears.
            first -= 2 if text[first - 2 : first] == "\r\n" else 1
        spans.append(Span(first, last, ""))
    return spans


def insert_after_line(text: str, pos: int, lines: Sequence[str]) -> Span:
    """Insert `lines` after the line holding `pos` (a missing final newline stays missing)."""
    at = line_end(text, pos)
    brk = eol(text)
    return Span(at, at, "".join(brk + line for line in lines))


def insert_before_line(text: str, pos: int, lines: Sequence[str]) -> Span:
    at = line_start(text, pos)
    brk = eol(text)
    return Span(at, at, "".join(line + brk for line in lines))


# --- scalars -----------------------------------------------------------------------------------


def is_plain_safe(value: str) -> bool:
    """Whether `value` can be written unquoted and read back as the same string."""
    if not value:
        return False
    analysis = _EMITTER.analyze_scalar(value)
    if not analysis.allow_block_plain or analysis.multiline:
        return False
    return all(str(r.resolve(ScalarNode, value, (True, False))) == _STR_TAG for r in _RESOLVERS)


def single_quoted(value: str) -> str | None:
    if any(ch in value for ch in "\n\r") or not all(_PRINTABLE.match(ch) for ch in value):
        return None
    return "'" + value.replace("'", "''") + "'"


def double_quoted(value: str) -> str:
    out = []
    for ch in value:
        if ch in _ESCAPES:
            out.append(_ESCAPES[ch])
        elif _PRINTABLE.match(ch) and ch not in "\t\n\r":
            out.append(ch)
        elif ord(ch) <= 0xFF:
            out.append(f"\\x{ord(ch):02x}")
        elif ord(ch) <= 0xFFFF:
            out.append(f"\\u{ord(ch):04x}")
        else:
            out.append(f"\\U{ord(ch):08x}")
    return '"' + "".join(out) + '"'


def render_str(value: str, style: str | None = None, quote: str = '"') -> str:
    """A YAML scalar for `value`, in `style` (None, `'` or `"`) when that style can hold it."""
    if not style and is_plain_safe(value):
        return value
    wanted = style or quote
    if wanted == "'":
        single = single_quoted(value)
        if single is not None:
            return single
    return double_quoted(value)


def render_scalar(value: object) -> str:
    """A YAML scalar for a Python bool, int, float, str or None."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        if math.isnan(value):
            return ".nan"
        if math.isinf(value):
            return ".inf" if value > 0 else "-.inf"
        return repr(value)
    if isinstance(value, str):
        return render_str(value)
    raise EditError(f"unsupported value type {type(value).__name__}")


def render_key(key: str) -> str:
    if not key or not is_plain_safe(key):
        return double_quoted(key)
    return key


# --- blocks ------------------------------------------------------------------------------------


def render_value(value: object, column: int, ind: Indents) -> tuple[str, list[str]]:
    """The text after `key:` (inline) and the lines below it, for a key at `column`."""
    if isinstance(value, dict):
        if not value:
            return " {}", []
        return "", render_mapping(value, column + ind.map, ind)
    if isinstance(value, (list, tuple)):
        if not value:
            return " []", []
        return "", render_sequence(value, column + ind.seq, ind)
    return " " + render_scalar(value), []


def render_mapping(value: dict[str, object], column: int, ind: Indents) -> list[str]:
    lines: list[str] = []
    for key, child in value.items():
        inline, below = render_value(child, column, ind)
        lines.append(" " * column + render_key(str(key)) + ":" + inline)
        lines.extend(below)
    return lines


def render_sequence(items: Sequence[object], dash: int, ind: Indents) -> list[str]:
    lines: list[str] = []
    for item in items:
        if isinstance(item, dict) and item:
            body = render_mapping(item, dash + 2, ind)
            lines.append(" " * dash + "- " + body[0][dash + 2 :])
            lines.extend(body[1:])
        elif isinstance(item, (list, tuple)) and item:
            raise EditError("nested lists are not supported")
        else:
            inline, _ = render_value(item, dash, ind)
            lines.append(" " * dash + "-" + inline)
    return lines


def replace_value(text: str, key: Node, old: Node, value: object, ind: Indents) -> list[Span]:
    """Spans that give an existing key a new value; a comment on the key line is kept."""
    column = key.start_mark.column
    if (
        is_block(old)
        and old.value
        and isinstance(value, (list, tuple)) == isinstance(old, SequenceNode)
    ):
        first = old.value[0] if isinstance(old, SequenceNode) else old.value[0][0]
        if isinstance(old, SequenceNode):
            ind = Indents(ind.map, dash_column(text, first) - column)
        else:
            ind = Indents(first.start_mark.column - column, ind.seq)
    inline, below = render_value(value, column, ind)
    if isinstance(value, str) and isinstance(old, ScalarNode) and old.style in ("'", '"'):
        inline = " " + render_str(value, old.style)  # keep the key's quoting
    colon = colon_end(text, key)
    brk = eol(text)
    if is_block(old):
        end = line_end(text, content_end(text, old))
        spans = [Span(line_end(text, colon), end, "".join(brk + line for line in below))]
        if inline:
            spans.append(Span(colon, colon, inline))
        return spans
    if isinstance(old, ScalarNode) and old.value == "" and not old.style:
        start = end = colon  # `key:` with nothing after it
    elif _raw_starts_with_property(text, old):
        raise EditError(
            f"anchors, aliases and tags are not supported (line {old.start_mark.line + 1})"
        )
    else:
        start, end = old.start_mark.index, content_end(text, old)
    if below:
        return [
            Span(colon, end, ""),
            Span(line_end(text, end), line_end(text, end), "".join(brk + line for line in below)),
        ]
    if start == colon:
        return [Span(start, end, inline)]
    return [Span(start, end, inline.lstrip(" "))]


def _raw_starts_with_property(text: str, node: Node) -> bool:
    start = node.start_mark.index
    return start < len(text) and text[start] in "&*!"


def insert_key(
    text: str, mapping: MappingNode, key: str, value: object, ind: Indents
) -> list[Span]:
    """Spans adding a new key to a block mapping: alphabetical among sorted siblings, else last."""
    if not is_block(mapping) or not mapping.value:
        raise EditError(
            f"cannot add {key!r} to a flow-style mapping (line {mapping.start_mark.line + 1})"
        )
    keys = [k.value if isinstance(k, ScalarNode) else "" for k, _ in mapping.value]
    column = mapping.value[0][0].start_mark.column
    inline, below = render_value(value, column, ind)
    lines = [" " * column + render_key(key) + ":" + inline, *below]
    index = bisect.bisect_right(keys, key) if keys == sorted(keys) else len(keys)
    first_key = mapping.value[0][0]
    if index == 0 and _line_prefix(text, first_key).strip():
        index = 1  # the first key shares its line with a `- `: never insert above it
    if index == 0:
        return [insert_before_line(text, first_key.start_mark.index, lines)]
    prev_key, prev_value = mapping.value[index - 1]
    return [insert_after_line(text, pair_end(text, prev_key, prev_value), lines)]


def pair_end(text: str, key: Node, value: Node) -> int:
    """Where a key's value ends; `key:` with nothing after it ends at its colon."""
    if isinstance(value, ScalarNode) and value.value == "" and not value.style:
        return colon_end(text, key)
    return content_end(text, value)


def remove_key_lines(text: str, key: Node, value: Node) -> list[Span]:
    """Spans deleting a key and its value (a key sharing its line with a `- ` is refused)."""
    if _line_prefix(text, key).strip():
        raise EditError(f"unsupported key layout at line {key.start_mark.line + 1}")
    return delete_lines(text, [(key.start_mark.index, pair_end(text, key, value))])


# --- data helpers ------------------------------------------------------------------------------


def mapping_scalar(node: Node, key: str) -> str | None:
    """The scalar text under `key` of a mapping node (None if absent or not a scalar)."""
    if not isinstance(node, MappingNode):
        return None
    found = find_key(node, key)
    return scalar(found[1]) if found else None


def order_like(item: dict[str, object], example: MappingNode) -> dict[str, object]:
    """`item` with its keys in the order an existing mapping uses (unknown keys last)."""
    order = [k.value for k, _ in example.value if isinstance(k, ScalarNode) and k.value in item]
    return {**{k: item[k] for k in order}, **{k: v for k, v in item.items() if k not in order}}


def same(a: object, b: object) -> bool:
    """Equality that also compares types (`True` is not `1`, `1` is not `1.0`)."""
    if type(a) is not type(b):
        return False
    if isinstance(a, dict):
        assert isinstance(b, dict)
        return a.keys() == b.keys() and all(same(a[k], b[k]) for k in a)
    if isinstance(a, list):
        assert isinstance(b, list)
        return len(a) == len(b) and all(same(x, y) for x, y in zip(a, b, strict=True))
    return a == b
