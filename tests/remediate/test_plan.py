"""Plans on a fresh kubeadm node: every fix, applied and re-scanned, passes its check, and
every changed component can still start (its files exist and are mounted)."""

from __future__ import annotations

import asyncio

import pytest

from cis_tui.audit.evaluate import Status, evaluate
from cis_tui.audit.node import take_snapshot
from cis_tui.benchmarks.catalog import load_catalog
from cis_tui.engine.transaction import Engine
from cis_tui.layout import load_settings
from cis_tui.remediate.plan import build_plan, startup_problems
from tests.nodetree import build_kubeadm_tree

CATALOG = load_catalog("cis-1.12")


def failing_fixable(root) -> list[str]:
    snap = take_snapshot(load_settings(root=root))
    return [
        r.id
        for r in evaluate(CATALOG, snap)
        if r.status in (Status.FAIL, Status.WARN) and r.check.remediation.available
    ]


FIXABLE = failing_fixable(
    build_kubeadm_tree(__import__("pathlib").Path(__import__("tempfile").mkdtemp()) / "n")
)


def apply_offline(root, ids, params=None):
    settings = load_settings(root=root)
    snap = take_snapshot(settings)
    plan = build_plan(CATALOG, snap, ids, params or {})
    engine = Engine(settings, CATALOG, lambda e: None, health_gate=False)
    result = asyncio.run(engine.apply(plan))
    return plan, result


def test_the_default_node_has_fixable_failures():
    assert {"1.2.15", "1.2.16", "1.2.27", "1.3.2", "1.4.1", "4.1.9", "4.2.13"} <= set(FIXABLE)
    assert "1.2.20" not in FIXABLE  # no mechanical fix: a human picks the timeout


@pytest.mark.parametrize("check_id", FIXABLE)
def test_each_fix_applied_and_rescanned_passes(kubeadm_node, check_id):
    plan, result = apply_offline(kubeadm_node, [check_id])
    assert plan.checks == (check_id,), plan.skipped
    assert result.exit_code == 0, [f.message for f in result.files]
    snap = take_snapshot(load_settings(root=kubeadm_node))
    for file in plan.files:
        assert startup_problems(file, snap) == []
    (after,) = evaluate(CATALOG, snap, [check_id])
    assert after.status is Status.PASS, after.reason


def test_all_failing_at_once_one_write_per_file(kubeadm_node):
    settings = load_settings(root=kubeadm_node)
    # Manual checks too (4.2.13 is the kubelet config's), as --all-failing --include-manual.
    plan = build_plan(CATALOG, take_snapshot(settings), None, {}, include_manual=True)
    kinds = [(f.kind, f.component) for f in plan.files]
    assert kinds == [
        ("attributes", "node"),
        ("manifest", "kube-apiserver"),
        ("manifest", "kube-controller-manager"),
        ("manifest", "kube-scheduler"),
        ("kubelet-config", "kubelet"),
    ]
    apiserver = plan.files[1]
    assert {"1.2.15", "1.2.16", "1.2.17", "1.2.27", "1.2.28"} <= set(apiserver.checks)
    _, result = apply_offline(kubeadm_node, list(plan.checks))
    assert result.exit_code == 0, [f.message for f in result.files]
    after = {r.id: r.status for r in evaluate(CATALOG, take_snapshot(settings))}
    assert [i for i in plan.checks if after[i] is not Status.PASS] == []


def test_audit_log_fix_mounts_the_policy_and_the_log_directory(kubeadm_node):
    plan, result = apply_offline(kubeadm_node, ["1.2.16"])
    assert result.exit_code == 0
    text = (kubeadm_node / "etc/kubernetes/manifests/kube-apiserver.yaml").read_text()
    assert "- --audit-policy-file=/etc/kubernetes/audit-policy.yaml" in text
    assert "- --audit-log-path=/var/log/kubernetes/audit/audit.log" in text
    assert "    - mountPath: /var/log/kubernetes/audit\n      name: audit-log\n" in text
    assert "      path: /etc/kubernetes/audit-policy.yaml\n      type: File\n" in text
    policy = kubeadm_node / "etc/kubernetes/audit-policy.yaml"
    assert policy.stat().st_mode & 0o777 == 0o600
    assert "kind: Policy" in policy.read_text()
    log_dir = kubeadm_node / "var/log/kubernetes/audit"
    assert log_dir.is_dir() and log_dir.stat().st_mode & 0o777 == 0o700


def test_existing_audit_policy_is_never_overwritten(kubeadm_node):
    policy = kubeadm_node / "etc/kubernetes/audit-policy.yaml"
    policy.write_text("apiVersion: audit.k8s.io/v1\nkind: Policy\nrules:\n- level: Metadata\n")
    plan, _ = apply_offline(kubeadm_node, ["1.2.16"])
    assert all(c.path != policy for f in plan.files for c in f.companions)
    assert policy.read_text().endswith("- level: Metadata\n")


@pytest.mark.parametrize("provider", ["secretbox", "aescbc"])
def test_encryption_fix_writes_a_fresh_key_at_0600(kubeadm_node, provider):
    plan, result = apply_offline(kubeadm_node, ["1.2.27"], {"1.2.27": {"provider": provider}})
    assert result.exit_code == 0
    config = kubeadm_node / "etc/kubernetes/enc/encryption-config.yaml"
    assert config.stat().st_mode & 0o777 == 0o600
    text = config.read_text()
    assert f"  - {provider}:\n" in text and "kind: EncryptionConfiguration" in text
    diff = plan.files[0].diff
    assert "content withheld" in diff and "secret:" not in diff  # the key never reaches a plan
    manifest = (kubeadm_node / "etc/kubernetes/manifests/kube-apiserver.yaml").read_text()
    assert (
        "    - mountPath: /etc/kubernetes/enc\n      name: encryption-config\n      readOnly: true\n"
        in manifest
    )
    (after,) = evaluate(CATALOG, take_snapshot(load_settings(root=kubeadm_node)), ["1.2.28"])
    assert after.status is Status.PASS


def test_two_keys_are_never_the_same(tmp_path):
    keys = []
    for n in range(2):
        root = build_kubeadm_tree(tmp_path / f"n{n}")
        apply_offline(root, ["1.2.27"])
        keys.append(
            (root / "etc/kubernetes/enc/encryption-config.yaml").read_text().split("secret: ")[1]
        )
    assert keys[0] != keys[1]


def test_event_rate_limit_writes_both_configs_and_enables_the_plugin(kubeadm_node):
    _, result = apply_offline(kubeadm_node, ["1.2.9"], {"1.2.9": {"qps": "20", "burst": "40"}})
    assert result.exit_code == 0
    admission = kubeadm_node / "etc/kubernetes/admission"
    assert "name: EventRateLimit" in (admission / "admission-config.yaml").read_text()
    assert "qps: 20\n  burst: 40" in (admission / "event-rate-limit.yaml").read_text()
    manifest = (kubeadm_node / "etc/kubernetes/manifests/kube-apiserver.yaml").read_text()
    assert "--enable-admission-plugins=NodeRestriction,EventRateLimit" in manifest


def test_kubelet_flag_on_the_command_line_is_not_fixed_in_the_config(kubeadm_node):
    env = kubeadm_node / "var/lib/kubelet/kubeadm-flags.env"
    env.write_text('KUBELET_KUBEADM_ARGS="--read-only-port=10255"\n')
    plan = build_plan(CATALOG, take_snapshot(load_settings(root=kubeadm_node)), ["4.2.4"], {})
    assert plan.empty
    (skip,) = plan.skipped
    assert "overrides the config file" in skip.reason


def test_passing_and_unfixable_checks_are_reported_not_planned(kubeadm_node):
    plan = build_plan(
        CATALOG, take_snapshot(load_settings(root=kubeadm_node)), ["1.2.14", "1.2.20"], {}
    )
    assert plan.empty
    assert [(s.check_id, s.reason.split(":")[0]) for s in plan.skipped] == [
        ("1.2.14", "already passes"),
        ("1.2.20", "no mechanical fix"),
    ]


def test_startup_problems_catch_an_unmounted_file(kubeadm_node):
    """The classic outage: --audit-policy-file without a volume."""
    from cis_tui.remediate.edits import PodManifest
    from cis_tui.remediate.plan import FilePlan

    path = kubeadm_node / "etc/kubernetes/manifests/kube-apiserver.yaml"
    pod = PodManifest(path.read_text(), "kube-apiserver")
    pod.set_flag("--audit-policy-file", "/etc/kubernetes/audit-policy.yaml")
    file = FilePlan("manifest", "kube-apiserver", path, path.read_text(), pod.text, ("3.2.1",))
    problems = startup_problems(file, take_snapshot(load_settings(root=kubeadm_node)))
    assert problems == [
        "--audit-policy-file=/etc/kubernetes/audit-policy.yaml is not mounted into the kube-apiserver pod"
    ]


def test_diffs_are_stable(kubeadm_node, snapshot):
    plan = build_plan(
        CATALOG,
        take_snapshot(load_settings(root=kubeadm_node)),
        ["1.2.15", "1.2.16", "1.2.17", "1.3.2", "4.2.13", "4.1.9"],
        {},
    )
    text = "\n".join(f.diff for f in plan.files).replace(str(kubeadm_node.resolve()), "<root>")
    assert text == snapshot
