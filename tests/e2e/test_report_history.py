"""The auditor's report of a live sandbox node after a committed apply and a rolled-back one
(issue 16): both transactions, with their diffs, the PIDs before and after the restart, the
health gate's probes, the audit re-check and the outcome."""

from __future__ import annotations

import asyncio

from cis_tui.cli import main
from cis_tui.engine.events import Event
from tests.e2e.test_engine import add_flag, catalog_plan, engine_for, fast, hand_plan
from tests.reporting.htmlcheck import check_html

HOSTILE = "    # <script>alert('from a manifest')</script>\n"


def hostile_and_refused(text: str) -> str:
    """A change the scheduler refuses (so it is rolled back), with a hostile comment."""
    return add_flag("--no-such-flag=1")(text).replace(
        "    - --no-such-flag=1\n", "    - --no-such-flag=1\n" + HOSTILE, 1
    )


def test_report_holds_a_committed_and_a_rolled_back_transaction(sandbox_node, tmp_path, capsys):
    run = sandbox_node
    first_pid = run.pid_of("kube-scheduler")
    events: list[Event] = []
    committed = asyncio.run(engine_for(run, events).apply(catalog_plan(run, "1.4.1")))
    assert committed.exit_code == 0, [f.message for f in committed.files]
    second_pid = run.pid_of("kube-scheduler")
    refused = hand_plan(run, "kube-scheduler", hostile_and_refused)
    rolled = asyncio.run(engine_for(run, events, timeout=8).apply(refused))
    assert rolled.exit_code == 1
    assert rolled.files[0].outcome.value == "rolled-back"

    html_path, md_path = tmp_path / "report.html", tmp_path / "report.md"
    config = str(fast(run))
    assert main(["--config", config, "report", "--output", str(html_path)]) == 0
    assert (
        main(["--config", config, "report", "--format", "markdown", "--output", str(md_path)]) == 0
    )
    capsys.readouterr()

    document = html_path.read_text()
    text = check_html(document)
    assert "2 transaction(s) recorded" in text
    assert "COMMITTED" in text and "ROLLED-BACK" in text
    # the PIDs: the committed change restarted first_pid into second_pid
    assert f"{first_pid} → {second_pid}" in text
    # the rolled-back change started from second_pid
    assert f"{second_pid} → " in text.split("ROLLED-BACK", 1)[1] or f"{second_pid} →" in text
    # both diffs
    assert "+ - --profiling=false" in text
    assert "+ - --no-such-flag=1" in text
    # the hostile comment is text in the diff, never a tag
    assert "<script>" not in document
    assert "&lt;script&gt;alert(&#x27;from a manifest&#x27;)&lt;/script&gt;" in document
    # the committed change's health gate and audit re-check
    assert "healthy" in text and "probes" in text and "probe latency min" in text
    assert "pass: 1.4.1 PASS" in text
    assert "Rolled back because" in text

    markdown = md_path.read_text()
    assert "COMMITTED" in markdown and "ROLLED-BACK" in markdown
    assert f"{first_pid} → {second_pid}" in markdown
    assert "+    - --no-such-flag=1" in markdown  # inside the diff fence
    assert markdown.split("```diff")[0].count("<script>") == 0
