"""Alias bombs and deep nesting in manifests, kubelet configs and plan files (issue 11 item 10).

Each command runs in a child process under RLIMIT_AS, so that a regression fails the test (a
MemoryError, a segfault) instead of eating the machine; the child measures the command's own
time and the growth of its peak RSS.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from tests.nodetree import write

LIMIT_BYTES = 1 << 30  # address space for the child: the bomb took 3 GB before the bounds

CHILD = """
import contextlib, io, json, resource, sys, time
limit = int(sys.argv[1])
resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
import ruamel.yaml, cis_tui.cli, cis_tui.audit.node, cis_tui.remediate.plan  # not measured
before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
out, err = io.StringIO(), io.StringIO()
started = time.perf_counter()
with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
    code = cis_tui.cli.main(json.loads(sys.argv[2]))
seconds = time.perf_counter() - started
grown = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before
print(json.dumps({"code": code, "seconds": seconds, "grown_kb": grown,
                  "out": out.getvalue(), "err": err.getvalue()}))
"""

LAUGHS = '  a: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]\n' + "".join(
    f"  {c}: &{c} [" + ",".join([f"*{p}"] * 9) + "]\n"
    for p, c in zip("abcdefgh", "bcdefghi", strict=True)
)


def bounded_cli(*argv: str) -> dict:
    """Run `cis-tui ARGV` in a child limited to LIMIT_BYTES; its exit code, output, cost."""
    done = subprocess.run(
        [sys.executable, "-c", CHILD, str(LIMIT_BYTES), json.dumps(list(argv))],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, f"child died ({done.returncode}): {done.stderr[-800:]}"
    result = json.loads(done.stdout)
    assert "Traceback" not in result["err"], result["err"]
    assert result["seconds"] < 1.0, result["seconds"]
    assert result["grown_kb"] < 50 * 1024, result["grown_kb"]  # tens of MB at most
    return result


def bomb_manifest(node: Path, component: str = "kube-apiserver") -> Path:
    path = node / f"etc/kubernetes/manifests/{component}.yaml"
    text = path.read_text()
    bombed = text.replace("metadata:\n", "metadata:\n  labels:\n" + LAUGHS.replace("  ", "    "))
    assert bombed != text
    return write(path, bombed, 0o600)


def results(doc_text: str) -> dict[str, dict]:
    return {r["id"]: r for r in json.loads(doc_text)["results"]}


def test_a_bomb_in_a_manifest_is_an_error_verdict(kubeadm_node):
    path = bomb_manifest(kubeadm_node)
    run = bounded_cli("--root", str(kubeadm_node), "scan", "--format", "json")
    assert run["code"] == 1
    got = results(run["out"])
    for check_id in ("1.2.1", "1.2.15", "1.2.16"):
        assert got[check_id]["status"] == "ERROR"
        reason = got[check_id]["reason"]
        assert reason.startswith(f"{path}: manifest refused: ")
        assert "alias bomb" in reason
    assert got["1.1.1"]["status"] == "PASS"  # its mode is still judged
    assert got["1.4.1"]["status"] == "FAIL"  # other manifests are unaffected


def test_a_bomb_in_the_kubelet_config_is_an_error_verdict(kubeadm_node):
    path = kubeadm_node / "var/lib/kubelet/config.yaml"
    write(path, path.read_text() + "bomb:\n" + LAUGHS, 0o644)
    run = bounded_cli("--root", str(kubeadm_node), "scan", "--format", "json")
    got = results(run["out"])
    for check_id in ("4.2.1", "4.2.2", "4.2.12"):
        assert got[check_id]["status"] == "ERROR"
        assert got[check_id]["reason"].startswith(f"{path}: kubelet config refused: ")
        assert "alias bomb" in got[check_id]["reason"]


def test_deep_nesting_in_a_manifest_is_an_error_verdict(kubeadm_node):
    """Before the bounds, libyaml's recursive composer crashed the process (SIGSEGV)."""
    path = kubeadm_node / "etc/kubernetes/manifests/kube-scheduler.yaml"
    text = path.read_text()
    write(path, text + "x: " + "[" * 200_000 + "]" * 200_000 + "\n", 0o600)
    run = bounded_cli("--root", str(kubeadm_node), "scan", "--check", "1.4.1", "--format", "json")
    reason = results(run["out"])["1.4.1"]["reason"]
    line = text.count("\n") + 1
    assert reason == f"{path}: manifest refused: YAML nested more than 64 levels deep (line {line})"


def test_planning_a_check_of_a_bombed_manifest_exits_1_and_says_why(kubeadm_node):
    path = bomb_manifest(kubeadm_node)
    original = path.read_bytes()
    run = bounded_cli("--root", str(kubeadm_node), "plan", "1.2.15")
    assert run["code"] == 1
    assert "not planned: 1.2.15: ERROR: the check cannot be evaluated" in run["out"]
    assert "alias bomb" in run["out"]
    assert path.read_bytes() == original


@pytest.mark.parametrize("where", ["params", "checks", "benchmark"])
def test_a_bomb_plan_file_is_exit_2_in_one_line(kubeadm_node, tmp_path, where):
    plan = tmp_path / "plan.yaml"
    fields = {"benchmark": "cis-1.12", "checks": '["1.2.15"]', "params": "{}"}
    fields[where] = "*i"
    plan.write_text(
        "apiVersion: cis-tui/v1\nkind: Plan\nbomb:\n"
        + LAUGHS
        + "".join(f"{k}: {v}\n" for k, v in fields.items())
        + "checksum: sha256:0\n"
    )
    manifest = kubeadm_node / "etc/kubernetes/manifests/kube-apiserver.yaml"
    original = manifest.read_bytes()
    run = bounded_cli(
        "--root", str(kubeadm_node), "apply", "--plan", str(plan), "--yes", "--no-health-gate"
    )
    assert run["code"] == 2
    assert run["err"].count("\n") == 1
    assert run["err"].startswith(f"cis-tui: error: {plan}: plan file refused: YAML aliases")
    assert manifest.read_bytes() == original


def test_plan_parameters_are_read_only_after_the_checksum_holds(kubeadm_node, tmp_path, capsys):
    """cis-tui writes every parameter as a string: a value of another type is refused as
    tampering, never converted first (converting a bomb was where the memory went)."""
    from tests.conftest import run_cli

    plan = tmp_path / "plan.yaml"
    code, _, err = run_cli(
        capsys, "--root", str(kubeadm_node), "plan", "1.2.17", "--param", "1.2.17.maxage=45",
        "--save", str(plan),
    )  # fmt: skip
    assert code == 0, err
    text = plan.read_text()
    assert 'maxage: "45"' in text
    plan.write_text(text.replace('maxage: "45"', "maxage: 45"))  # str(45) matches the checksum
    manifest = kubeadm_node / "etc/kubernetes/manifests/kube-apiserver.yaml"
    original = manifest.read_bytes()
    code, _, err = run_cli(
        capsys, "--root", str(kubeadm_node), "apply", "--plan", str(plan), "--yes",
        "--no-health-gate",
    )  # fmt: skip
    assert code == 2
    assert (
        err == f"cis-tui: error: {plan}: plan was modified after it was saved (checksum mismatch)\n"
    )
    assert manifest.read_bytes() == original


def test_an_oversized_plan_file_is_refused_without_reading_it_all(kubeadm_node, tmp_path):
    plan = tmp_path / "plan.yaml"
    with plan.open("w") as fh:
        fh.write("apiVersion: cis-tui/v1\nkind: Plan\n# " + "x" * (2 << 20) + "\n")
    run = bounded_cli("--root", str(kubeadm_node), "apply", "--plan", str(plan), "--yes")
    assert run["code"] == 2
    assert run["err"] == f"cis-tui: error: {plan}: plan file is larger than 1048576 bytes\n"


def test_an_oversized_or_deep_kube_bench_report_is_exit_2(tmp_path):
    big = tmp_path / "big.json"
    with big.open("w") as fh:
        fh.write('{"Controls": [], "pad": "' + "x" * (17 << 20) + '"}')
    run = bounded_cli("scan", "--from-kube-bench", str(big))
    assert run["code"] == 2
    assert "kube-bench report is larger than" in run["err"]
    deep = tmp_path / "deep.json"
    deep.write_text("[" * 100_000 + "]" * 100_000)
    run = bounded_cli("scan", "--from-kube-bench", str(deep))
    assert run["code"] == 2
    assert run["err"] == f"cis-tui: error: {deep}: kube-bench report is nested too deeply\n"
