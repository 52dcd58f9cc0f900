"""The verdict of every one of the 92 checks on a fresh kubeadm node, as an expert gives it.

The expected table is tests/data/kubeadm-default-verdicts.tsv (id, status, why).
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from cis_tui.audit.evaluate import evaluate
from cis_tui.audit.node import take_snapshot
from cis_tui.benchmarks.catalog import load_catalog
from cis_tui.layout import load_settings

TABLE = Path(__file__).parents[1] / "data" / "kubeadm-default-verdicts.tsv"
# Owner checks expect root:root; a non-root test run owns its files itself.
OWNER_CHECKS = {"1.1.2", "1.1.4", "1.1.6", "1.1.8", "1.1.14", "1.1.16", "1.1.18", "1.1.19",
                "4.1.2", "4.1.6", "4.1.8", "4.1.10"}  # fmt: skip


def expected_verdicts() -> dict[str, tuple[str, str]]:
    rows = [line.split("\t") for line in TABLE.read_text().splitlines()[1:] if line.strip()]
    return {row[0]: (row[1], row[2]) for row in rows}


def test_the_table_covers_the_whole_catalog():
    catalog = load_catalog("cis-1.12")
    assert list(expected_verdicts()) == [c.id for c in catalog.checks]
    assert len(catalog.checks) == 92


def test_every_check_on_a_fresh_kubeadm_node(kubeadm_node):
    results = evaluate(load_catalog("cis-1.12"), take_snapshot(load_settings(root=kubeadm_node)))
    expected = expected_verdicts()
    wrong = {}
    for r in results:
        want, why = expected[r.id]
        if r.id in OWNER_CHECKS and os.geteuid() != 0:
            want = "FAIL"
        if r.status.value != want:
            wrong[r.id] = f"got {r.status.value} ({r.reason}), want {want}: {why}"
    assert wrong == {}


@pytest.mark.parametrize("check_id", ["1.2.15", "1.2.16", "1.3.2", "1.4.1", "4.1.9"])
def test_failures_explain_themselves(kubeadm_node, check_id):
    (result,) = evaluate(
        load_catalog(), take_snapshot(load_settings(root=kubeadm_node)), [check_id]
    )
    assert result.reason and "\n" not in result.reason
    assert result.expected
