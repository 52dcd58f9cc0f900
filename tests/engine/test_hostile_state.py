"""A hostile local user and a failing disk against the state directory, backups and restores.

Each test stages the attack with real files (a real second user where the attack needs one)
and runs the real command; each failed before the fix it guards.
"""

from __future__ import annotations

import errno
import hashlib
import json
import os
import resource
import subprocess
import sys
from pathlib import Path

import pytest

from cis_tui.engine import atomic
from cis_tui.engine.backups import BackupStore
from cis_tui.engine.journal import Journal
from cis_tui.layout import load_settings
from tests.conftest import run_cli
from tests.hostile import Attacker

APISERVER = "etc/kubernetes/manifests/kube-apiserver.yaml"
SCHEDULER = "etc/kubernetes/manifests/kube-scheduler.yaml"


def apply(capsys, root: Path, *args: str) -> tuple[int, str, str]:
    return run_cli(capsys, "--root", str(root), "apply", "--yes", "--no-health-gate", *args)


def one_line_error(err: str, *needles: str) -> None:
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("cis-tui: error: "), err
    assert "Traceback" not in err
    for needle in needles:
        assert needle in lines[0], lines[0]


def tree_bytes(root: Path) -> dict[Path, bytes]:
    return {
        p: p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file() and not p.is_symlink()
    }


def cli_subprocess(*argv: str, fsize: int | None = None) -> subprocess.CompletedProcess[str]:
    """The CLI in its own process, optionally under a file-size limit (`ulimit -f`)."""

    def limit() -> None:
        if fsize is not None:
            resource.setrlimit(resource.RLIMIT_FSIZE, (fsize, fsize))

    return subprocess.run(
        [sys.executable, "-m", "cis_tui", *argv],
        capture_output=True,
        text=True,
        timeout=120,
        preexec_fn=limit,
        env={**os.environ, "PYTHONDONTWRITEBYTECODE": "1"},
    )


# ---- item 1: the state directory is not trusted blindly --------------------------------------


def test_a_lock_symlink_never_truncates_its_target(capsys, kubeadm_node, tmp_path):
    precious = tmp_path / "precious"
    precious.write_text("root's data\n")
    state = kubeadm_node / "var/lib/cis-tui"
    state.mkdir(mode=0o700, parents=True)
    (state / "lock").symlink_to(precious)
    manifest = kubeadm_node / APISERVER
    before = manifest.read_bytes()
    code, _, err = apply(capsys, kubeadm_node, "1.2.15")
    assert code == 2
    one_line_error(err, "lock", "symlink")
    assert precious.read_text() == "root's data\n"
    assert manifest.read_bytes() == before


def test_a_forged_backup_in_another_users_state_dir_is_never_installed(
    capsys, kubeadm_node, attacker: Attacker
):
    """The attacker owns a state directory root is pointed at, and forges a backup and an
    open transaction that would install their pod as the API server, 0666 and theirs."""
    manifest = kubeadm_node / APISERVER
    before = manifest.read_bytes()
    state = attacker.home / "state"
    evil = b"apiVersion: v1\nkind: Pod\nmetadata: {name: evil}\nspec: {containers: []}\n"
    meta = {
        "id": "20260101-000000-kube-apiserver-aaaaaa",
        "time": "2026-01-01T00:00:00+00:00",
        "kind": "file",
        "path": str(manifest),
        "component": "kube-apiserver",
        "sha256": hashlib.sha256(evil).hexdigest(),
        "size": len(evil),
        "mode": 0o666,
        "uid": attacker.uid,
        "gid": attacker.gid,
        "checks": [],
        "plan": {},
        "outcome": "pending",
        "attributes": [],
    }
    intent = {
        "txid": "1-aaaa",
        "step": "intent",
        "time": 1.0,
        "backup_id": meta["id"],
        "path": str(manifest),
        "component": "kube-apiserver",
        "pid": 1,
    }
    attacker.python(
        "import json, os, pathlib\n"
        f"s = pathlib.Path({str(state)!r}); b = s / 'backups' / {meta['id']!r}\n"
        "b.mkdir(parents=True)\n"
        f"(b / 'original').write_bytes({evil!r})\n"
        f"(b / 'meta.json').write_text(json.dumps({meta!r}))\n"
        f"(s / 'journal.jsonl').write_text(json.dumps({intent!r}) + '\\n')\n"
    )
    code, _, err = run_cli(
        capsys, "--root", str(kubeadm_node), "--state-dir", str(state), "recover", "--yes"
    )
    assert code == 2
    one_line_error(err, str(attacker.home), "untrusted", f"uid {attacker.uid}")
    assert manifest.read_bytes() == before
    st = manifest.stat()
    assert (st.st_uid, st.st_mode & 0o777) == (0, 0o600)


def test_an_attackers_symlink_as_state_dir_changes_nothing_at_its_target(
    capsys, kubeadm_node, tmp_path, attacker: Attacker
):
    target = tmp_path / "shared"
    target.mkdir()
    target.chmod(0o755)
    link = attacker.home / "state"
    attacker.run(["ln", "-s", str(target), str(link)]).check_returncode()
    code, _, err = apply(capsys, kubeadm_node, "--state-dir", str(link), "1.2.15")
    assert code == 2
    one_line_error(err, str(attacker.home), "untrusted", f"uid {attacker.uid}")
    assert target.stat().st_mode & 0o777 == 0o755
    assert list(target.iterdir()) == []


def test_a_trusted_symlink_to_a_trusted_state_dir_works(capsys, kubeadm_node, tmp_path):
    target = tmp_path / "real-state"
    target.mkdir(mode=0o700)
    link = tmp_path / "state-link"
    link.symlink_to(target)
    code, out, err = run_cli(
        capsys, "--root", str(kubeadm_node), "--state-dir", str(link), "apply", "--yes",
        "--no-health-gate", "1.2.15",
    )  # fmt: skip
    assert code == 0, err
    assert len(list((target / "backups").iterdir())) == 1


def test_a_symlinked_state_dir_never_gets_its_target_chmodded(capsys, kubeadm_node, tmp_path):
    """Root's own link to a root-owned 0755 directory: the directory keeps its mode (it may
    not be cis-tui's alone); what cis-tui keeps in it is private anyway."""
    target = tmp_path / "shared"
    target.mkdir()
    target.chmod(0o755)
    link = tmp_path / "state-link"
    link.symlink_to(target)
    code, _, err = apply(capsys, kubeadm_node, "--state-dir", str(link), "1.2.15")
    assert code == 0, err
    assert target.stat().st_mode & 0o777 == 0o755
    assert (target / "backups").stat().st_mode & 0o777 == 0o700
    for name in ("lock", "journal.jsonl", "history.jsonl"):
        assert (target / name).stat().st_mode & 0o777 == 0o600, name


@pytest.mark.parametrize(
    ("where", "mode"),
    [("state", 0o770), ("state", 0o707), ("parent", 0o777), ("parent", 0o775)],
)
def test_a_state_dir_or_parent_writable_by_others_is_refused(
    capsys, kubeadm_node, tmp_path, where, mode
):
    parent = tmp_path / "p"
    state = parent / "state"
    state.mkdir(parents=True, mode=0o700)
    (state if where == "state" else parent).chmod(mode)
    manifest = kubeadm_node / APISERVER
    before = manifest.read_bytes()
    code, out, err = apply(capsys, kubeadm_node, "--state-dir", str(state), "1.2.15")
    assert code == 2
    one_line_error(err, "writable by group or others")
    assert out == "", "refused before a plan is shown, not after it"
    assert manifest.read_bytes() == before


def test_a_sticky_world_writable_parent_is_accepted(capsys, kubeadm_node, tmp_path):
    parent = tmp_path / "tmp-like"
    parent.mkdir()
    parent.chmod(0o1777)
    code, _, err = apply(capsys, kubeadm_node, "--state-dir", str(parent / "state"), "1.2.15")
    assert code == 0, err
    assert (parent / "state").stat().st_mode & 0o777 == 0o700


def test_symlinks_inside_the_state_dir_are_never_followed(capsys, kubeadm_node, tmp_path):
    assert apply(capsys, kubeadm_node, "1.4.1")[0] == 0
    state = kubeadm_node / "var/lib/cis-tui"
    (backup_dir,) = (state / "backups").iterdir()
    # a backup directory that is a link to a copy elsewhere is not a backup
    elsewhere = tmp_path / "elsewhere"
    os.rename(backup_dir, elsewhere)
    (state / "backups" / backup_dir.name).symlink_to(elsewhere)
    code, _, err = run_cli(
        capsys, "--root", str(kubeadm_node), "backups", "restore", backup_dir.name, "--yes",
        "--no-health-gate",
    )  # fmt: skip
    assert code == 2
    one_line_error(err, "not a directory")
    # a journal that is a link
    journal = state / "journal.jsonl"
    journal.rename(tmp_path / "journal.jsonl")
    journal.symlink_to(tmp_path / "journal.jsonl")
    code, _, err = run_cli(capsys, "--root", str(kubeadm_node), "recover", "--yes")
    assert code == 2
    one_line_error(err, "journal.jsonl", "symlink")


# ---- item 4: a restore writes only its own component's file, with checked attributes -----------


def _only_backup(root: Path) -> tuple[BackupStore, Path]:
    settings = load_settings(root=root)
    store = BackupStore(settings.state_dir, settings.layout)
    (backup,) = store.list()
    return store, Path(backup.directory)


def _edit_meta(directory: Path, **changes) -> None:
    meta = directory / "meta.json"
    raw = json.loads(meta.read_text())
    raw.update(changes)
    meta.write_text(json.dumps(raw))


def test_an_apiserver_backup_is_never_restored_into_another_components_file(capsys, kubeadm_node):
    assert apply(capsys, kubeadm_node, "1.2.15")[0] == 0
    _, directory = _only_backup(kubeadm_node)
    scheduler = kubeadm_node / SCHEDULER
    _edit_meta(directory, path=str(scheduler))
    before = scheduler.read_bytes()
    code, _, err = run_cli(
        capsys, "--root", str(kubeadm_node), "backups", "restore", directory.name, "--yes",
        "--no-health-gate",
    )  # fmt: skip
    assert code == 2
    one_line_error(err, "not that component's file")
    assert scheduler.read_bytes() == before


def test_an_attribute_restore_never_chmods_through_a_planted_symlink(capsys, kubeadm_node):
    config = kubeadm_node / "var/lib/kubelet/config.yaml"
    assert config.stat().st_mode & 0o777 == 0o644
    assert apply(capsys, kubeadm_node, "4.1.9")[0] == 0
    assert config.stat().st_mode & 0o777 == 0o600
    _, directory = _only_backup(kubeadm_node)
    victim = kubeadm_node / "etc/kubernetes/pki/ca.key"
    assert victim.stat().st_mode & 0o777 == 0o600
    config.unlink()
    config.symlink_to(victim)
    code, out, err = run_cli(
        capsys, "--root", str(kubeadm_node), "backups", "restore", directory.name, "--yes",
        "--no-health-gate",
    )  # fmt: skip
    assert code != 0
    assert "symlink" in out + err and "Traceback" not in out + err
    assert victim.stat().st_mode & 0o777 == 0o600


@pytest.mark.parametrize(
    "changes", [{"mode": 0o4755}, {"mode": 0o646}, {"uid": 4242}, {"gid": 4242}]
)
def test_implausible_recorded_attributes_are_refused(capsys, kubeadm_node, changes):
    config = kubeadm_node / "var/lib/kubelet/config.yaml"
    assert apply(capsys, kubeadm_node, "4.1.9")[0] == 0
    _, directory = _only_backup(kubeadm_node)
    meta = json.loads((directory / "meta.json").read_text())
    meta["attributes"][0].update(changes)
    (directory / "meta.json").write_text(json.dumps(meta))
    code, out, err = run_cli(
        capsys, "--root", str(kubeadm_node), "backups", "restore", directory.name, "--yes",
        "--no-health-gate",
    )  # fmt: skip
    assert code != 0 and "refusing" in out + err
    st = config.stat()
    assert (st.st_mode & 0o7777, st.st_uid, st.st_gid) == (0o600, 0, 0)


# ---- item 5: --root confines every read and write ----------------------------------------------


def test_a_manifests_dir_leading_out_of_root_is_refused(capsys, kubeadm_node, tmp_path):
    outside = tmp_path / "host-manifests"
    manifests = kubeadm_node / "etc/kubernetes/manifests"
    manifests.rename(outside)
    manifests.symlink_to(outside)
    before = tree_bytes(outside)
    for command in (["scan"], ["apply", "--yes", "--no-health-gate", "1.2.15"]):
        code, _, err = run_cli(capsys, "--root", str(kubeadm_node), *command)
        assert code == 2
        one_line_error(err, "leads out of the --root tree")
    assert tree_bytes(outside) == before


def test_a_relative_manifest_symlink_out_of_root_is_refused(capsys, kubeadm_node, tmp_path):
    outside = tmp_path / "kube-apiserver.yaml"
    manifest = kubeadm_node / APISERVER
    manifest.rename(outside)
    manifest.symlink_to(os.path.relpath(outside, manifest.parent))
    before = outside.read_bytes()
    code, _, err = apply(capsys, kubeadm_node, "1.2.15")
    assert code == 2
    one_line_error(err, "leads out of the --root tree")
    assert outside.read_bytes() == before


def test_a_companion_directory_leading_out_of_root_is_refused(capsys, kubeadm_node, tmp_path):
    outside = tmp_path / "host-enc"
    outside.mkdir()
    (kubeadm_node / "etc/kubernetes/enc").symlink_to(outside)
    before = tree_bytes(kubeadm_node / "etc/kubernetes/manifests")
    code, _, err = apply(capsys, kubeadm_node, "1.2.27")
    assert code == 2
    one_line_error(err, "leads out of the --root tree")
    assert list(outside.iterdir()) == []
    assert tree_bytes(kubeadm_node / "etc/kubernetes/manifests") == before


def _link_out(root: Path, relative: str, outside: Path) -> None:
    """Move `relative` out of the tree to `outside` and leave an absolute symlink to it."""
    inside = root / relative
    inside.rename(outside)
    inside.symlink_to(outside)


_APISERVER_CONFIGS = {
    "encryption-config": (
        "--encryption-provider-config",
        "apiVersion: apiserver.config.k8s.io/v1\nkind: EncryptionConfiguration\nresources:\n"
        "- resources: [secrets]\n  providers:\n  - identity: {}\n",
    ),
    "authentication-config": (
        "--authentication-config",
        "apiVersion: apiserver.config.k8s.io/v1\nkind: AuthenticationConfiguration\n"
        "anonymous:\n  enabled: true\n",
    ),
}


def _apiserver_config_out(root: Path, outside: Path, what: str) -> None:
    """The API server's manifest names a config file in a directory linked out of the tree."""
    flag, text = _APISERVER_CONFIGS[what]
    outside.mkdir()
    (outside / "config.yaml").write_text(text)
    (root / "etc/kubernetes/linked").symlink_to(outside)
    manifest = root / APISERVER
    line = f"    - {flag}=/etc/kubernetes/linked/config.yaml\n"
    manifest.write_text(
        manifest.read_text().replace("    - --etcd-servers", line + "    - --etcd-servers", 1)
    )


@pytest.mark.parametrize(
    "what",
    ["pki", "kubelet-drop-in", "admin-kubeconfig", "encryption-config", "authentication-config"],
)
def test_scan_reads_nothing_through_a_link_out_of_root(capsys, kubeadm_node, tmp_path, what):
    """A scan of a --root tree judges the tree: the host's PKI modes, kubelet drop-in or the
    API server's config files, reached through a link, are refused (exit 2), not reported."""
    outside = tmp_path / "host"
    if what == "pki":
        _link_out(kubeadm_node, "etc/kubernetes/pki", outside)
    elif what == "kubelet-drop-in":
        _link_out(kubeadm_node, "etc/systemd/system/kubelet.service.d", outside)
    elif what == "admin-kubeconfig":
        _link_out(kubeadm_node, "etc/kubernetes/admin.conf", outside)
    else:
        _apiserver_config_out(kubeadm_node, outside, what)
    code, out, err = run_cli(capsys, "--root", str(kubeadm_node), "scan")
    assert code == 2, out
    one_line_error(err, "leads out of the --root tree", str(outside))


def test_a_state_dir_leading_out_of_root_is_refused(capsys, kubeadm_node, tmp_path):
    outside = tmp_path / "host-var-lib"
    outside.mkdir()
    (kubeadm_node / "var/lib/cis-tui").parent.mkdir(parents=True, exist_ok=True)
    (kubeadm_node / "var/lib/cis-tui").symlink_to(outside)
    code, _, err = apply(capsys, kubeadm_node, "1.2.15")
    assert code == 2
    one_line_error(err, "leads out of the --root tree")
    assert list(outside.iterdir()) == []


# ---- item 7: a short backup write never passes for a backup ------------------------------------


def test_a_file_size_limit_during_the_backup_changes_nothing(kubeadm_node):
    manifest = kubeadm_node / APISERVER
    text = manifest.read_text()
    padding = 5254 - len(text.encode())
    assert padding > 2
    manifest.write_text(text + "#" * (padding - 1) + "\n")
    before = manifest.read_bytes()
    assert len(before) == 5254
    result = cli_subprocess(
        "--root", str(kubeadm_node), "apply", "--yes", "--no-health-gate", "1.2.15", fsize=5120
    )
    assert result.returncode == 1, result.stdout + result.stderr
    assert "File too large" in result.stdout and "Traceback" not in result.stderr
    assert manifest.read_bytes() == before
    backups = kubeadm_node / "var/lib/cis-tui/backups"
    assert list(backups.iterdir()) == []  # no partial backup left either


# ---- item 9: once the rename may have happened, the file counts as written --------------------


def _failing_fsync_dir(monkeypatch, directory: Path, times: int | None) -> list[Path]:
    calls: list[Path] = []
    real = atomic.fsync_dir

    def fsync_dir(path: Path) -> None:
        if Path(path) == directory and (times is None or len(calls) < times):
            calls.append(Path(path))
            raise OSError(errno.EIO, "Input/output error")
        real(path)

    monkeypatch.setattr(atomic, "fsync_dir", fsync_dir)
    return calls


def test_a_failed_directory_fsync_after_the_rename_is_rolled_back(
    capsys, monkeypatch, kubeadm_node
):
    manifest = kubeadm_node / APISERVER
    before = manifest.read_bytes()
    calls = _failing_fsync_dir(monkeypatch, manifest.parent, times=1)
    code, out, _ = apply(capsys, kubeadm_node, "1.2.15")
    assert calls and code == 1
    assert "rolled back" in out and "fsync of the directory failed" in out
    assert manifest.read_bytes() == before
    settings = load_settings(root=kubeadm_node)
    assert Journal(settings.state_dir).open_transactions() == []
    (backup,) = BackupStore(settings.state_dir, settings.layout).list()
    assert backup.outcome == "rolled-back"


def test_a_directory_that_keeps_failing_fsync_ends_critical(capsys, monkeypatch, kubeadm_node):
    manifest = kubeadm_node / APISERVER
    _failing_fsync_dir(monkeypatch, manifest.parent, times=None)
    code, out, _ = apply(capsys, kubeadm_node, "1.2.15")
    assert code == 3 and "CRITICAL" in out and "cis-tui recover" in out


# ---- item 8 (offline part): recover leaves an edit made after cis-tui's write alone ------------


def test_recover_keeps_an_edit_made_after_cis_tuis_write(capsys, kubeadm_node):
    settings = load_settings(root=kubeadm_node)
    manifest = settings.layout.manifest("kube-scheduler")
    original = manifest.read_bytes()
    store = BackupStore(settings.state_dir, settings.layout)
    backup = store.create_file_backup(manifest, "kube-scheduler", ("1.4.1",), {})
    ours = original.replace(b"kube-scheduler\n", b"kube-scheduler\n    - --profiling=false\n", 1)
    journal = Journal(settings.state_dir)
    txid = journal.new_txid()
    journal.record(
        txid, "intent", backup_id=backup.id, path=str(manifest), component="kube-scheduler",
        pid=1, new_sha256=hashlib.sha256(ours).hexdigest(),
    )  # fmt: skip
    journal.record(txid, "written")
    theirs = ours.replace(b"--profiling=false\n", b"--profiling=false\n    - --v=4\n")
    manifest.write_bytes(theirs)
    code, out, _ = run_cli(capsys, "--root", str(kubeadm_node), "recover", "--yes")
    assert code == 3, out
    assert manifest.read_bytes() == theirs
    kept = [b for b in store.list() if b.outcome == "edited-by-someone-else"]
    assert len(kept) == 1 and store.original_bytes(kept[0]) == theirs
    assert kept[0].id in out and backup.id in out
    assert journal.open_transactions() == []


# ---- item 12: one-line errors, never a traceback -----------------------------------------------


def test_a_state_dir_that_is_a_file(capsys, kubeadm_node, tmp_path):
    state = tmp_path / "state"
    state.write_text("")
    code, _, err = apply(capsys, kubeadm_node, "--state-dir", str(state), "1.2.15")
    assert code == 2
    one_line_error(err, "not a directory")


def test_a_full_state_filesystem_while_taking_the_lock(kubeadm_node):
    manifest = kubeadm_node / APISERVER
    before = manifest.read_bytes()
    result = cli_subprocess(
        "--root", str(kubeadm_node), "apply", "--yes", "--no-health-gate", "1.2.15", fsize=1
    )
    assert result.returncode == 2, result.stdout + result.stderr
    one_line_error(result.stderr, "lock", "File too large")
    assert manifest.read_bytes() == before


def test_a_backup_whose_target_is_now_a_symlink(capsys, kubeadm_node, tmp_path):
    assert apply(capsys, kubeadm_node, "1.4.1")[0] == 0
    _, directory = _only_backup(kubeadm_node)
    scheduler = kubeadm_node / SCHEDULER
    elsewhere = kubeadm_node / "etc/kubernetes/scheduler-copy.yaml"
    scheduler.rename(elsewhere)
    scheduler.symlink_to(elsewhere)
    code, _, err = run_cli(
        capsys, "--root", str(kubeadm_node), "backups", "restore", directory.name, "--yes",
        "--no-health-gate",
    )  # fmt: skip
    assert code == 2
    one_line_error(err, "symlink")


def test_a_string_mode_in_backup_metadata(capsys, kubeadm_node):
    assert apply(capsys, kubeadm_node, "1.4.1")[0] == 0
    _, directory = _only_backup(kubeadm_node)
    _edit_meta(directory, mode="0644")
    code, out, _ = run_cli(capsys, "--root", str(kubeadm_node), "backups", "list")
    assert code == 0 and directory.name not in out
    for action in (["show"], ["restore", "--yes", "--no-health-gate"]):
        code, _, err = run_cli(
            capsys, "--root", str(kubeadm_node), "backups", action[0], directory.name, *action[1:]
        )
        assert code == 2
        one_line_error(err, "'mode' is not a number")


def test_garbage_journal_lines_are_skipped(capsys, kubeadm_node):
    state = kubeadm_node / "var/lib/cis-tui"
    state.mkdir(parents=True, mode=0o700)
    (state / "journal.jsonl").write_text(
        '{"txid": 5, "step": []}\n[1, 2]\n{"txid": "x", "step": "intent", "pid": "one"}\n\x00\n'
    )
    code, out, err = run_cli(capsys, "--root", str(kubeadm_node), "recover", "--yes")
    assert "Traceback" not in err
    assert code in (0, 3)  # the intent names no backup: reported, never a crash


def test_a_journal_that_is_a_directory(capsys, kubeadm_node):
    (kubeadm_node / "var/lib/cis-tui/journal.jsonl").mkdir(parents=True)
    (kubeadm_node / "var/lib/cis-tui").chmod(0o700)
    code, _, err = run_cli(capsys, "--root", str(kubeadm_node), "recover", "--yes")
    assert code == 2
    one_line_error(err, "journal.jsonl", "directory")


def test_a_refused_outcome_record_is_a_note_not_a_traceback(capsys, monkeypatch, kubeadm_node):
    def refuse(self, backup, outcome):
        raise PermissionError(errno.EPERM, "Operation not permitted", backup.directory)

    monkeypatch.setattr(BackupStore, "set_outcome", refuse)
    code, out, err = apply(capsys, kubeadm_node, "1.4.1")
    assert code == 0, err
    assert "could not record outcome 'committed'" in out and "Traceback" not in err
    assert b"--profiling=false" in (kubeadm_node / SCHEDULER).read_bytes()


@pytest.mark.parametrize(
    "command", [["recover", "--yes"], ["backups", "prune", "--keep", "5", "--yes"]]
)
def test_crash_leftovers_are_cleaned(capsys, kubeadm_node, command):
    settings = load_settings(root=kubeadm_node)
    store = BackupStore(settings.state_dir, settings.layout)
    manifest = settings.layout.manifest("kube-scheduler")
    stuck = store.create_file_backup(manifest, "kube-scheduler", ("1.4.1",), {})
    partial = store.root / ".20260101-000000-kube-scheduler-abcdef.partial"
    partial.mkdir(mode=0o700)
    (partial / "original").write_bytes(b"half")
    code, out, _ = run_cli(capsys, "--root", str(kubeadm_node), *command)
    assert code == 0, out
    assert not partial.exists()
    assert store.get(stuck.id).outcome == "aborted"
    assert "left pending by a crash" in out
