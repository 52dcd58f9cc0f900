"""Issue 15 item 1: one plan, one set of companion files for every node.

`plan --save PLAN --companions DIR` writes the companion files once (the encryption key 0600)
with their sha256 in the plan; `apply --plan PLAN --companions DIR` installs exactly those
bytes; a different existing file is a conflict (exit 2, never overwritten); a plan that needs a
secret companion is refused without its bundle.
"""

from __future__ import annotations

import hashlib
import json
import re
from pathlib import Path

import pytest

from tests.conftest import run_cli
from tests.nodetree import build_kubeadm_tree

ENC = "etc/kubernetes/enc/encryption-config.yaml"
APISERVER = "etc/kubernetes/manifests/kube-apiserver.yaml"


@pytest.fixture
def nodes(tmp_path: Path) -> list[Path]:
    return [build_kubeadm_tree(tmp_path / f"node{n}") for n in (1, 2)]


def save(capsys, root: Path, plan: Path, bundle: Path | None, *ids: str) -> tuple[int, str, str]:
    extra = ["--companions", str(bundle)] if bundle else []
    return run_cli(capsys, "--root", str(root), "plan", *ids, "--save", str(plan), *extra)


def apply(capsys, root: Path, plan: Path, bundle: Path | None) -> tuple[int, str, str]:
    extra = ["--companions", str(bundle)] if bundle else []
    return run_cli(
        capsys, "--root", str(root), "apply", "--plan", str(plan), *extra, "--yes",
        "--no-health-gate",
    )  # fmt: skip


def test_the_bundle_is_written_once_and_installed_byte_for_byte_on_every_node(
    capsys, nodes, tmp_path
):
    plan, bundle = tmp_path / "plan.yaml", tmp_path / "bundle"
    code, out, err = save(capsys, nodes[0], plan, bundle, "1.2.15", "1.2.27", "1.2.9")
    assert code == 0, err
    assert f"and 3 companion files to {bundle}" in out
    key = (bundle / "encryption-config.yaml").read_bytes()
    assert (bundle / "encryption-config.yaml").stat().st_mode & 0o777 == 0o600
    assert (bundle / "admission-config.yaml").stat().st_mode & 0o777 == 0o644
    assert bundle.stat().st_mode & 0o777 == 0o700
    text = plan.read_text()
    assert "apiVersion: cis-tui/v2" in text
    assert f'sha256: "{hashlib.sha256(key).hexdigest()}"' in text
    assert b"secret:" in key  # the key is in the bundle's file ...
    assert key.decode() not in text  # ... never in the plan
    for node in nodes:
        code, out, err = apply(capsys, node, plan, bundle)
        assert code == 0, out + err
        assert (node / ENC).read_bytes() == key
        assert (node / ENC).stat().st_mode & 0o777 == 0o600
        assert "the key of the companion bundle's encryption-config.yaml" in out
        assert "--encryption-provider-config=" in (node / APISERVER).read_text()
    # Applied again: nothing to do.
    code, out, err = apply(capsys, nodes[1], plan, bundle)
    assert (code, out.splitlines()[0]) == (0, "Nothing to change."), out + err


def test_without_its_bundle_a_plan_with_a_secret_is_refused_with_the_reason(
    capsys, nodes, tmp_path
):
    plan, bundle = tmp_path / "plan.yaml", tmp_path / "bundle"
    assert save(capsys, nodes[0], plan, bundle, "1.2.15", "1.2.27")[0] == 0
    before = (nodes[1] / APISERVER).read_bytes()
    code, out, err = apply(capsys, nodes[1], plan, None)
    assert code == 2
    assert "needs the shared key of 1.2.27 (encryption-config.yaml)" in err
    assert "--companions DIR" in err and "could not read each other's Secrets" in err
    assert (nodes[1] / APISERVER).read_bytes() == before
    assert not (nodes[1] / ENC).exists()
    # The same reason at `plan --plan` (what Ansible's check mode runs).
    code, _, err = run_cli(capsys, "--root", str(nodes[1]), "plan", "--plan", str(plan))
    assert code == 2 and "needs the shared key of 1.2.27" in err


def test_saving_a_plan_with_a_fresh_key_needs_companions(capsys, nodes, tmp_path):
    plan = tmp_path / "plan.yaml"
    code, out, err = save(capsys, nodes[0], plan, None, "1.2.15", "1.2.27")
    assert code == 2
    assert "1.2.27 (encryption-config.yaml) would generate a new key" in err
    assert "--companions DIR" in err
    assert not plan.exists()
    # A plan without secrets is saved as before, in the v1 format.
    assert save(capsys, nodes[0], plan, None, "1.2.15")[0] == 0
    assert "apiVersion: cis-tui/v1" in plan.read_text()
    assert "companions" not in plan.read_text().split("kind:")[1]


def test_an_existing_different_file_is_a_conflict_and_is_never_overwritten(capsys, nodes, tmp_path):
    plan, bundle = tmp_path / "plan.yaml", tmp_path / "bundle"
    assert save(capsys, nodes[0], plan, bundle, "1.2.15", "1.2.27")[0] == 0
    theirs = nodes[1] / ENC
    theirs.parent.mkdir(parents=True)
    theirs.write_bytes(b"someone else's key\n")
    before = (nodes[1] / APISERVER).read_bytes()
    code, out, err = apply(capsys, nodes[1], plan, bundle)
    assert code == 2
    assert err == (
        f"cis-tui: error: {theirs}: exists and differs from encryption-config.yaml of the "
        "companion bundle; it is never overwritten: compare the two, keep one on every node\n"
    )
    assert theirs.read_bytes() == b"someone else's key\n"
    assert (nodes[1] / APISERVER).read_bytes() == before
    # An identical file is fine: it is used, not written again.
    theirs.write_bytes((bundle / "encryption-config.yaml").read_bytes())
    code, out, err = apply(capsys, nodes[1], plan, bundle)
    assert code == 0, out + err
    assert "enc/encryption-config.yaml (new file" not in out
    assert "--encryption-provider-config=" in (nodes[1] / APISERVER).read_text()


@pytest.mark.parametrize(
    ("damage", "message"),
    [
        (lambda b: (b / "encryption-config.yaml").write_text("x"), "does not match the plan's"),
        (lambda b: (b / "encryption-config.yaml").unlink(), "missing: the plan's 1.2.27 needs it"),
        (
            lambda b: (
                (b / "encryption-config.yaml").rename(b / "real"),
                (b / "encryption-config.yaml").symlink_to(b / "real"),
            ),
            "is a symlink",
        ),
    ],
)
def test_a_bundle_that_does_not_match_its_plan_is_refused(capsys, nodes, tmp_path, damage, message):
    plan, bundle = tmp_path / "plan.yaml", tmp_path / "bundle"
    assert save(capsys, nodes[0], plan, bundle, "1.2.15", "1.2.27")[0] == 0
    damage(bundle)
    code, _, err = apply(capsys, nodes[1], plan, bundle)
    assert code == 2 and message in err, err
    assert not (nodes[1] / ENC).exists()


def test_the_companion_list_is_covered_by_the_checksum(capsys, nodes, tmp_path):
    plan, bundle = tmp_path / "plan.yaml", tmp_path / "bundle"
    assert save(capsys, nodes[0], plan, bundle, "1.2.15", "1.2.27")[0] == 0
    text = plan.read_text()
    plan.write_text(text.replace("secret: true", "secret: false"))
    code, _, err = apply(capsys, nodes[1], plan, bundle)
    assert code == 2 and "checksum mismatch" in err
    # A v1 plan never has companions: a v2 plan relabelled v1 is refused.
    plan.write_text(text.replace("cis-tui/v2", "cis-tui/v1"))
    code, _, err = apply(capsys, nodes[1], plan, bundle)
    assert code == 2 and "a cis-tui/v1 plan has no companion files" in err


def test_saving_into_a_bundle_with_other_content_is_refused(capsys, nodes, tmp_path):
    plan, bundle = tmp_path / "plan.yaml", tmp_path / "bundle"
    assert save(capsys, nodes[0], plan, bundle, "1.2.27")[0] == 0
    first = (bundle / "encryption-config.yaml").read_bytes()
    code, _, err = save(capsys, nodes[0], tmp_path / "again.yaml", bundle, "1.2.27")
    assert code == 2 and "exists with other content; choose an empty directory" in err
    assert (bundle / "encryption-config.yaml").read_bytes() == first
    assert not (tmp_path / "again.yaml").exists()


def test_companions_need_save_or_plan(capsys, nodes, tmp_path):
    code, _, err = run_cli(
        capsys, "--root", str(nodes[0]), "plan", "1.2.15", "--companions", str(tmp_path)
    )
    assert code == 2 and "--companions goes with --save" in err
    code, _, err = run_cli(
        capsys, "--root", str(nodes[0]), "apply", "1.2.15", "--yes", "--no-health-gate",
        "--companions", str(tmp_path),
    )  # fmt: skip
    assert code == 2 and "--companions goes with --plan" in err


def test_plan_format_json_describes_each_file_and_withholds_the_key(capsys, nodes, tmp_path):
    plan, bundle = tmp_path / "plan.yaml", tmp_path / "bundle"
    assert save(capsys, nodes[0], plan, bundle, "1.2.15", "1.2.27")[0] == 0
    code, out, err = run_cli(
        capsys, "--root", str(nodes[1]), "plan", "--plan", str(plan), "--companions",
        str(bundle), "--format", "json",
    )  # fmt: skip
    assert code == 0, err
    doc = json.loads(out)
    assert doc["checks"] == ["1.2.15", "1.2.27"]
    (file,) = doc["files"]
    assert file["component"] == "kube-apiserver" and file["checks"] == ["1.2.15", "1.2.27"]
    (comp,) = file["companions"]
    assert comp["name"] == "encryption-config.yaml" and comp["secret"] and comp["shared"]
    key = (bundle / "encryption-config.yaml").read_text()
    secret = re.search(r"secret: (\S+)", key)
    assert secret and secret[1] not in out
    assert "+    - --profiling=false" in file["diff"]
