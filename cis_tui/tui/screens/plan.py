"""The plan screen: per file the diff, what it fixes, restarts and risks; parameters; apply.

Every path on this screen is named as the node names it (NodePaths). In the demo the node's
files name the sandbox's real paths, so a path typed into a parameter is mapped back to the
sandbox, and a changed line that points outside the sandbox says so.
"""

from __future__ import annotations

import posixpath
import re
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, ClassVar

from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import VerticalScroll
from textual.content import Content
from textual.screen import Screen
from textual.timer import Timer
from textual.widget import Widget
from textual.widgets import Header, Input, Static
from textual.worker import Worker, WorkerState

from cis_tui.audit.node import take_snapshot
from cis_tui.errors import UserError
from cis_tui.layout import Layout
from cis_tui.persist.planner import KUBEADM_CONFIG, Persistence, attach_persistence
from cis_tui.remediate.params import ParamValues, resolve_params
from cis_tui.remediate.plan import FilePlan, Plan, Skipped, build_plan
from cis_tui.tui.display import NodePaths
from cis_tui.tui.screens.confirm import ConfirmScreen
from cis_tui.tui.screens.save_plan import SavedFiles, SavePlanScreen
from cis_tui.tui.widgets.diff_pager import (
    PAGER_BINDINGS,
    PAGER_FOOTER_OPTIONAL,
    DiffPager,
    PagerSection,
)
from cis_tui.tui.widgets.diff_view import diff_content
from cis_tui.tui.widgets.file_plan import file_summary
from cis_tui.tui.widgets.key_footer import KeyFooter
from cis_tui.tui.widgets.param_field import ParamField

if TYPE_CHECKING:
    from cis_tui.tui.app import CisTuiApp

REPLAN_DELAY = 0.4  # seconds of quiet typing before a parameter change re-plans
#: Above this many checks the summary line counts them instead of listing them.
LISTED_CHECKS = 6
NOT_PLANNED = "not planned"

#: An absolute file path inside a line (not a URL's `//host/...`, not `10.96.0.0/12`).
_PATH = re.compile(r"(?<![\w.:/-])/[\w.@+-]+(?:/[\w.@+-]*)+")


class ScreenPaths:
    """Paths as the screen names them (the node's own names) and as the node's files hold them.

    With `--root DIR` the files name node paths already. The demo's sandbox files name real
    host paths (DIR/etc/...), shown without DIR: a typed node path is written under DIR.
    """

    def __init__(self, shown: NodePaths, layout: Layout) -> None:
        self.shown = shown
        self.prefixed = shown.root != Path("/") and layout.root != shown.root
        self._prefix = str(shown.root)

    def _inside(self, path: str) -> bool:
        path = posixpath.normpath(path)
        return path == self._prefix or path.startswith(self._prefix + "/")

    def typed(self, value: str) -> str:
        """A parameter as typed (a node path) → as the node's files name it."""
        if not self.prefixed or not value.startswith("/") or self._inside(value):
            return value  # not a path, or typed as the real path already
        return self._prefix + posixpath.normpath(value)

    def outside(self, raw_line: str) -> list[str]:
        """Absolute paths in a line of a file that point outside the sandbox (the host's own)."""
        if not self.prefixed:
            return []
        return [p for p in _PATH.findall(raw_line) if not self._inside(p) and p != "/dev/null"]


def file_section(file: FilePlan, paths: ScreenPaths, index: int, total: int) -> PagerSection:
    """One file of the plan for the pager: title, fixes and restarts, notes and risks, diff."""
    title, fixes, *notes = file_summary(file, paths.shown, index, total).split("\n")
    raw = file.diff
    lines = diff_content(paths.shown.show(raw)).split("\n", allow_blank=True)
    raw_lines = raw.rstrip("\n").split("\n")
    # The kubeadm configuration names node paths as the cluster stores them: not marked.
    on_node = len(file.node_diff.rstrip("\n").split("\n")) if file.persist else len(raw_lines)
    if len(raw_lines) == len(lines):  # mark changed lines that point at the host's own files
        for n, raw_line in enumerate(raw_lines[:on_node]):
            if raw_line[:1] in "+-" and not raw_line.startswith(("+++", "---")):
                lines[n] = _mark_outside(lines[n], paths.outside(raw_line))
    return PagerSection(
        key=str(file.path) if file.path is not None else "attributes",
        title=title,
        summary=(fixes,),
        notes=tuple(notes),
        diff=tuple(lines),
        indent=6,
    )


def _mark_outside(line: Content, found: list[str]) -> Content:
    if not found:
        return line
    text = line.plain
    for path in found:
        start = text.find(path)
        if start >= 0:
            line = line.stylize("bold reverse $text-error", start, start + len(path))
    return line + Content.styled("  ⚠ outside the sandbox: this host's own file", "$text-error")


def skipped_section(skipped: Sequence[Skipped], paths: NodePaths) -> PagerSection:
    lines = [Content.assemble((s.check_id, "bold"), ": ", paths.show(s.reason)) for s in skipped]
    return PagerSection(
        key=NOT_PLANNED,
        title=Content.assemble(("Not planned", "bold $text-warning"), f" ({len(lines)})"),
        notes=tuple(lines),
        indent=2,
    )


def plan_sections(plan: Plan, paths: ScreenPaths) -> list[PagerSection]:
    total = len(plan.files)
    sections = [file_section(f, paths, i, total) for i, f in enumerate(plan.files, 1)]
    if plan.skipped:
        sections.append(skipped_section(plan.skipped, paths.shown))
    return sections


class PlanScreen(Screen[None]):
    """Shows what fixing the chosen checks would change; nothing is written here."""

    BINDING_GROUP_TITLE = "Plan"
    AUTO_FOCUS = "#plan-pager"
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("a", "apply", "Apply", tooltip="Apply this plan (asks first)", id="apply"),
        Binding(
            "s", "save", "Save", tooltip="Save the plan and its companion files", id="save_plan"
        ),
        Binding(
            "escape", "back", "Back", tooltip="Back to the checks (or leave a parameter)", id="back"
        ),
        Binding(
            "e",
            "edit",
            "Parameters",
            tooltip="Edit the first parameter (tab: the next)",
            id="edit_parameters",
        ),
        *PAGER_BINDINGS,
    ]
    #: What a narrow footer leaves out first (help and the command palette list every key).
    FOOTER_OPTIONAL: ClassVar[tuple[str, ...]] = PAGER_FOOTER_OPTIONAL

    def __init__(self, check_ids: Sequence[str]) -> None:
        super().__init__(id="plan")
        self.check_ids = tuple(check_ids)
        self.plan: Plan | None = None
        self.values: ParamValues = {}
        self.errors: dict[tuple[str, str], str] = {}
        self.planning = False
        self.plan_error: str | None = None
        self._timer: Timer | None = None
        self._replan_due = False
        self._worker: Worker[Plan] | None = None
        self._persist_worker: Worker[Plan] | None = None
        self._persist_base: Plan | None = None
        #: `a` was pressed before the answer: the confirmation opens when it comes.
        self._apply_when_known = False
        #: The plan is shown; kubeadm's configuration is still being asked about.
        self.persisting = False
        self._later_fields: list[Widget] = []
        #: Companion files saved with the plan: re-plans keep them (one key for every node).
        self.bundle: dict[str, bytes] | None = None

    @property
    def cis_app(self) -> CisTuiApp:
        return self.app  # type: ignore[return-value]

    @property
    def paths(self) -> ScreenPaths:
        return ScreenPaths(self.cis_app.paths, self.cis_app.settings.layout)

    @property
    def pager(self) -> DiffPager:
        return self.query_one("#plan-pager", DiffPager)

    def compose(self) -> ComposeResult:
        self.replan()  # plan while the screen is built: the worker's thread runs alongside
        yield Header()
        yield Static(Content.styled("planning…", "$text-muted"), id="plan-summary")
        fields = list(self._param_fields())
        # The fields the parameter area shows (a quarter of the screen) come now; the rest are
        # mounted below them once the plan is painted: building a few dozen inputs would slow
        # the planning thread that runs meanwhile.
        first = max(3, self.app.size.height // 8 + 1)
        self._later_fields = fields[first:]
        with VerticalScroll(id="plan-params", can_focus=False) as params:
            params.set_class(not fields, "-empty")
            yield from fields[:first]
        yield DiffPager(id="plan-pager", empty=Content.styled("planning…", "$text-muted"))
        yield KeyFooter()

    def _param_fields(self) -> ComposeResult:
        layout = self.cis_app.settings.layout
        shown = self.cis_app.paths
        first = True
        for check_id in self.check_ids:
            check = self.cis_app.catalog.get(check_id)
            if not check.remediation.params:
                continue
            if first:
                yield Static(Content.styled("Parameters", "bold"), id="params-title")
                first = False
            try:
                defaults = resolve_params(check, {}, layout)
            except UserError:
                defaults = {}
            self.values[check.id] = dict(defaults)
            for param in check.remediation.params:
                yield ParamField(check, param, shown.show(defaults.get(param.name, "")))

    # -- planning --------------------------------------------------------------------------
    def replan(self) -> None:
        self._replan_due = False
        self.planning = True
        if self.is_mounted:
            summary = self.query_one("#plan-summary", Static)
            summary.update(Content.styled("planning…", "$text-muted"))
        self._worker = self._build(self.check_ids, {k: dict(v) for k, v in self.values.items()})

    @work(thread=True, group="plan", exclusive=True, exit_on_error=False)
    def _build(self, ids: tuple[str, ...], values: ParamValues) -> Plan:
        app = self.cis_app
        return build_plan(
            app.catalog,
            take_snapshot(app.settings),
            ids,
            values,
            waived=app.waived_ids(),
            bundle=self.bundle,
        )

    @work(thread=True, group="persist", exclusive=True, exit_on_error=False)
    def _persist(self, plan: Plan) -> Plan:
        """The plan with its kubeadm configuration changes (it asks the API server: the diff
        is shown before the answer comes)."""
        try:
            return attach_persistence(plan, self.cis_app.settings)
        except Exception as exc:  # shown as not persisted, never a traceback
            failed = Persistence(KUBEADM_CONFIG, "", failed=f"cannot check it: {exc}")
            return replace(plan, persistence=failed)

    def on_worker_state_changed(self, event: Worker.StateChanged) -> None:
        if event.worker is self._persist_worker:
            # Only for the plan on screen: a newer plan has its own question in flight.
            if event.state is WorkerState.SUCCESS and self.plan is self._persist_base:
                self.persisting = False
                self._show(event.worker.result)
                if self._apply_when_known:
                    self._apply_when_known = False
                    self.action_apply()
            return
        if event.worker is not self._worker:
            return
        if event.state is WorkerState.SUCCESS:
            self.planning = False
            self.plan_error = None
            plan = event.worker.result
            self._show(plan)
            self._apply_when_known = False  # a new plan is reviewed afresh
            if plan is not None and not plan.empty:
                self.persisting = True
                self._persist_base = plan
                self._persist_worker = self._persist(plan)
        elif event.state is WorkerState.ERROR:
            self.planning = False
            self.plan_error = str(event.worker.error)
            self.query_one("#plan-summary", Static).update(
                Content.styled(f"cannot plan: {self.plan_error}", "bold $text-error")
            )
            self._mount_later_fields()  # a parameter may be what to change

    def _show(self, plan: Plan | None) -> None:
        if plan is None:
            return
        self.plan = plan
        self.pager.show(plan_sections(plan, self.paths))
        self.query_one("#plan-summary", Static).update(self._summary(plan))

    def _summary(self, plan: Plan) -> Content:
        if plan.empty:
            return Content.styled("Nothing to change: see why below.", "bold $text-warning")
        restarts = ", ".join(plan.restarts) or "no component"
        files = f"{len(plan.files)} file{'s' if len(plan.files) != 1 else ''}"
        checks = (
            ", ".join(plan.checks)
            if len(plan.checks) <= LISTED_CHECKS
            else f"{len(plan.checks)} checks"
        )
        skipped = (
            Content.styled(f" ({len(plan.skipped)} not planned: at the end)", "$text-warning")
            if plan.skipped
            else ""
        )
        persistence = plan.persistence
        if persistence is not None:
            warn = persistence.failed or persistence.mode == "off"
            kept = Content.styled(f" {persistence.short()}", "$text-warning" if warn else "")
        else:
            kept = Content.styled(" Asking about kubeadm's configuration…", "$text-muted")
        return Content.assemble(
            ("Plan: ", "bold"),
            f"fixes {checks} in {files}",
            skipped,
            "; restarts ",
            (restarts, "bold $text-warning"),
            ". Nothing has been changed yet",
            *(
                ("; ", (self.cis_app.key_hint("apply", "a"), "bold $text-accent"), " applies.")
                if not self.cis_app.read_only
                else (" (read-only mode: nothing can be applied).",)
            ),
            kept,
        )

    @on(DiffPager.Painted)
    def _plan_painted(self) -> None:
        if self.plan is not None:
            self._mount_later_fields()

    def _mount_later_fields(self) -> None:
        if self._later_fields:
            later, self._later_fields = self._later_fields, []
            self.query_one("#plan-params").mount_all(later)

    @on(ParamField.Changed)
    def _param_changed(self, event: ParamField.Changed) -> None:
        field = event.field
        key = (field.check.id, field.param.name)
        if event.error is not None:
            self.errors[key] = event.error
            return
        self.errors.pop(key, None)
        assert event.value is not None
        value = self.paths.typed(event.value)
        if self.values.setdefault(field.check.id, {}).get(field.param.name) == value:
            return
        self.values[field.check.id][field.param.name] = value
        if self._timer is not None:
            self._timer.stop()
        self._replan_due = True
        self._timer = self.set_timer(REPLAN_DELAY, self.replan)

    # -- actions ---------------------------------------------------------------------------
    def action_pager(self, move: str) -> None:
        self.pager.move(move)

    def action_back(self) -> None:
        if isinstance(self.focused, Input):
            self.set_focus(self.pager)
            return
        self.dismiss()

    def action_edit(self) -> None:
        fields = self.query(ParamField)
        if fields:
            self.set_focus(fields.first().input)
        else:
            self.notify("These checks take no parameters.", title="Parameters")

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        return self.cis_app.allows("apply") if action == "apply" else True  # read-only mode

    def action_apply(self) -> None:
        if self.errors:
            message = next(iter(self.errors.values()))
            self.notify(f"Fix the parameter first: {message}", markup=False, severity="error")
            return
        if self.planning or self._replan_due:
            self.notify("Still planning; try again in a moment.", severity="warning")
            return
        if self.persisting:  # asked as soon as the API server answered
            self._apply_when_known = True
            self.notify("Asking the API server about kubeadm's configuration first…")
            return
        plan = self.plan
        if plan is None or plan.empty:
            self.notify("Nothing to apply.", severity="warning")
            return
        self.app.push_screen(
            ConfirmScreen("Apply this plan?", self.cis_app.confirm_text(plan), "Apply (y)"),
            callback=lambda yes: self._confirmed(plan, yes),
        )

    def action_save(self) -> None:
        plan = self.plan
        if self.planning or self._replan_due or self.errors or plan is None or not plan.checks:
            self.notify("Nothing to save yet: no plan fixes a check.", severity="warning")
            return
        self.app.push_screen(SavePlanScreen(plan), callback=self._saved)

    def _saved(self, saved: SavedFiles | None) -> None:
        if saved is None:
            return
        self.bundle = {**(self.bundle or {}), **saved.bundle}
        where = f" and its companions to {saved.companions}" if saved.companions else ""
        option = f" --companions {saved.companions}" if saved.companions else ""
        self.notify(
            f"Saved the plan to {saved.plan}{where}. On every node (this one too): "
            f"cis-tui apply --plan {saved.plan}{option}",
            title="Plan saved",
            markup=False,
            timeout=10,
        )

    def _confirmed(self, plan: Plan, yes: bool | None) -> None:
        if yes:
            self.cis_app.start_apply(plan)
