"""A component manifest the kubelet refuses to run (it validates static pods as the API server
validates Pods): reported as a finding, and never edited by a plan (issue 13, tree t11)."""

from __future__ import annotations

from pathlib import Path

import pytest

from cis_tui.audit.node import take_snapshot
from cis_tui.audit.podspec import refusals
from cis_tui.audit.strays import StrayKind
from cis_tui.benchmarks.catalog import load_catalog
from cis_tui.layout import load_settings
from cis_tui.remediate.plan import build_plan
from tests.conftest import run_cli
from tests.realworld import materialize


def pod(volumes: list, mounts: list) -> dict:
    return {
        "kind": "Pod",
        "spec": {
            "containers": [{"name": "c", "volumeMounts": mounts}],
            "volumes": volumes,
        },
    }


@pytest.mark.parametrize(
    ("volumes", "mounts", "problem"),
    [
        ([{"hostPath": {"path": "/x"}}], [], "spec.volumes[0].name: Required value"),
        (
            [{"name": "a", "hostPath": {"path": "/x"}}, {"name": "a", "emptyDir": {}}],
            [],
            "spec.volumes[1].name: Duplicate value: 'a'",
        ),
        ([{"name": "a"}], [], "spec.volumes[0]: Required value: must specify a volume type"),
        (
            [{"name": "a", "hostPath": {"path": "/x"}}],
            [{"name": "b", "mountPath": "/x"}],
            "spec.containers[0].volumeMounts[0].name: Not found: 'b'",
        ),
        (
            [{"name": "a", "hostPath": {"path": "/x"}}, {"name": "b", "hostPath": {"path": "/y"}}],
            [{"name": "a", "mountPath": "/x"}, {"name": "b", "mountPath": "/x"}],
            "spec.containers[0].volumeMounts[1].mountPath: Invalid value: '/x': must be unique",
        ),
    ],
)
def test_what_the_kubelet_refuses(volumes, mounts, problem):
    assert refusals(pod(volumes, mounts)) == [problem]


def test_a_valid_pod_is_not_refused(kubeadm_node):
    snap = take_snapshot(load_settings(root=kubeadm_node))
    assert snap.manifests and all(not m.refused for m in snap.manifests.values())


def test_t11_api_server_is_refused_reported_and_not_planned(capsys, tmp_path: Path):
    """t11's volume for /etc/kubernetes/etcd has no name, and its mount names a volume `etcd`
    that does not exist: the kubelet never starts this API server."""
    root = materialize(tmp_path, "t11-kubeadm121-enc") / "t11-kubeadm121-enc"
    manifest = root / "etc/kubernetes/manifests/kube-apiserver.yaml"
    snap = take_snapshot(load_settings(root=root))
    (finding,) = snap.strays
    assert finding.kind is StrayKind.REFUSED and finding.serious
    assert finding.path == manifest
    assert snap.manifests["kube-apiserver"].refused == (
        "spec.volumes[0].name: Required value",
        "spec.containers[0].volumeMounts[0].name: Not found: 'etcd'",
    )
    plan = build_plan(load_catalog("cis-1.10"), snap, ["1.2.15"])
    assert not plan.files
    assert plan.skipped[0].reason.startswith(f"the kubelet refuses to run {manifest} as it is")
    before = manifest.read_bytes()
    code, out, _ = run_cli(capsys, "--root", str(root), "scan")
    assert code == 1
    assert "FINDING" in out and "the kubelet refuses to run this pod" in out
    assert manifest.read_bytes() == before
