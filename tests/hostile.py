"""A real non-root local user for attack tests: created when the tests run as root."""

from __future__ import annotations

import os
import pwd
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

ATTACKER = "cistui-attacker"
#: An interpreter any user may run (the test's own may live in root's home).
SYSTEM_PYTHON = next(
    (p for p in ("/usr/bin/python3", "/usr/local/bin/python3") if os.access(p, os.X_OK)), "python3"
)


@dataclass(frozen=True)
class Attacker:
    name: str
    uid: int
    gid: int
    home: Path  # a directory the attacker owns, reachable by them (under /tmp)

    def run(self, argv: list[str], **kwargs) -> subprocess.CompletedProcess[str]:
        """Run a command as the attacker (real uid, gid and no supplementary groups)."""
        cmd = ["setpriv", f"--reuid={self.uid}", f"--regid={self.gid}", "--clear-groups", *argv]
        return subprocess.run(cmd, capture_output=True, text=True, timeout=60, **kwargs)

    def python(self, code: str) -> subprocess.CompletedProcess[str]:
        result = self.run([SYSTEM_PYTHON, "-c", code], cwd=self.home)
        assert result.returncode == 0, result.stderr
        return result


def _ensure_user() -> pwd.struct_passwd:
    try:
        return pwd.getpwnam(ATTACKER)
    except KeyError:
        pass
    subprocess.run(
        ["useradd", "--system", "--no-create-home", "--shell", "/usr/sbin/nologin", ATTACKER],
        check=True,
        capture_output=True,
    )
    return pwd.getpwnam(ATTACKER)


@pytest.fixture
def attacker() -> Iterator[Attacker]:
    """A real unprivileged user with a directory of their own (skips unless root)."""
    if os.geteuid() != 0:
        pytest.skip("needs root to create and impersonate a second, unprivileged user")
    if shutil.which("setpriv") is None or shutil.which("useradd") is None:
        pytest.skip("needs setpriv and useradd (util-linux, passwd) to act as another user")
    entry = _ensure_user()
    home = Path(tempfile.mkdtemp(prefix="cistui-attacker-", dir="/tmp"))
    os.chown(home, entry.pw_uid, entry.pw_gid)
    home.chmod(0o755)
    try:
        yield Attacker(ATTACKER, entry.pw_uid, entry.pw_gid, home)
    finally:
        shutil.rmtree(home, ignore_errors=True)
