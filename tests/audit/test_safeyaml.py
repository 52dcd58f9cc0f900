"""The YAML bounds every node file and plan goes through (issue 11 item 10)."""

from __future__ import annotations

import subprocess
import sys
import time

import pytest

from cis_tui import safeyaml
from cis_tui.safeyaml import YamlLimitError, check_limits

LAUGHS = 'a: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]\n' + "".join(
    f"{c}: &{c} [" + ",".join([f"*{p}"] * 9) + "]\n"
    for p, c in zip("abcdefgh", "bcdefghi", strict=True)
)


def _refused(text: str) -> str:
    started = time.perf_counter()
    with pytest.raises(YamlLimitError) as info:
        check_limits(text)
    assert time.perf_counter() - started < 1.0
    return str(info.value)


def test_billion_laughs_is_refused_before_it_is_built():
    assert "alias bomb" in _refused(LAUGHS)
    with pytest.raises(YamlLimitError):
        safeyaml.load(LAUGHS)


def test_one_long_string_repeated_by_aliases_is_refused():
    text = 'a: &a "' + "x" * 400_000 + '"\nb: [' + ",".join(["*a"] * 20) + "]\n"
    assert "characters (an alias bomb)" in _refused(text)


@pytest.mark.parametrize(
    "text",
    [
        "a: " + "[" * 100_000 + "]" * 100_000,  # the C composer recurses: a segfault
        "a: " + "{a: " * 50_000 + "1" + "}" * 50_000,
        "a:\n" + "".join(" " * i + "- \n" for i in range(200)),
        "- " * 100_000 + "x\n",
    ],
    ids=["flow-seq", "flow-map", "block", "dashes"],
)
def test_deep_nesting_is_refused(text):
    assert "nested more than 64 levels" in _refused(text)


def test_recursive_and_too_many_aliases_are_refused():
    assert "does not refer to a complete anchor" in _refused("a: &a [*a]\n")
    many = "a: &a x\nb: [" + ",".join(["*a"] * 101) + "]\n"
    assert "more than 100 aliases" in _refused(many)


def test_size_and_node_count():
    assert "exceeds the limit of 1048576 bytes" in _refused("a: " + "x" * (1 << 20))
    assert "more than 100000 nodes refused" in _refused("[" + "1," * 150_000 + "1]")


def test_ordinary_documents_and_a_few_anchors_load():
    text = "base: &base {cpu: 1}\nx: *base\ny: *base\n"
    assert safeyaml.load(text) == {"base": {"cpu": 1}, "x": {"cpu": 1}, "y": {"cpu": 1}}
    assert safeyaml.load_all("a: 1\n---\nb: 2\n") == [{"a": 1}, {"b": 2}]
    anchors = "".join(f"k{i}: &a{i} v\n" for i in range(5000))  # anchors cost nothing
    check_limits(anchors)


def test_the_packaged_catalog_fits():
    from importlib import resources

    check_limits((resources.files("cis_tui.benchmarks") / "cis-1.12.yaml").read_text("utf-8"))


def test_deep_nesting_does_not_crash_the_interpreter():
    """Before the bounds, loading this killed Python with SIGSEGV (no traceback, no verdict)."""
    code = (
        "from cis_tui.audit.yamlcache import load_all_cached, YamlLimitError\n"
        "try:\n"
        "    load_all_cached('a: ' + '[' * 300000 + ']' * 300000)\n"
        "except YamlLimitError as exc:\n"
        "    print(exc)\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=False
    )
    assert done.returncode == 0, done.stderr[-500:]
    assert "nested more than 64 levels deep" in done.stdout
