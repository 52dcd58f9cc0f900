"""The configuration as each component computes it (issue 13 items 1 to 4).

The kubelet: defaults, --config file, --config-dir drop-ins, flags. etcd: --config-file makes it
ignore its flags and environment. kube-controller-manager and kube-scheduler: an absent
--bind-address is 0.0.0.0. kube-apiserver: the legacy --admission-control is the whole list.
Real files in temporary trees, and the real-world trees of ../shared/ref/realworld.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from cis_tui.audit.evaluate import Result, Status, evaluate
from cis_tui.audit.node import NodeSnapshot, take_snapshot
from cis_tui.audit.processes import LiveProcess
from cis_tui.benchmarks.catalog import load_catalog
from cis_tui.layout import load_settings
from cis_tui.remediate.plan import build_plan
from tests.nodetree import write
from tests.realworld import materialize

CATALOG = load_catalog("cis-1.12")
FLAGS_ENV = "var/lib/kubelet/kubeadm-flags.env"
DROPINS = "etc/kubernetes/kubelet.conf.d"
ETCD = "etc/kubernetes/manifests/etcd.yaml"
KUBELET_DROPIN = "apiVersion: kubelet.config.k8s.io/v1beta1\nkind: KubeletConfiguration\n"


def snapshot(root: Path) -> NodeSnapshot:
    return take_snapshot(load_settings(root=root), live=False)


def verdicts(root: Path, *ids: str, snap: NodeSnapshot | None = None) -> dict[str, Result]:
    return {r.id: r for r in evaluate(CATALOG, snap or snapshot(root), ids)}


def kubelet_args(root: Path, args: str) -> None:
    write(root / FLAGS_ENV, f'KUBELET_KUBEADM_ARGS="{args}"\n', 0o644)


def dropin(root: Path, name: str, body: str) -> Path:
    return write(root / DROPINS / name, KUBELET_DROPIN + body, 0o600)


# ---- the kubelet: defaults, config file, drop-ins, flags ----


def test_a_config_file_that_omits_a_field_gets_the_config_file_default(kubeadm_node):
    cfg = kubeadm_node / "var/lib/kubelet/config.yaml"
    text = cfg.read_text()
    for line in ("    enabled: false\n", "  mode: Webhook\n", "rotateCertificates: true\n"):
        assert line in text
        text = text.replace(line, "", 1)  # anonymous.enabled, authorization.mode, rotation
    cfg.write_text(text)
    got = verdicts(kubeadm_node, "4.2.1", "4.2.2", "4.2.4", "4.2.6", "4.2.10")
    assert got["4.2.1"].status is Status.PASS  # the flag's default (true) does not apply
    assert got["4.2.1"].file_value == "authentication.anonymous.enabled=false (config file default)"
    assert got["4.2.2"].status is Status.PASS
    assert got["4.2.2"].file_value == "authorization.mode=Webhook (config file default)"
    assert got["4.2.4"].file_value == "readOnlyPort=0 (config file default)"
    assert got["4.2.6"].status is Status.PASS
    # rotateCertificates defaults to false in the file and on the command line alike: the
    # kubelet does not rotate its client certificate, although kube-bench passes the absence.
    assert got["4.2.10"].status is Status.FAIL
    assert "kube-bench passes" in got["4.2.10"].reason


def test_without_a_config_file_the_flag_defaults_apply(kubeadm_node):
    (kubeadm_node / "var/lib/kubelet/config.yaml").unlink()
    unit = kubeadm_node / "etc/systemd/system/kubelet.service.d/10-kubeadm.conf"
    unit.write_text(unit.read_text().replace("--config=/var/lib/kubelet/config.yaml", ""))
    got = verdicts(kubeadm_node, "4.2.1", "4.2.2", "4.2.4", "4.2.5")
    assert got["4.2.1"].status is Status.FAIL
    assert got["4.2.1"].file_value == "authentication.anonymous.enabled=true (flag default)"
    assert got["4.2.2"].file_value == "authorization.mode=AlwaysAllow (flag default)"
    assert got["4.2.4"].status is Status.WARN  # the read-only port 10255 is open
    assert got["4.2.4"].file_value == "readOnlyPort=10255 (flag default)"
    assert got["4.2.5"].status is Status.PASS


def test_a_running_kubelet_without_config_reads_no_config_file(kubeadm_node):
    """The file on disk is not what a kubelet started without --config uses."""
    snap = snapshot(kubeadm_node)
    args = ("--kubeconfig=/etc/kubernetes/kubelet.conf", "--anonymous-auth=false")
    snap.processes["kubelet"] = LiveProcess("kubelet", 4242, args, 0.0)
    got = verdicts(kubeadm_node, "4.2.1", "4.2.2", snap=snap)
    assert got["4.2.1"].status is Status.PASS  # the flag
    assert got["4.2.2"].status is Status.FAIL
    assert got["4.2.2"].live_value == "authorization.mode=AlwaysAllow (flag default)"
    assert got["4.2.2"].file_value == "authorization.mode=Webhook"
    assert got["4.2.2"].disagreement is not None


def test_drop_ins_merge_in_lexical_order_over_the_config_file(kubeadm_node):
    kubelet_args(kubeadm_node, f"--config-dir=/{DROPINS}")
    # "10-…" sorts before "9-…": lexical, not numeric, order; the later file wins.
    dropin(kubeadm_node, "9-secure.conf", "authentication:\n  anonymous:\n    enabled: false\n")
    dropin(kubeadm_node, "10-open.conf", "authentication:\n  anonymous:\n    enabled: true\n")
    dropin(kubeadm_node, "20-port.conf", "readOnlyPort: 10255\n")
    dropin(kubeadm_node, "30-pids.yaml", "podPidsLimit: 4096\n")  # not *.conf: ignored
    got = verdicts(kubeadm_node, "4.2.1", "4.2.2", "4.2.4", "4.2.13")
    assert got["4.2.1"].status is Status.PASS
    assert got["4.2.1"].file_value == (
        f"authentication.anonymous.enabled=false (drop-in {kubeadm_node / DROPINS}/9-secure.conf)"
    )
    assert got["4.2.2"].status is Status.PASS  # merged, not replaced: the file's Webhook stays
    assert got["4.2.4"].status is Status.WARN
    assert "20-port.conf" in got["4.2.4"].file_value
    assert got["4.2.13"].status is Status.WARN


def test_a_subdirectory_of_drop_ins_is_walked_where_its_name_sorts(kubeadm_node):
    kubelet_args(kubeadm_node, f"--config-dir=/{DROPINS}")
    dropin(kubeadm_node, "10-a.conf", "readOnlyPort: 10255\n")
    dropin(kubeadm_node, "20-dir/x.conf", "readOnlyPort: 0\n")  # after 10-a, before 30-z
    assert verdicts(kubeadm_node, "4.2.4")["4.2.4"].status is Status.PASS
    dropin(kubeadm_node, "30-z.conf", "readOnlyPort: 10255\n")
    assert verdicts(kubeadm_node, "4.2.4")["4.2.4"].status is Status.WARN


def test_a_flag_wins_over_every_drop_in(kubeadm_node):
    kubelet_args(kubeadm_node, f"--config-dir=/{DROPINS}")
    dropin(kubeadm_node, "10-open.conf", "authentication:\n  anonymous:\n    enabled: true\n")
    assert verdicts(kubeadm_node, "4.2.1")["4.2.1"].status is Status.FAIL  # over the file
    kubelet_args(kubeadm_node, f"--config-dir=/{DROPINS} --anonymous-auth=false")
    result = verdicts(kubeadm_node, "4.2.1")["4.2.1"]
    assert result.status is Status.PASS and result.file_value == "--anonymous-auth=false"


def test_a_zero_duration_in_a_drop_in_is_really_zero(kubeadm_node):
    """Only the --config file is re-defaulted (kubeadm's 0s means 4h); a drop-in is merged
    after defaulting, as it stands."""
    assert verdicts(kubeadm_node, "4.2.5")["4.2.5"].status is Status.PASS
    kubelet_args(kubeadm_node, f"--config-dir=/{DROPINS}")
    dropin(kubeadm_node, "50-idle.conf", "streamingConnectionIdleTimeout: 0s\n")
    assert verdicts(kubeadm_node, "4.2.5")["4.2.5"].status is Status.WARN


@pytest.mark.parametrize(
    ("files", "problem"),
    [
        ({}, "kubelet config directory not found, although --config-dir in"),
        ({"10-bad.conf": "kind: [\n"}, "malformed YAML"),
        ({"10-pod.conf": "apiVersion: v1\nkind: Pod\n"}, "not a KubeletConfiguration"),
    ],
)
def test_a_config_dir_the_kubelet_cannot_read_is_an_error(kubeadm_node, files, problem):
    """The kubelet does not start then; judging it on the other files would be a guess."""
    kubelet_args(kubeadm_node, f"--config-dir=/{DROPINS}")
    for name, text in files.items():
        write(kubeadm_node / DROPINS / name, text, 0o600)
    got = verdicts(kubeadm_node, "4.2.1", "4.1.9")
    assert got["4.2.1"].status is Status.ERROR and problem in got["4.2.1"].reason
    assert got["4.1.9"].status is Status.FAIL  # the config file itself is still judged (644)


def test_a_setting_a_drop_in_overrides_is_not_planned_in_the_config_file(kubeadm_node):
    kubelet_args(kubeadm_node, f"--config-dir=/{DROPINS}")
    dropin(kubeadm_node, "20-port.conf", "readOnlyPort: 10255\n")
    plan = build_plan(CATALOG, snapshot(kubeadm_node), ["4.2.4"], {})
    assert plan.checks == ()
    (skipped,) = plan.skipped
    assert skipped.reason == (
        f"the kubelet drop-in {kubeadm_node / DROPINS}/20-port.conf sets readOnlyPort, which "
        "overrides the config file; change it there"
    )


# ---- the kubelet's command line as systemd starts it ----

UNITS = "etc/systemd/system"
MOVED_CONFIG = "/etc/kubernetes/custom/kubelet.yaml"


def move_kubelet_config(root: Path) -> None:
    """The kubeadm kubelet config moved away from /var/lib/kubelet/config.yaml."""
    target = root / MOVED_CONFIG.lstrip("/")
    target.parent.mkdir(parents=True)
    (root / "var/lib/kubelet/config.yaml").rename(target)


def test_etc_default_kubelet_named_by_kubeadms_drop_in_sets_the_config(kubeadm_node):
    """kubeadm's drop-in reads KUBELET_EXTRA_ARGS from /etc/default/kubelet, and the last
    --config on the command line wins: the kubelet reads the moved file, whose defaults pass."""
    move_kubelet_config(kubeadm_node)
    write(
        kubeadm_node / "etc/default/kubelet", f"KUBELET_EXTRA_ARGS=--config={MOVED_CONFIG}\n", 0o644
    )
    got = verdicts(kubeadm_node, "4.1.9", "4.2.1", "4.2.2")
    assert got["4.1.9"].status is Status.FAIL  # kubeadm's 644, judged at the moved path
    assert MOVED_CONFIG in got["4.1.9"].reason
    assert got["4.2.1"].status is Status.PASS and got["4.2.2"].status is Status.PASS


def test_a_later_systemd_drop_in_overrides_kubeadms_variable(kubeadm_node):
    """systemd reads every *.conf of kubelet.service.d in name order: 20-custom.conf's
    KUBELET_CONFIG_ARGS replaces the one 10-kubeadm.conf sets."""
    move_kubelet_config(kubeadm_node)
    write(
        kubeadm_node / UNITS / "kubelet.service.d/20-custom.conf",
        f'[Service]\nEnvironment="KUBELET_CONFIG_ARGS=--config={MOVED_CONFIG}"\n',
        0o644,
    )
    got = verdicts(kubeadm_node, "4.2.1", "4.2.2")
    assert got["4.2.1"].status is Status.PASS and got["4.2.2"].status is Status.PASS


def test_the_unit_files_exec_start_names_the_config(kubeadm_node):
    """A hand-built node (kubernetes-the-hard-way): no drop-in, the flags in kubelet.service."""
    move_kubelet_config(kubeadm_node)
    (kubeadm_node / UNITS / "kubelet.service.d/10-kubeadm.conf").unlink()
    (kubeadm_node / FLAGS_ENV).unlink()
    write(
        kubeadm_node / "usr/lib/systemd/system/kubelet.service",
        "[Unit]\nDescription=Kubernetes Kubelet\n\n[Service]\n"
        f"ExecStart=/usr/local/bin/kubelet \\\n  --config={MOVED_CONFIG} \\\n"
        "  --read-only-port=10255 \\\n  --v=2\nRestart=on-failure\n",
        0o644,
    )
    got = verdicts(kubeadm_node, "4.2.1", "4.2.4")
    assert got["4.2.1"].status is Status.PASS  # the file's default
    assert got["4.2.4"].status is Status.WARN  # a manual check: the unit's flag wins
    assert "--read-only-port=10255" in got["4.2.4"].reason


# ---- etcd: --config-file ----

ETCD_CONFIG = """name: cp-1
data-dir: /var/lib/etcd
listen-client-urls: https://10.0.0.10:2379
listen-peer-urls: {peer}
initial-cluster: cp-1={peer}
client-transport-security:
  cert-file: /etc/kubernetes/pki/etcd/server.crt
  key-file: /etc/kubernetes/pki/etcd/server.key
  trusted-ca-file: /etc/kubernetes/pki/etcd/ca.crt
"""


def etcd_reads_a_config_file(root: Path, peer: str = "https://10.0.0.10:2380") -> Path:
    """The kubeadm etcd manifest with --config-file added; its TLS flags stay, ignored."""
    manifest = root / ETCD
    manifest.write_text(
        manifest.read_text().replace(
            "    - etcd\n", "    - etcd\n    - --config-file=/etc/kubernetes/etcd.conf.yml\n"
        )
    )
    return write(root / "etc/kubernetes/etcd.conf.yml", ETCD_CONFIG.format(peer=peer), 0o600)


def test_etcd_with_a_config_file_ignores_its_flags(kubeadm_node):
    etcd_reads_a_config_file(kubeadm_node)
    got = verdicts(kubeadm_node, "2.1", "2.2", "2.4", "2.5", "2.7")
    assert got["2.1"].status is Status.PASS
    assert got["2.1"].file_value.startswith(
        "client-transport-security.cert-file=/etc/kubernetes/pki/etcd/server.crt "
        "(--config-file /etc/kubernetes/etcd.conf.yml; flags ignored)"
    )
    # --client-cert-auth=true and the peer flags are on the command line, but etcd ignores them.
    assert got["2.2"].status is Status.FAIL
    assert got["2.2"].reason.startswith("file: client-transport-security.client-cert-auth absent")
    assert got["2.4"].status is Status.FAIL  # a real peer listener on 10.0.0.10
    assert got["2.5"].status is Status.FAIL
    assert got["2.7"].status is Status.PASS


def test_etcd_config_file_named_by_the_environment(kubeadm_node):
    manifest = kubeadm_node / ETCD
    manifest.write_text(
        manifest.read_text().replace(
            "    image: registry",
            "    env:\n    - name: ETCD_CONFIG_FILE\n      value: /etc/kubernetes/etcd.conf.yml\n"
            "    image: registry",
        )
    )
    write(kubeadm_node / "etc/kubernetes/etcd.conf.yml", ETCD_CONFIG.format(peer="x"), 0o600)
    assert verdicts(kubeadm_node, "2.2")["2.2"].status is Status.FAIL


def test_a_missing_etcd_config_file_is_an_error(kubeadm_node):
    etcd_reads_a_config_file(kubeadm_node).unlink()
    result = verdicts(kubeadm_node, "2.1")["2.1"]
    assert result.status is Status.ERROR and "etcd config file not found" in result.reason


def test_peer_checks_do_not_apply_to_a_single_member_on_loopback(kubeadm_node):
    etcd_reads_a_config_file(kubeadm_node, peer="http://127.0.0.1:2380")
    got = verdicts(kubeadm_node, "2.4", "2.5", "2.6")
    for check_id in ("2.4", "2.5"):
        assert got[check_id].status is Status.SKIP
        assert got[check_id].reason.startswith("not applicable: a single-member etcd")
    assert got["2.6"].status is Status.PASS


def test_peer_checks_apply_to_a_single_member_listening_off_host_or_to_a_cluster(kubeadm_node):
    """Flags alike: kubeadm's --listen-peer-urls is on the node address."""
    manifest = kubeadm_node / ETCD
    text = manifest.read_text()
    for flag in ("--peer-cert-file", "--peer-key-file", "--peer-client-cert-auth"):
        text = "".join(line for line in text.splitlines(True) if flag not in line)
    manifest.write_text(text)
    assert verdicts(kubeadm_node, "2.4")["2.4"].status is Status.FAIL
    manifest.write_text(text.replace("https://10.0.0.10:2380", "https://127.0.0.1:2380"))
    assert verdicts(kubeadm_node, "2.4")["2.4"].status is Status.SKIP
    two = "--initial-cluster=cp-1=https://127.0.0.1:2380,cp-2=https://10.0.0.11:2380"
    manifest.write_text(
        manifest.read_text().replace("--initial-cluster=cp-1=https://127.0.0.1:2380", two)
    )
    assert verdicts(kubeadm_node, "2.4")["2.4"].status is Status.FAIL


def test_etcd_flags_next_to_a_config_file_are_not_planned(kubeadm_node):
    etcd_reads_a_config_file(kubeadm_node)
    plan = build_plan(CATALOG, snapshot(kubeadm_node), ["2.2"], {})
    assert plan.checks == () and plan.files == ()
    (skipped,) = plan.skipped
    assert skipped.reason == (
        "etcd reads /etc/kubernetes/etcd.conf.yml (--config-file) and ignores flags; edit that file"
    )


# ---- kube-controller-manager and kube-scheduler: --bind-address ----


@pytest.mark.parametrize(
    ("check_id", "component"), [("1.3.7", "kube-controller-manager"), ("1.4.2", "kube-scheduler")]
)
def test_an_absent_bind_address_listens_on_every_interface(kubeadm_node, check_id, component):
    manifest = kubeadm_node / f"etc/kubernetes/manifests/{component}.yaml"
    manifest.write_text(manifest.read_text().replace("    - --bind-address=127.0.0.1\n", ""))
    result = verdicts(kubeadm_node, check_id)[check_id]
    assert result.status is Status.FAIL
    port = "10257" if component == "kube-controller-manager" else "10259"
    assert result.file_value == f"--bind-address absent: :{port} on 0.0.0.0 (kube-bench passes it)"


# ---- kube-apiserver: the legacy --admission-control ----


@pytest.mark.parametrize(
    ("plugins", "expected"),
    [
        (
            "NamespaceLifecycle,ServiceAccount,NodeRestriction",
            {"1.2.10": "PASS", "1.2.12": "PASS", "1.2.13": "PASS", "1.2.14": "PASS"},
        ),
        # A plugin the legacy list leaves out is off, the default ones included.
        (
            "AlwaysAdmit,NamespaceLifecycle",
            {"1.2.10": "FAIL", "1.2.12": "FAIL", "1.2.13": "PASS", "1.2.14": "FAIL"},
        ),
    ],
)
def test_the_legacy_admission_control_is_the_enabled_list(kubeadm_node, plugins, expected):
    manifest = kubeadm_node / "etc/kubernetes/manifests/kube-apiserver.yaml"
    text = manifest.read_text()
    old = "--enable-admission-plugins=NodeRestriction"
    assert old in text
    manifest.write_text(text.replace(old, f"--admission-control={plugins}"))
    got = verdicts(kubeadm_node, *expected)
    assert {i: r.status.value for i, r in got.items()} == expected
    assert got["1.2.12"].file_value == (
        f"--admission-control={plugins} (the legacy list: a plugin it leaves out is off)"
    )


def test_before_1_10_an_absent_admission_control_runs_only_always_admit(kubeadm_node):
    """Before v1.10 there is no --enable-admission-plugins and --admission-control defaults to
    [AlwaysAdmit] (the v1.9 kube-apiserver reference): ServiceAccount, NamespaceLifecycle and
    NodeRestriction are off and AlwaysAdmit is on, whatever kube-bench's absent flag says."""
    manifest = kubeadm_node / "etc/kubernetes/manifests/kube-apiserver.yaml"
    text = manifest.read_text().replace("    - --enable-admission-plugins=NodeRestriction\n", "")
    manifest.write_text(text.replace("kube-apiserver:v1.35.0", "kube-apiserver:v1.9.11"))
    got = verdicts(kubeadm_node, "1.2.10", "1.2.12", "1.2.13", "1.2.14")
    assert {i: r.status.value for i, r in got.items()} == dict.fromkeys(got, "FAIL")
    assert got["1.2.10"].file_value == (
        "--admission-control=AlwaysAdmit (its default: kube-apiserver v1.9.11 has no "
        "--enable-admission-plugins (added in v1.10))"
    )


# ---- the real-world trees ----


@pytest.fixture(scope="module")
def realworld(tmp_path_factory) -> Path:
    trees = ("t03-kubeadm18", "t06-kubeadm126-kg", "t08-homekube128-args", "t09-hyperkube110")
    return materialize(tmp_path_factory.mktemp("realworld"), *trees)


def statuses(root: Path, *ids: str) -> dict[str, str]:
    return {i: r.status.value for i, r in verdicts(root, *ids).items()}


def test_t08_kubelet_config_named_by_its_flags_file(realworld):
    """The kubelet runs `--config /etc/kubernetes/kubelet.conf.yaml` (kubeadm-flags.env), a
    file that sets neither anonymous auth nor the authorization mode nor rotation."""
    root = realworld / "t08-homekube128-args"
    got = verdicts(root, "4.1.9", "4.2.1", "4.2.2", "4.2.4", "4.2.10")
    assert got["4.1.9"].status is Status.FAIL  # judged at its --config path: mode 644
    assert str(root / "etc/kubernetes/kubelet.conf.yaml") in got["4.1.9"].reason
    assert got["4.2.1"].status is Status.PASS and "config file default" in got["4.2.1"].reason
    assert got["4.2.2"].status is Status.PASS
    assert got["4.2.4"].status is Status.PASS
    assert got["4.2.10"].status is Status.FAIL  # no rotateCertificates: a static kubelet.pem


def test_t08_etcd_reads_its_config_file(realworld):
    """etcd runs `--config-file /etc/kubernetes/etcd.conf.yaml` and nothing else: client TLS
    is there, and it is a single member with the default peer listener, localhost:2380."""
    root = realworld / "t08-homekube128-args"
    got = verdicts(root, "2.1", "2.2", "2.3", "2.4", "2.5", "2.6", "2.7")
    assert {i: r.status.value for i, r in got.items()} == {
        "2.1": "PASS",
        "2.2": "PASS",
        "2.3": "PASS",
        "2.4": "SKIP",
        "2.5": "SKIP",
        "2.6": "PASS",
        # Its trusted-ca-file root.pem is also the API server's --client-ca-file.
        "2.7": "WARN",
    }
    assert "root.pem, the API server's --client-ca-file" in got["2.7"].reason
    plan = build_plan(CATALOG, snapshot(root), ["2.7"], {})
    assert plan.skipped[0].reason == (
        "etcd reads /etc/kubernetes/etcd.conf.yaml (--config-file) and ignores flags; edit that file"
    )


def test_t08_and_t06_bind_addresses(realworld):
    """t08 leaves --bind-address out (0.0.0.0), t06 sets 0.0.0.0: both listen everywhere."""
    for tree in ("t08-homekube128-args", "t06-kubeadm126-kg"):
        assert statuses(realworld / tree, "1.3.7", "1.4.2") == {"1.3.7": "FAIL", "1.4.2": "FAIL"}


def test_t09_kubelet_file_defaults_and_legacy_admission(realworld):
    """hyperkube v1.10: a KubeletConfiguration without authentication or authorization
    settings, and --admission-control without NodeRestriction."""
    root = realworld / "t09-hyperkube110"
    got = statuses(root, "4.2.1", "4.2.2", "1.2.12", "1.2.13", "1.2.14")
    assert got == {
        "4.2.1": "PASS",
        "4.2.2": "PASS",
        "1.2.12": "PASS",
        "1.2.13": "PASS",
        "1.2.14": "FAIL",
    }
    assert verdicts(root, "1.2.14")["1.2.14"].file_value.startswith("--admission-control=")


def test_t03_legacy_admission_control_enables_node_restriction(realworld):
    assert statuses(realworld / "t03-kubeadm18", "1.2.14") == {"1.2.14": "PASS"}


def test_t08_etcd_data_dir_is_found_through_its_volume(realworld, tmp_path):
    """etcd's data-dir (/mnt/data in its config file) is a path inside its container; the pod
    mounts the host's /srv/etcd at /mnt, so the host directory judged is /srv/etcd/data."""
    root = materialize(tmp_path, "t08-homekube128-args") / "t08-homekube128-args"
    (root / "mnt/data").mkdir(parents=True, mode=0o755)  # a decoy: not etcd's directory
    (root / "srv/etcd/data").mkdir(parents=True, mode=0o700)
    got = verdicts(root, "1.1.11", "1.1.12")
    assert got["1.1.11"].status is Status.PASS
    assert got["1.1.11"].file_value == f"{root}/srv/etcd/data 700"
    assert got["1.1.12"].file_value == f"{root}/srv/etcd/data root:root"
