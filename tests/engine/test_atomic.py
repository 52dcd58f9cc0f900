"""Atomic writes: never half-written, mode and owner kept, nothing stray left behind."""

from __future__ import annotations

import errno
import os
import shutil
import subprocess

import pytest

from cis_tui.engine.atomic import AtomicWriteError, atomic_write, create_new


def listing(directory):
    return sorted(p.name for p in directory.iterdir())


def test_replaces_content_and_keeps_mode_and_owner(tmp_path):
    target = tmp_path / "kube-apiserver.yaml"
    target.write_text("old\n")
    target.chmod(0o600)
    if os.geteuid() == 0:
        os.chown(target, 1234, 5678)
    before = target.stat()
    atomic_write(target, b"new\n")
    after = target.stat()
    assert target.read_bytes() == b"new\n"
    assert (after.st_mode, after.st_uid, after.st_gid) == (
        before.st_mode,
        before.st_uid,
        before.st_gid,
    )
    assert after.st_ino != before.st_ino  # a rename, not an in-place rewrite
    assert listing(tmp_path) == ["kube-apiserver.yaml"]  # no temp file left


@pytest.mark.parametrize("err", [errno.ENOSPC, errno.EIO])
def test_write_failure_leaves_the_target_untouched(tmp_path, monkeypatch, err):
    target = tmp_path / "etcd.yaml"
    target.write_text("original\n")
    real_write = os.write

    def failing_write(fd, data):
        if ".cis-tui-" in os.readlink(f"/proc/self/fd/{fd}"):
            raise OSError(err, os.strerror(err))
        return real_write(fd, data)

    monkeypatch.setattr(os, "write", failing_write)
    with pytest.raises(AtomicWriteError) as info:
        atomic_write(target, b"x" * 10_000)
    assert os.strerror(err) in str(info.value)
    assert str(target) in str(info.value)
    monkeypatch.undo()
    assert target.read_text() == "original\n"
    assert listing(tmp_path) == ["etcd.yaml"]


def test_eacces_creating_the_temporary_file(tmp_path, monkeypatch):
    target = tmp_path / "etcd.yaml"
    target.write_text("original\n")
    real_open = os.open

    def denied(path, flags, mode=0o777, **kw):
        if os.path.basename(str(path)).startswith(".etcd.yaml.cis-tui-"):
            raise PermissionError(errno.EACCES, "Permission denied", str(path))
        return real_open(path, flags, mode, **kw)

    monkeypatch.setattr(os, "open", denied)
    with pytest.raises(AtomicWriteError, match="cannot create a temporary file: Permission denied"):
        atomic_write(target, b"new")
    monkeypatch.undo()
    assert target.read_text() == "original\n"


def test_symlinked_target_is_refused(tmp_path):
    real = tmp_path / "real.yaml"
    real.write_text("real\n")
    link = tmp_path / "kube-apiserver.yaml"
    link.symlink_to(real)
    with pytest.raises(AtomicWriteError, match="is a symlink"):
        atomic_write(link, b"new")
    assert real.read_text() == "real\n" and link.is_symlink()


@pytest.mark.skipif(os.geteuid() != 0 or not shutil.which("chattr"), reason="needs root and chattr")
def test_read_only_target(tmp_path):
    target = tmp_path / "kube-scheduler.yaml"
    target.write_text("original\n")
    if subprocess.run(["chattr", "+i", str(target)], capture_output=True).returncode != 0:
        pytest.skip("the filesystem does not support the immutable attribute")
    try:
        with pytest.raises(AtomicWriteError, match="Operation not permitted"):
            atomic_write(target, b"new")
        assert target.read_text() == "original\n"
    finally:
        subprocess.run(["chattr", "-i", str(target)], check=True)
    assert listing(tmp_path) == ["kube-scheduler.yaml"]


def test_read_only_directory_as_user(tmp_path):
    if os.geteuid() == 0:
        pytest.skip("root writes into a read-only directory")
    target = tmp_path / "m" / "x.yaml"
    target.parent.mkdir()
    target.write_text("original\n")
    target.parent.chmod(0o500)
    try:
        with pytest.raises(AtomicWriteError, match="Permission denied"):
            atomic_write(target, b"new")
    finally:
        target.parent.chmod(0o700)
    assert target.read_text() == "original\n"


def test_create_new_never_overwrites(tmp_path):
    policy = tmp_path / "etc/kubernetes/audit-policy.yaml"
    assert create_new(policy, b"policy\n", 0o600)
    assert policy.stat().st_mode & 0o777 == 0o600
    policy.write_text("the admin's own\n")
    assert not create_new(policy, b"policy\n", 0o600)
    assert policy.read_text() == "the admin's own\n"
    log_dir = tmp_path / "var/log/kubernetes/audit"
    assert create_new(log_dir, None, 0o700)
    assert log_dir.is_dir() and log_dir.stat().st_mode & 0o777 == 0o700
    assert not create_new(log_dir, None, 0o700)
