"""Which checks the checks table shows, in what order, and which of them can be selected."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace

from cis_tui.audit.evaluate import STATUS_ORDER, Result, Status

FAILING = frozenset({Status.FAIL, Status.ERROR, Status.WARN})

#: The order in which the component filter cycles.
COMPONENT_ORDER = (
    "kube-apiserver",
    "kube-controller-manager",
    "kube-scheduler",
    "etcd",
    "kubelet",
    "kube-proxy",
    "node",
)


@dataclass(frozen=True)
class Filters:
    """The checks screen's filters; the default shows every check."""

    failing_only: bool = False
    component: str | None = None
    scored_only: bool = False
    search: str = ""

    def matches(self, result: Result) -> bool:
        check = result.check
        if self.failing_only and result.status not in FAILING:
            return False
        if self.component is not None and check.component != self.component:
            return False
        if self.scored_only and not check.scored:
            return False
        needle = self.search.strip().lower()
        return not needle or needle in check.id.lower() or needle in check.title.lower()

    def next_component(self, results: Iterable[Result]) -> Filters:
        """The filter with the next component present in the results (after the last: all)."""
        present = {r.check.component for r in results}
        cycle: list[str | None] = [None, *(c for c in COMPONENT_ORDER if c in present)]
        position = cycle.index(self.component) if self.component in cycle else 0
        return replace(self, component=cycle[(position + 1) % len(cycle)])


def sort_results(results: Sequence[Result]) -> list[Result]:
    """Failing first (FAIL, ERROR, WARN, then PASS, SKIP), catalog order within a status."""
    position = {r.id: i for i, r in enumerate(results)}
    return sorted(results, key=lambda r: (STATUS_ORDER[r.status], position[r.id]))


def visible(results: Sequence[Result], filters: Filters) -> list[Result]:
    return [r for r in sort_results(results) if filters.matches(r)]


def why_not_selectable(result: Result) -> str | None:
    """None when the check can be selected for a plan, else the reason in a few words."""
    remediation = result.check.remediation
    if not remediation.available:
        return f"{result.id} has no mechanical fix: {remediation.summary}"
    if result.status is Status.PASS:
        return f"{result.id} already passes"
    if result.status is Status.SKIP:
        return f"{result.id} does not apply to this node: {result.reason}"
    if result.status is Status.WAIVED:  # an accepted exception is never fixed
        return f"{result.id} is {result.reason}"
    return None
