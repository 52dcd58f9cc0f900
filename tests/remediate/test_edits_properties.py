"""Property tests: random kubeadm-like manifests, random edits, an independent model of the flags.

For each edit: lines that do not belong to the edited flag are byte-identical, the component reads
exactly the flags the model predicts, the rest of the document is unchanged, and repeating the
edit changes nothing.
"""

from __future__ import annotations

import difflib
import json
import re
from dataclasses import dataclass

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from cis_tui.audit.flags import split_list, split_map
from cis_tui.remediate.edits import EditError, KubeletConfig, PodManifest
from cis_tui.remediate.yamltext import load

SETTINGS = settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])

BOOLS = ["--profiling", "--anonymous-auth", "--allow-privileged", "--service-account-lookup"]
STRINGS = ["--audit-log-path", "--tls-cert-file", "--kubelet-certificate-authority"]
INTS = ["--secure-port", "--audit-log-maxage", "--v"]
LISTS = ["--enable-admission-plugins", "--disable-admission-plugins", "--authorization-mode"]
MAPS = ["--feature-gates"]
ALL = BOOLS + STRINGS + INTS + LISTS + MAPS

STRING_VALUES = [
    "/var/log/a.log",
    "/x y",
    "a: b",
    "x #y",
    "it's",
    "true",
    "10",
    "*s",
    "@x",
    "%p",
    "",
]
ELEMENTS = ["NodeRestriction", "NodeRestrictionX", "AlwaysPullImages", "EventRateLimit", "RBAC"]
GATES = ["A", "B", "C"]
TYPED_WORDS = {"true", "false", "yes", "no", "on", "off", "y", "n", "null"}


# --- an independent renderer and model ---------------------------------------------------------


def yaml_item(text: str, quote: str) -> str:
    """One command item as YAML, in the requested style when that style can hold it."""
    plain_flag = re.fullmatch(r"--[a-z-]+(=[A-Za-z0-9/.,=_-]*)?", text)
    plain_value = (
        re.fullmatch(r"[A-Za-z/][A-Za-z0-9/.,=_-]*", text) and text.lower() not in TYPED_WORDS
    )
    if quote == "" and (plain_flag or plain_value):
        return text
    if quote == "'":
        return "'" + text.replace("'", "''") + "'"
    return json.dumps(text)


def unquote(scalar: str) -> str:
    if scalar.startswith('"'):
        return json.loads(scalar)
    if scalar.startswith("'"):
        return scalar[1:-1].replace("''", "'")
    return scalar


def kind(flag: str) -> str:
    if flag in BOOLS:
        return "bool"
    if flag in LISTS:
        return "list"
    if flag in MAPS:
        return "map"
    return "scalar"


def meaning(flag: str, value: str) -> object:
    if kind(flag) == "list":
        return split_list(value)
    if kind(flag) == "map":
        return split_map(value)
    return value


def read_model(occurrences: list[tuple[str, str]]) -> dict[str, object]:
    """Effective flags the pflag way: scalars last-wins, lists and maps accumulate."""
    model: dict[str, object] = {}
    for flag, value in occurrences:
        if kind(flag) == "list" and flag in model:
            model[flag] = [*model[flag], *split_list(value)]  # type: ignore[misc]
        elif kind(flag) == "map" and flag in model:
            model[flag] = {**model[flag], **split_map(value)}  # type: ignore[dict-item]
        else:
            model[flag] = meaning(flag, value)
    return model


def effective(m: PodManifest) -> dict[str, object]:
    return {flag: meaning(flag, value) for flag, value in m.flags().values.items()}


# --- manifests ---------------------------------------------------------------------------------


def values_for(flag: str) -> st.SearchStrategy[str]:
    if flag in BOOLS:
        return st.sampled_from(["true", "false"])
    if flag in INTS:
        return st.integers(0, 65535).map(str)
    if flag in LISTS:
        sep = st.sampled_from([",", ", "])
        return st.tuples(st.lists(st.sampled_from(ELEMENTS), min_size=1, max_size=3), sep).map(
            lambda p: p[1].join(p[0])
        )
    if flag in MAPS:
        entry = st.tuples(st.sampled_from(GATES), st.sampled_from(["true", "false"]))
        return st.lists(entry, min_size=1, max_size=3).map(
            lambda es: ",".join(f"{k}={v}" for k, v in es)
        )
    return st.sampled_from(STRING_VALUES)


@st.composite
def occurrence(draw: st.DrawFn) -> tuple[list[str], tuple[str, str]]:
    """The items of one flag occurrence and the (flag, value) it means."""
    flag = draw(st.sampled_from(ALL))
    if flag in BOOLS:
        style = draw(st.sampled_from(["=", "bare", "stray"]))
        if style == "bare":
            return [flag], (flag, "true")
        if style == "stray":  # `--anonymous-auth`, `false`: the value is a stray positional
            return [flag, draw(st.sampled_from(["true", "false"]))], (flag, "true")
    else:
        style = draw(st.sampled_from(["=", " "]))
    value = draw(values_for(flag))
    if style == " ":
        return [flag, value], (flag, value)
    return [f"{flag}={value}"], (flag, value)


@dataclass
class Generated:
    text: str
    model: dict[str, object]


@st.composite
def manifests(draw: st.DrawFn) -> Generated:
    occs = draw(st.lists(occurrence(), max_size=8))
    items = [item for its, _ in occs for item in its]
    quotes = st.sampled_from(["", "", "", "'", '"'])
    counter = iter(range(1000))
    lines: list[str] = []

    def item_lines(seq: list[str]) -> list[str]:
        out = []
        for item in seq:
            if draw(st.integers(0, 5)) == 0:
                out.append(f"    # note {next(counter)}")
            comment = f"  # c{next(counter)}" if draw(st.integers(0, 4)) == 0 else ""
            out.append(f"    - {yaml_item(item, draw(quotes))}{comment}")
        return out

    mode = draw(st.sampled_from(["command", "args", "split"]))
    if not items:
        mode = "command"
    split = draw(st.integers(0, len(items) - 1)) if mode == "split" else 0
    tail = draw(st.booleans())  # the flags are the last lines of the file
    lines += [
        "apiVersion: v1",
        "kind: Pod",
        "metadata:",
        "  labels:",
        "    component: kube-apiserver",
    ]
    lines += ["  name: kube-apiserver", "  namespace: kube-system", "spec:", "  containers:"]
    body: list[str] = []
    if mode in ("command", "split"):
        body += ["command:", "    - kube-apiserver"]
        body += item_lines(items if mode == "command" else items[:split])
    if mode in ("args", "split"):
        body += ["args:", *item_lines(items[split:] if mode == "split" else items)]
    rest = ["image: registry.k8s.io/kube-apiserver:v1.35.0", "name: kube-apiserver"]
    container = [*rest, *body] if tail else [*body, *rest]
    if not tail:
        container += [
            "volumeMounts:",
            "    - mountPath: /etc/kubernetes/pki",
            "      name: k8s-certs",
            "      readOnly: true",
        ]
    first = True
    for line in container:
        if line.startswith("    "):
            lines.append(line)
        else:
            lines.append(("  - " if first else "    ") + line)
            first = False
    if not tail:
        lines += [
            "  hostNetwork: true",
            "  volumes:",
            "  - hostPath:",
            "      path: /etc/kubernetes/pki",
        ]
        lines += ["      type: DirectoryOrCreate", "    name: k8s-certs", "status: {}"]
    newline = draw(st.sampled_from(["\n", "\r\n"]))
    text = newline.join(lines) + (newline if draw(st.booleans()) else "")
    return Generated(text, read_model([meaning_pair for _, meaning_pair in occs]))


# --- edits -------------------------------------------------------------------------------------


@st.composite
def edit(draw: st.DrawFn) -> tuple:
    op = draw(st.sampled_from(["set", "set", "remove", "add_item", "remove_item", "set_map"]))
    if op == "set":
        flag = draw(st.sampled_from(ALL))
        return ("set", flag, draw(values_for(flag)))
    if op == "remove":
        return ("remove", draw(st.sampled_from(ALL)))
    if op in ("add_item", "remove_item"):
        return (op, draw(st.sampled_from(LISTS)), draw(st.sampled_from(ELEMENTS)))
    return (
        "set_map",
        "--feature-gates",
        draw(st.sampled_from(GATES)),
        draw(st.sampled_from(["true", "false"])),
    )


def apply(m: PodManifest, op: tuple) -> None:
    name, flag, *args = op
    {
        "set": m.set_flag,
        "remove": m.remove_flag,
        "add_item": m.add_list_item,
        "remove_item": m.remove_list_item,
        "set_map": m.set_map_item,
    }[name](flag, *args)


def predict(model: dict[str, object], op: tuple) -> None:
    name, flag, *args = op
    if name == "set":
        model[flag] = meaning(flag, args[0])
    elif name == "remove":
        model.pop(flag, None)
    elif name == "add_item":
        current = list(model.get(flag, []))  # type: ignore[call-overload]
        if args[0] not in current:
            model[flag] = [*current, args[0]]
    elif name == "remove_item":
        kept = [x for x in model.get(flag, []) if x != args[0]]  # type: ignore[attr-defined]
        if kept:
            model[flag] = kept
        else:
            model.pop(flag, None)
    else:
        model[flag] = {**model.get(flag, {}), args[0]: args[1]}  # type: ignore[dict-item]


ITEM = re.compile(r"^\s*- (.*?)(\s+# c\d+)?$")


def unowned_lines(text: str, flag: str) -> list[str]:
    """The lines that do not belong to `flag`: not its items, its value item or a stray value."""
    kept: list[str] = []
    after_bare = False
    for line in text.replace("args: []", "args:").splitlines():
        match = ITEM.match(line)
        if match is None:
            # A value item may follow its flag across comments and into `args` after `command`.
            if not re.fullmatch(r"\s*(#.*|args:.*)", line):
                after_bare = False
            kept.append(line)
            continue
        item = unquote(match.group(1)) if match.group(1)[:1] in "\"'" else match.group(1)
        if item == flag or item.startswith(flag + "="):
            after_bare = item == flag
            continue
        if after_bare and not item.startswith("-"):
            after_bare = False
            continue
        after_bare = False
        kept.append(line)
    return kept


def without_argv(text: str) -> dict:
    data = load(text)
    container = data["spec"]["containers"][0]
    container.pop("command", None)
    container.pop("args", None)
    return data


@SETTINGS
@given(manifests(), st.lists(edit(), min_size=1, max_size=5))
def test_random_edits_touch_only_their_flag(generated: Generated, ops: list[tuple]) -> None:
    m = PodManifest(generated.text, "kube-apiserver")
    model = dict(generated.model)
    assert effective(m) == model
    for op in ops:
        before = m.text
        apply(m, op)
        predict(model, op)
        assert effective(m) == model, op
        assert unowned_lines(m.text, op[1]) == unowned_lines(before, op[1]), op
        assert without_argv(m.text) == without_argv(before)
        assert m.flags().errors == ()
        # CRLF stays CRLF; a missing final newline stays missing.
        crlf = "\r\n" in generated.text
        assert m.text.count("\n") == (m.text.count("\r\n") if crlf else m.text.count("\n"))
        assert crlf or "\r" not in m.text
        assert m.text.endswith("\n") == generated.text.endswith("\n")
        after = m.text
        apply(m, op)
        assert m.text == after, f"not idempotent: {op}"


@SETTINGS
@given(manifests(), st.sampled_from(ALL), st.data())
def test_set_flag_in_place_changes_at_most_its_own_lines(generated, flag, data):
    m = PodManifest(generated.text, "kube-apiserver")
    occurrences = [o for o in m.flags().occurrences if o.name == flag]
    value = data.draw(values_for(flag))
    before = m.text.splitlines()
    m.set_flag(flag, value)
    after = m.text.splitlines()
    if len(occurrences) == 1 and occurrences[0].style == "=":
        # One `--f=v` item: exactly that line may change, nothing moves.
        assert len(before) == len(after)
        assert sum(a != b for a, b in zip(before, after, strict=True)) <= 1
    if not occurrences:
        assert len(after) - len(before) in (1, 2)
        assert [line for line in after if line not in before] != []


@SETTINGS
@given(
    manifests(),
    st.sampled_from(["audit-log", "k8s-certs", "policy"]),
    st.sampled_from(
        ["/var/log/kubernetes/audit", "/etc/kubernetes/pki", "/etc/kubernetes/policy.yaml"]
    ),
    st.sampled_from(
        ["/var/log/kubernetes/audit", "/etc/kubernetes/pki", "/etc/kubernetes/policy.yaml"]
    ),
    st.booleans(),
)
def test_volumes_only_add_lines(generated, name, host_path, mount_path, read_only):
    m = PodManifest(generated.text, "kube-apiserver")
    before = m.text
    try:
        m.add_host_path_volume(name, host_path, mount_path, "DirectoryOrCreate", read_only)
    except EditError as exc:
        assert "is taken by a different volume" in str(exc) or "is already used by volume" in str(
            exc
        )
        assert m.text == before
        return
    old_lines = before.splitlines(keepends=True)
    new_lines = m.text.splitlines(keepends=True)
    # Only insertions: the old lines appear in order in the new text (bar the final newline).
    it = iter(line.rstrip("\r\n") for line in new_lines)
    assert all(any(line.rstrip("\r\n") == other for other in it) for line in old_lines)
    assert m.has_mount_for(host_path)
    mounts = load(m.text)["spec"]["containers"][0]["volumeMounts"]
    assert any(x["mountPath"] == mount_path and x["name"] == name for x in mounts)
    assert effective(m) == effective(PodManifest(before, "kube-apiserver"))
    after = m.text
    m.add_host_path_volume(name, host_path, mount_path, "DirectoryOrCreate", read_only)
    assert m.text == after


# --- kubelet config ----------------------------------------------------------------------------

KUBELET = (
    "apiVersion: kubelet.config.k8s.io/v1beta1\nauthentication:\n  anonymous:\n    enabled: false\n"
    "  webhook:\n    cacheTTL: 0s\n    enabled: true\n  x509:\n    clientCAFile: /etc/kubernetes/pki/ca.crt\n"
    "authorization:\n  mode: Webhook\nclusterDNS:\n- 10.96.0.10\ncrashLoopBackOff: {}\n"
    'kind: KubeletConfiguration\nlogging:\n  options:\n    json:\n      infoBufferSize: "0"\n'
    "readOnlyPort: 0\nstaticPodPath: /etc/kubernetes/manifests\n"
)
PATHS = [
    "authentication.anonymous.enabled",
    "authentication.webhook.cacheTTL",
    "authentication.x509.clientCAFile",
    "authorization.mode",
    "clusterDNS",
    "crashLoopBackOff.maxContainerRestartPeriod",
    "eventRecordQPS",
    "featureGates.RotateKubeletServerCertificate",
    "logging.options.json.infoBufferSize",
    "protectKernelDefaults",
    "readOnlyPort",
    "tlsCipherSuites",
    "zzz.a.b",
]
KUBELET_VALUES = st.one_of(
    st.booleans(),
    st.integers(-5, 10**6),
    st.sampled_from(["0s", "Webhook", "a: b", "true", "0", "", "x #y", "/etc/x"]),
    st.lists(st.sampled_from(["10.96.0.10", "TLS_AES_128_GCM_SHA256", "1", "on"]), max_size=3),
)


def nested_set(data: dict, path: str, value: object) -> None:
    *parents, last = path.split(".")
    for part in parents:
        if not isinstance(data.get(part), dict):
            data[part] = {}
        data = data[part]
    data[last] = value


def nested_remove(data: dict, path: str) -> None:
    *parents, last = path.split(".")
    for part in parents:
        if not isinstance(data.get(part), dict):
            return
        data = data[part]
    data.pop(last, None)


@SETTINGS
@given(
    st.lists(
        st.tuples(
            st.sampled_from(["set", "set", "remove"]), st.sampled_from(PATHS), KUBELET_VALUES
        ),
        min_size=1,
        max_size=6,
    ),
    st.booleans(),
)
def test_random_kubelet_edits(ops, crlf):
    text = KUBELET.replace("\n", "\r\n") if crlf else KUBELET
    k = KubeletConfig(text)
    model = load(text)
    for op, path, value in ops:
        before = k.text
        existed = path_kind(model, path)
        if op == "set":
            k.set(path, value)
            nested_set(model, path, value)
            assert k.get(path) == value and type(k.get(path)) is type(value)
        else:
            k.remove(path)
            nested_remove(model, path)
        assert load(k.text) == model
        assert k.text.count("\n") == (k.text.count("\r\n") if crlf else k.text.count("\n"))
        removed, added = changed_lines(before, k.text)
        if op == "set" and existed == "scalar" and not (isinstance(value, list) and value):
            assert len(removed) <= 1 and len(added) <= 1  # replaced on its own line
        if op == "set" and existed == "absent":
            assert removed == []  # a new key under block mappings only adds lines
        if op == "remove" and existed != "absent":
            assert len(added) <= 1  # only a parent left empty becomes `parent: {}`
        after = k.text
        if op == "set":
            k.set(path, value)
        else:
            k.remove(path)
        assert k.text == after


def path_kind(data: dict, path: str) -> str:
    """'absent' (under block mappings only), 'scalar', 'collection' or 'other'."""
    *parents, last = path.split(".")
    for part in parents:
        if part not in data:
            return "absent"
        if not isinstance(data[part], dict) or not data[part]:
            return "other"
        data = data[part]
    if last not in data:
        return "absent"
    return "collection" if isinstance(data[last], (dict, list)) else "scalar"


def changed_lines(old: str, new: str) -> tuple[list[str], list[str]]:
    a, b = old.splitlines(), new.splitlines()
    removed: list[str] = []
    added: list[str] = []
    for tag, i1, i2, j1, j2 in difflib.SequenceMatcher(None, a, b, autojunk=False).get_opcodes():
        if tag != "equal":
            removed += a[i1:i2]
            added += b[j1:j2]
    return removed, added
