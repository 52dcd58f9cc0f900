"""`cis-tui report` (issue 16): one self-contained HTML file or Markdown, with the change
history of the state directory; a kube-bench report and a fleet scan rendered too."""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

from cis_tui.audit.node import take_snapshot
from cis_tui.benchmarks.catalog import load_catalog
from cis_tui.engine.transaction import Engine
from cis_tui.layout import load_settings
from cis_tui.remediate.plan import build_plan
from tests.conftest import run_cli
from tests.reporting.htmlcheck import check_html

SCHEDULER = "etc/kubernetes/manifests/kube-scheduler.yaml"
HOSTILE = "    # </pre><script>alert('owned')</script> & <b>bold</b>\n"


def apply_offline(root: Path, *ids: str) -> int:
    """Fix checks in an offline tree with the engine (no health gate)."""
    settings = load_settings(root=root)
    catalog = load_catalog("cis-2.0")  # what a kubeadm v1.35 tree gets
    engine = Engine(settings, catalog, lambda event: None, health_gate=False)
    result = asyncio.run(engine.apply(build_plan(catalog, take_snapshot(settings), list(ids))))
    return result.exit_code


def plant_hostile_comment(root: Path) -> None:
    """A manifest comment written to break out of the report, next to the line 1.4.1 adds."""
    path = root / SCHEDULER
    text = path.read_text()
    anchor = "    - --leader-elect=true\n"
    assert anchor in text
    path.write_text(text.replace(anchor, anchor + HOSTILE, 1))


def hostile_report(capsys, root: Path, tmp_path: Path) -> Path:
    """The HTML report of *root* after a planted hostile comment and an applied fix."""
    plant_hostile_comment(root)
    assert apply_offline(root, "1.4.1") == 0
    out = tmp_path / "report.html"
    code, _out, err = run_cli(capsys, "--root", str(root), "report", "--output", str(out))
    assert code == 0, err
    return out


def all_ids(root: Path) -> list[str]:
    return [c.id for c in load_catalog("cis-2.0").checks]


def test_html_report_is_self_contained_and_escapes_the_node(capsys, kubeadm_node, tmp_path):
    out = hostile_report(capsys, kubeadm_node, tmp_path)
    assert os.stat(out).st_mode & 0o777 == 0o600
    document = out.read_text()
    text = check_html(document)  # well-formed, no script, nothing fetched
    assert "<script>" not in document and "&lt;script&gt;alert(" in document
    assert "</pre><script>" in text  # shown as text, in the diff of the transaction
    for check_id in all_ids(kubeadm_node):
        assert f'id="check-{check_id}"' in document
    assert "cis-2.0" in text and "Kubernetes v1.35.0" in text
    assert "1 transaction(s) recorded" in text and "COMMITTED" in text
    assert "+ - --profiling=false" in text  # the diff (whitespace collapsed)
    assert document.count("<svg") == 1 + 8  # all checks, then one chart per section


def test_markdown_report_escapes_and_fences(capsys, kubeadm_node):
    plant_hostile_comment(kubeadm_node)
    assert apply_offline(kubeadm_node, "1.4.1") == 0
    code, out, err = run_cli(capsys, "--root", str(kubeadm_node), "report", "--format", "markdown")
    assert code == 0, err
    assert out.startswith("# CIS Kubernetes Benchmark report: ")
    assert "```diff\n" in out and "+    - --profiling=false" in out
    before_fence = out.split("```diff", 1)[0]
    assert "<script>" not in before_fence  # outside code, HTML is escaped
    assert "| **FAIL** | 1.2.15 |" in out or "| **FAIL** |" in out
    assert "### 1.4 Scheduler" in out


def test_report_from_kube_bench_has_no_history(capsys, tmp_path):
    data = Path(__file__).parents[1] / "data" / "kube-bench"
    report = sorted(data.glob("*.json"))[0]
    code, out, err = run_cli(
        capsys, "--state-dir", str(tmp_path / "state"), "report", "--from-kube-bench", str(report)
    )
    assert code == 0, err
    text = check_html(out)
    assert "kube-bench report" in text
    assert "Not included: these results come from a kube-bench report." in text


def scan_doc(capsys, root: Path) -> dict:
    _code, out, _err = run_cli(capsys, "--root", str(root), "scan", "--format", "json")
    return json.loads(out)


def test_fleet_report_marks_the_checks_that_differ(capsys, tmp_path):
    from tests.nodetree import build_kubeadm_tree

    one, two = build_kubeadm_tree(tmp_path / "cp-1"), build_kubeadm_tree(tmp_path / "cp-2")
    assert apply_offline(one, "1.4.1") == 0  # cp-2 was missed
    fleet = tmp_path / "fleet.json"
    fleet.write_text(
        json.dumps({"nodes": {"cp-1": scan_doc(capsys, one), "cp-2<x>": scan_doc(capsys, two)}})
    )
    code, out, err = run_cli(capsys, "report", "--fleet", str(fleet))
    assert code == 0, err
    text = check_html(out)
    assert "cp-1" in text and "cp-2<x>" in text and "&lt;x&gt;" in out
    differences = text.split("Checks that differ between nodes", 1)[1].split("Every check")[0]
    assert "1.4.1" in differences
    assert "1.2.15" not in differences  # failing on both: the same

    code, out, _err = run_cli(capsys, "report", "--fleet", str(fleet), "--format", "markdown")
    assert code == 0 and "| 1.4.1 |" in out


@pytest.mark.parametrize(
    ("content", "problem"),
    [
        ("[]", "not a fleet scan"),
        ('{"nodes": {"cp-1": {"results": 3}}}', "node 'cp-1'"),
        ("not json", "not JSON"),
    ],
)
def test_a_bad_fleet_file_is_exit_2_in_one_line(capsys, tmp_path, content, problem):
    fleet = tmp_path / "fleet.json"
    fleet.write_text(content)
    code, out, err = run_cli(capsys, "report", "--fleet", str(fleet))
    assert code == 2 and out == ""
    assert err.count("\n") == 1 and problem in err and str(fleet) in err


def chromium() -> str | None:
    return next(
        (p for n in ("chromium", "chromium-browser", "google-chrome") if (p := shutil.which(n))),
        None,
    )


@pytest.mark.skipif(
    chromium() is None,
    reason="no chromium binary (Debian: apt-get install chromium; .ci/run installs it)",
)
def test_chromium_renders_every_check(capsys, kubeadm_node, tmp_path):
    out = hostile_report(capsys, kubeadm_node, tmp_path)
    out.chmod(0o644)  # chromium may run its renderer as another user
    profile = tempfile.mkdtemp(dir=tmp_path)
    done = subprocess.run(
        [
            chromium(),  # type: ignore[list-item]
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--no-first-run",
            f"--user-data-dir={profile}",
            "--dump-dom",
            out.as_uri(),
        ],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    dom = done.stdout
    rendered = check_html("<!DOCTYPE html>" + dom.split(">", 1)[1] if "<!" in dom[:20] else dom)
    for check_id in all_ids(kubeadm_node):
        assert check_id in rendered, check_id
    assert "<script>alert" not in dom  # the hostile comment stayed text after parsing
    assert "</pre><script>alert('owned')</script>" in rendered


def test_the_report_and_drift_never_load_the_ui():
    code = (
        "import sys; import cis_tui.reporting, cis_tui.drift, cis_tui.audit.waive, "
        "cis_tui.engine.history; assert 'textual' not in sys.modules, 'textual loaded'"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=False)
    assert done.returncode == 0, done.stderr
