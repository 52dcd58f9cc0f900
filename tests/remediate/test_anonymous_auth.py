"""CIS 1.2.1 on kubeadm nodes (issue 13 item 10): on 1.32 and later the fix is an
AuthenticationConfiguration that lets anonymous requests reach only kubeadm's probe paths and
the cluster-info ConfigMap; older versions never get a bare `--anonymous-auth=false` while the
API server's probes are anonymous. A node configured either way is judged as the API server
would run it."""

from __future__ import annotations

import asyncio
from io import StringIO
from pathlib import Path

import pytest
from ruamel.yaml import YAML

from cis_tui.audit.evaluate import Result, Status, evaluate
from cis_tui.audit.node import take_snapshot
from cis_tui.benchmarks.catalog import load_catalog
from cis_tui.engine.transaction import Engine
from cis_tui.layout import load_settings
from cis_tui.remediate.plan import Plan, build_plan, startup_problems
from cis_tui.sandbox.paths import SandboxPaths
from cis_tui.sandbox.settings import SandboxSettings
from cis_tui.sandbox.standin import apiserver
from cis_tui.sandbox.standin.common import Context, Fatal, MountView, parse_kube_flags

CATALOG = load_catalog("cis-1.12")
MANIFEST = "etc/kubernetes/manifests/kube-apiserver.yaml"
CONFIG = "etc/kubernetes/authentication-config.yaml"
CLUSTER_INFO = "/api/v1/namespaces/kube-public/configmaps/cluster-info"
ALLOW_LIST = f"""\
apiVersion: apiserver.config.k8s.io/v1
kind: AuthenticationConfiguration
anonymous:
  enabled: true
  conditions:
  - path: /livez
  - path: /readyz
  - path: /healthz
  - path: {CLUSTER_INFO}
"""


def edit_manifest(root: Path, change) -> None:
    path = root / MANIFEST
    path.write_text(change(path.read_text()))


def at_version(root: Path, tag: str) -> None:
    edit_manifest(root, lambda t: t.replace("kube-apiserver:v1.35.0", f"kube-apiserver:{tag}"))


def add_flags(root: Path, *flags: str) -> None:
    new = "".join(f"    - {f}\n" for f in flags)
    edit_manifest(
        root, lambda t: t.replace("    - kube-apiserver\n", f"    - kube-apiserver\n{new}", 1)
    )


def plan_121(root: Path) -> Plan:
    return build_plan(CATALOG, take_snapshot(load_settings(root=root)), ["1.2.1"], {})


def judge(root: Path) -> Result:
    (result,) = evaluate(CATALOG, take_snapshot(load_settings(root=root)), ["1.2.1"])
    return result


def apply_offline(root: Path, plan: Plan) -> None:
    engine = Engine(load_settings(root=root), CATALOG, lambda e: None, health_gate=False)
    result = asyncio.run(engine.apply(plan))
    assert result.exit_code == 0, [f.message for f in result.files]


# -- the fix on 1.32 and later -------------------------------------------------------------
def test_kubeadm_135_gets_an_allow_list_its_mount_and_no_anonymous_flag(kubeadm_node):
    plan = plan_121(kubeadm_node)
    assert plan.checks == ("1.2.1",), plan.skipped
    (file,) = plan.files
    (companion,) = file.companions
    assert companion.path == kubeadm_node / CONFIG and companion.node_path == f"/{CONFIG}"
    assert companion.mode == 0o600 and not companion.secret
    assert YAML(typ="safe").load(companion.content) == YAML(typ="safe").load(ALLOW_LIST)
    new = file.new_text or ""
    assert f"    - --authentication-config=/{CONFIG}\n" in new
    assert "--anonymous-auth" not in new
    assert (
        f"    - mountPath: /{CONFIG}\n      name: authentication-config\n      readOnly: true\n"
        in new
    )
    assert f"  - hostPath:\n      path: /{CONFIG}\n      type: File\n" in new
    snap = take_snapshot(load_settings(root=kubeadm_node))
    assert startup_problems(file, snap) == []
    assert any("apiserver.config.k8s.io/v1;" in n for n in file.notes)

    apply_offline(kubeadm_node, plan)

    assert (kubeadm_node / CONFIG).stat().st_mode & 0o777 == 0o600
    after = judge(kubeadm_node)
    assert after.status is Status.PASS, after.reason
    assert CLUSTER_INFO in after.reason
    assert "kubeadm's probes and join discovery keep working" in after.reason


def test_a_set_anonymous_auth_flag_is_removed_since_the_api_server_refuses_both(kubeadm_node):
    add_flags(kubeadm_node, "--anonymous-auth=true")
    (file,) = plan_121(kubeadm_node).files
    assert "--anonymous-auth" not in (file.new_text or "")
    assert f"--authentication-config=/{CONFIG}" in (file.new_text or "")


def test_133_writes_the_v1beta1_api_version(kubeadm_node):
    at_version(kubeadm_node, "v1.33.4")
    (file,) = plan_121(kubeadm_node).files
    assert b"apiVersion: apiserver.config.k8s.io/v1beta1\n" in (file.companions[0].content or b"")


@pytest.mark.parametrize(
    ("flag", "why"),
    [
        ("--authentication-config=/etc/kubernetes/jwt.yaml", "already reads /etc/kubernetes/jwt.yaml"),
        ("--oidc-issuer-url=https://issuer.example", "refuses --authentication-config next to"),
        ("--feature-gates=AnonymousAuthConfigurableEndpoints=false", "turns AnonymousAuthConfigurableEndpoints off"),
    ],
)  # fmt: skip
def test_what_the_recipe_cannot_do_safely_is_not_planned(kubeadm_node, flag, why):
    jwt_only = (
        "apiVersion: apiserver.config.k8s.io/v1\nkind: AuthenticationConfiguration\njwt: []\n"
    )
    (kubeadm_node / "etc/kubernetes/jwt.yaml").write_text(jwt_only)
    add_flags(kubeadm_node, flag)
    plan = plan_121(kubeadm_node)
    assert plan.empty
    (skip,) = plan.skipped
    assert why in skip.reason


def test_an_existing_unused_file_is_never_overwritten(kubeadm_node):
    (kubeadm_node / CONFIG).write_text("# mine\n")
    (skip,) = plan_121(kubeadm_node).skipped
    assert "already exists but the API server does not use it" in skip.reason


# -- older versions ------------------------------------------------------------------------
@pytest.mark.parametrize("tag", ["v1.31.4", "v1.29.0"])
def test_before_132_anonymous_probes_mean_not_planned_with_the_reason(kubeadm_node, tag):
    at_version(kubeadm_node, tag)
    plan = plan_121(kubeadm_node)
    assert plan.empty and plan.checks == ()
    (skip,) = plan.skipped
    assert f"kube-apiserver {tag}" in skip.reason and "needs v1.32" in skip.reason
    assert "kubeadm#798" in skip.reason and "livenessProbe /livez" in skip.reason


def test_before_132_without_anonymous_probes_the_flag_is_planned(kubeadm_node):
    at_version(kubeadm_node, "v1.30.2")
    yaml = YAML()
    path = kubeadm_node / MANIFEST
    pod = yaml.load(path.read_text())
    container = pod["spec"]["containers"][0]
    for kind in ("startupProbe", "readinessProbe", "livenessProbe"):
        probe = container[kind]
        probe["tcpSocket"] = {"host": probe["httpGet"]["host"], "port": probe["httpGet"]["port"]}
        del probe["httpGet"]
    out = StringIO()
    yaml.dump(pod, out)
    path.write_text(out.getvalue())
    plan = plan_121(kubeadm_node)
    (file,) = plan.files
    assert "    - --anonymous-auth=false\n" in (file.new_text or "") and not file.companions
    assert any("join token discovery" in n for n in file.notes)


def test_an_unknown_version_is_not_planned(kubeadm_node):
    edit_manifest(kubeadm_node, lambda t: t.replace("kube-apiserver:v1.35.0", "kube-apiserver"))
    (skip,) = plan_121(kubeadm_node).skipped
    assert "version is unknown" in skip.reason


# -- the verdict ---------------------------------------------------------------------------
def configured(root: Path, text: str, *flags: str) -> Result:
    (root / CONFIG).write_text(text)
    add_flags(root, f"--authentication-config=/{CONFIG}", *flags)
    return judge(root)


def test_the_kubeadm_default_warns_and_the_hardened_flag_passes(kubeadm_node, hardened_node):
    assert judge(kubeadm_node).status is Status.WARN
    assert judge(kubeadm_node).reason == "file: --anonymous-auth absent (default true)"
    assert judge(hardened_node).status is Status.PASS


@pytest.mark.parametrize(
    ("text", "extra", "status", "says"),
    [
        (ALLOW_LIST, (), Status.PASS, "kubeadm's probes and join discovery keep working"),
        (ALLOW_LIST.replace(CLUSTER_INFO, "/livez"), (), Status.PASS, "only to /livez, /readyz"),
        (ALLOW_LIST + "  - path: /version\n", (), Status.WARN, "also allows anonymous requests to /version"),
        (ALLOW_LIST.split("  conditions:")[0], (), Status.WARN, "allows anonymous requests to every path"),
        (ALLOW_LIST, ("--anonymous-auth=false",), Status.WARN, "refuses to start with both"),
        (ALLOW_LIST.split("anonymous:")[0] + "anonymous:\n  enabled: false\n", (), Status.PASS, "disabled"),
        (ALLOW_LIST.split("anonymous:")[0], (), Status.WARN, "--anonymous-auth absent (default true)"),
        ("kind: Policy\n", (), Status.ERROR, "not an AuthenticationConfiguration"),
    ],
)  # fmt: skip
def test_an_authentication_configuration_is_judged_as_the_api_server_reads_it(
    kubeadm_node, text, extra, status, says
):
    result = configured(kubeadm_node, text, *extra)
    assert result.status is status, result.reason
    assert says in result.reason


def test_a_missing_authentication_config_file_is_an_error(kubeadm_node):
    add_flags(kubeadm_node, f"--authentication-config=/{CONFIG}")
    result = judge(kubeadm_node)
    assert result.status is Status.ERROR and "not found" in result.reason


# -- the sandbox's API server stand-in -----------------------------------------------------
def standin_rule(tmp_path: Path, text: str | None, *flags: str) -> apiserver.AnonymousRule:
    config = tmp_path / "authn.yaml"
    argv = list(flags)
    if text is not None:
        config.write_text(text)
        argv.append(f"--authentication-config={config}")
    ctx = Context(
        "kube-apiserver", "kube-apiserver", SandboxPaths(tmp_path), MountView(None),
        SandboxSettings(), tuple(argv),
    )  # fmt: skip
    return apiserver.anonymous_rule(ctx, parse_kube_flags("kube-apiserver", argv))


def test_the_standin_answers_anonymous_requests_only_on_the_listed_paths(tmp_path):
    rule = standin_rule(tmp_path, ALLOW_LIST)
    assert all(rule.allows(p) for p in ("/livez", "/readyz", "/healthz", CLUSTER_INFO))
    assert not rule.allows("/api/v1/namespaces") and not rule.allows("/livez/etcd")
    assert standin_rule(tmp_path, None).allows("/api/v1/namespaces")  # the flag's default
    assert not standin_rule(tmp_path, None, "--anonymous-auth=false").allows("/livez")


def test_the_standin_refuses_the_flag_next_to_an_anonymous_section(tmp_path):
    with pytest.raises(Fatal, match="--anonymous-auth flag cannot be set when anonymous field"):
        standin_rule(tmp_path, ALLOW_LIST, "--anonymous-auth=true")
    bad = ALLOW_LIST.replace("enabled: true", "enabled: false")
    with pytest.raises(Fatal, match="enabled should be set to true when conditions are defined"):
        standin_rule(tmp_path, bad)
    argv = ["--authentication-config=/x.yaml", "--oidc-issuer-url=https://issuer.example"]
    errs = apiserver.validate(parse_kube_flags("kube-apiserver", argv))
    assert "authentication-config file and oidc-* flags are mutually exclusive" in errs
