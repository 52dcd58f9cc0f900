"""Issue 15 end to end: ansible/rollout.yml over three sandbox control-plane nodes on this
machine (local connection, each with its own cis-tui config, tree and state dir).

One plan with 1.2.15 and 1.2.27 rolled node by node: check mode changes nothing; the rollout
leaves every node running the new flags with a byte-identical encryption configuration; a
second run changes nothing. A node whose change fails (the sandbox's fault injection) stops the
rollout there: the node before it stays committed, the one after it is untouched.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from cis_tui.sandbox.harness import SandboxRun
from cis_tui.sandbox.settings import Fault
from tests.e2e.conftest import FAST_HEALTH, SandboxFactory, sandbox_factory  # noqa: F401

REPO = Path(__file__).resolve().parents[2]
PLAYBOOK = REPO / "ansible" / "rollout.yml"
ENC = "etc/kubernetes/enc/encryption-config.yaml"


def _ansible_playbook() -> str | None:
    beside = Path(sys.executable).parent / "ansible-playbook"
    return str(beside) if beside.exists() else shutil.which("ansible-playbook")


ANSIBLE_PLAYBOOK = _ansible_playbook()
pytestmark = pytest.mark.skipif(
    ANSIBLE_PLAYBOOK is None,
    reason="ansible-playbook is not installed (pip install ansible-core, in the [test] extras)",
)


class Fleet:
    """Three sandbox nodes as the inventory group control_plane, and a controller dir."""

    def __init__(self, runs: list[SandboxRun], work: Path) -> None:
        self.runs = runs
        self.work = work
        self.reports = work / "reports"
        self.names = [f"node{n}" for n in range(1, len(runs) + 1)]
        inventory = {
            "control_plane": {
                "hosts": {
                    name: {
                        "ansible_connection": "local",
                        "ansible_python_interpreter": sys.executable,
                        "cis_tui_config": str(run.config),
                    }
                    for name, run in zip(self.names, runs, strict=True)
                },
                "vars": {
                    "cis_tui_command": f"{sys.executable} -m cis_tui",
                    "ansible_pipelining": True,
                },
            }
        }
        self.inventory = work / "inventory.json"
        self.inventory.write_text(json.dumps(inventory))

    def cis_tui(self, node: int, *args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "cis_tui", "--config", str(self.runs[node].config), *args],
            capture_output=True,
            text=True,
            timeout=120,
        )

    def playbook(self, *args: str, **extra: str) -> subprocess.CompletedProcess[str]:
        env = {
            **os.environ,
            "ANSIBLE_NOCOLOR": "1",
            "ANSIBLE_FORCE_COLOR": "0",
            "ANSIBLE_LOCAL_TEMP": str(self.work / "ansible-local"),
            "ANSIBLE_REMOTE_TEMP": str(self.work / "ansible-remote"),
            "ANSIBLE_RETRY_FILES_ENABLED": "0",
            "ANSIBLE_PYTHON_INTERPRETER": sys.executable,
        }
        variables = {"cis_tui_report_dir": str(self.reports), **extra}
        command = [ANSIBLE_PLAYBOOK or "", "-i", str(self.inventory), str(PLAYBOOK), *args]
        command += ["-e", json.dumps(variables)]
        return subprocess.run(
            command, cwd=self.work, env=env, capture_output=True, text=True, timeout=300
        )

    def report(self, name: str = "fleet-report") -> tuple[dict, str]:
        return (
            json.loads((self.reports / f"{name}.json").read_text()),
            (self.reports / f"{name}.txt").read_text(),
        )

    def manifests(self) -> list[bytes]:
        return [r.paths.manifest("kube-apiserver").read_bytes() for r in self.runs]

    def backups(self, node: int) -> list[dict]:
        """The node's backups of its API server manifest (not of kubeadm's configuration)."""
        out = self.cis_tui(node, "backups", "list", "--format", "json")
        assert out.returncode == 0, out.stderr
        return [b for b in json.loads(out.stdout) if b["path"].endswith("kube-apiserver.yaml")]


def recap(output: str) -> dict[str, dict[str, int]]:
    """PLAY RECAP counters per host (the last recap line of each host)."""
    found = {}
    for host, counters in re.findall(r"^(\S+)\s+:\s+(ok=.*)$", output, re.M):
        found[host] = {k: int(v) for k, v in re.findall(r"(\w+)=(\d+)", counters)}
    return found


def make_fleet(factory: SandboxFactory, work: Path, faults: dict[int, Fault] | None = None):
    runs = [factory(faults=[faults[n]] if faults and n in faults else []) for n in range(3)]
    for run in runs:
        run.config.write_text(run.config.read_text() + FAST_HEALTH)
    work.mkdir()
    return Fleet(runs, work)


def test_rollout_check_mode_full_rollout_second_run_and_fleet_scan(
    sandbox_factory: SandboxFactory,  # noqa: F811
    tmp_path: Path,
) -> None:
    fleet = make_fleet(sandbox_factory, tmp_path / "controller")
    plan, bundle = fleet.work / "plan.yaml", fleet.work / "bundle"
    saved = fleet.cis_tui(
        0, "plan", "1.2.15", "1.2.27", "--save", str(plan), "--companions", str(bundle)
    )
    assert saved.returncode == 0, saved.stdout + saved.stderr
    key = (bundle / "encryption-config.yaml").read_bytes()
    variables = {"cis_tui_plan": str(plan), "cis_tui_companions": str(bundle)}
    before = fleet.manifests()
    pids = [run.pid_of("kube-apiserver") for run in fleet.runs]

    # Check mode with --diff: each node's plan diff, nothing changed anywhere.
    checked = fleet.playbook("--check", "--diff", **variables)
    assert checked.returncode == 0, checked.stdout + checked.stderr
    assert checked.stdout.count("+    - --profiling=false") == 3
    assert checked.stdout.count("holds the key of the companion bundle's") == 3
    assert fleet.manifests() == before
    assert [run.pid_of("kube-apiserver") for run in fleet.runs] == pids
    for n, run in enumerate(fleet.runs):
        assert not (run.dir / ENC).exists()
        assert fleet.backups(n) == []
    report, table = fleet.report()
    assert report["check_mode"] and report["status"] == "complete"
    assert [n["outcome"] for n in report["nodes"]] == ["would-change"] * 3
    assert "check mode: nothing was changed" in table

    # The rollout: every node runs the new flags with the same key.
    rolled = fleet.playbook(**variables)
    assert rolled.returncode == 0, rolled.stdout + rolled.stderr
    assert {h: c["changed"] for h, c in recap(rolled.stdout).items()} == dict.fromkeys(
        fleet.names, 1
    )
    for run in fleet.runs:
        args = run.args_of("kube-apiserver")
        assert "--profiling=false" in args
        assert f"--encryption-provider-config={run.dir / ENC}" in args
        assert (run.dir / ENC).read_bytes() == key
        assert (run.dir / ENC).stat().st_mode & 0o777 == 0o600
    report, table = fleet.report()
    assert report["status"] == "complete" and not report["check_mode"]
    for n, node in enumerate(report["nodes"]):
        assert node["node"] == fleet.names[n]
        assert node["outcome"] == "committed" and node["checks_fixed"] == ["1.2.15", "1.2.27"]
        assert [b["id"] for b in fleet.backups(n)] == node["backups"]
        assert node["failures"] == []
        assert re.search(rf"^{node['node']}\s+committed\s+1\.2\.15, 1\.2\.27\s+\S+", table, re.M)

    # Again: every node already passes, nothing changes and Ansible says so.
    again = fleet.playbook(**variables)
    assert again.returncode == 0, again.stdout + again.stderr
    assert {h: c["changed"] for h, c in recap(again.stdout).items()} == dict.fromkeys(
        fleet.names, 0
    )
    report, _ = fleet.report()
    assert [n["outcome"] for n in report["nodes"]] == ["unchanged"] * 3
    assert [len(fleet.backups(n)) for n in range(3)] == [1, 1, 1]

    # Fleet scan: one file of every node's scan, one table; the nodes agree.
    scanned = fleet.playbook("--tags", "scan")
    assert scanned.returncode == 0, scanned.stdout + scanned.stderr
    doc, table = fleet.report("fleet-scan")
    assert list(doc) == ["nodes"] and list(doc["nodes"]) == fleet.names
    for name in fleet.names:
        by_id = {r["id"]: r["status"] for r in doc["nodes"][name]["results"]}
        assert by_id["1.2.15"] == by_id["1.2.27"] == "PASS"
    assert "every node scans the same" in table
    digest = hashlib.sha256(key).hexdigest()[:12]
    assert re.search(
        rf"^--encryption-provider-config file\s+{digest}\s+{digest}\s+{digest}$", table, re.M
    )


def test_a_failing_second_node_stops_the_rollout_there(
    sandbox_factory: SandboxFactory,  # noqa: F811
    tmp_path: Path,
) -> None:
    # node2's API server never answers healthy with the new flag: its health gate fails.
    fault = Fault(component="kube-apiserver", argv_contains="--profiling=false", never_ready=True)
    fleet = make_fleet(sandbox_factory, tmp_path / "controller", {1: fault})
    plan = fleet.work / "plan.yaml"
    saved = fleet.cis_tui(0, "plan", "1.2.15", "--save", str(plan))
    assert saved.returncode == 0, saved.stdout + saved.stderr
    before = fleet.manifests()
    third_pid = fleet.runs[2].pid_of("kube-apiserver")

    rolled = fleet.playbook(cis_tui_plan=str(plan), cis_tui_timeout="6")
    assert rolled.returncode != 0, rolled.stdout
    counters = recap(rolled.stdout)
    assert counters["node1"]["failed"] == 0 and counters["node2"]["failed"] == 1
    assert "node3" not in counters or counters["node3"]["ok"] == 0
    # node1 committed, node2 rolled back to its original bytes, node3 untouched.
    assert "--profiling=false" in fleet.runs[0].args_of("kube-apiserver")
    assert fleet.manifests()[1:] == before[1:]
    assert "--profiling=false" not in fleet.runs[1].args_of("kube-apiserver")
    assert [b["outcome"] for b in fleet.backups(1)] == ["rolled-back"]
    assert fleet.backups(2) == []
    assert fleet.runs[2].pid_of("kube-apiserver") == third_pid

    report, table = fleet.report()
    assert report["status"] == "stopped at node2" and report["stopped_at"] == "node2"
    node1, node2, node3 = report["nodes"]
    assert node1["outcome"] == "committed" and node1["checks_fixed"] == ["1.2.15"]
    assert node2["outcome"] == "rolled-back" and node2["checks_fixed"] == []
    assert node2["backups"] == [fleet.backups(1)[0]["id"]]
    assert any("kube-apiserver: rolled-back: rolled back:" in f for f in node2["failures"])
    assert node3["outcome"] == "not reached" and node3["backups"] == []
    assert re.search(r"^node3\s+not reached\s+-\s+-\s+-$", table, re.M)
    assert "The rollout stopped at node2" in table

    # The fleet scan points at the node that differs.
    scanned = fleet.playbook("--tags", "scan")
    assert scanned.returncode == 0, scanned.stdout + scanned.stderr
    _, table = fleet.report("fleet-scan")
    assert "1.2.15: node1 PASS, node2 FAIL, node3 FAIL" in table
    assert re.search(r"^1\.2\.15\s+PASS\s+FAIL\s+FAIL\s+<- differs$", table, re.M)
