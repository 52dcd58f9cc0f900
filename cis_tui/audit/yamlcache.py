"""Parsed YAML documents cached by content checksum.

ruamel.yaml's constructor costs ~6 ms per manifest even with the C parser; a node's manifests
rarely change between scans, so their parsed form is kept as JSON in the user cache directory,
keyed by the sha256 of the text. A changed file is a new key: the cache can never be stale.
Only texts within the bounds of `cis_tui.safeyaml` are parsed and cached.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import re
from pathlib import Path
from typing import Any

import platformdirs

from cis_tui.safeyaml import YamlLimitError, load_all

__all__ = ["YamlLimitError", "YamlSyntaxError", "load_all_cached"]

_MAX_ENTRIES = 256
#: A cached entry larger than this is ignored (bounded texts give far smaller ones).
_MAX_ENTRY_BYTES = 8 << 20


class YamlSyntaxError(ValueError):
    """The text is not valid YAML: `problem` and the 1-based `line` (when known)."""

    def __init__(self, problem: str, line: int | None) -> None:
        self.problem = problem
        self.line = line
        super().__init__(problem)


def _parse(text: str) -> list[Any]:
    # Imported on a cache miss only: ruamel.yaml takes ~60 ms to import.
    from ruamel.yaml.error import YAMLError

    try:
        return load_all(text)
    except YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        problem = getattr(exc, "problem", None) or type(exc).__name__
        raise YamlSyntaxError(str(problem), mark.line + 1 if mark is not None else None) from None


def _cache_dir() -> Path:
    return Path(platformdirs.user_cache_dir("cis-tui")) / "yaml"


def load_all_cached(text: str) -> list[Any]:
    """Every document of `text` through the checksum cache: YamlSyntaxError when malformed,
    YamlLimitError when it exceeds the safeyaml bounds (an alias bomb, say)."""
    key = hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()
    path = _cache_dir() / f"{key}.json"
    _clean_temporaries(path.parent)  # a killed writer's `.KEY.PID` (once per process)
    try:
        with path.open("rb") as fh:
            raw = fh.read(_MAX_ENTRY_BYTES + 1)
        if len(raw) <= _MAX_ENTRY_BYTES:
            return list(json.loads(raw))
    except (OSError, ValueError, RecursionError):
        pass
    docs = _parse(text)
    try:
        payload = json.dumps(docs)
    except (TypeError, ValueError):
        return docs  # timestamps or binary scalars: not worth caching
    if len(payload) > _MAX_ENTRY_BYTES:
        return docs
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
    _clean_temporaries(directory)
    entries = list(directory.glob("*.json"))
    if len(entries) <= _MAX_ENTRIES:
        return
    entries.sort(key=lambda p: p.stat().st_mtime)
    for old in entries[: len(entries) - _MAX_ENTRIES]:
        old.unlink(missing_ok=True)


#: A temporary entry `.KEY.PID`, left when its writer was killed before the rename.
_TEMPORARY = re.compile(r"^\.[0-9a-f]{64}\.(\d+)$")
_cleaned: set[Path] = set()


def _clean_temporaries(directory: Path) -> None:
    """Remove temporaries whose writer is gone (once per directory and process)."""
    if directory in _cleaned:
        return
    _cleaned.add(directory)
    with contextlib.suppress(OSError):
        for entry in os.scandir(directory):
            m = _TEMPORARY.match(entry.name)
            if m is None or int(m[1]) == os.getpid():
                continue
            try:
                os.kill(int(m[1]), 0)
            except ProcessLookupError:
                Path(entry.path).unlink(missing_ok=True)
            except OSError:
                continue  # alive (another user's): its writer may still rename it
