"""Shared fixtures: kubeadm node trees in temporary directories, an isolated environment."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from cis_tui.cli import main
from tests.hostile import attacker  # noqa: F401  (a fixture: a real unprivileged user)
from tests.nodetree import build_kubeadm_tree


@pytest.fixture(autouse=True)
def _isolated_env(tmp_path_factory, monkeypatch):
    """No test reads the developer's config or writes to their state dir."""
    home = tmp_path_factory.mktemp("home")
    monkeypatch.setenv("XDG_CONFIG_HOME", str(home / "config"))
    monkeypatch.setenv("XDG_STATE_HOME", str(home / "state"))
    monkeypatch.setenv("XDG_CACHE_HOME", str(home / "cache"))
    monkeypatch.delenv("CIS_TUI_CONFIG", raising=False)
    monkeypatch.delenv("CIS_TUI_STATE_DIR", raising=False)


@pytest.fixture
def kubeadm_node(tmp_path) -> Path:
    """A fresh kubeadm node's files under a temporary root."""
    return build_kubeadm_tree(tmp_path / "node")


@pytest.fixture
def hardened_node(tmp_path) -> Path:
    return build_kubeadm_tree(tmp_path / "hardened", hardened=True)


def run_cli(capsys, *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def scan_json(capsys, root: Path, *extra: str) -> dict:
    code, out, err = run_cli(capsys, "--root", str(root), "scan", "--format", "json", *extra)
    assert err == "", err
    doc = json.loads(out)
    doc["exit_code"] = code
    return doc
