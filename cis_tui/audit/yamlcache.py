"""Parsed YAML documents cached by content checksum.

ruamel.yaml's constructor costs ~6 ms per manifest even with the C parser; a node's manifests
rarely change between scans, so their parsed form is kept as JSON in the user cache directory,
keyed by the sha256 of the text. A changed file is a new key: the cache can never be stale.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
from pathlib import Path
from typing import Any

import platformdirs

_MAX_ENTRIES = 256


class YamlSyntaxError(ValueError):
    """The text is not valid YAML: `problem` and the 1-based `line` (when known)."""

    def __init__(self, problem: str, line: int | None) -> None:
        self.problem = problem
        self.line = line
        super().__init__(problem)


def _parse(text: str) -> list[Any]:
    # Imported on a cache miss only: ruamel.yaml takes ~60 ms to import.
    from ruamel.yaml import YAML
    from ruamel.yaml.error import YAMLError

    try:
        return list(YAML(typ="safe", pure=False).load_all(text))
    except YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        problem = getattr(exc, "problem", None) or type(exc).__name__
        raise YamlSyntaxError(str(problem), mark.line + 1 if mark is not None else None) from None


def _cache_dir() -> Path:
    return Path(platformdirs.user_cache_dir("cis-tui")) / "yaml"


def load_all_cached(text: str) -> list[Any]:
    """Every document of `text` (YamlSyntaxError when malformed), through the checksum cache."""
    key = hashlib.sha256(text.encode()).hexdigest()
    path = _cache_dir() / f"{key}.json"
    try:
        return list(json.loads(path.read_bytes()))
    except (OSError, ValueError):
        pass
    docs = _parse(text)
    try:
        payload = json.dumps(docs)
    except (TypeError, ValueError):
        return docs  # timestamps or binary scalars: not worth caching
    # A read-only home: parse every time.
    with contextlib.suppress(OSError):
        directory = _cache_dir()
        directory.mkdir(parents=True, exist_ok=True, mode=0o700)
        tmp = directory / f".{key}.{os.getpid()}"
        tmp.write_text(payload)
        os.replace(tmp, path)
        _prune(directory)
    return docs


def _prune(directory: Path) -> None:
    entries = list(directory.glob("*.json"))
    if len(entries) <= _MAX_ENTRIES:
        return
    entries.sort(key=lambda p: p.stat().st_mtime)
    for old in entries[: len(entries) - _MAX_ENTRIES]:
        old.unlink(missing_ok=True)
