"""Which benchmark a node gets: the one given, else kube-bench's mapping of its Kubernetes minor.

Pure data and arithmetic; the node's version is read by cis_tui.audit.versions.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from importlib import resources

#: The catalog used when neither an option nor the node decides (no version could be read).
DEFAULT_BENCHMARK = "cis-1.12"


@dataclass(frozen=True)
class BenchmarkChoice:
    """The benchmark used, why (JSON `benchmark_chosen_by`), and a warning to show if any."""

    benchmark: str
    chosen_by: str
    warning: str | None = None


@functools.cache
def kubernetes_mapping() -> dict[tuple[int, int], str]:
    """Kubernetes (major, minor) -> benchmark, from kubernetes.tsv."""
    text = (resources.files("cis_tui.benchmarks") / "kubernetes.tsv").read_text("utf-8")
    mapping: dict[tuple[int, int], str] = {}
    for line in text.splitlines():
        if not line.strip() or line.startswith(("#", "kubernetes\t")):
            continue
        minor, benchmark = line.split("\t")[:2]
        major_text, minor_text = minor.split(".")
        mapping[(int(major_text), int(minor_text))] = benchmark.strip()
    return mapping


def shipped_benchmarks() -> tuple[str, ...]:
    """Every benchmark the package ships, oldest first."""
    names = {
        p.name[: -len(".yaml")]
        for p in resources.files("cis_tui.benchmarks").iterdir()
        if p.name.startswith("cis-") and p.name.endswith(".yaml")
    }
    return tuple(sorted(names, key=_order))


def _order(name: str) -> tuple[int, ...]:
    return tuple(int(p) for p in name.removeprefix("cis-").split(".") if p.isdigit())


def choose_benchmark(
    given: str | None,
    given_by: str,
    kubernetes: tuple[int, int] | None,
    version_text: str = "",
    version_source: str = "",
) -> BenchmarkChoice:
    """The benchmark for a node: `given` wins (`given_by` says where it came from); else the
    mapping of the node's Kubernetes (major, minor), shown as `version_text` read from
    `version_source`."""
    if given:
        return BenchmarkChoice(given, given_by or "--benchmark")
    if kubernetes is None:
        return BenchmarkChoice(
            DEFAULT_BENCHMARK,
            f"default: the node's Kubernetes version is unknown ({version_source}); pass "
            "--benchmark or set [versions] kubernetes in the config file",
        )
    mapping = kubernetes_mapping()
    read = f"Kubernetes {version_text} ({version_source})"
    if kubernetes in mapping:
        benchmark = mapping[kubernetes]
        return BenchmarkChoice(benchmark, f"{read}: kube-bench maps {_minor(kubernetes)} to it")
    newest, oldest = max(mapping), min(mapping)
    if kubernetes > newest:
        benchmark = mapping[newest]
        return BenchmarkChoice(
            benchmark,
            f"{read}: newer than every mapped version; the newest benchmark, as kube-bench "
            f"maps it ({_minor(newest)})",
        )
    benchmark = mapping[oldest]
    return BenchmarkChoice(
        benchmark,
        f"{read}: older than every shipped benchmark; the oldest, {benchmark} "
        f"(made for {_minor(oldest)})",
        f"Kubernetes {version_text} is older than every shipped benchmark; using the oldest, "
        f"{benchmark} (for Kubernetes {_minor(oldest)}): checks whose flags the version lacks "
        "are SKIP",
    )


def _minor(version: tuple[int, int]) -> str:
    return f"{version[0]}.{version[1]}"
