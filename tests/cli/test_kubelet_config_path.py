"""The kubelet config file its --config names is the one scanned, planned, applied, backed up
and restored (issue 13 item 1): t08 runs its kubelet with --config
/etc/kubernetes/kubelet.conf.yaml, named in kubeadm-flags.env, not /var/lib/kubelet/config.yaml."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.conftest import run_cli, scan_json
from tests.realworld import materialize

TREE = "t08-homekube128-args"
CONFIG = "etc/kubernetes/kubelet.conf.yaml"


@pytest.fixture
def node(tmp_path: Path) -> Path:
    return materialize(tmp_path / "trees", TREE) / TREE


def test_the_named_config_is_judged_planned_applied_and_restored(capsys, node, tmp_path):
    state = tmp_path / "state"
    state.mkdir(mode=0o700)
    config = node / CONFIG
    before = config.read_bytes()
    doc = scan_json(capsys, node, "--check", "4.1.9,4.2.10")
    assert doc["node"]["kubelet_config"] == str(config)
    assert {r["id"]: r["status"] for r in doc["results"]} == {"4.1.9": "FAIL", "4.2.10": "FAIL"}

    common = ("--root", str(node), "--state-dir", str(state))
    code, out, err = run_cli(
        capsys, *common, "apply", "--yes", "--no-health-gate", "4.1.9", "4.2.10"
    )
    assert code == 0, out + err
    assert not (node / "var/lib/kubelet/config.yaml").exists()  # never created beside it
    assert config.read_bytes() == before + b"rotateCertificates: true\n"
    assert config.stat().st_mode & 0o777 == 0o600
    doc = scan_json(capsys, node, "--check", "4.1.9,4.2.10")
    assert {r["id"]: r["status"] for r in doc["results"]} == {"4.1.9": "PASS", "4.2.10": "PASS"}

    code, out, _ = run_cli(capsys, *common, "backups", "list", "--format", "json")
    kubelet = [b for b in json.loads(out) if b["component"] == "kubelet"]
    assert kubelet and kubelet[0]["path"] == str(config)
    code, out, err = run_cli(
        capsys, *common, "backups", "restore", kubelet[0]["id"], "--yes", "--no-health-gate"
    )
    assert code == 0, out + err
    assert config.read_bytes() == before
