"""Every check on the eleven real-world control-plane trees (../shared/ref/realworld), scanned by
the installed command as an admin would, against the verdict an expert gives it from the
component's own semantics at its version. Each non-obvious expectation carries its reason in
tests/data/realworld/TREE.tsv; a difference names the tree, the check and that reason."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.realworld import materialize

EXPECTED = Path(__file__).parents[1] / "data" / "realworld"
TREES = sorted(p.stem for p in EXPECTED.glob("*.tsv"))


def expected(tree: str) -> dict[str, tuple[str, str]]:
    rows = {}
    for line in (EXPECTED / f"{tree}.tsv").read_text().splitlines():
        if line.startswith("#") or not line.strip():
            continue
        check_id, status, why = [*line.split("\t"), ""][:3]
        rows[check_id] = (status, why)
    return rows


@pytest.fixture(scope="module")
def trees(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return materialize(tmp_path_factory.mktemp("realworld"))


def cis_tui() -> list[str]:
    found = shutil.which("cis-tui", path=str(Path(sys.executable).parent))
    return [found] if found else [sys.executable, "-m", "cis_tui"]


def test_all_eleven_trees_have_judged_verdicts():
    assert len(TREES) == 11


@pytest.mark.parametrize("tree", TREES)
def test_scan_gives_the_judged_verdict_for_every_check(trees, tree):
    out = subprocess.run(
        [*cis_tui(), "--root", str(trees / tree), "scan", "--format", "json"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert out.returncode in (0, 1), out.stderr
    assert "Traceback" not in out.stderr
    doc = json.loads(out.stdout)
    got = {r["id"]: (r["status"], r["reason"]) for r in doc["results"]}
    want = expected(tree)
    assert set(got) == set(want), f"{tree}: checks differ: {set(got) ^ set(want)}"
    wrong = [
        f"{tree} {cid}: got {got[cid][0]} ({got[cid][1]}), judged {status}: {why or 'obvious'}"
        for cid, (status, why) in want.items()
        if got[cid][0] != status
    ]
    assert not wrong, "\n".join(wrong)
    # Nothing is ever judged on a tree's syntax alone: no ERROR on these real files.
    assert all(status != "ERROR" for status, _ in got.values())
