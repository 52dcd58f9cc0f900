"""Plans on the real-world trees add only what each component's version has: every new flag,
admission plugin, cipher suite name, kubelet config field and companion apiVersion is checked
against the versioned flag data, and companion files use paths the node has."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from cis_tui.audit.evaluate import Status, evaluate
from cis_tui.audit.flags import parse_args, split_list
from cis_tui.audit.node import NodeSnapshot, parse_manifest, take_snapshot
from cis_tui.audit.versions import api_version_of, flag_table_for, has, with_benchmark
from cis_tui.benchmarks.catalog import load_catalog
from cis_tui.layout import load_settings
from cis_tui.remediate.plan import Plan, build_plan
from cis_tui.safeyaml import load
from tests.conftest import run_cli
from tests.realworld import materialize

TREES = (
    "t01-kubeadm116",
    "t02-kubeadm111",
    "t03-kubeadm18",
    "t04-kubeadm114-psp",
    "t05-kind132-cks",
    "t06-kubeadm126-kg",
    "t07-kubeadm128-cksprep",
    "t08-homekube128-args",
    "t09-hyperkube110",
    "t10-kubeadm125-otel",
    "t11-kubeadm121-enc",
)
PLUGIN_LISTS = ("--enable-admission-plugins", "--disable-admission-plugins", "--admission-control")


@pytest.fixture(scope="module")
def trees(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return materialize(tmp_path_factory.mktemp("realworld"))


def plan_everything(root: Path) -> tuple[NodeSnapshot, Plan]:
    """The plan for every failing check with a fix (manual ones too), on the benchmark the
    node's version gets, as `cis-tui plan ID...` would build it."""
    settings = load_settings(root=root)
    snap = take_snapshot(settings)
    settings, _warning = with_benchmark(settings, snap.versions)
    catalog = load_catalog(settings.benchmark)
    ids = [
        r.id
        for r in evaluate(catalog, snap)
        if r.status in (Status.FAIL, Status.WARN) and r.check.remediation.available
    ]
    return snap, build_plan(catalog, snap, ids)


def version_problems(snap: NodeSnapshot, plan: Plan) -> list[str]:
    """What a plan adds that the component's version does not have."""
    problems: list[str] = []
    for file in plan.files:
        component = file.component
        version = snap.versions.of(component)
        if file.kind == "manifest":
            assert file.old_text is not None and file.new_text is not None and file.path
            table = flag_table_for(component, version)
            old = parse_args(
                component, parse_manifest(file.old_text, file.path, component).argv, table
            )
            new = parse_args(component, parse_manifest(file.new_text, file.path, component).argv, table)  # fmt: skip
            problems += [f"{component} {version}: {u}" for u in set(new.unknown) - set(old.unknown)]
            for flag in PLUGIN_LISTS:
                added = set(split_list(new.get(flag) or "")) - set(split_list(old.get(flag) or ""))
                problems += [
                    f"{component} {version}: plugin {p}"
                    for p in added
                    if not has("plugin", component, p, version)
                ]
            if new.get("--admission-control") is not None and any(
                new.get(f) is not None for f in PLUGIN_LISTS[:2]
            ):
                problems.append(f"{component}: --admission-control next to the plugin flags")
            added = set(split_list(new.get("--tls-cipher-suites") or "")) - set(
                split_list(old.get("--tls-cipher-suites") or "")
            )
            problems += [
                f"{component} {version}: cipher {c}"
                for c in added
                if not has("cipher", component, c, version)
            ]
        elif file.kind == "kubelet-config":
            assert file.old_text is not None and file.new_text is not None
            added_keys = set(load(file.new_text)) - set(load(file.old_text))
            problems += [
                f"kubelet {version}: field {k}"
                for k in added_keys
                if not has("config", "kubelet", k, version)
            ]
        for companion in file.companions:
            if companion.content is not None:
                api = api_version_of(companion.content.decode())
                if api and not has("api", component, api, version):
                    problems.append(f"{component} {version}: {companion.node_path} is {api}")
    return problems


@pytest.mark.parametrize("tree", TREES)
def test_plans_add_only_what_the_version_has(trees, tree):
    snap, plan = plan_everything(trees / tree)
    if tree == "t11-kubeadm121-enc":  # its only manifest is one the kubelet refuses to run
        assert not plan.files
        assert all("the kubelet refuses to run" in s.reason for s in plan.skipped)
        return
    assert plan.files, f"{tree}: nothing planned at all"
    assert version_problems(snap, plan) == []


def _skipped(plan: Plan) -> dict[str, str]:
    return {s.check_id: s.reason for s in plan.skipped}


def _new_args(plan: Plan, component: str) -> list[str]:
    file = next(f for f in plan.files if f.component == component and f.kind == "manifest")
    assert file.new_text is not None and file.path is not None
    return list(parse_manifest(file.new_text, file.path, component).argv)


def test_an_old_api_server_gets_no_flag_or_plugin_from_a_later_release(trees):
    snap, plan = plan_everything(trees / "t01-kubeadm116")  # v1.16.2
    args = _new_args(plan, "kube-apiserver")
    assert not any(a.startswith("--service-account-extend-token-expiration") for a in args)
    plugins = next(a for a in args if a.startswith("--enable-admission-plugins="))
    assert "DenyServiceExternalIPs" not in plugins and "AlwaysPullImages" in plugins
    ciphers = split_list(next(a for a in args if a.startswith("--tls-cipher-suites=")))
    assert ciphers and not [c for c in ciphers if c.startswith("TLS_AES_")]  # no TLS 1.3 names
    skipped = _skipped(plan)
    assert "1.2.30" not in plan.checks and "1.2.3" not in plan.checks  # SKIP on this version
    assert skipped["1.2.9"].endswith(
        "kube-apiserver v1.16.2 has no apiserver.config.k8s.io/v1/AdmissionConfiguration "
        "(added in v1.17)"
    )


def test_audit_policy_apiversion_the_version_does_not_have_is_not_planned(trees):
    _snap, plan = plan_everything(trees / "t02-kubeadm111")  # v1.11.2
    assert "1.2.16" not in plan.checks
    assert "has no audit.k8s.io/v1/Policy (added in v1.12)" in _skipped(plan)["1.2.16"]


def test_legacy_admission_control_takes_the_plugin_and_never_sits_next_to_the_new_flag(trees):
    _snap, plan = plan_everything(trees / "t03-kubeadm18")  # v1.8.1, --admission-control
    args = _new_args(plan, "kube-apiserver")
    assert not any(
        a.startswith(("--enable-admission-plugins", "--disable-admission")) for a in args
    )
    legacy = next(a for a in args if a.startswith("--admission-control="))
    assert legacy.endswith(",ResourceQuota,AlwaysPullImages")  # appended, nothing else moved
    file = next(f for f in plan.files if f.component == "kube-apiserver")
    assert any("--admission-control" in n for n in file.notes)


def test_companion_paths_are_the_ones_the_node_has(trees):
    """The hyperkube node keeps its CA in /etc/kubernetes/ssl/ca.pem: the fix names that, not
    kubeadm's /etc/kubernetes/pki/ca.crt; etcd client files that exist nowhere are not planned."""
    _snap, plan = plan_everything(trees / "t09-hyperkube110")
    args = _new_args(plan, "kube-apiserver")
    assert "--kubelet-certificate-authority=/etc/kubernetes/ssl/ca.pem" in args
    assert not any("/etc/kubernetes/pki" in a for a in args)
    skipped = _skipped(plan)
    assert skipped["1.2.23"].startswith("--etcd-certfile=/etc/kubernetes/pki/apiserver-etcd-client")
    assert "no such file on this node" in skipped["1.2.23"]


def test_etcd_flags_next_to_its_config_file_are_not_planned(trees, tmp_path):
    """etcd given --config-file ignores its other flags: a flag would fix nothing."""
    root = tmp_path / "t08"
    shutil.copytree(trees / "t08-homekube128-args", root, symlinks=True)
    conf = root / "etc/kubernetes/etcd.conf.yaml"
    conf.write_text(conf.read_text().replace("client-cert-auth: true", "client-cert-auth: false"))
    _snap, plan = plan_everything(root)
    assert not [f for f in plan.files if f.component == "etcd" and f.kind == "manifest"]
    assert "--config-file" in _skipped(plan)["2.2"]


def test_the_kubeadm_default_node_is_still_fixed_offline(capsys, kubeadm_node, tmp_path):
    state = tmp_path / "state"
    code, out, _err = run_cli(
        capsys, "--root", str(kubeadm_node), "--state-dir", str(state),
        "apply", "--all-failing", "--yes", "--no-health-gate",
    )  # fmt: skip
    assert code == 0, out
    assert "apply finished: 4 committed" in out
    code, out, _err = run_cli(capsys, "--root", str(kubeadm_node), "scan", "--failing")
    assert code == 0 and " 0 FAIL" in out.splitlines()[-1]
    assert out.splitlines()[1].startswith("cis-2.0: Kubernetes v1.35.0")


def test_encryption_at_rest_before_1_13_uses_the_experimental_flag_and_format(trees):
    """v1.11 reads encryption at rest from --experimental-encryption-provider-config, in the
    alpha `v1` EncryptionConfig format; the 1.13 flag would stop it (unknown flag)."""
    _snap, plan = plan_everything(trees / "t02-kubeadm111")
    assert "1.2.27" in plan.checks
    args = _new_args(plan, "kube-apiserver")
    assert not any(a.startswith("--encryption-provider-config") for a in args)
    flag = next(a for a in args if a.startswith("--experimental-encryption-provider-config="))
    file = next(f for f in plan.files if f.component == "kube-apiserver")
    config = next(c for c in file.companions if c.node_path == flag.split("=", 1)[1])
    assert config.secret and config.mode == 0o600
    assert api_version_of(config.content.decode()) == "v1/EncryptionConfig"


def test_a_fix_the_version_cannot_take_is_not_planned_naming_the_version(
    capsys, trees: Path, tmp_path: Path
) -> None:
    """v1.8 without --admission-control runs AlwaysAdmit alone; the plugin flags came in v1.10,
    so the plan says that, not only 'unknown flag'."""
    root = tmp_path / "t03"
    shutil.copytree(trees / "t03-kubeadm18", root, symlinks=True)
    manifest = root / "etc/kubernetes/manifests/kube-apiserver.yaml"
    text = manifest.read_text()
    assert "    - --admission-control=" in text
    manifest.write_text(
        "".join(x for x in text.splitlines(True) if "--admission-control=" not in x)
    )
    code, out, err = run_cli(capsys, "--root", str(root), "plan", "1.2.10", "1.2.13")
    assert code == 0 and "Nothing to change." in out, out + err
    assert "1.2.10: kube-apiserver v1.8.1 has no --enable-admission-plugins (added in v1.10)" in out
    assert (
        "1.2.13: kube-apiserver v1.8.1 has no --disable-admission-plugins (added in v1.10)" in out
    )
