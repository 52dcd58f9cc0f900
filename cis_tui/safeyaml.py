"""Bounded YAML loading: every YAML text cis-tui reads from a node or a user goes through here.

A 1.4 KB alias bomb ("billion laughs") becomes gigabytes in anything that walks the loaded data
(a JSON dump, a deep comparison), and libyaml's C composer recurses without limit: a deeply
nested flow collection crashes the interpreter, and merely scanning one is quadratic. So a text
is measured before anything is composed or constructed: its size, then one pass over libyaml's
parse events that stops at the first limit crossed (nesting depth, aliases, nodes and scalar
characters with every alias expanded). Manifests, kubelet configs and plans need none of this
room: kubeadm's API server manifest is 4 KB, 12 levels deep, with no alias at all.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ruamel.yaml.nodes import Node

#: Largest text accepted, in UTF-8 bytes (the same bound as a node file read from disk).
MAX_BYTES = 1 << 20
#: Aliases per text (manifests never need one; a few are tolerated in hand-written configs).
MAX_ALIASES = 100
#: Nodes (scalars, collections) counting each alias as a full copy of its anchor.
MAX_NODES = 100_000
#: Scalar characters counting each alias as a full copy: a text without aliases stays under it.
MAX_CHARS = 2 * MAX_BYTES
#: Collections nested inside each other.
MAX_DEPTH = 64


class YamlLimitError(ValueError):
    """The text exceeds a bound: `problem` (one line) and the 1-based `line` when known."""

    def __init__(self, problem: str, line: int | None = None) -> None:
        self.problem = problem
        self.line = line
        super().__init__(problem if line is None else f"{problem} (line {line})")


def utf8_size(text: str) -> int:
    return len(text) if text.isascii() else len(text.encode("utf-8", "surrogatepass"))


def check_limits(text: str, max_bytes: int = MAX_BYTES) -> None:
    """YamlLimitError when `text` is too large, too deep or expands too far through aliases.

    Syntax errors are left to the loader (ruamel's YAMLError), which reports them with context.
    """
    size = utf8_size(text)
    if size > max_bytes:
        raise YamlLimitError(f"YAML text of {size} bytes exceeds the limit of {max_bytes} bytes")
    # Imported here: ruamel.yaml takes ~60 ms to import and a cached scan never needs it.
    from ruamel.yaml import YAML
    from ruamel.yaml.events import (
        AliasEvent,
        CollectionEndEvent,
        CollectionStartEvent,
        DocumentStartEvent,
        ScalarEvent,
    )

    anchors: dict[str, tuple[int, int]] = {}  # anchor -> (nodes, chars) of its expanded value
    open_: list[tuple[str | None, int, int]] = []  # (anchor, nodes, chars) when each opened
    nodes = chars = aliases = 0
    for event in YAML(typ="safe", pure=False).parse(text):
        if isinstance(event, ScalarEvent):
            nodes += 1
            chars += len(event.value)
            if event.anchor:
                anchors[event.anchor] = (1, len(event.value))
        elif isinstance(event, CollectionStartEvent):
            if len(open_) >= MAX_DEPTH:
                raise YamlLimitError(f"YAML nested more than {MAX_DEPTH} levels deep", _line(event))
            nodes += 1
            open_.append((event.anchor, nodes, chars))
        elif isinstance(event, CollectionEndEvent):
            anchor, nodes_at, chars_at = open_.pop()
            if anchor:
                anchors[anchor] = (nodes - nodes_at + 1, chars - chars_at)
        elif isinstance(event, AliasEvent):
            aliases += 1
            if aliases > MAX_ALIASES:
                raise YamlLimitError(
                    f"YAML with more than {MAX_ALIASES} aliases (*name) refused", _line(event)
                )
            if event.anchor not in anchors:  # undefined, or a collection referring to itself
                raise YamlLimitError(
                    f"YAML alias *{event.anchor} does not refer to a complete anchor", _line(event)
                )
            more_nodes, more_chars = anchors[event.anchor]
            nodes += more_nodes
            chars += more_chars
        elif isinstance(event, DocumentStartEvent):
            anchors.clear()  # anchors are scoped to their document
            continue
        else:
            continue
        if nodes > MAX_NODES or chars > MAX_CHARS:
            what = f"more than {MAX_NODES} nodes" if nodes > MAX_NODES else f"{chars} characters"
            if aliases:
                raise YamlLimitError(f"YAML aliases expand to {what} (an alias bomb)", _line(event))
            raise YamlLimitError(f"YAML with {what} refused", _line(event))


def _line(event: Any) -> int | None:
    mark = getattr(event, "start_mark", None)
    return mark.line + 1 if mark is not None else None


def load_all(text: str, max_bytes: int = MAX_BYTES) -> list[Any]:
    """Every document of `text` as plain Python data (YamlLimitError, or ruamel's YAMLError)."""
    check_limits(text, max_bytes)
    from ruamel.yaml import YAML

    return list(YAML(typ="safe", pure=False).load_all(text))


def load(text: str, max_bytes: int = MAX_BYTES) -> Any:
    """The single document of `text` as plain Python data."""
    check_limits(text, max_bytes)
    from ruamel.yaml import YAML

    return YAML(typ="safe", pure=False).load(text)


def construct(node: Node) -> Any:
    """The plain Python data of a node tree from `compose` (no second parse of the text)."""
    from ruamel.yaml import YAML

    constructor = YAML(typ="safe", pure=False).constructor
    data = constructor.construct_document(node)
    return data


def compose(text: str) -> Node | None:
    """The node tree of the single document of `text` (None when empty), with positions."""
    check_limits(text)
    from ruamel.yaml import YAML

    return YAML(typ="safe", pure=False).compose(text)
