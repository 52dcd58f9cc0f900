"""The file editor on real kubeadm manifests and on hand-written variants of their style."""

from __future__ import annotations

import difflib
from pathlib import Path

import pytest

from cis_tui.remediate.edits import (
    EditError,
    EditResult,
    KubeletConfig,
    MountPathTaken,
    PodManifest,
    VolumeNameTaken,
    unified_diff,
)
from cis_tui.remediate.yamltext import load

DATA = Path(__file__).resolve().parents[1] / "data" / "kubeadm"
COMPONENTS = ["kube-apiserver", "kube-controller-manager", "kube-scheduler", "etcd"]


def manifest(component: str) -> str:
    return (DATA / f"{component}.yaml").read_text(encoding="utf-8")


def changes(old: str, new: str) -> tuple[list[str], list[str]]:
    """Lines removed from `old` and lines added in `new`, line endings included."""
    removed: list[str] = []
    added: list[str] = []
    a, b = old.splitlines(keepends=True), new.splitlines(keepends=True)
    for tag, i1, i2, j1, j2 in difflib.SequenceMatcher(None, a, b, autojunk=False).get_opcodes():
        if tag != "equal":
            removed += a[i1:i2]
            added += b[j1:j2]
    return removed, added


def pod(body: str, component: str = "kube-apiserver") -> PodManifest:
    return PodManifest(body, component)


def small(items: str, extra: str = "") -> str:
    """A minimal kubeadm-style manifest whose command items are `items` (already indented)."""
    return (
        "apiVersion: v1\nkind: Pod\nmetadata:\n  name: kube-apiserver\nspec:\n  containers:\n"
        "  - command:\n    - kube-apiserver\n"
        + items
        + "    image: registry.k8s.io/kube-apiserver:v1.35.0\n    name: kube-apiserver\n"
        + extra
    )


# --- kubeadm manifests -------------------------------------------------------------------------


@pytest.mark.parametrize("component", COMPONENTS)
def test_unchanged_manifest_reads_its_flags(component):
    text = manifest(component)
    m = PodManifest(text, component)
    assert m.flags().errors == ()
    assert m.text == text and m.result() == EditResult(text, ())


@pytest.mark.parametrize(
    ("component", "flag", "value"),
    [
        ("kube-apiserver", "--authorization-mode", "Node,RBAC,Webhook"),
        ("kube-apiserver", "--tls-private-key-file", "/etc/kubernetes/pki/x.key"),
        ("kube-controller-manager", "--use-service-account-credentials", "false"),
        ("kube-controller-manager", "--bind-address", "0.0.0.0"),
        ("kube-scheduler", "--leader-elect", "false"),
        ("etcd", "--client-cert-auth", "false"),
        ("etcd", "--watch-progress-notify-interval", "10s"),
    ],
)
def test_set_existing_flag_changes_one_line(component, flag, value):
    text = manifest(component)
    m = PodManifest(text, component)
    m.set_flag(flag, value)
    assert changes(text, m.text) == (
        [f"    - {flag}={PodManifest(text, component).flags().get(flag)}\n"],
        [f"    - {flag}={value}\n"],
    )
    assert m.flags().get(flag) == value and m.notes == []


@pytest.mark.parametrize(
    ("component", "flag", "value"),
    [
        ("kube-apiserver", "--profiling", "false"),
        ("kube-apiserver", "--audit-log-path", "/var/log/kubernetes/audit/audit.log"),
        ("kube-controller-manager", "--terminated-pod-gc-threshold", "10"),
        ("kube-scheduler", "--profiling", "false"),
        ("etcd", "--auto-tls", "false"),
    ],
)
def test_new_flag_is_one_added_line_in_name_order(component, flag, value):
    """kubeadm writes flags sorted by name; a new flag takes its place among them."""
    text = manifest(component)
    m = PodManifest(text, component)
    previous = max(o.name for o in m.flags().occurrences if o.name < flag)
    m.set_flag(flag, value)
    removed, added = changes(text, m.text)
    assert removed == [] and added == [f"    - {flag}={value}\n"]
    lines = m.text.splitlines()
    assert lines[lines.index(f"    - {flag}={value}") - 1].startswith(f"    - {previous}=")
    names = [o.name for o in m.flags().occurrences]
    assert names == sorted(names)
    assert m.flags().get(flag) == value
    before = m.text
    m.set_flag(flag, value)
    assert m.text == before and m.notes[-1] == f"{flag} is already {value}"


@pytest.mark.parametrize("component", COMPONENTS)
def test_remove_flag_removes_one_line(component):
    text = manifest(component)
    m = PodManifest(text, component)
    flag = m.flags().occurrences[2].name
    m.remove_flag(flag)
    removed, added = changes(text, m.text)
    assert added == [] and len(removed) == 1 and removed[0].startswith(f"    - {flag}=")
    assert flag not in m.flags().values
    m.remove_flag(flag)
    assert m.notes == [f"{flag} is not set"]


def test_apiserver_hardening_sequence_diff():
    text = manifest("kube-apiserver")
    m = PodManifest(text, "kube-apiserver")
    m.set_flag("--anonymous-auth", "false")
    m.add_list_item("--enable-admission-plugins", "AlwaysPullImages")
    m.set_flag("--audit-policy-file", "/etc/kubernetes/audit-policy.yaml")
    m.add_host_path_volume(
        "audit-policy",
        "/etc/kubernetes/audit-policy.yaml",
        "/etc/kubernetes/audit-policy.yaml",
        "FileOrCreate",
        True,
    )
    diff = unified_diff(text, m.text, "/etc/kubernetes/manifests/kube-apiserver.yaml")
    assert diff.startswith(
        "--- a/etc/kubernetes/manifests/kube-apiserver.yaml\n"
        "+++ b/etc/kubernetes/manifests/kube-apiserver.yaml\n"
    )
    body = diff.splitlines()[2:]
    assert sum(line.startswith("-") for line in body) == 1
    assert sum(line.startswith("+") for line in body) == 1 + 2 + 3 + 4
    assert "-    - --enable-admission-plugins=NodeRestriction\n" in diff
    assert "+    - --enable-admission-plugins=NodeRestriction,AlwaysPullImages\n" in diff
    assert (
        "     - --allow-privileged=true\n"
        "+    - --anonymous-auth=false\n"
        "+    - --audit-policy-file=/etc/kubernetes/audit-policy.yaml\n"
        "     - --authorization-mode=Node,RBAC\n"
    ) in diff
    assert (
        "    volumeMounts:\n"
        "    - mountPath: /etc/kubernetes/audit-policy.yaml\n"
        "      name: audit-policy\n"
        "      readOnly: true\n"
        "    - mountPath: /etc/ssl/certs\n"
    ) in m.text
    assert (
        "  volumes:\n"
        "  - hostPath:\n"
        "      path: /etc/kubernetes/audit-policy.yaml\n"
        "      type: FileOrCreate\n"
        "    name: audit-policy\n"
        "  - hostPath:\n"
        "      path: /etc/ssl/certs\n"
    ) in m.text
    assert m.has_mount_for("/etc/kubernetes/audit-policy.yaml")


def test_controller_manager_list_with_star():
    text = manifest("kube-controller-manager")
    m = PodManifest(text, "kube-controller-manager")
    m.remove_list_item("--controllers", "tokencleaner")
    m.add_list_item("--controllers", "-foo")
    assert m.flags().get("--controllers") == "*,bootstrapsigner,-foo"
    removed, added = changes(text, m.text)
    assert added == ["    - --controllers=*,bootstrapsigner,-foo\n"] and len(removed) == 1


def test_etcd_map_flag():
    text = manifest("etcd")
    m = PodManifest(text, "etcd")
    m.set_map_item("--feature-gates", "InitialCorruptCheck", "false")
    m.set_map_item("--feature-gates", "TxnModeWriteWithSharedBuffer", "true")
    assert changes(text, m.text)[1] == [
        "    - --feature-gates=InitialCorruptCheck=false,TxnModeWriteWithSharedBuffer=true\n"
    ]
    m.remove_map_item("--feature-gates", "InitialCorruptCheck")
    m.remove_map_item("--feature-gates", "TxnModeWriteWithSharedBuffer")
    assert "--feature-gates" not in m.flags().values
    assert m.notes[-1] == "removed --feature-gates: it became empty"


# --- style preservation ------------------------------------------------------------------------


def test_space_style_edits_the_value_item():
    text = small(
        "    - --audit-log-path\n    - /var/log/a.log\n    - --secure-port\n    - '6443'\n"
    )
    m = pod(text)
    m.set_flag("--audit-log-path", "/var/log/b.log")
    m.set_flag("--secure-port", "6444")
    assert changes(text, m.text) == (
        ["    - /var/log/a.log\n", "    - '6443'\n"],
        ["    - /var/log/b.log\n", "    - '6444'\n"],
    )


def test_new_flag_follows_the_majority_style():
    text = small(
        "    - --audit-log-path\n    - /var/log/a.log\n    - --etcd-servers=x\n    - --v\n    - '2'\n"
    )
    m = pod(text)
    m.set_flag("--audit-log-maxage", "30")
    # The file quotes with single quotes, so the new value item does too.
    assert changes(text, m.text)[1] == ["    - --audit-log-maxage\n", "    - '30'\n"]
    assert m.flags().get("--audit-log-maxage") == "30"
    m.set_flag("--profiling", "false")  # booleans never take a separate value
    assert "    - --profiling=false\n" in m.text


def test_bare_boolean():
    text = small("    - --profiling\n    - --secure-port=6443\n")
    m = pod(text)
    m.set_flag("--profiling", "true")
    assert m.text == text
    m.set_flag("--profiling", "false")
    assert changes(text, m.text) == (["    - --profiling\n"], ["    - --profiling=false\n"])


def test_stray_boolean_value_is_removed():
    text = small('    - --anonymous-auth\n    - "false"\n    - --secure-port=6443\n')
    m = pod(text)
    assert m.flags().get("--anonymous-auth") == "true"
    assert m.flags().positional == ("false",)
    m.set_flag("--anonymous-auth", "false")
    assert changes(text, m.text) == (
        ["    - --anonymous-auth\n", '    - "false"\n'],
        ["    - --anonymous-auth=false\n"],
    )
    assert m.flags().positional == ()
    assert m.notes == [
        "removed the stray item 'false' after --anonymous-auth (line 10): "
        "a boolean flag never reads a separate value"
    ]


def test_quoted_items_keep_their_quotes_and_comments_stay():
    text = small(
        '    - "--audit-log-maxage=30"  # CIS 1.2.17\n'
        "    # admission, reviewed 2024\n"
        "    - '--enable-admission-plugins=NodeRestriction'\n"
        "    - --secure-port=6443 # why\n"
    )
    m = pod(text)
    m.set_flag("--audit-log-maxage", "60")
    m.add_list_item("--enable-admission-plugins", "EventRateLimit")
    m.set_flag("--secure-port", "6444")
    assert changes(text, m.text) == (
        [
            '    - "--audit-log-maxage=30"  # CIS 1.2.17\n',
            "    - '--enable-admission-plugins=NodeRestriction'\n",
            "    - --secure-port=6443 # why\n",
        ],
        [
            '    - "--audit-log-maxage=60"  # CIS 1.2.17\n',
            "    - '--enable-admission-plugins=NodeRestriction,EventRateLimit'\n",
            "    - --secure-port=6444 # why\n",
        ],
    )


def test_new_item_copies_the_quoting_of_its_neighbour():
    text = small("    - '--secure-port=6443'\n")
    m = pod(text)
    m.set_flag("--audit-log-path", "/x")
    assert changes(text, m.text)[1] == ["    - '--audit-log-path=/x'\n"]


@pytest.mark.parametrize(
    ("value", "item"),
    [
        ("a: b", '"--audit-log-path=a: b"'),
        ("/x #y", '"--audit-log-path=/x #y"'),
        ("it's", "--audit-log-path=it's"),
        ("", "--audit-log-path="),
    ],
)
def test_values_are_quoted_when_yaml_needs_it(value, item):
    m = pod(small("    - --secure-port=6443\n"))
    m.set_flag("--audit-log-path", value)
    assert f"    - {item}\n" in m.text
    assert m.flags().get("--audit-log-path") == value


@pytest.mark.parametrize("value", ["true", "10", "null", "yes", "1e3", "*star", "@x", "- x", ""])
def test_separate_value_items_that_look_typed_are_quoted(value):
    m = pod(small("    - --audit-log-path\n    - /a\n"))
    m.set_flag("--audit-log-path", value)
    assert m.flags().get("--audit-log-path") == value
    assert load(m.text)["spec"]["containers"][0]["command"][2] == value


def test_args_list_receives_new_flags():
    text = (
        "apiVersion: v1\nkind: Pod\nspec:\n  containers:\n  - args:\n"
        "    - --secure-port=6443\n    - --profiling=true\n"
        "    command:\n    - kube-apiserver\n    image: x\n    name: kube-apiserver\n"
    )
    m = pod(text)
    m.set_flag("--profiling", "false")
    m.set_flag("--audit-log-maxage", "30")
    assert changes(text, m.text) == (
        ["    - --profiling=true\n"],
        ["    - --profiling=false\n", "    - --audit-log-maxage=30\n"],
    )
    assert m.text.index("--audit-log-maxage") < m.text.index("command:")


def test_args_only_container():
    text = "kind: Pod\nspec:\n  containers:\n  - args:\n    - --secure-port=6443\n    name: a\n"
    m = pod(text)
    assert m.flags().get("--secure-port") == "6443"
    m.remove_flag("--secure-port")
    assert m.text.endswith("  - args: []\n    name: a\n")
    assert m.flags().values == {}


def test_flags_split_between_command_and_args():
    text = (
        "kind: Pod\nspec:\n  containers:\n  - command:\n    - kube-apiserver\n    - --audit-log-path\n"
        "    args:\n    - /a\n    - --v=2\n    name: a\n"
    )
    m = pod(text)
    assert m.flags().get("--audit-log-path") == "/a"
    m.remove_flag("--audit-log-path")
    assert (
        m.text
        == "kind: Pod\nspec:\n  containers:\n  - command:\n    - kube-apiserver\n    args:\n    - --v=2\n    name: a\n"
    )


def test_crlf_stays_crlf():
    text = small("    - --secure-port=6443\n    - --profiling=true\n").replace("\n", "\r\n")
    m = pod(text)
    m.set_flag("--profiling", "false")
    m.set_flag("--audit-log-maxage", "30")
    m.remove_flag("--secure-port")
    m.add_host_path_volume("audit", "/var/log/a", "/var/log/a", "DirectoryOrCreate", False)
    assert "\n" not in m.text.replace("\r\n", "")
    assert "    - --profiling=false\r\n    - --audit-log-maxage=30\r\n" in m.text
    assert "  volumes:\r\n  - hostPath:\r\n" in m.text


def test_missing_final_newline_stays_missing():
    text = "kind: Pod\nspec:\n  containers:\n  - name: a\n    command:\n    - kube-apiserver\n    - --v=2"
    m = pod(text)
    m.set_flag("--watch-cache", "false")
    assert m.text == text + "\n    - --watch-cache=false"
    m.remove_flag("--watch-cache")
    assert m.text == text
    m.remove_flag("--v")
    assert m.text == text[: -len("\n    - --v=2")]


def test_file_without_the_keys_gets_volumes_and_mounts():
    text = "kind: Pod\nspec:\n  containers:\n  - command:\n    - kube-apiserver\n    name: a\n  hostNetwork: true\n"
    m = pod(text)
    m.add_host_path_volume("audit", "/var/log/a", "/var/log/a", "", False)
    assert m.text == (
        "kind: Pod\nspec:\n  containers:\n  - command:\n    - kube-apiserver\n    name: a\n"
        "    volumeMounts:\n    - mountPath: /var/log/a\n      name: audit\n"
        "  hostNetwork: true\n  volumes:\n  - hostPath:\n      path: /var/log/a\n    name: audit\n"
    )


def test_volume_in_the_files_own_style():
    text = (
        "kind: Pod\nspec:\n  containers:\n  - command:\n      - kube-apiserver\n    name: a\n"
        "    volumeMounts:\n      - name: zz\n        mountPath: /zz\n"
        "  volumes:\n    - name: zz\n      hostPath:\n          type: Directory\n          path: /zz\n"
    )
    m = pod(text)
    m.add_host_path_volume("audit", "/var/log/a", "/var/log/a", "DirectoryOrCreate", True)
    assert changes(text, m.text) == (
        [],
        [
            "      - name: audit\n",
            "        mountPath: /var/log/a\n",
            "        readOnly: true\n",
            "    - name: audit\n",
            "      hostPath:\n",
            "          type: DirectoryOrCreate\n",
            "          path: /var/log/a\n",
        ],
    )


# --- duplicates --------------------------------------------------------------------------------


def test_duplicated_flag_edits_the_effective_one():
    text = small("    - --profiling=false\n    - --secure-port=6443\n    - --profiling=true\n")
    m = pod(text)
    assert m.flags().get("--profiling") == "true"
    m.set_flag("--profiling", "false")
    assert m.text == small("    - --secure-port=6443\n    - --profiling=false\n")
    assert m.notes == ["removed 1 shadowed duplicate of --profiling (line 9)"]


def test_remove_flag_removes_all_occurrences_and_value_items():
    text = small("    - --audit-log-path=/a\n    - --audit-log-path\n    - /b\n    - --v=2\n")
    m = pod(text)
    m.remove_flag("--audit-log-path")
    assert changes(text, m.text)[1] == [] and len(changes(text, m.text)[0]) == 3
    assert m.notes == ["removed 2 occurrences of --audit-log-path (line 9, 10)"]


def test_duplicated_list_flag_accumulates():
    text = small("    - --enable-admission-plugins=A,B\n    - --enable-admission-plugins=C\n")
    m = pod(text)
    m.add_list_item("--enable-admission-plugins", "D")
    assert m.flags().get("--enable-admission-plugins") == "A,B,C,D"
    m.remove_list_item("--enable-admission-plugins", "C")
    m.remove_list_item("--enable-admission-plugins", "D")
    assert m.text == small("    - --enable-admission-plugins=A,B\n")
    m.set_flag("--enable-admission-plugins", "X")
    assert m.text == small("    - --enable-admission-plugins=X\n")


# --- list and map flags ------------------------------------------------------------------------


def test_list_items_are_matched_whole():
    text = small("    - --enable-admission-plugins=NodeRestrictionX, EventRateLimit\n")
    m = pod(text)
    m.remove_list_item("--enable-admission-plugins", "NodeRestriction")
    assert m.text == text and m.notes == ["NodeRestriction is not in --enable-admission-plugins"]
    m.add_list_item("--enable-admission-plugins", "NodeRestriction")
    assert "=NodeRestrictionX, EventRateLimit, NodeRestriction\n" in m.text
    m.add_list_item("--enable-admission-plugins", "NodeRestriction")
    assert m.notes[-1] == "NodeRestriction is already in --enable-admission-plugins"
    m.remove_list_item("--enable-admission-plugins", "NodeRestrictionX")
    assert "    - --enable-admission-plugins=EventRateLimit, NodeRestriction\n" in m.text


def test_emptied_list_flag_is_removed_and_absent_one_created():
    m = pod(small("    - --enable-admission-plugins=NodeRestriction\n    - --v=2\n"))
    m.remove_list_item("--enable-admission-plugins", "NodeRestriction")
    assert m.text == small("    - --v=2\n")
    assert m.notes == ["removed --enable-admission-plugins: its list became empty"]
    m.add_list_item("--enable-admission-plugins", "NodeRestriction")
    assert m.text == small("    - --enable-admission-plugins=NodeRestriction\n    - --v=2\n")


def test_map_items():
    text = small("    - --feature-gates=A=true, B=false\n")
    m = pod(text)
    m.set_map_item("--feature-gates", "B", "true")
    m.set_map_item("--feature-gates", "C", "false")
    assert "    - --feature-gates=A=true, B=true, C=false\n" in m.text
    m.set_map_item("--feature-gates", "C", "false")
    assert m.notes[-1] == "--feature-gates already has C=false"
    m.remove_map_item("--feature-gates", "A")
    assert "    - --feature-gates=B=true, C=false\n" in m.text


def test_shadowed_map_entries_are_removed():
    text = small("    - --feature-gates=A=true,B=true\n    - --feature-gates=A=false\n")
    m = pod(text)
    m.set_map_item("--feature-gates", "A", "true")
    assert changes(text, m.text) == (
        ["    - --feature-gates=A=true,B=true\n", "    - --feature-gates=A=false\n"],
        ["    - --feature-gates=B=true\n", "    - --feature-gates=A=true\n"],
    )
    assert m.notes == ["removed shadowed A entries of --feature-gates"]


def test_absent_map_flag_is_created():
    m = pod(small("    - --v=2\n"))
    m.set_map_item("--feature-gates", "A", "true")
    assert m.flags().get("--feature-gates") == "A=true"


# --- volumes -----------------------------------------------------------------------------------


@pytest.mark.parametrize("component", COMPONENTS)
def test_add_volume_only_adds_lines(component):
    text = manifest(component)
    m = PodManifest(text, component)
    m.add_host_path_volume(
        "audit-log",
        "/var/log/kubernetes/audit",
        "/var/log/kubernetes/audit",
        "DirectoryOrCreate",
        False,
    )
    removed, added = changes(text, m.text)
    assert removed == [] and len(added) == 6
    assert (
        m.container_path_for("/var/log/kubernetes/audit/audit.log")
        == "/var/log/kubernetes/audit/audit.log"
    )
    before = m.text
    m.add_host_path_volume(
        "audit-log",
        "/var/log/kubernetes/audit",
        "/var/log/kubernetes/audit",
        "DirectoryOrCreate",
        False,
    )
    assert m.text == before
    assert m.notes == ["volume audit-log is already mounted at /var/log/kubernetes/audit"]


def test_volume_conflicts():
    m = PodManifest(manifest("kube-apiserver"), "kube-apiserver")
    with pytest.raises(VolumeNameTaken, match="volume name k8s-certs is taken by a different"):
        m.add_host_path_volume("k8s-certs", "/other", "/other", "Directory", True)
    with pytest.raises(
        MountPathTaken, match="mountPath /etc/kubernetes/pki is already used by volume k8s-certs"
    ):
        m.add_host_path_volume(
            "pki", "/etc/kubernetes/pki", "/etc/kubernetes/pki", "Directory", True
        )
    with pytest.raises(EditError, match="invalid volume name"):
        m.add_host_path_volume("Bad_Name", "/a", "/a", "Directory", True)
    with pytest.raises(EditError, match="must be absolute"):
        m.add_host_path_volume("a", "a", "/a", "Directory", True)


def test_existing_volume_gets_only_a_mount():
    text = manifest("kube-apiserver")
    m = PodManifest(text, "kube-apiserver")
    m.add_host_path_volume("k8s-certs", "/etc/kubernetes/pki", "/pki", "DirectoryOrCreate", True)
    assert changes(text, m.text) == (
        [],
        ["    - mountPath: /pki\n", "      name: k8s-certs\n", "      readOnly: true\n"],
    )


def test_has_mount_for():
    m = PodManifest(manifest("kube-apiserver"), "kube-apiserver")
    assert m.has_mount_for("/etc/kubernetes/pki/ca.crt")
    assert m.has_mount_for("/etc/kubernetes/pki")
    assert not m.has_mount_for("/etc/kubernetes/pkix/ca.crt")
    assert not m.has_mount_for("/etc/kubernetes/audit-policy.yaml")
    assert not m.has_mount_for("/var/log/kubernetes/audit/audit.log")


# --- errors ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", "empty document"),
        ("kind: Pod\nspec: [a\n", "malformed YAML"),
        ("- a\n", "not a Pod manifest"),
        ("apiVersion: v1\nkind: Service\n", r"not a Pod manifest \(kind: Service\)"),
        ("kind: Pod\nspec:\n  containers: []\n", "the pod has no containers"),
        (
            "kind: Pod\nspec:\n  containers:\n  - name: a\n    command: [a]\n  - name: b\n    command: [b]\n",
            "expected one container, found 2: a, b",
        ),
        ("kind: Pod\nspec:\n  containers:\n  - name: a\n", "neither command nor args"),
        ("kind: Pod\nspec:\n  containers:\n  - command: x\n", "command is not a list"),
        ("kind: Pod\nkind: Pod\n", "duplicate key 'kind'"),
        ("kind: Pod\r\nspec:\r{}\n", "bare CR"),
        (
            "kind: Pod\nspec:\n  containers:\n  - command: [sh, -c, kube-apiserver --x]\n",
            "shell-wrapped",
        ),
    ],
)
def test_manifest_errors(text, message):
    with pytest.raises(EditError, match=message):
        PodManifest(text, "kube-apiserver")


def test_flow_style_command_is_refused_for_edits():
    m = pod("kind: Pod\nspec:\n  containers:\n  - command: [kube-apiserver, --profiling=true]\n")
    assert m.flags().get("--profiling") == "true"
    with pytest.raises(EditError, match="flow-style command lists are not supported"):
        m.set_flag("--profiling", "false")


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (
            lambda m: m.set_flag("--no-such-flag", "1"),
            "unknown flag --no-such-flag for kube-apiserver",
        ),
        (lambda m: m.set_flag("profiling", "false"), "invalid flag name"),
        (
            lambda m: m.set_flag("--profiling", "maybe"),
            'invalid argument "maybe" for "--profiling"',
        ),
        (lambda m: m.add_list_item("--profiling", "x"), "--profiling is not a list flag"),
        (lambda m: m.add_list_item("--enable-admission-plugins", "a,b"), "invalid list element"),
        (lambda m: m.set_map_item("--secure-port", "a", "b"), "--secure-port is not a map flag"),
        (lambda m: m.set_map_item("--feature-gates", "a=b", "c"), "invalid map key"),
    ],
)
def test_edit_errors_leave_the_text_alone(call, message):
    text = manifest("kube-apiserver")
    m = PodManifest(text, "kube-apiserver")
    with pytest.raises(EditError, match=message):
        call(m)
    assert m.text == text


def test_block_scalar_items_are_refused():
    m = pod(small("    - |-\n      --secure-port=6443\n"))
    with pytest.raises(EditError, match="block scalars"):
        m.set_flag("--secure-port", "1")


def test_unified_diff_marks_a_missing_final_newline():
    diff = unified_diff("a\nb", "a\nc", "x.yaml")
    assert (
        diff
        == "--- a/x.yaml\n+++ b/x.yaml\n@@ -1,2 +1,2 @@\n a\n-b\n\\ No newline at end of file\n+c\n\\ No newline at end of file\n"
    )
    assert unified_diff("a\n", "a\n", "x") == ""


# --- kubelet config ----------------------------------------------------------------------------


def kubelet() -> str:
    return (DATA / "kubelet-config.yaml").read_text(encoding="utf-8")


def test_kubelet_get():
    k = KubeletConfig(kubelet())
    assert k.get("authentication.anonymous.enabled") is False
    assert k.get("healthzPort") == 10248
    assert k.get("clusterDNS") == ["10.96.0.10"]
    assert k.get("readOnlyPort") is None and k.get("authentication.nope.x") is None


def test_kubelet_set_existing_scalar_changes_one_line():
    text = kubelet()
    k = KubeletConfig(text)
    k.set("authentication.anonymous.enabled", True)
    k.set("logging.options.json.infoBufferSize", "1")
    assert changes(text, k.text) == (
        ["    enabled: false\n", '      infoBufferSize: "0"\n'],
        ["    enabled: true\n", '      infoBufferSize: "1"\n'],
    )


def test_kubelet_new_keys_go_in_sorted_position():
    text = kubelet()
    k = KubeletConfig(text)
    k.set("readOnlyPort", 0)
    k.set("protectKernelDefaults", True)
    k.set("featureGates.RotateKubeletServerCertificate", True)
    k.set("authentication.x509.clientCAFile", "/etc/kubernetes/pki/ca.crt")
    lines = k.text.splitlines()
    assert lines[lines.index("protectKernelDefaults: true") - 1] == "nodeStatusUpdateFrequency: 0s"
    assert (
        lines[lines.index("readOnlyPort: 0") + 1] == "resolvConf: /run/systemd/resolve/resolv.conf"
    )
    i = lines.index("featureGates:")
    assert lines[i - 1 : i + 3] == [
        "evictionPressureTransitionPeriod: 0s",
        "featureGates:",
        "  RotateKubeletServerCertificate: true",
        "fileCheckFrequency: 0s",
    ]
    assert changes(text, k.text)[0] == []
    assert k.notes == ["authentication.x509.clientCAFile is already /etc/kubernetes/pki/ca.crt"]


def test_kubelet_empty_flow_mapping_becomes_a_block():
    text = kubelet()
    k = KubeletConfig(text)
    k.set("memorySwap.swapBehavior", "NoSwap")
    assert changes(text, k.text) == (
        ["memorySwap: {}\n"],
        ["memorySwap:\n", "  swapBehavior: NoSwap\n"],
    )


def test_kubelet_lists():
    text = kubelet()
    k = KubeletConfig(text)
    k.set("clusterDNS", ["10.96.0.10", "10.96.0.11"])
    k.set("tlsCipherSuites", ["TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256"])
    assert changes(text, k.text)[0] == []
    assert "clusterDNS:\n- 10.96.0.10\n- 10.96.0.11\nclusterDomain" in k.text
    assert (
        "syncFrequency: 0s\ntlsCipherSuites:\n- TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256\nvolumeStats"
        in k.text
    )
    k.set("clusterDNS", [])
    assert "clusterDNS: []\nclusterDomain" in k.text
    k.set("clusterDNS", ["1.1.1.1"])
    assert "clusterDNS:\n- 1.1.1.1\nclusterDomain" in k.text


def test_kubelet_remove():
    text = kubelet()
    k = KubeletConfig(text)
    k.remove("shutdownGracePeriod")
    k.remove("authentication.x509.clientCAFile")
    assert changes(text, k.text) == (
        [
            "  x509:\n",
            "    clientCAFile: /etc/kubernetes/pki/ca.crt\n",
            "shutdownGracePeriod: 0s\n",
        ],
        ["  x509: {}\n"],
    )
    k.remove("readOnlyPort")
    assert k.notes == ["readOnlyPort is not set"]


def test_kubelet_comments_and_unsorted_files():
    text = (
        "# kubelet\nkind: KubeletConfiguration\napiVersion: kubelet.config.k8s.io/v1beta1\n"
        "authentication:\n  anonymous:\n    enabled: true # TODO\n"
        "readOnlyPort: 10255  # legacy\n"
    )
    k = KubeletConfig(text)
    k.set("authentication.anonymous.enabled", False)
    k.set("readOnlyPort", 0)
    k.set("protectKernelDefaults", True)
    k.set("authentication.webhook.enabled", True)
    assert k.text == (
        "# kubelet\nkind: KubeletConfiguration\napiVersion: kubelet.config.k8s.io/v1beta1\n"
        "authentication:\n  anonymous:\n    enabled: false # TODO\n  webhook:\n    enabled: true\n"
        "readOnlyPort: 0  # legacy\nprotectKernelDefaults: true\n"
    )


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", "empty document"),
        ("kind: KubeletConfiguration\n  x: [\n", "malformed YAML"),
        ("- a\n", "not a block mapping"),
        ("kind: KubeProxyConfiguration\n", "not a KubeletConfiguration"),
    ],
)
def test_kubelet_errors(text, message):
    with pytest.raises(EditError, match=message):
        KubeletConfig(text)


def test_kubelet_refuses_paths_through_scalars():
    k = KubeletConfig(kubelet())
    with pytest.raises(EditError, match="cgroupDriver is not a block mapping"):
        k.set("cgroupDriver.x", 1)
    with pytest.raises(EditError, match="invalid key path"):
        k.set("a..b", 1)
    with pytest.raises(EditError, match="unsupported value type"):
        k.set("a", object())


# --- odd but valid layouts ---------------------------------------------------------------------


def test_byte_order_mark_is_kept():
    text = "\ufeff" + small("    - --secure-port=6443\n")
    m = pod(text)
    m.set_flag("--secure-port", "6444")
    m.set_flag("--watch-cache", "false")
    assert m.text == "\ufeff" + small("    - --secure-port=6444\n    - --watch-cache=false\n")


def test_multi_line_scalar_item_is_replaced_whole():
    text = small("    - --tls-cipher-suites=TLS_A,\n      TLS_B  # folded\n    - --v=2\n")
    m = pod(text)
    assert m.flags().get("--tls-cipher-suites") == "TLS_A, TLS_B"
    m.remove_list_item("--tls-cipher-suites", "TLS_A")
    assert m.text == small("    - --tls-cipher-suites=TLS_B  # folded\n    - --v=2\n")
    m.remove_flag("--tls-cipher-suites")
    assert m.text == small("    - --v=2\n")


def test_new_flags_go_before_positional_items():
    text = small("    - --v=2\n    - --\n    - extra\n")
    m = pod(text)
    m.set_flag("--watch-cache", "false")
    assert m.text == small("    - --v=2\n    - --watch-cache=false\n    - --\n    - extra\n")


def test_values_with_line_breaks_are_escaped():
    m = pod(small("    - --v=2\n"))
    m.set_flag("--audit-log-path", "a\nb")
    assert '    - "--audit-log-path=a\\nb"\n' in m.text
    assert m.flags().get("--audit-log-path") == "a\nb"


def test_extra_spaces_after_the_dash_are_copied():
    m = pod(small("    -   --v=2\n"))
    m.set_flag("--watch-cache", "false")
    assert m.text == small("    -   --v=2\n    -   --watch-cache=false\n")


def test_emptied_args_then_refilled():
    text = "kind: Pod\nspec:\n  containers:\n  - args:\n    # flags\n    - --v=2\n    name: a\n"
    m = pod(text)
    m.remove_flag("--v")
    assert m.text == "kind: Pod\nspec:\n  containers:\n  - args: []\n    # flags\n    name: a\n"
    m.set_flag("--profiling", "false")
    assert m.text == (
        "kind: Pod\nspec:\n  containers:\n  - args:\n    - --profiling=false\n    # flags\n    name: a\n"
    )


def test_empty_and_flow_volume_lists():
    head = "kind: Pod\nspec:\n  containers:\n  - command:\n    - kube-apiserver\n    name: a\n"
    m = pod(head + "    volumeMounts:\n    - {mountPath: /y, name: y}\n  volumes: []\n")
    m.add_host_path_volume("x", "/x", "/x", "File", True)
    assert m.text == head + (
        "    volumeMounts:\n    - mountPath: /x\n      name: x\n      readOnly: true\n"
        "    - {mountPath: /y, name: y}\n"
        "  volumes:\n  - hostPath:\n      path: /x\n      type: File\n    name: x\n"
    )


@pytest.mark.parametrize(
    ("items", "message"),
    [
        ("    - &a --v=2\n", "anchors, aliases and tags are not supported"),
        ("    - !!str --v=2\n", "anchors, aliases and tags are not supported"),
    ],
)
def test_properties_on_items_are_refused(items, message):
    m = pod(small(items))
    with pytest.raises(EditError, match=message):
        m.set_flag("--v", "3")


def test_two_documents_are_refused():
    with pytest.raises(EditError, match="expected a single YAML document"):
        pod(small("    - --v=2\n") + "---\nkind: Pod\n")


def test_components_without_a_flag_table_take_any_flag():
    m = PodManifest(small("    - --v=2\n"), "my-component")
    m.set_flag("--anything", "x")
    assert m.flags().get("--anything") == "x"
