"""The wizard's everyday keys in a real terminal, at 80x24 and 120x40 (issue 12, item 7)."""

from __future__ import annotations

import itertools
import re
import shlex

import pytest

from tests.e2e.test_demo_tmux import Pane, assert_cleaned_up, demo_command


def details_id(text: str) -> str | None:
    """The id of the check the details pane shows (the line above its "expected" row)."""
    lines = text.splitlines()
    for above, line in itertools.pairwise(lines):
        if line.lstrip().startswith("expected "):
            found = re.search(r"\b(\d+\.\d+\.\d+)\b", above)
            return found.group(1) if found else None
    return None


@pytest.mark.parametrize("size", [(80, 24), (120, 40)])
def test_footer_home_end_help_and_confirm_keys(tmp_path, size):
    tmpdir = tmp_path / "tmp"
    tmpdir.mkdir()
    pane = Pane(tmp_path)
    try:
        pane.start(demo_command(tmpdir), size=size)
        pane.wait_for(r"\d+/92 checks", timeout=90)
        footer = pane.text().rstrip("\n").splitlines()[-1]
        for key in ("Select", "Plan", "Search", "Rescan", "Backups", "Quit", "Help", "palette"):
            assert key in footer, f"{key!r} is cut from the footer: {footer!r}"

        # End and Home move the table's cursor: the details pane follows it.
        text = pane.wait_until(lambda text: details_id(text) is not None, "the details pane")
        top = details_id(text)
        pane.keys("End")
        pane.wait_until(lambda text: details_id(text) not in (None, top), "End moves the cursor")
        pane.keys("Home")
        pane.wait_until(lambda text: details_id(text) == top, "Home moves the cursor back")

        # Help: the key column is wide enough for its longest keys.
        pane.keys("F1")
        pane.wait_for(r"Checks", timeout=10)
        pane.keys("End")  # the help scrolls
        pane.wait_for(r"tab, shift\+tab +Next", timeout=10)  # keys and text never run together
        assert "Close" in pane.text().rstrip("\n").splitlines()[-1]  # the help's own keys
        pane.keys("Escape")  # (a key sent right behind escape would read as alt+key)
        pane.wait_until(lambda text: "Moving around" not in text, "escape closes the help")

        # Select every fixable failing check with one key, and unselect them again.
        pane.keys("f")
        pane.wait_for(r"checks · failing")
        pane.keys("a")
        pane.wait_for(r"\d+ selected")
        pane.keys("a")
        pane.wait_until(lambda text: "selected" not in text.splitlines()[1], "a unselects")
        pane.keys("f")
        pane.wait_for(r"checks · all")

        # The palette jumps to a check by id.
        pane.keys("C-p")
        pane.wait_for(r"Search for commands|search", timeout=10)
        pane.keys("4.1.9", literal=True)
        pane.wait_for(r"Go to 4\.1\.9")
        pane.keys("Enter")
        pane.wait_until(lambda text: details_id(text) == "4.1.9", "the palette goes to 4.1.9")

        # The confirmation dialog shows its own keys, not the plan screen's.
        pane.search("1.4.1")
        pane.keys("p")
        pane.wait_for(r"Plan: fixes 1\.4\.1")
        pane.keys("a")
        pane.wait_for(r"Apply this plan\?")
        footer = pane.text().rstrip("\n").splitlines()[-1]
        assert "Yes" in footer and "No" in footer and "Apply" not in footer, footer
        pane.keys("n")
        pane.wait_for(r"Plan: fixes 1\.4\.1")
        pane.keys("Escape")
        pane.wait_until(lambda text: "Plan: fixes" not in text, "escape closes the plan")
        pane.keys("q")
        pane.wait_for(r"EXIT=0", timeout=60)
    finally:
        pane.kill()
    assert_cleaned_up(tmpdir)


def test_the_stray_backup_scenario_names_its_cause(tmp_path):
    """`kube-apiserver.yaml.bak` in the manifests directory is what runs: the wizard says so
    on its first screen, with the way out, at 80x24."""
    tmpdir = tmp_path / "tmp"
    tmpdir.mkdir()
    pane = Pane(tmp_path)
    command = demo_command(tmpdir).replace(" demo;", " demo --scenario stray-backup;")
    try:
        pane.start(command, size=(80, 24))
        pane.wait_for(r"\d+/92 checks", timeout=90)
        # the bar is drawn once the scan's findings are in, which may be a frame later
        text = pane.wait_until(
            lambda screen: "second kube-apiserver pod" in " ".join(screen.split()),
            "the stray-backup bar",
        )
        text = " ".join(text.split())
        assert "kube-apiserver.yaml.bak" in text and "mv " in text, text
        pane.keys("q")
        pane.wait_for(r"EXIT=\d", timeout=60)
    finally:
        pane.kill()
    assert_cleaned_up(tmpdir)


@pytest.mark.parametrize("size", [(80, 24), (120, 40)])
def test_the_header_names_a_real_world_tree_s_version_and_its_refused_pod(tmp_path, size):
    """The wizard on a copied node: the header shows the Kubernetes version its images carry,
    and the bar above the table says the kubelet refuses its API server pod (tree t11)."""
    from tests.realworld import materialize

    tree = materialize(tmp_path / "trees", "t11-kubeadm121-enc") / "t11-kubeadm121-enc"
    tmpdir = tmp_path / "tmp"
    tmpdir.mkdir()
    command = demo_command(tmpdir).replace(" demo;", f" --root {shlex.quote(str(tree))};")
    pane = Pane(tmp_path)
    try:
        pane.start(command, size=size)
        pane.wait_for(r"\d+/90 checks", timeout=90)
        header = pane.text().splitlines()[0]
        assert "cis-1.10 · Kubernetes v1.21.0 · " in header, header
        pane.wait_for(r"the kubelet refuses to run\s+this pod")
        pane.keys("C-q")
        pane.wait_for(r"EXIT=\d")
    finally:
        pane.kill()
