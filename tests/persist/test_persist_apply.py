"""Fixes mirrored into kubeadm's stored configuration as they are applied (issue 14 items 1-3):
a kubeadm node's files in a temporary directory, its API server a real loopback HTTPS server
(tests/fake_apiserver.py) holding kube-system/kubeadm-config and kubelet-config."""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import fields
from pathlib import Path

import pytest

from cis_tui.layout import Layout
from tests.conftest import run_cli
from tests.fake_apiserver import REF_CONFIGMAPS, FakeApiServer, load_configmap_file
from tests.nodetree import build_kubeadm_tree

MANIFEST = "etc/kubernetes/manifests/kube-apiserver.yaml"
KUBELET = "var/lib/kubelet/config.yaml"
CC = "ClusterConfiguration"


@pytest.fixture
def api() -> Iterator[FakeApiServer]:
    if not REF_CONFIGMAPS.is_dir():
        pytest.skip(f"the reference ConfigMaps are not available at {REF_CONFIGMAPS}")
    with FakeApiServer() as server:
        yield server


def node_config(tmp_path: Path, tree: Path, kubeconfig: Path, extra: str = "") -> Path:
    """A config whose layout is the tree (not `--root`: a node with an API server)."""
    lines = ["[layout]"]
    for f in fields(Layout):
        default = f.default
        if isinstance(default, Path) and f.name != "root":
            lines.append(f'{f.name} = "{tree / default.relative_to("/")}"')
    lines += [
        "[state]",
        f'dir = "{tmp_path / "state"}"',
        "[persist]",
        f'kubeconfig = "{kubeconfig}"',
    ]
    tmp_path.mkdir(exist_ok=True)
    path = tmp_path / "cis-tui.toml"
    path.write_text("\n".join(lines) + "\n" + extra)
    return path


@pytest.fixture
def node(tmp_path: Path, api: FakeApiServer) -> tuple[Path, Path]:
    """(the node's tree, its config): admin.conf reaches the fake API server."""
    tree = build_kubeadm_tree(tmp_path / "node")
    dropin = tree / Layout().kubelet_service.relative_to("/")
    # The kubelet's own --config names the file the layout has (not the host's /var/lib/...).
    dropin.write_text(dropin.read_text().replace("=/var/lib/kubelet/", f"={tree}/var/lib/kubelet/"))
    admin = api.write_kubeconfig(tmp_path / "admin.conf")
    return tree, node_config(tmp_path, tree, admin)


def cli(capsys, config: Path, *argv: str) -> tuple[int, str, str]:
    return run_cli(capsys, "--config", str(config), *argv)


def stored(api: FakeApiServer, name: str = "kubeadm-config", key: str = CC) -> str:
    return api.configmap(name)["data"][key]


def reference(stem: str, key: str = CC) -> str:
    return load_configmap_file(REF_CONFIGMAPS / f"{stem}.configmap.yaml")["data"][key]


def added_lines(old: str, new: str) -> list[str]:
    """`new` is `old` plus lines (every old line kept, in order): the lines added."""
    old_lines, new_lines, out = old.splitlines(), new.splitlines(), []
    i = 0
    for line in new_lines:
        if i < len(old_lines) and line == old_lines[i]:
            i += 1
        else:
            out.append(line)
    assert i == len(old_lines), "a line of the stored configuration was changed or lost"
    return out


@pytest.mark.parametrize(
    ("stem", "expected"),
    [
        ("v1beta4.upstream-example", ["  - name: profiling", '    value: "false"']),
        ("v1beta3.upstream-example", ['    profiling: "false"']),
    ],
)
def test_a_fix_is_mirrored_into_extra_args_keeping_everything_else(
    capsys, api, node, stem, expected
):
    tree, config = node
    api.seed_reference(stem)
    before = stored(api)
    code, out, err = cli(capsys, config, "plan", "1.2.15")
    assert code == 0, err
    assert f"--- a/configmap kube-system/kubeadm-config {CC}" in out
    assert "Persistence: kubeadm-config (kube-system/kubeadm-config via" in out
    assert stored(api) == before  # a plan writes nothing

    code, out, err = cli(capsys, config, "apply", "1.2.15", "--yes", "--no-health-gate")
    assert code == 0, out + err
    assert "persisted in configmap kube-system/kubeadm-config ClusterConfiguration" in out
    assert "    - --profiling=false" in (tree / MANIFEST).read_text()
    assert added_lines(before, stored(api)) == expected  # the existing args are all kept
    backups = json.loads(cli(capsys, config, "backups", "list", "--format", "json")[1])
    (saved,) = [b for b in backups if b["kind"] == "configmap"]
    assert saved["component"] == "kubeadm-config" and saved["outcome"] == "committed"
    code, out, _ = cli(capsys, config, "backups", "show", saved["id"])
    assert out.split("--- content ---\n", 1)[1] == before


def test_a_concurrent_update_is_merged_not_overwritten(capsys, api, node):
    _tree, config = node
    api.seed_reference("v1beta4.upstream-example")
    before = stored(api)
    theirs = before.replace("clusterName: example-cluster", "clusterName: renamed-meanwhile")
    api.conflict_next_put(lambda data: {**data, CC: theirs})
    code, out, err = cli(capsys, config, "apply", "1.2.15", "--yes", "--no-health-gate")
    assert code == 0, out + err
    after = stored(api)
    assert "clusterName: renamed-meanwhile" in after  # their change
    assert added_lines(theirs, after) == ["  - name: profiling", '    value: "false"']  # ours
    puts = [r for r in api.requests if r.method == "PUT"]
    assert [r.status for r in puts] == [409, 200]


def test_a_kubelet_fix_goes_into_the_kubelet_config_configmap(capsys, api, node):
    tree, config = node
    api.seed_reference("v1beta4.upstream-example")
    ref = load_configmap_file(REF_CONFIGMAPS / "kubelet-config.upstream-example.configmap.yaml")
    hashed = {"annotations": ref["metadata"]["annotations"]}
    api.add_configmap("kubelet-config", ref["data"], metadata=hashed)
    before = stored(api, "kubelet-config", "kubelet")
    code, out, err = cli(capsys, config, "apply", "4.2.14", "--yes", "--no-health-gate")
    assert code == 0, out + err
    assert "seccompDefault: true" in (tree / KUBELET).read_text()
    assert added_lines(before, stored(api, "kubelet-config", "kubelet")) == ["seccompDefault: true"]
    # kubeadm's hash annotation is left as it was: the config is now the user's, not kubeadm's
    meta = api.configmap("kubelet-config")["metadata"]
    assert meta["annotations"] == hashed["annotations"]


def test_compound_fix_volumes_go_to_extra_volumes(capsys, api, node):
    _tree, config = node
    api.seed_reference("v1beta4.upstream-example")
    before = stored(api)
    code, out, err = cli(capsys, config, "apply", "1.2.16", "--yes", "--no-health-gate")
    assert code == 0, out + err
    added = "\n".join(added_lines(before, stored(api)))
    assert "name: audit-log-path" in added and "name: audit-policy-file" in added
    assert "hostPath: " in added and "mountPath: " in added  # extraVolumes for both files
    assert "  - hostPath: /etc/some-path" in stored(api)  # the existing extraVolume kept


def test_a_wrong_identity_leaves_the_fix_in_place_not_persisted_exit_1(capsys, api, node, tmp_path):
    tree, _config = node
    api.seed_reference("v1beta4.upstream-example")
    before = stored(api)
    intruder = api.write_kubeconfig(tmp_path / "intruder.conf", "jane", ["developers"])
    config = node_config(tmp_path / "other", tree, intruder)
    code, out, err = cli(capsys, config, "apply", "1.2.15", "--yes", "--no-health-gate")
    assert code == 1, out + err
    assert "    - --profiling=false" in (tree / MANIFEST).read_text()  # the fix stays
    assert 'User "jane" cannot get resource "configmaps"' in out
    assert "kubeadm upgrade will revert this" in out
    assert stored(api) == before


def test_persistence_off_in_the_config(capsys, api, node, tmp_path):
    tree, _config = node
    api.seed_reference("v1beta4.upstream-example")
    before = stored(api)
    admin = api.write_kubeconfig(tmp_path / "admin2.conf")
    config = node_config(tmp_path / "off", tree, admin)
    config.write_text(config.read_text().replace("[persist]\n", '[persist]\nmode = "off"\n'))
    code, out, err = cli(capsys, config, "apply", "1.2.15", "--yes", "--no-health-gate")
    assert code == 0, out + err
    assert "Persistence: off ([persist] mode = off in" in out
    assert "kubeadm upgrade will revert this" in out
    assert stored(api) == before
    assert [r for r in api.requests] == []  # not even read


def test_a_configmap_backup_is_diffed_and_restored(capsys, api, node):
    _tree, config = node
    api.seed_reference("v1beta4.upstream-example")
    before = stored(api)
    assert cli(capsys, config, "apply", "1.2.15", "--yes", "--no-health-gate")[0] == 0
    backups = json.loads(cli(capsys, config, "backups", "list", "--format", "json")[1])
    (saved,) = [b for b in backups if b["kind"] == "configmap"]
    code, out, _ = cli(capsys, config, "backups", "diff", saved["id"])
    assert code == 0 and '+    value: "false"' in out and "(current ConfigMap)" in out
    code, out, err = cli(capsys, config, "backups", "restore", saved["id"], "--yes")
    assert code == 0, out + err
    assert stored(api) == before


def test_a_failure_after_the_write_rolls_back_the_manifest_and_the_configmap(api, node):
    """A step after the write fails (here the audit re-check, injected): the rollback puts the
    manifest and kubeadm's configuration back, so the next upgrade cannot bring the fix back."""
    import asyncio

    from cis_tui.audit.node import take_snapshot, with_kubelet_config
    from cis_tui.benchmarks.catalog import load_catalog
    from cis_tui.engine.events import Outcome
    from cis_tui.engine.transaction import Engine, _Failed, _Tx
    from cis_tui.layout import load_settings
    from cis_tui.persist.planner import attach_persistence
    from cis_tui.remediate.plan import build_plan

    class FailingAudit(Engine):
        async def _audit(self, tx: _Tx) -> None:
            raise _Failed("the audit re-check failed (injected)")

    tree, config = node
    api.seed_reference("v1beta4.upstream-example")
    before_cm, before_manifest = stored(api), (tree / MANIFEST).read_bytes()
    settings = with_kubelet_config(load_settings(config=config))
    catalog = load_catalog("cis-1.12")
    plan = attach_persistence(build_plan(catalog, take_snapshot(settings), ["1.2.15"]), settings)
    events = []
    engine = FailingAudit(settings, catalog, events.append, health_gate=False)
    result = asyncio.run(engine.apply(plan))
    (file,) = result.files
    assert file.outcome is Outcome.ROLLED_BACK, file.message
    assert (tree / MANIFEST).read_bytes() == before_manifest
    assert stored(api) == before_cm
    assert [r.status for r in api.requests if r.method == "PUT"] == [200, 200]  # write, revert
    notes = [e.message for e in events]
    assert "configmap kube-system/kubeadm-config ClusterConfiguration restored" in notes


def scan(capsys, config: Path, *ids: str) -> dict[str, tuple[str, bool | None]]:
    code, out, err = cli(capsys, config, "scan", "--format", "json", "--check", ",".join(ids))
    doc = json.loads(out)
    return {r["id"]: (r["status"], r["persisted"]) for r in doc["results"]}


def test_scan_says_which_passes_kubeadm_upgrade_reverts_and_persist_keeps_them(capsys, api, node):
    """A fix made by hand (only in the manifest) passes but is not persisted; `cis-tui persist`
    puts it into ClusterConfiguration, after which scan says it is."""
    tree, config = node
    api.seed_reference("v1beta4.upstream-example")
    manifest = tree / MANIFEST
    manifest.write_text(
        manifest.read_text().replace(
            "    - --allow-privileged=true\n",
            "    - --allow-privileged=true\n    - --profiling=false\n",
        )
    )
    assert scan(capsys, config, "1.2.15", "1.2.5") == {
        "1.2.15": ("PASS", False),
        "1.2.5": ("FAIL", None),  # only passes are judged
    }
    code, out, _ = cli(capsys, config, "scan", "--check", "1.2.15")
    assert "kubeadm upgrade will revert these passes: 1.2.15" in out
    before = stored(api)
    code, out, err = cli(capsys, config, "persist", "1.2.15", "--yes")
    assert code == 0, out + err
    assert "kubeadm upgrade now keeps 1.2.15" in out
    assert added_lines(before, stored(api)) == ["  - name: profiling", '    value: "false"']
    assert scan(capsys, config, "1.2.15") == {"1.2.15": ("PASS", True)}
    code, out, _ = cli(capsys, config, "persist", "--all", "--yes")
    assert code == 0 and "Nothing to persist." in out


def test_persisted_is_null_without_an_api_server(capsys, kubeadm_node):
    doc = json.loads(run_cli(capsys, "--root", str(kubeadm_node), "scan", "--format", "json")[1])
    assert {r["persisted"] for r in doc["results"]} == {None}
    code, _, err = run_cli(capsys, "--root", str(kubeadm_node), "persist", "--all")
    assert code == 2 and "no kubeadm configuration to persist into" in err


def test_restoring_a_manifest_backup_takes_the_persisted_fix_back_too(capsys, api, node):
    """Undoing a fix by restoring its manifest's backup also removes it from extraArgs, or the
    next kubeadm upgrade would bring it back."""
    tree, config = node
    api.seed_reference("v1beta4.upstream-example")
    before_cm, before = stored(api), (tree / MANIFEST).read_bytes()
    assert cli(capsys, config, "apply", "1.2.15", "--yes", "--no-health-gate")[0] == 0
    backups = json.loads(cli(capsys, config, "backups", "list", "--format", "json")[1])
    (manifest_backup,) = [b for b in backups if b["component"] == "kube-apiserver"]
    code, out, err = cli(
        capsys, config, "backups", "restore", manifest_backup["id"], "--yes", "--no-health-gate"
    )
    assert code == 0, out + err
    assert (tree / MANIFEST).read_bytes() == before
    assert stored(api) == before_cm
