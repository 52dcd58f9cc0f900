"""Turn failing checks into a plan: per file, the new content, its diff, the checks it fixes.

Planning is pure over a node snapshot: nothing is written. One file, one write, one restart,
however many checks it fixes.
"""

from __future__ import annotations

import grp
import posixpath
import pwd
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING

from cis_tui.audit.effective import etcd_config_named
from cis_tui.audit.evaluate import Result, Status, evaluate
from cis_tui.audit.flags import parse_args
from cis_tui.audit.node import (
    InputError,
    NodeSnapshot,
    parse_manifest,
    read_text_file,
    stat_file,
)
from cis_tui.benchmarks.catalog import Catalog, Check, Edit
from cis_tui.errors import UserError
from cis_tui.layout import STATIC_COMPONENTS
from cis_tui.remediate.edits import EditError, KubeletConfig, PodManifest, unified_diff
from cis_tui.remediate.params import ParamValues, fill, layout_values, resolve_params

if TYPE_CHECKING:
    from cis_tui.persist.changes import ConfigMapChange
    from cis_tui.persist.planner import Persistence
from cis_tui.remediate.recipes import RECIPES, CompanionFile, RecipeContext, RecipeError
from cis_tui.remediate.versioned import (
    admission_list,
    cluster_ca,
    companion_problems,
    config_problems,
    known_defaults,
    legacy_note,
    manifest_problems,
    names_file,
)

#: Transaction order (DESIGN section 6): modes/owners, etcd, apiserver, kcm, scheduler, kubelet.
FILE_ORDER = ("attributes", *STATIC_COMPONENTS, "kubelet")

_TARGET_COMPONENT = {
    "apiserver-manifest": "kube-apiserver",
    "controller-manager-manifest": "kube-controller-manager",
    "scheduler-manifest": "kube-scheduler",
    "etcd-manifest": "etcd",
}


@dataclass(frozen=True)
class AttributeChange:
    """chmod / chown of one existing file."""

    path: Path
    mode: int | None = None  # new permission bits
    owner: str | None = None  # new user:group
    old_mode: int | None = None
    old_owner: str | None = None

    def describe(self) -> str:
        parts = []
        if self.mode is not None:
            parts.append(f"mode {self.old_mode:03o} -> {self.mode:03o}")
        if self.owner is not None:
            parts.append(f"owner {self.old_owner} -> {self.owner}")
        return f"{self.path}: {', '.join(parts)}"


@dataclass(frozen=True)
class FilePlan:
    """Everything one transaction changes: one file (or a set of file attributes)."""

    kind: str  # "manifest" | "kubelet-config" | "attributes"
    component: str  # whose restart proves the change ("node" for attributes)
    path: Path | None
    old_text: str | None
    new_text: str | None
    checks: tuple[str, ...]
    companions: tuple[CompanionFile, ...] = ()
    attributes: tuple[AttributeChange, ...] = ()
    notes: tuple[str, ...] = ()
    risks: tuple[str, ...] = ()
    #: For `backups restore`: the backup put back, and the checks its change had fixed.
    restores: str = ""
    reverts: tuple[str, ...] = ()
    #: The kubeadm configuration change that makes this fix survive `kubeadm upgrade`
    #: (a cis_tui.persist.changes.ConfigMapChange), set by cis_tui.persist.planner.
    persist: ConfigMapChange | None = None

    @property
    def restarts(self) -> tuple[str, ...]:
        return () if self.kind == "attributes" else (self.component,)

    @property
    def diff(self) -> str:
        """The unified diff of the file, companion files and attribute changes, then of the
        kubeadm configuration that keeps the fix over `kubeadm upgrade`."""
        return self.node_diff + (self.persist.diff if self.persist is not None else "")

    @property
    def node_diff(self) -> str:
        """The unified diff of what changes on the node: the file, companions, attributes."""
        chunks = []
        if self.path is not None and self.old_text is not None and self.new_text is not None:
            chunks.append(unified_diff(self.old_text, self.new_text, str(self.path)))
        for comp in self.companions:
            if comp.is_dir:
                chunks.append(f"+++ {comp.path}/ (new directory, mode {comp.mode:03o})\n")
            elif comp.secret:
                held = (
                    f"the key of the companion bundle's {comp.name}"
                    if comp.shared
                    else "a freshly generated key"
                )
                chunks.append(
                    f"--- /dev/null\n+++ {comp.path} (new file, mode {comp.mode:03o})\n"
                    f"+<content withheld: holds {held}>\n"
                )
            else:
                body = unified_diff("", comp.content.decode(), str(comp.path)).split("\n", 2)[2]
                chunks.append(
                    f"--- /dev/null\n+++ {comp.path} (new file, mode {comp.mode:03o})\n{body}"
                )
        for change in self.attributes:
            chunks.append(f"# {change.describe()}\n")
        return "".join(chunks)


@dataclass(frozen=True)
class Skipped:
    check_id: str
    reason: str
    #: The check could not be evaluated (ERROR): nothing can be planned until that is fixed.
    error: bool = False
    #: A waiver in the config accepts the check as it is: never fixed (cis_tui.audit.waive).
    waived: bool = False


@dataclass(frozen=True)
class Plan:
    benchmark: str
    checks: tuple[str, ...]  # the requested checks that the plan fixes
    params: ParamValues
    files: tuple[FilePlan, ...]
    skipped: tuple[Skipped, ...] = ()
    #: Manual checks that fail and have a fix, left out of an all-failing selection.
    manual_left_out: tuple[str, ...] = ()
    #: How the fixes are made to survive `kubeadm upgrade` (cis_tui.persist.planner).
    persistence: Persistence | None = None

    @property
    def restarts(self) -> tuple[str, ...]:
        return tuple(c for f in self.files for c in f.restarts)

    @property
    def empty(self) -> bool:
        return not self.files


@dataclass
class _Draft:
    """A file's plan being built; `text` is its content after the checks accepted so far."""

    kind: str
    component: str
    path: Path | None = None
    old_text: str | None = None
    text: str | None = None
    checks: list[str] = field(default_factory=list)
    companions: list[CompanionFile] = field(default_factory=list)
    attributes: dict[Path, AttributeChange] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    risks: list[str] = field(default_factory=list)
    recipes_done: set[str] = field(default_factory=set)


@dataclass
class _Stage:
    """The edits of one check, kept apart until all of them succeed."""

    editors: dict[str, PodManifest | KubeletConfig] = field(default_factory=dict)
    companions: dict[str, list[CompanionFile]] = field(default_factory=dict)
    attributes: dict[Path, AttributeChange] = field(default_factory=dict)
    recipes: dict[str, set[str]] = field(default_factory=dict)
    touched: list[str] = field(default_factory=list)

    def touch(self, key: str) -> None:
        if key not in self.touched:
            self.touched.append(key)


def _typed(value: object, params: Mapping[str, str], check: Check) -> object:
    """A catalog value with `{param}` filled; a whole `{param}` keeps the parameter's type."""
    if isinstance(value, str) and value.startswith("{") and value.endswith("}"):
        name = value[1:-1]
        param = next((p for p in check.remediation.params if p.name == name), None)
        if param is not None:
            text = params[name]
            if param.type == "int":
                return int(text)
            if param.type == "list":
                return text.split(",")
            return text
    if isinstance(value, str):
        return fill(value, params)
    if isinstance(value, list):
        return [_typed(v, params, check) for v in value]
    return value


def _owner_ids(owner: str) -> tuple[int, int] | None:
    user, _, group = owner.partition(":")
    try:
        return pwd.getpwnam(user).pw_uid, grp.getgrnam(group or user).gr_gid
    except KeyError:
        return None


class _Planner:
    def __init__(
        self, snap: NodeSnapshot, params: ParamValues, bundle: Mapping[str, bytes] | None = None
    ) -> None:
        self.snap = snap
        self.params = params
        self.bundle = bundle
        self.layout = snap.layout
        self.drafts: dict[str, _Draft] = {}

    def _draft(self, key: str) -> _Draft:
        """The draft of a manifest (by component), the kubelet config, or attributes."""
        if key in self.drafts:
            return self.drafts[key]
        if key == "attributes":
            draft = _Draft("attributes", "node")
        elif key == "kubelet":
            if self.snap.kubelet_config_error:
                raise RecipeError(str(self.snap.kubelet_config_error))
            self._check_kubelet_config_path()
            path = self.layout.kubelet_config
            draft = _Draft("kubelet-config", "kubelet", path, self._read(path, "kubelet config"))
        else:
            if key in self.snap.manifest_errors:
                raise RecipeError(str(self.snap.manifest_errors[key]))
            manifest = self.snap.manifests.get(key)
            if manifest is not None and manifest.refused:
                raise RecipeError(
                    f"the kubelet refuses to run {manifest.path} as it is "
                    f"({manifest.refused[0]}); fix that by hand first"
                )
            path = self.layout.manifest(key)
            draft = _Draft("manifest", key, path, self._read(path, "manifest"))
        draft.text = draft.old_text
        self.drafts[key] = draft
        return draft

    def _check_kubelet_config_path(self) -> None:
        """Backups restore only to the layout's kubelet config: never edit another one."""
        path = self.snap.kubelet_config_path
        if path is not None and path != self.layout.kubelet_config:
            raise RecipeError(
                f"the kubelet reads {path} (its --config), not the layout's "
                f"{self.layout.kubelet_config}; set [layout] kubelet_config to fix it"
            )

    @staticmethod
    def _read(path: Path, what: str) -> str:
        try:
            return read_text_file(path, what)
        except InputError as exc:
            raise RecipeError(str(exc)) from None

    def _editor(self, stage: _Stage, key: str) -> PodManifest | KubeletConfig:
        if key not in stage.editors:
            draft = self._draft(key)
            assert draft.text is not None and draft.path is not None
            try:
                stage.editors[key] = (
                    KubeletConfig(draft.text) if key == "kubelet" else PodManifest(draft.text, key)
                )
            except EditError as exc:
                raise RecipeError(f"{draft.path}: {exc}") from None
        stage.touch(key)
        return stage.editors[key]

    def add(self, check: Check) -> None:
        """Plan one check's edits; all or nothing."""
        given = self.params.get(check.id, {})
        params = self._node_defaults(check, resolve_params(check, given, self.layout), given)
        values = {**layout_values(self.layout), **params}
        stage = _Stage()
        for edit in check.remediation.edits:
            self._apply(check, edit, stage, params, values)
        self._check_versions(check, stage)
        for key in stage.touched:
            draft = self._draft(key)
            if key in stage.editors:
                editor = stage.editors[key]
                draft.text = editor.text
                draft.notes.extend(n for n in editor.notes if n not in draft.notes)
            draft.companions.extend(stage.companions.get(key, []))
            draft.recipes_done |= stage.recipes.get(key, set())
            if key == "attributes":
                draft.attributes.update(stage.attributes)
            draft.checks.append(check.id)
            draft.risks.extend(r for r in check.remediation.risks if r not in draft.risks)

    def _node_defaults(
        self, check: Check, params: dict[str, str], given: Mapping[str, str]
    ) -> dict[str, str]:
        """Defaults made for this node: cipher names the version knows, and the cluster CA
        the manifest already names where the layout's `{pki}/ca.crt` does not exist."""
        params = known_defaults(check, params, given, self.snap.versions.of(check.component))
        for param in check.remediation.params:
            if param.name in given or param.default != "{pki}/ca.crt":
                continue
            if self.layout.host_path(params[param.name]).exists():
                continue
            named = cluster_ca(self.snap.manifests.get(check.component))
            named = named or cluster_ca(self.snap.manifests.get("kube-apiserver"))
            if named:
                params[param.name] = named
        return params

    def _file_problem(self, pod: PodManifest, flag: str, path: str, known: set[str]) -> str | None:
        """Why a file a new flag names cannot be opened by the component (None: it can).
        `known`: paths the fix creates, or that the manifest already names (so the pod opens
        them today, even in a copied tree that lacks them)."""
        where = posixpath.dirname(path) if flag == "--audit-log-path" else path
        if path in known or where in known:
            return None if pod.has_mount_for(where) else "not mounted into the pod"
        if not self.layout.host_path(where).exists():
            return "no such file on this node (give its path with --param)"
        if not pod.has_mount_for(where):
            return "not mounted into the pod"
        return None

    def _check_versions(self, check: Check, stage: _Stage) -> None:
        """Refuse a check whose edits add what the component's version does not have, or
        name a file the node does not have (RecipeError naming the version or the file)."""
        problems: list[str] = []
        for key, editor in stage.editors.items():
            version = self.snap.versions.of(key)
            if isinstance(editor, PodManifest):
                draft = self._draft(key)
                assert draft.text is not None
                before = PodManifest(draft.text, key).flags()
                known = {c.node_path for c in stage.companions.get(key, [])}
                known |= set(before.values.values())
                problems += manifest_problems(
                    key,
                    version,
                    before,
                    editor.flags(),
                    lambda flag, path, pod=editor, known=known: self._file_problem(
                        pod, flag, path, known
                    ),
                )
            else:
                keys = [e.key or "" for e in check.remediation.edits if e.op == "set-config"]
                problems += config_problems(version, keys)
        for key, made_files in stage.companions.items():
            problems += companion_problems(key, self.snap.versions.of(key), made_files)
        if problems:
            raise RecipeError(problems[0])

    def _apply(
        self, check: Check, edit: Edit, stage: _Stage, params: dict[str, str], values: dict
    ) -> None:
        if edit.op in {"chmod", "chown"}:
            self._attributes(edit, stage)
            return
        if edit.op == "set-config":
            self._kubelet_edit(check, edit, stage, values)
            return
        if check.component == "etcd":
            self._refuse_ignored_etcd_flags()
        pod = self._editor(stage, check.component)
        assert isinstance(pod, PodManifest)
        flag = edit.flag or ""
        if edit.op == "set-flag":
            value = _typed(edit.value, values, check)
            pod.set_flag(flag, ",".join(value) if isinstance(value, list) else str(value))
        elif edit.op == "remove-flag":
            pod.remove_flag(flag)
        elif edit.op == "add-list-item":
            item = str(_typed(edit.item, values, check))
            if (where := admission_list(pod, flag)) != flag:
                pod.notes.append(legacy_note(item))
            pod.add_list_item(where, item)
        elif edit.op == "remove-list-item":
            pod.remove_list_item(admission_list(pod, flag), str(_typed(edit.item, values, check)))
        elif edit.op == "set-map-item":
            pod.set_map_item(flag, edit.key or "", str(_typed(edit.value, values, check)))
        elif edit.op == "recipe":
            name = edit.name or ""
            done = self._draft(check.component).recipes_done | stage.recipes.get(
                check.component, set()
            )
            if name not in done:
                version = self.snap.versions.of(check.component)
                ctx = RecipeContext(self.layout, params, version, self.bundle)
                made = [replace(c, check=check.id) for c in RECIPES[name](pod, ctx)]
                stage.companions.setdefault(check.component, []).extend(made)
                stage.recipes.setdefault(check.component, set()).add(name)

    def _kubelet_edit(self, check: Check, edit: Edit, stage: _Stage, values: dict) -> None:
        key = edit.key or ""
        # A flag on the kubelet's command line wins over the config file: editing the file
        # would change nothing.
        on_disk = self.snap.kubelet_flags(live=False)
        for test in check.audit.tests:
            if test.config == key and on_disk and on_disk.get(test.flag) is not None:
                raise RecipeError(
                    f"the kubelet command line sets {test.flag} ({self.layout.kubelet_flags_env} "
                    f"or {self.layout.kubelet_service}), which overrides the config file; "
                    "change it there"
                )
        dropin = self.snap.kubelet_view(live=False).dropin_setting(key)
        if dropin is not None:  # merged over the config file, so it wins
            raise RecipeError(
                f"the kubelet drop-in {dropin} sets {key}, which overrides the config file; "
                "change it there"
            )
        config = self._editor(stage, "kubelet")
        assert isinstance(config, KubeletConfig)
        config.set(key, _typed(edit.value, values, check))

    def _refuse_ignored_etcd_flags(self) -> None:
        """etcd given a config file ignores its flags: a flag edit would change nothing. That
        file is not one the engine can back up and restore, so nothing is planned."""
        manifest = self.snap.manifests.get("etcd")
        named = etcd_config_named(manifest.flags.values, manifest.env) if manifest else None
        if named is not None:
            raise RecipeError(
                f"etcd reads {named[0]} ({named[1]}) and ignores flags; edit that file"
            )

    def _attributes(self, edit: Edit, stage: _Stage) -> None:
        target = edit.target or ""
        if target == "kubelet-config":
            self._check_kubelet_config_path()
        files = self.snap.target_files(target)
        if not files:
            raise RecipeError(f"no file for {target} on this node")
        accepted = self.drafts["attributes"].attributes if "attributes" in self.drafts else {}
        for path in files:
            if path.is_symlink():
                raise RecipeError(f"{path} is a symlink; change the file it points to by hand")
            st = stat_file(path)
            if st is None:
                continue
            change = (
                stage.attributes.get(path)
                or accepted.get(path)
                or AttributeChange(path, old_mode=st.mode, old_owner=st.owner)
            )
            if edit.op == "chmod":
                allowed = int(edit.mode or "600", 8)
                if st.is_dir:  # directories keep their search bit for the owner
                    allowed |= 0o100
                new_mode = st.mode & allowed
                if new_mode != st.mode:
                    change = replace(change, mode=new_mode)
            else:
                owner = edit.owner or "root:root"
                if _owner_ids(owner) is None:
                    raise RecipeError(f"no user and group {owner!r} on this host")
                if st.owner != owner:
                    change = replace(change, owner=owner)
            if change.mode is not None or change.owner is not None:
                stage.attributes[path] = change
        stage.touch("attributes")

    def files(self) -> list[FilePlan]:
        plans = []
        for key in FILE_ORDER:
            draft = self.drafts.get(key)
            if draft is None or not draft.checks:
                continue
            if draft.kind == "attributes":
                if not draft.attributes:
                    continue
            elif draft.text == draft.old_text and not draft.companions:
                continue
            plans.append(
                FilePlan(
                    kind=draft.kind,
                    component=draft.component,
                    path=draft.path,
                    old_text=draft.old_text,
                    new_text=draft.text,
                    checks=tuple(draft.checks),
                    companions=tuple(draft.companions),
                    attributes=tuple(draft.attributes.values()),
                    notes=tuple(draft.notes),
                    risks=tuple(draft.risks),
                )
            )
        return plans


def startup_problems(plan: FilePlan, snap: NodeSnapshot) -> list[str]:
    """Files named by the new manifest's flags that the pod could not open."""
    if plan.kind != "manifest" or plan.new_text is None or plan.path is None:
        return []
    manifest = parse_manifest(plan.new_text, plan.path, plan.component)
    pod = PodManifest(plan.new_text, plan.component)
    created = {c.node_path for c in plan.companions}
    problems = []
    for flag, value in parse_args(plan.component, manifest.argv).values.items():
        if not names_file(flag) or not value.startswith("/"):
            continue
        path = posixpath.dirname(value) if flag == "--audit-log-path" else value
        if not pod.has_mount_for(path):
            problems.append(f"{flag}={value} is not mounted into the {plan.component} pod")
        elif (
            value not in created
            and path not in created
            and not snap.layout.host_path(path).exists()
        ):
            problems.append(f"{flag}={value} does not exist on the node")
    return problems


def all_failing(results: Iterable[Result], include_manual: bool = False) -> list[str]:
    """What `--all-failing` selects: every scored check that FAILs; manual checks (WARN, such
    as 1.2.1) are a human's decision and join only with `include_manual`."""
    return [
        r.id
        for r in results
        if (r.status is Status.FAIL and r.check.scored)
        or (include_manual and r.status is Status.WARN)
    ]


def build_plan(
    catalog: Catalog,
    snap: NodeSnapshot,
    ids: Iterable[str] | None,
    params: ParamValues | None = None,
    *,
    include_manual: bool = False,
    bundle: Mapping[str, bytes] | None = None,
    waived: Mapping[str, str] | None = None,
) -> Plan:
    """A plan fixing the named checks (any kind, manual included), or with ids None the
    `all_failing` selection: scored FAIL checks, plus manual WARN ones with include_manual.
    `bundle`: a saved plan's companion files by name, used instead of freshly made ones.
    `waived`: check id -> why it is waived; such a check is never planned, named or not."""
    params = params or {}
    waived = waived or {}
    results = {r.id: r for r in evaluate(catalog, snap)}
    wanted = (
        [catalog.get(i).id for i in ids]
        if ids is not None
        else all_failing(results.values(), include_manual)
    )
    left_out = (
        ()
        if ids is not None or include_manual
        else tuple(
            r.id
            for r in results.values()
            if r.status is Status.WARN and r.check.remediation.available
        )
    )
    planner = _Planner(snap, params, bundle)
    skipped: list[Skipped] = []
    fixed: list[str] = []
    for check_id in dict.fromkeys(wanted):
        check = catalog.by_id[check_id]
        result = results[check_id]
        if check_id in waived and result.status is not Status.PASS:
            skipped.append(Skipped(check_id, waived[check_id], waived=True))
            continue
        if result.status is Status.PASS:
            skipped.append(Skipped(check_id, "already passes"))
            continue
        if result.status is Status.ERROR:
            why = f"ERROR: the check cannot be evaluated, so no fix can be planned: {result.reason}"
            skipped.append(Skipped(check_id, why, error=True))
            continue
        if result.status is Status.SKIP:
            skipped.append(Skipped(check_id, f"{result.status.value}: {result.reason}"))
            continue
        if not check.remediation.available:
            skipped.append(Skipped(check_id, f"no mechanical fix: {check.remediation.summary}"))
            continue
        # Only the running process is wrong: the file is right, a restart is due.
        if result.disagreement and not result.reason.startswith("file:"):
            skipped.append(Skipped(check_id, f"the file is already right; {result.disagreement}"))
            continue
        try:
            planner.add(check)
        except (RecipeError, EditError) as exc:
            skipped.append(Skipped(check_id, str(exc)))
            continue
        fixed.append(check_id)
    return Plan(
        benchmark=catalog.benchmark,
        checks=tuple(fixed),
        params={k: dict(v) for k, v in params.items() if k in fixed},
        files=tuple(planner.files()),
        skipped=tuple(skipped),
        manual_left_out=left_out,
    )


def check_user_ids(ids: Iterable[str], catalog: Catalog) -> list[str]:
    out = []
    for group in ids:
        for i in group.split(","):
            if i.strip():
                out.append(catalog.get(i.strip()).id)
    if not out:
        raise UserError("no check ids given")
    return out
