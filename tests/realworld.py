"""The real-world control-plane trees of shared/ref/realworld, copied with their modes."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

#: shared/ lies beside the repository (as CI lays it out).
REALWORLD = Path(__file__).resolve().parents[2] / "shared/ref/realworld"


def materialize(dest: Path, *trees: str) -> Path:
    """Copy the named trees (all eleven when none) into `dest`; skip when they are absent."""
    if not (REALWORLD / "materialize.py").is_file():
        pytest.skip(f"the real-world trees are not available at {REALWORLD}")
    subprocess.run(
        [sys.executable, str(REALWORLD / "materialize.py"), str(dest), *trees],
        check=True,
        capture_output=True,
    )
    return dest
