"""Files the kubelet runs from the manifests directory besides the components' own (issue 12,
item 9)."""

from __future__ import annotations

from pathlib import Path

from cis_tui.audit.node import take_snapshot
from cis_tui.audit.strays import StrayKind
from cis_tui.layout import load_settings

KUBE_VIP = """apiVersion: v1
kind: Pod
metadata: {name: kube-vip, namespace: kube-system}
spec:
  containers:
  - name: kube-vip
    image: ghcr.io/kube-vip/kube-vip:v0.8.0
    args: [manager]
"""


def strays(root: Path):
    return {s.path.name: s for s in take_snapshot(load_settings(root=root)).strays}


def test_a_copy_of_a_component_manifest_is_a_second_pod(kubeadm_node):
    manifests = kubeadm_node / "etc/kubernetes/manifests"
    (manifests / "kube-apiserver.yaml.bak").write_bytes(
        (manifests / "kube-apiserver.yaml").read_bytes()
    )
    found = strays(kubeadm_node)
    stray = found["kube-apiserver.yaml.bak"]
    assert stray.kind is StrayKind.COPY and stray.component == "kube-apiserver" and stray.serious
    # The way out names the node's own paths (not the --root copy's) and moves, never deletes.
    assert stray.remedy.endswith(
        "mv /etc/kubernetes/manifests/kube-apiserver.yaml.bak /etc/kubernetes/"
    )


def test_leftovers_other_pods_and_hidden_files(kubeadm_node):
    manifests = kubeadm_node / "etc/kubernetes/manifests"
    (manifests / "notes.txt~").write_text("todo\n")
    (manifests / "kube-vip.yaml").write_text(KUBE_VIP)
    (manifests / ".kube-apiserver.yaml.cis-tui-1234").write_text("hidden: the kubelet skips it\n")
    (manifests / ".kube-apiserver.yaml.swp").write_bytes(b"\x00binary")
    (manifests / "subdir").mkdir()
    found = strays(kubeadm_node)
    assert set(found) == {"notes.txt~", "kube-vip.yaml"}
    assert found["notes.txt~"].kind is StrayKind.LEFTOVER and found["notes.txt~"].serious
    assert found["kube-vip.yaml"].kind is StrayKind.EXTRA and not found["kube-vip.yaml"].serious


def test_a_clean_node_has_none(kubeadm_node):
    assert strays(kubeadm_node) == {}


def test_scan_reports_a_stray_copy_in_json_junit_and_the_table(capsys, kubeadm_node):
    import json

    from tests.conftest import run_cli

    manifests = kubeadm_node / "etc/kubernetes/manifests"
    stray = manifests / "kube-scheduler.yaml.orig"
    stray.write_bytes((manifests / "kube-scheduler.yaml").read_bytes())
    root = str(kubeadm_node)
    code, out, _ = run_cli(capsys, "--root", root, "scan", "--format", "json")
    (finding,) = json.loads(out)["findings"]
    assert finding["path"] == str(stray) and finding["kind"] == "second-pod"
    assert finding["component"] == "kube-scheduler" and "mv " in finding["remedy"]
    code, out, _ = run_cli(capsys, "--root", root, "scan", "--format", "junit")
    assert 'classname="cis-2.0.manifests-dir"' in out and "kube-scheduler.yaml.orig" in out
    code, out, _ = run_cli(capsys, "--root", root, "scan")
    assert "FINDING" in out and "second kube-scheduler pod" in out


def test_a_stray_alone_fails_the_scan(capsys, hardened_node):
    from tests.conftest import run_cli

    root = str(hardened_node)
    assert run_cli(capsys, "--root", root, "scan")[0] == 0  # every check passes (or is manual)
    manifests = hardened_node / "etc/kubernetes/manifests"
    (manifests / "etcd.yaml.bak").write_bytes((manifests / "etcd.yaml").read_bytes())
    code, out, _ = run_cli(capsys, "--root", root, "scan")
    assert "FINDING" in out and code == 1
    # A scan of named checks judges those checks only.
    assert run_cli(capsys, "--root", root, "scan", "--check", "1.4.1")[0] == 0
