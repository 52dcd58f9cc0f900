"""The plan screen: per file the diff, what it fixes, restarts and risks; parameters; apply."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, ClassVar

from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Vertical, VerticalScroll
from textual.content import Content
from textual.screen import Screen
from textual.timer import Timer
from textual.widgets import Header, Input, Static
from textual.worker import Worker, WorkerState

from cis_tui.audit.node import take_snapshot
from cis_tui.errors import UserError
from cis_tui.remediate.params import ParamValues, resolve_params
from cis_tui.remediate.plan import Plan, build_plan
from cis_tui.tui.screens.confirm import ConfirmScreen
from cis_tui.tui.widgets.file_plan import FilePlanView
from cis_tui.tui.widgets.key_footer import KeyFooter
from cis_tui.tui.widgets.param_field import ParamField

if TYPE_CHECKING:
    from cis_tui.tui.app import CisTuiApp

REPLAN_DELAY = 0.4  # seconds of quiet typing before a parameter change re-plans


class PlanScreen(Screen[None]):
    """Shows what fixing the chosen checks would change; nothing is written here."""

    BINDING_GROUP_TITLE = "Plan"
    AUTO_FOCUS = "#plan-body"
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("a", "apply", "Apply", tooltip="Apply this plan (asks first)"),
        Binding("escape", "back", "Back", tooltip="Back to the checks (or leave a parameter)"),
        Binding("e", "edit", "Parameters", tooltip="Edit the first parameter"),
    ]

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

    @property
    def cis_app(self) -> CisTuiApp:
        return self.app  # type: ignore[return-value]

    def compose(self) -> ComposeResult:
        yield Header()
        yield Static(Content.styled("planning…", "$text-muted"), id="plan-summary")
        with VerticalScroll(id="plan-body"):
            yield from self._param_fields()
            yield Vertical(id="plan-files")
            yield Static("", id="plan-skipped")
        yield KeyFooter()

    def _param_fields(self) -> ComposeResult:
        layout = self.cis_app.settings.layout
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
                yield ParamField(check, param, defaults.get(param.name, ""))

    def on_mount(self) -> None:
        self.replan()

    # -- planning --------------------------------------------------------------------------
    def replan(self) -> None:
        self._replan_due = False
        self.planning = True
        self.query_one("#plan-summary", Static).update(Content.styled("planning…", "$text-muted"))
        self._worker = self._build(self.check_ids, {k: dict(v) for k, v in self.values.items()})

    @work(thread=True, group="plan", exclusive=True, exit_on_error=False)
    def _build(self, ids: tuple[str, ...], values: ParamValues) -> Plan:
        app = self.cis_app
        return build_plan(app.catalog, take_snapshot(app.settings), ids, values)

    def on_worker_state_changed(self, event: Worker.StateChanged) -> None:
        if event.worker is not self._worker:
            return
        if event.state is WorkerState.SUCCESS:
            self.planning = False
            self.plan_error = None
            self._show(event.worker.result)
        elif event.state is WorkerState.ERROR:
            self.planning = False
            self.plan_error = str(event.worker.error)
            self.query_one("#plan-summary", Static).update(
                Content.styled(f"cannot plan: {self.plan_error}", "bold $text-error")
            )

    def _show(self, plan: Plan | None) -> None:
        if plan is None:
            return
        self.plan = plan
        paths = self.cis_app.paths
        files = self.query_one("#plan-files", Vertical)
        files.remove_children()
        files.mount_all(
            FilePlanView(f, paths, i, len(plan.files)) for i, f in enumerate(plan.files, 1)
        )
        self.query_one("#plan-summary", Static).update(self._summary(plan))
        skipped = [
            Content.assemble(("not planned  ", "$text-warning"), (s.check_id, "bold"), ": ", why)
            for s in plan.skipped
            for why in [self.cis_app.paths.show(s.reason)]
        ]
        self.query_one("#plan-skipped", Static).update(
            Content("\n").join([Content.styled("Not planned", "bold"), *skipped])
            if skipped
            else Content("")
        )

    def _summary(self, plan: Plan) -> Content:
        if plan.empty:
            return Content.styled("Nothing to change: see why below.", "bold $text-warning")
        restarts = ", ".join(plan.restarts) or "no component"
        files = f"{len(plan.files)} file{'s' if len(plan.files) != 1 else ''}"
        return Content.assemble(
            ("Plan: ", "bold"),
            f"fixes {', '.join(plan.checks)} in {files}; restarts ",
            (restarts, "bold $text-warning"),
            ". Nothing has been changed yet; ",
            ("a", "bold $text-accent"),
            " applies.",
        )

    @on(ParamField.Changed)
    def _param_changed(self, event: ParamField.Changed) -> None:
        field = event.field
        key = (field.check.id, field.param.name)
        if event.error is not None:
            self.errors[key] = event.error
            return
        self.errors.pop(key, None)
        if self.values.setdefault(field.check.id, {}).get(field.param.name) == event.value:
            return
        assert event.value is not None
        self.values[field.check.id][field.param.name] = event.value
        if self._timer is not None:
            self._timer.stop()
        self._replan_due = True
        self._timer = self.set_timer(REPLAN_DELAY, self.replan)

    # -- actions ---------------------------------------------------------------------------
    def action_back(self) -> None:
        if isinstance(self.focused, Input):
            self.set_focus(self.query_one("#plan-body"))
            return
        self.dismiss()

    def action_edit(self) -> None:
        fields = self.query(ParamField)
        if fields:
            self.set_focus(fields.first().input)
        else:
            self.notify("These checks take no parameters.", title="Parameters")

    def action_apply(self) -> None:
        if self.errors:
            message = next(iter(self.errors.values()))
            self.notify(f"Fix the parameter first: {message}", markup=False, severity="error")
            return
        if self.planning or self._replan_due:
            self.notify("Still planning; try again in a moment.", severity="warning")
            return
        plan = self.plan
        if plan is None or plan.empty:
            self.notify("Nothing to apply.", severity="warning")
            return
        self.app.push_screen(
            ConfirmScreen("Apply this plan?", self.cis_app.confirm_text(plan), "Apply (y)"),
            callback=lambda yes: self._confirmed(plan, yes),
        )

    def _confirmed(self, plan: Plan, yes: bool | None) -> None:
        if yes:
            self.cis_app.start_apply(plan)
