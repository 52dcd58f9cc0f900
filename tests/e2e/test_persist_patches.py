"""`[persist] mode = "patches"` end to end on a running sandbox: cis-tui's fixes go into its own
kubeadm patch files; `kubeadm upgrade --patches DIR` (`cis-tui sandbox upgrade`, which reads the
sandbox's patches directory) keeps them; a flag kubeadm writes itself is reported not persisted,
and a rollback takes the patch file back."""

from __future__ import annotations

import json

from cis_tui.audit.node import parse_manifest
from cis_tui.persist.patchnames import file_name
from tests.e2e.conftest import SandboxFactory, needs_etcd, sandbox_factory  # noqa: F401
from tests.e2e.test_persist_upgrade import (
    FAST_HEALTH,
    FIXES,
    cis_tui,
    harden_then_upgrade,
    roll_back_a_crashing_scheduler,
)


def patches_mode(run) -> None:
    text = run.config.read_text().replace("[persist]\n", '[persist]\nmode = "patches"\n')
    run.config.write_text(text + FAST_HEALTH)


@needs_etcd
def test_fixes_in_patch_files_survive_kubeadm_upgrade(sandbox_factory: SandboxFactory) -> None:  # noqa: F811
    run = sandbox_factory()
    patches_mode(run)
    plan = cis_tui(run.config, "plan", *FIXES)
    apiserver_patch = run.paths.patches / file_name("kube-apiserver")
    kubelet_patch = run.paths.patches / file_name("kubelet")
    assert f"Persistence: patches (cis-tui's files in {run.paths.patches})" in plan.stdout
    assert f"run every kubeadm upgrade with --patches {run.paths.patches}" in plan.stdout
    assert f"+++ b{apiserver_patch}" in plan.stdout, plan.stdout  # the patch file's diff
    assert '"value": "--profiling=false"' in plan.stdout

    before, after, out = harden_then_upgrade(run, run.config)
    assert f"persisted in {apiserver_patch}" in out, out
    assert f"persisted in {kubelet_patch}" in out, out
    assert before == {check: ("PASS", True) for check in FIXES}
    assert after == {check: ("PASS", True) for check in FIXES}

    ops = json.loads(apiserver_patch.read_text())
    assert {
        "op": "add",
        "path": "/spec/containers/0/command/-",
        "value": "--profiling=false",
    } in ops
    assert apiserver_patch.stat().st_mode & 0o777 == 0o600
    path = run.paths.manifest("kube-apiserver")
    manifest = parse_manifest(path.read_text(), path, "kube-apiserver")
    assert {"audit-log", "audit-policy"} <= {v.name for v in manifest.volumes}
    assert "--profiling=false" in run.args_of("kube-apiserver")
    # one appended flag, not two: the upgrade regenerated the pod and the patch added it once
    assert run.args_of("kube-apiserver").count("--profiling=false") == 1

    # the patch files are backups like any other, and a restore takes one back
    listed = json.loads(cis_tui(run.config, "backups", "list", "--format", "json").stdout)
    patch_backups = [b for b in listed if b["path"] == str(apiserver_patch)]
    assert patch_backups, listed
    restored = cis_tui(run.config, "backups", "restore", patch_backups[-1]["id"], "--yes")
    assert restored.returncode == 0, restored.stdout + restored.stderr
    assert not apiserver_patch.exists()  # it did not exist before cis-tui wrote it


@needs_etcd
def test_a_flag_kubeadm_writes_is_not_patched_and_says_so(sandbox_factory: SandboxFactory) -> None:  # noqa: F811
    """EventRateLimit goes into --enable-admission-plugins, which kubeadm writes itself: an
    appended second --enable-admission-plugins would not replace it, so cis-tui does not."""
    run = sandbox_factory()
    patches_mode(run)
    out = cis_tui(run.config, "plan", "1.2.9")
    assert "not persisted: --enable-admission-plugins is written by kubeadm" in out.stdout, (
        out.stdout
    )
    # what kubeadm does not write is still patched (the config file and its volume), the
    # plugin list is not
    diff = out.stdout[out.stdout.index(file_name("kube-apiserver")) :]
    assert '"value": "--admission-control-config-file=' in diff
    assert "--enable-admission-plugins" not in diff.split("not persisted")[0]


@needs_etcd
def test_a_rollback_takes_the_patch_file_back(sandbox_factory: SandboxFactory) -> None:  # noqa: F811
    run = sandbox_factory()
    patches_mode(run)
    roll_back_a_crashing_scheduler(run.config)
    assert not (run.paths.patches / file_name("kube-scheduler")).exists()
