"""The node's versions (image tags, the running kubelet, [versions]) and what each version has:
checks whose flag, plugin or config field the version lacks are SKIP, naming the version."""

from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path

import pytest

from cis_tui.audit.evaluate import Status, evaluate
from cis_tui.audit.node import take_snapshot
from cis_tui.audit.processes import LiveProcess
from cis_tui.audit.versions import (
    KINDS,
    Version,
    facts,
    flag_table_for,
    image_version,
    missing,
    not_applicable,
    parse_version,
    read_versions,
    running_binary_version,
)
from cis_tui.benchmarks.catalog import load_catalog
from cis_tui.errors import UserError
from cis_tui.layout import load_settings
from tests.conftest import run_cli
from tests.realworld import materialize


@pytest.fixture(scope="module")
def trees(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The eleven real-world control-plane trees, with their modes."""
    return materialize(tmp_path_factory.mktemp("realworld"))


# -- reading versions ------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("component", "image", "expected"),
    [
        ("kube-apiserver", "registry.k8s.io/kube-apiserver:v1.32.1", (1, 32, 1)),
        ("kube-apiserver", "quay.io/coreos/hyperkube:v1.10.4_coreos.0", (1, 10, 4)),
        ("kube-apiserver", "gcr.io/google_containers/kube-apiserver-amd64:v1.8.1", (1, 8, 1)),
        ("kube-apiserver", "registry.local:5000/kube-apiserver:v1.29.4@sha256:abcd", (1, 29, 4)),
        ("etcd", "registry.k8s.io/etcd:3.5.16-0", (3, 5, 16)),
        ("etcd", "quay.io/coreos/etcd:v3.5.4", (3, 5, 4)),
        ("kube-apiserver", "registry.local:5000/kube-apiserver", None),  # a port, not a tag
        ("kube-apiserver", "registry.k8s.io/kube-apiserver:latest", None),
        ("kube-apiserver", "registry.k8s.io/kube-apiserver@sha256:abcd", None),
        ("kube-apiserver", "registry.k8s.io/etcd:3.5.16-0", None),  # not a Kubernetes version
    ],
)
def test_image_tags_give_the_component_version(component, image, expected):
    found = image_version(component, image)
    assert (None if found is None else (found.major, found.minor, found.patch)) == expected


def test_versions_compare_by_number_and_show_as_written():
    assert parse_version("v1.10.4_coreos.0") < parse_version("1.11") < Version(1, 11, 1)
    assert str(parse_version("v1.10.4_coreos.0")) == "v1.10.4_coreos.0"
    assert parse_version("latest") is None


@pytest.mark.parametrize(
    ("tree", "kubernetes", "etcd"),
    [
        ("t01-kubeadm116", "v1.16.2", "3.3.15-0"),
        ("t02-kubeadm111", "v1.11.2", "3.2.18"),
        ("t03-kubeadm18", "v1.8.1", None),  # no etcd manifest
        ("t05-kind132-cks", "v1.32.2", "3.5.16-0"),
        ("t08-homekube128-args", "v1.28.4", "v3.5.4"),
        ("t09-hyperkube110", "v1.10.4_coreos.0", None),
    ],
)
def test_real_world_trees_tell_their_versions(trees, tree, kubernetes, etcd):
    snap = take_snapshot(load_settings(root=trees / tree))
    assert str(snap.versions.kubernetes) == kubernetes
    assert snap.versions.kubernetes_source.startswith("kube-apiserver: image ")
    etcd_version = snap.versions.of("etcd")
    assert (None if etcd_version is None else str(etcd_version)) == etcd
    kubelet = snap.versions.get("kubelet")
    # No running kubelet under --root: the control plane's version, and said so.
    assert kubelet is not None and kubelet.assumed and str(kubelet.version) == kubernetes


def test_the_config_overrides_what_the_node_says(tmp_path, kubeadm_node):
    config = tmp_path / "config.toml"
    config.write_text('[versions]\nkubernetes = "v1.29.4"\nkubelet = "v1.28.9"\n')
    snap = take_snapshot(load_settings(config=config, root=kubeadm_node))
    assert str(snap.versions.kubernetes) == "v1.29.4"
    assert str(snap.versions.of("kube-apiserver")) == "v1.29.4"  # the image says v1.35.0
    assert str(snap.versions.of("kubelet")) == "v1.28.9"
    assert not snap.versions.get("kubelet").assumed
    assert str(snap.versions.of("etcd")) == "3.6.6-0"  # `kubernetes` is not etcd's version


@pytest.mark.parametrize(
    "table",
    ['[versions]\nkube-proxy = "v1.29.0"\n', '[versions]\nkubernetes = "new"\n', "versions = 3\n"],
)
def test_a_bad_versions_table_is_a_user_error(tmp_path, table):
    config = tmp_path / "config.toml"
    config.write_text(table)
    with pytest.raises(UserError):
        load_settings(config=config)


def _script(path: Path, version: str) -> Path:
    path.write_text(f"#!{sys.executable}\nprint('Kubernetes {version}')\n")
    path.chmod(0o755)
    return path


def test_the_kubelet_version_is_asked_of_the_binary_it_runs(tmp_path):
    binary = _script(tmp_path / "kubelet", "v1.30.2")
    started = time.time() + 5  # the script is older than the process
    proc = LiveProcess("kubelet", os.getpid(), (), started, binary=str(binary))
    version, source = running_binary_version(proc)
    assert str(version) == "v1.30.2" and "--version" in source
    found = read_versions({}, proc).get("kubelet")
    assert str(found.version) == "v1.30.2" and not found.assumed


def test_a_kubelet_binary_replaced_since_start_is_not_asked(tmp_path):
    binary = _script(tmp_path / "kubelet", "v1.31.0")  # upgraded after the process started
    proc = LiveProcess("kubelet", os.getpid(), (), time.time() - 60, binary=str(binary))
    version, source = running_binary_version(proc)
    assert version is None and "not the binary" in source


# -- the facts -------------------------------------------------------------------------------
def test_the_version_table_is_well_formed():
    rows = facts()
    assert rows and all(r.kind in KINDS and r.source for r in rows)
    for row in rows:
        assert row.since or row.removed, row
        if row.since and row.removed:
            assert row.since < row.removed, row
        if row.kind == "flag" and row.name not in flag_table_for(row.component, None):
            assert row.type, f"{row.name}: a flag gone from the v1.35 table needs its type"


def test_flag_tables_per_version():
    assert "--insecure-port" in flag_table_for("kube-apiserver", parse_version("v1.23.17"))
    assert flag_table_for("kube-apiserver", parse_version("v1.23.17"))["--insecure-port"].type == (
        "int"
    )
    assert "--insecure-port" not in flag_table_for("kube-apiserver", parse_version("v1.24.0"))
    old = flag_table_for("kube-apiserver", parse_version("v1.18.20"))
    assert "--service-account-extend-token-expiration" not in old
    assert "--pod-infra-container-image" in flag_table_for("kubelet", parse_version("v1.29.4"))
    assert "--pod-infra-container-image" not in flag_table_for("kubelet", parse_version("v1.35.0"))


def test_missing_names_the_version_and_the_release():
    why = missing("plugin", "kube-apiserver", "DenyServiceExternalIPs", parse_version("v1.20.4"))
    assert why == (
        "kube-apiserver v1.20.4 has no admission plugin DenyServiceExternalIPs (added in v1.21)"
    )
    assert missing("plugin", "kube-apiserver", "DenyServiceExternalIPs", Version(1, 21)) is None
    gone = missing("api", "kube-apiserver", "audit.k8s.io/v1beta1/Policy", Version(1, 24))
    assert gone and "removed in v1.24" in gone
    assert missing("plugin", "kube-apiserver", "PodSecurityPolicy", None) is None  # unknown


# -- SKIP: not applicable to the version -------------------------------------------------------
def test_checks_the_version_lacks_are_skip_naming_the_version(trees):
    snap = take_snapshot(load_settings(root=trees / "t01-kubeadm116"))
    results = {r.id: r for r in evaluate(load_catalog("cis-1.12"), snap)}
    assert results["1.2.30"].status is Status.SKIP
    assert results["1.2.30"].reason == (
        "not applicable: kube-apiserver v1.16.2 has no "
        "--service-account-extend-token-expiration (added in v1.19)"
    )
    assert results["1.2.3"].status is Status.SKIP and "v1.16.2" in results["1.2.3"].reason
    # the kubelet's version is not known under --root: SKIP says it is assumed
    assert results["4.2.14"].status is Status.SKIP
    assert "kubelet v1.16.2 (assumed" in results["4.2.14"].reason
    # what the version has is judged as before
    assert results["1.2.15"].status is Status.FAIL


def test_legacy_admission_control_keeps_plugin_checks_applicable(trees):
    """v1.8 has no --enable-admission-plugins, but --admission-control is its plugin list:
    NodeRestriction and EventRateLimit (alpha in 1.8) apply; DenyServiceExternalIPs (1.21) does
    not. Encryption at rest applies under its older name."""
    snap = take_snapshot(load_settings(root=trees / "t03-kubeadm18"))
    catalog = load_catalog("cis-1.12")
    assert not_applicable(catalog.get("1.2.14"), snap.versions) is None
    assert not_applicable(catalog.get("1.2.9"), snap.versions) is None
    assert "v1.8.1 has no admission plugin DenyServiceExternalIPs (added in v1.21)" in str(
        not_applicable(catalog.get("1.2.3"), snap.versions)
    )
    assert not_applicable(catalog.get("1.2.28"), snap.versions) is None
    results = {r.id: r for r in evaluate(catalog, snap, ["1.2.27", "1.2.28"])}
    assert results["1.2.27"].reason == (
        "file: --experimental-encryption-provider-config absent (kube-apiserver v1.8.1 names it so)"
    )


def test_a_current_node_skips_nothing_for_its_version(kubeadm_node):
    snap = take_snapshot(load_settings(root=kubeadm_node))
    results = evaluate(load_catalog("cis-2.0"), snap)
    assert not [r.id for r in results if "not applicable" in r.reason]


# -- shown in scan ------------------------------------------------------------------------------
def test_scan_json_and_table_show_the_versions(capsys, trees):
    _code, out, _err = run_cli(
        capsys, "--root", str(trees / "t05-kind132-cks"), "scan", "--format", "json"
    )
    doc = json.loads(out)
    versions = doc["node"]["versions"]
    assert versions["kubernetes"] == "v1.32.2"
    assert versions["components"]["etcd"] == {
        "version": "3.5.16-0",
        "source": "image registry.k8s.io/etcd:3.5.16-0",
        "assumed": False,
    }
    assert versions["components"]["kubelet"]["assumed"] is True
    _code, out, _err = run_cli(capsys, "--root", str(trees / "t05-kind132-cks"), "scan")
    first, second = out.splitlines()[:2]
    assert first.startswith("Kubernetes v1.32.2 (etcd 3.5.16-0, apiserver v1.32.2")
    assert "kubelet v1.32.2 (assumed)" in first
    assert second.startswith("cis-1.12: Kubernetes v1.32.2")


# -- a kubelet that is not running: the binary its unit starts -------------------------------
needs_root = pytest.mark.skipif(
    os.geteuid() != 0, reason="the binary must be root's to be run; run the tests as root"
)


def fake_kubelet(directory: Path, version: str = "v1.30.2") -> tuple[Path, Path]:
    """A kubelet binary that answers --version and leaves a mark that it was run."""
    directory.mkdir(mode=0o755, exist_ok=True)
    marker = directory / "was-run"
    binary = directory / "kubelet"
    binary.write_text(f'#!/bin/sh\ntouch "{marker}"\necho "Kubernetes {version}"\n')
    binary.chmod(0o755)
    return binary, marker


def test_the_unit_names_the_kubelet_binary(tmp_path):
    from cis_tui.audit.node import read_kubelet_unit_binary
    from tests.nodetree import build_kubeadm_tree

    build_kubeadm_tree(tmp_path)  # kubeadm's 10-kubeadm.conf: ExecStart= then /usr/bin/kubelet
    assert read_kubelet_unit_binary(load_settings(root=tmp_path).layout) == "/usr/bin/kubelet"


@needs_root
def test_a_stopped_kubelet_s_version_comes_from_the_binary_its_unit_starts(tmp_path):
    binary, marker = fake_kubelet(tmp_path / "bin")
    found = read_versions(
        {"kube-apiserver": "registry.k8s.io/kube-apiserver:v1.31.1"}, None, {}, (), str(binary)
    )
    kubelet = found.get("kubelet")
    assert kubelet.version == parse_version("v1.30.2") and not kubelet.assumed
    assert kubelet.source == f"{binary} --version (the binary kubelet.service starts)"
    assert marker.exists()


@needs_root
@pytest.mark.parametrize("weak", ["binary writable by others", "directory writable by others"])
def test_a_kubelet_binary_others_could_change_is_never_run(tmp_path, weak):
    binary, marker = fake_kubelet(tmp_path / "bin")
    if weak == "binary writable by others":
        binary.chmod(0o757)
    else:
        binary.parent.chmod(0o777)
    found = read_versions(
        {"kube-apiserver": "registry.k8s.io/kube-apiserver:v1.31.1"}, None, {}, (), str(binary)
    )
    kubelet = found.get("kubelet")
    assert kubelet.assumed and kubelet.version == parse_version("v1.31.1")  # the control plane's
    assert "not run" in kubelet.source
    assert not marker.exists(), "root ran a binary another user could have replaced"
