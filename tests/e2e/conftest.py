"""Sandbox nodes for end-to-end tests: a real agent, real processes, real TLS on loopback.

- `sandbox_factory(scenario="default", *, etcd="auto", ready_delay=None, faults=(),
  start=True, **agent)` creates a sandbox in a fresh temporary directory, writes its
  sandbox.toml (fast readiness delays unless given) and starts the agent, returning a
  `SandboxRun` once every component answered healthy. Every sandbox is stopped at teardown,
  which asserts the agent exited 0 and left no process behind.
- `sandbox_node`: one default sandbox, started and healthy.

A `SandboxRun` has `.dir`, `.config` (DIR/cis-tui.toml), `.paths`, `events(...)`,
`wait_healthy(component, since=...)`, `wait_event(component, event, since=...)`,
`wait_for(predicate)`, `pid_of(component)`, `args_of(component)`, `processes(component)`,
`restart_kubelet()`, `stop()`, `kill()` and `wait_no_processes()`.
"""

from __future__ import annotations

import shutil
from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import Any

import pytest

from cis_tui.sandbox import create_sandbox
from cis_tui.sandbox.harness import SandboxRun
from cis_tui.sandbox.paths import COMPONENTS
from cis_tui.sandbox.settings import Fault, update_sandbox_settings

#: Readiness delays for tests: fast, but not zero, so "started" and "healthy" differ.
FAST_READY: Mapping[str, float] = {c: 0.05 for c in COMPONENTS}
#: Short crash-loop back-off for tests (the defaults are 1 s doubling up to 10 s).
FAST_AGENT: Mapping[str, Any] = {"backoff_initial_seconds": 0.2, "backoff_max_seconds": 1.0}
#: A [health] table for configs of e2e runs: a short stability window, fast polling.
FAST_HEALTH = """
[health]
stable_successes = 2
stable_seconds = 0.3
poll_initial = 0.05
poll_max = 0.2
"""

needs_etcd = pytest.mark.skipif(
    shutil.which("etcd") is None,
    reason="the etcd binary is not installed (Debian: apt-get install etcd-server)",
)

SandboxFactory = Callable[..., SandboxRun]


@pytest.fixture
def sandbox_factory(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SandboxFactory]:
    runs: list[SandboxRun] = []

    def make(
        scenario: str = "default",
        *,
        etcd: str = "auto",
        ready_delay: Mapping[str, float] | None = None,
        faults: Sequence[Fault] = (),
        start: bool = True,
        timeout: float = 30.0,
        **agent: Any,
    ) -> SandboxRun:
        directory = tmp_path_factory.mktemp("node")
        create_sandbox(directory, scenario, etcd=etcd, reuse_keys=True)
        update_sandbox_settings(
            directory,
            ready_delay={**FAST_READY, **(ready_delay or {})},
            faults=faults,
            **{**FAST_AGENT, **agent},
        )
        run = SandboxRun.start(directory, wait=start, timeout=timeout)
        runs.append(run)
        return run

    yield make
    problems = []
    for run in runs:
        code = run.stop()
        if code not in (0, -9):  # -9: a test killed the agent on purpose
            problems.append(f"{run.dir}: agent exited {code}")
        try:
            run.wait_no_processes()
        except AssertionError as exc:
            problems.append(str(exc))
    assert not problems, "\n".join(problems)


@pytest.fixture
def sandbox_node(sandbox_factory: SandboxFactory) -> SandboxRun:
    """A default sandbox node with every component healthy."""
    return sandbox_factory()
