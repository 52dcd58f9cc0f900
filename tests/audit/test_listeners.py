"""CIS 1.3.7 and 1.4.2 judged on every port the component's version serves, and fixed so that
the kubelet's probes keep reaching it (cis_tui.audit.listeners)."""

from __future__ import annotations

from pathlib import Path

import pytest

from cis_tui.audit.evaluate import Status, evaluate
from cis_tui.audit.node import take_snapshot
from cis_tui.benchmarks.catalog import load_catalog
from cis_tui.layout import load_settings
from cis_tui.remediate.plan import build_plan
from tests.realworld import materialize

CATALOG = load_catalog("cis-1.12")
KCM = "etc/kubernetes/manifests/kube-controller-manager.yaml"
SCHEDULER = "etc/kubernetes/manifests/kube-scheduler.yaml"


@pytest.fixture(scope="module")
def realworld(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return materialize(
        tmp_path_factory.mktemp("realworld"), "t01-kubeadm116", "t02-kubeadm111", "t09-hyperkube110"
    )


def verdicts(root: Path) -> dict[str, tuple[Status, str]]:
    snap = take_snapshot(load_settings(root=root), live=False)
    return {r.id: (r.status, r.reason) for r in evaluate(CATALOG, snap, ["1.3.7", "1.4.2"])}


def test_a_v1_16_node_serves_the_unauthenticated_port_on_every_interface(realworld):
    """kubeadm v1.16 set --bind-address=127.0.0.1 but not --port=0: 0.0.0.0:10252 and :10251
    still serve /metrics and /debug/pprof without authentication (kubeadm added --port=0 in
    1.19, kubernetes#92720)."""
    got = verdicts(realworld / "t01-kubeadm116")
    assert got["1.3.7"] == (
        Status.FAIL,
        "file: --bind-address=127.0.0.1 (:10257); --address absent: the unauthenticated port "
        "0.0.0.0:10252 (v1.16.2 serves it unless --port=0)",
    )
    assert got["1.4.2"][0] is Status.FAIL
    assert "0.0.0.0:10251" in got["1.4.2"][1]


def test_before_secure_serving_address_is_the_listener(realworld):
    """A v1.11 controller manager serves no secure port by default (--secure-port 0 until 1.12),
    the v1.11 scheduler has no --bind-address (1.13): the one port is on --address, which kubeadm
    set to 127.0.0.1; hyperkube v1.10 left it at 0.0.0.0."""
    got = verdicts(realworld / "t02-kubeadm111")
    assert got["1.3.7"][0] is Status.PASS
    assert got["1.3.7"][1].startswith("--address=127.0.0.1: the unauthenticated port 127.0.0.1")
    assert got["1.3.7"][1].endswith(
        "(kube-controller-manager v1.11.2 serves no secure port unless --secure-port is set)"
    )
    assert got["1.4.2"][0] is Status.PASS
    assert got["1.4.2"][1].endswith(
        "(kube-scheduler v1.11.2 has no --bind-address: --address is its listener)"
    )
    hyperkube = verdicts(realworld / "t09-hyperkube110")
    assert hyperkube["1.3.7"][0] is Status.FAIL
    assert hyperkube["1.4.2"][0] is Status.FAIL


def test_port_zero_turns_the_unauthenticated_port_off(realworld, tmp_path):
    root = materialize(tmp_path, "t01-kubeadm116") / "t01-kubeadm116"
    for rel in (KCM, SCHEDULER):
        path = root / rel
        path.write_text(
            path.read_text().replace(
                "    - --bind-address=127.0.0.1\n",
                "    - --bind-address=127.0.0.1\n    - --port=0\n",
            )
        )
    got = verdicts(root)
    assert got["1.3.7"] == (Status.PASS, "--bind-address=127.0.0.1 (:10257)")
    assert got["1.4.2"] == (Status.PASS, "--bind-address=127.0.0.1 (:10259)")


def plan_for(root: Path, *ids: str):
    snap = take_snapshot(load_settings(root=root), live=False)
    return build_plan(CATALOG, snap, list(ids), {})


def test_the_fix_sets_the_address_the_version_serves_on(realworld):
    """v1.16: --address=127.0.0.1 (kubeadm's HTTP probe of 127.0.0.1:10252 keeps working, as it
    would not with --port=0); v1.10 has no --bind-address, so only --address is set."""
    for tree in ("t01-kubeadm116", "t09-hyperkube110"):
        plan = plan_for(realworld / tree, "1.3.7", "1.4.2")
        assert not plan.skipped, plan.skipped
        assert len(plan.files) == 2
        for change in plan.files:
            assert change.old_text is not None and change.new_text is not None
            old, new = change.old_text.splitlines(), change.new_text.splitlines()
            added = [line for line in new if line not in old]
            assert added == ["    - --address=127.0.0.1"], (tree, added)
            assert [line for line in old if line not in new] == []


def test_a_probe_of_the_pod_ip_stops_the_fix(realworld, tmp_path):
    """Without `host:` the kubelet probes the pod IP (the node's address on hostNetwork): a
    listener moved to 127.0.0.1 would fail it and the kubelet would restart the component."""
    root = materialize(tmp_path, "t09-hyperkube110") / "t09-hyperkube110"
    path = root / KCM
    path.write_text(path.read_text().replace("        host: 127.0.0.1\n", "", 1))
    plan = plan_for(root, "1.3.7")
    assert not plan.files
    assert plan.skipped[0].reason.startswith(
        "the livenessProbe reaches :10252 on the pod IP (no host: given); with "
        "--address=127.0.0.1 it would fail"
    )
