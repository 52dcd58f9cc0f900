"""CIS 1.10, 1.11 and 2.0 as overlays on cis-1.12, and which one a node gets (kube-bench's
mapping of its Kubernetes minor; --benchmark and the config file win)."""

from __future__ import annotations

import json
from importlib import resources
from pathlib import Path

import pytest

from cis_tui.benchmarks.catalog import CatalogError, _overlay, load_catalog
from cis_tui.benchmarks.selection import DEFAULT_BENCHMARK, choose_benchmark, shipped_benchmarks
from tests.conftest import run_cli, scan_json
from tests.nodetree import write

CBC = {
    "TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA",
    "TLS_ECDHE_ECDSA_WITH_AES_256_CBC_SHA",
    "TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA",
    "TLS_ECDHE_RSA_WITH_AES_256_CBC_SHA",
}
STATIC_RSA = {"TLS_RSA_WITH_AES_256_GCM_SHA384", "TLS_RSA_WITH_AES_128_GCM_SHA256"}


def test_every_benchmark_is_shipped_with_kube_bench_check_counts():
    """Sections 1, 2 and 4: 90, 93, 92, 92 checks (benchmark-versions.md, b)."""
    assert shipped_benchmarks() == ("cis-1.10", "cis-1.11", "cis-1.12", "cis-2.0")
    counts = {b: len(load_catalog(b).checks) for b in shipped_benchmarks()}
    assert counts == {"cis-1.10": 90, "cis-1.11": 93, "cis-1.12": 92, "cis-2.0": 92}
    for benchmark in shipped_benchmarks():
        catalog = load_catalog(benchmark)
        assert catalog.benchmark == benchmark
        ids = [tuple(int(p) for p in c.id.split(".")) for c in catalog.checks]
        assert ids == sorted(ids), f"{benchmark}: checks out of benchmark order"


def test_the_overlays_are_small_patches_not_copies():
    base = (resources.files("cis_tui.benchmarks") / "cis-1.12.yaml").read_text()
    for name in ("cis-1.10", "cis-1.11", "cis-2.0"):
        text = (resources.files("cis_tui.benchmarks") / f"{name}.yaml").read_text()
        assert "\nbase: cis-1." in text and "\nsource: aquasecurity/kube-bench@" in text
        assert len(text) < len(base) / 10


def test_cis_1_11_differs_from_1_12_as_kube_bench_encodes_them():
    v11, v12 = load_catalog("cis-1.11"), load_catalog("cis-1.12")
    allowed_11 = set(v11.get("1.2.29").audit.tests[0].value)
    allowed_12 = set(v12.get("1.2.29").audit.tests[0].value)
    assert allowed_11 - allowed_12 == CBC and len(allowed_11) == 15 and len(allowed_12) == 11
    kubelet_11 = set(v11.get("4.2.12").audit.tests[0].value)
    assert kubelet_11 - set(v12.get("4.2.12").audit.tests[0].value) == STATIC_RSA
    assert len(kubelet_11) == 8
    extra = v11.get("4.2.15")  # IPAddressDeny: a systemd setting, never a kubelet flag
    assert extra.audit.type == "manual" and not extra.remediation.available
    assert "4.2.15" not in v12.by_id
    # the fix keeps setting the strong list, which passes both versions
    assert v11.get("1.2.29").remediation == v12.get("1.2.29").remediation
    unchanged = [c.id for c in v12.checks if c.id not in {"1.2.29", "4.2.12"}]
    assert all(v11.get(i) == v12.get(i) for i in unchanged)


def test_cis_1_10_is_1_11_without_the_new_checks_and_with_600_modes():
    v10 = load_catalog("cis-1.10")
    assert not {"1.2.30", "4.2.14", "4.2.15"} & set(v10.by_id)
    for check_id in ("1.1.20", "4.1.7"):
        check = v10.get(check_id)
        assert check.audit.max_mode == 0o600 and "600" in check.title
        assert check.remediation.edits[0].mode == "600"
        assert load_catalog("cis-1.11").get(check_id).audit.max_mode == 0o644
    assert set(v10.get("1.2.29").audit.tests[0].value) >= CBC  # as 1.11


def test_cis_2_0_changes_only_one_remediation_text():
    v12, v20 = load_catalog("cis-1.12"), load_catalog("cis-2.0")
    changed = [c.id for c in v12.checks if c != v20.get(c.id)]
    assert changed == ["1.2.29"]
    assert v20.get("1.2.29").audit == v12.get("1.2.29").audit
    assert v20.get("1.2.29").remediation.summary != v12.get("1.2.29").remediation.summary


def test_a_bad_overlay_is_refused():
    base = {"benchmark": "cis-x", "checks": [{"id": "1.1.1", "title": "t"}]}
    with pytest.raises(CatalogError, match=r"no check 9\.9"):
        _overlay(base, {"benchmark": "o", "title": "o", "patch": {"9.9": {"title": "x"}}}, "o")
    with pytest.raises(CatalogError, match="no field"):
        _overlay(base, {"benchmark": "o", "title": "o", "patch": {"1.1.1": {"nope.x": 1}}}, "o")
    with pytest.raises(CatalogError, match="already in the base"):
        _overlay(base, {"benchmark": "o", "title": "o", "add": [{"id": "1.1.1"}]}, "o")


# -- which benchmark ---------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("minor", "benchmark"),
    [
        ((1, 28), "cis-1.10"),
        ((1, 29), "cis-1.11"),
        ((1, 30), "cis-1.11"),
        ((1, 31), "cis-1.11"),
        ((1, 32), "cis-1.12"),
        ((1, 33), "cis-1.12"),
        ((1, 34), "cis-2.0"),
        ((1, 35), "cis-2.0"),
        ((1, 36), "cis-2.0"),  # newer: the newest, as kube-bench decrements the minor
    ],
)
def test_kube_bench_mapping_per_version(minor, benchmark):
    choice = choose_benchmark(None, "", minor, f"v{minor[0]}.{minor[1]}.0", "image x")
    assert choice.benchmark == benchmark and choice.warning is None
    assert choice.chosen_by.startswith(f"Kubernetes v{minor[0]}.{minor[1]}.0 (image x)")


def test_a_version_older_than_every_benchmark_uses_the_oldest_with_a_warning():
    choice = choose_benchmark(None, "", (1, 16), "v1.16.2", "image x")
    assert choice.benchmark == "cis-1.10"
    assert choice.warning and "older than every shipped benchmark" in choice.warning


def test_an_explicit_benchmark_wins_and_unknown_uses_the_default():
    assert choose_benchmark("cis-1.11", "--benchmark", (1, 35)).benchmark == "cis-1.11"
    unknown = choose_benchmark(None, "", None, "", "unknown: no manifest")
    assert unknown.benchmark == DEFAULT_BENCHMARK
    assert "unknown" in unknown.chosen_by and "--benchmark" in unknown.chosen_by


def _with_image(node: Path, version: str) -> Path:
    manifest = node / "etc/kubernetes/manifests/kube-apiserver.yaml"
    write(manifest, manifest.read_text().replace(":v1.35.0", f":{version}"), 0o600)
    return node


@pytest.mark.parametrize(
    ("version", "benchmark", "checks"),
    [("v1.28.9", "cis-1.10", 90), ("v1.30.2", "cis-1.11", 93), ("v1.33.1", "cis-1.12", 92)],
)
def test_scan_picks_the_benchmark_from_the_node(capsys, kubeadm_node, version, benchmark, checks):
    doc = scan_json(capsys, _with_image(kubeadm_node, version))
    assert doc["benchmark"] == benchmark and len(doc["results"]) == checks
    assert doc["benchmark_chosen_by"] == (
        f"Kubernetes {version} (kube-apiserver: image registry.k8s.io/kube-apiserver:{version}): "
        f"kube-bench maps {version[1:5]} to it"
    )


def test_benchmark_option_and_config_override_the_node(capsys, kubeadm_node, tmp_path):
    doc = scan_json(capsys, kubeadm_node, "--benchmark", "cis-1.11")
    assert doc["benchmark"] == "cis-1.11" and doc["benchmark_chosen_by"] == "--benchmark"
    config = tmp_path / "config.toml"
    config.write_text('benchmark = "cis-1.10"\n')
    code, out, _err = run_cli(
        capsys, "--config", str(config), "--root", str(kubeadm_node), "scan", "--format", "json"
    )
    doc = json.loads(out)
    assert doc["benchmark"] == "cis-1.10" and str(config) in doc["benchmark_chosen_by"]
    code, out, _err = run_cli(
        capsys, "--config", str(config), "--root", str(kubeadm_node), "--benchmark", "cis-2.0",
        "scan", "--format", "json",
    )  # fmt: skip
    assert json.loads(out)["benchmark"] == "cis-2.0"


def test_an_old_node_is_scanned_with_the_oldest_benchmark_and_a_warning(capsys, kubeadm_node):
    code, out, err = run_cli(
        capsys, "--root", str(_with_image(kubeadm_node, "v1.25.3")), "scan", "--format", "json"
    )
    assert json.loads(out)["benchmark"] == "cis-1.10"
    assert err.startswith("cis-tui: warning: Kubernetes v1.25.3 is older than every shipped")
