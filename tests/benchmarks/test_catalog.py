"""The cis-1.12 catalog data: complete, consistent with the flag tables, loadable fast."""

from __future__ import annotations

from collections import Counter

import pytest

from cis_tui.audit.flags import flag_table
from cis_tui.benchmarks.catalog import load_catalog
from cis_tui.errors import UserError

CATALOG = load_catalog("cis-1.12")


def test_all_92_checks_in_benchmark_order():
    ids = [c.id for c in CATALOG.checks]
    assert len(ids) == 92 == len(set(ids))
    sections = Counter(c.section for c in CATALOG.checks)
    assert sections == {
        "1.1": 21,
        "1.2": 30,
        "1.3": 7,
        "1.4": 2,
        "2": 7,
        "4.1": 10,
        "4.2": 14,
        "4.3": 1,
    }
    assert sum(c.scored for c in CATALOG.checks) == 65


def test_every_flag_a_check_reads_is_a_real_flag_of_its_component():
    for check in CATALOG.checks:
        table = flag_table(check.component)
        if not table:
            continue
        for test in check.audit.tests:
            assert test.flag in table, (check.id, test.flag)
        for edit in check.remediation.edits:
            if edit.flag:
                assert edit.flag in table, (check.id, edit.flag)


def test_manual_checks_with_a_mechanical_fix_have_one():
    for check_id in (
        "1.2.1",
        "1.2.9",
        "1.2.11",
        "1.2.27",
        "1.2.29",
        "1.3.1",
        "4.2.4",
        "4.2.12",
        "4.2.13",
        "4.2.14",
    ):
        assert CATALOG.get(check_id).remediation.available, check_id


def test_params_referenced_by_edits_exist():
    for check in CATALOG.checks:
        names = {p.name for p in check.remediation.params}
        for edit in check.remediation.edits:
            for value in (edit.value, edit.item):
                if isinstance(value, str) and value.startswith("{") and value.endswith("}"):
                    inner = value[1:-1]
                    assert inner in names | {"pki", "audit_log_dir"}, (check.id, value)


def test_unknown_benchmark_is_a_user_error():
    with pytest.raises(
        UserError,
        match=r"unknown benchmark 'cis-9.9'; available: cis-1.10, cis-1.11, cis-1.12, cis-2.0",
    ):
        load_catalog("cis-9.9")
