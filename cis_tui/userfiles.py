"""Reading a file the admin names: bounded in size, every failure one UserError line."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from cis_tui.errors import UserError


def read_bounded(path: Path, what: str, limit: int) -> bytes:
    """The bytes of *path*, refused past *limit*; *what* names the file in errors."""
    try:
        with open(path, "rb") as handle:
            raw = handle.read(limit + 1)
    except FileNotFoundError:
        raise UserError(f"{what} not found", path) from None
    except OSError as exc:
        raise UserError(f"cannot read the {what}: {exc.strerror or exc}", path) from None
    if len(raw) > limit:
        raise UserError(f"{what} is larger than {limit} bytes", path)
    return raw


def load_json(path: Path, what: str, limit: int) -> Any:
    """The JSON document in *path* (see read_bounded)."""
    raw = read_bounded(path, what, limit)
    try:
        return json.loads(raw.decode("utf-8"))
    except UnicodeDecodeError:
        raise UserError(f"{what} is not UTF-8 text", path) from None
    except json.JSONDecodeError as exc:
        raise UserError(f"{what} is not JSON (line {exc.lineno}): {exc.msg}", path) from None
    except RecursionError:
        raise UserError(f"{what} is nested too deeply", path) from None
