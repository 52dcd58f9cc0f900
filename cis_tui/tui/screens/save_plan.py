"""The save-plan dialog: the plan on screen as `cis-tui plan --save PLAN --companions DIR` writes
it, for `cis-tui apply --plan` on every control-plane node (ansible/rollout.yml)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar

from textual import on
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal, Vertical
from textual.content import Content
from textual.screen import ModalScreen
from textual.widgets import Button, Input, Static

from cis_tui.errors import UserError
from cis_tui.remediate.bundle import bundled, write_bundle
from cis_tui.remediate.plan import Plan
from cis_tui.remediate.planfile import SavedPlan, save_plan
from cis_tui.tui.screens.confirm import ConfirmScreen
from cis_tui.tui.screens.export import export_dir
from cis_tui.tui.widgets.key_footer import KeyFooter


@dataclass(frozen=True)
class SavedFiles:
    plan: Path
    companions: Path | None
    #: The bundle's bytes by name: the plan on screen keeps using them (one key, not two).
    bundle: dict[str, bytes]


def companions_dir(plan_path: Path) -> Path:
    """Where a plan's bundle goes: beside it, `PLAN-companions/`."""
    return plan_path.with_name(f"{plan_path.stem}-companions")


class SavePlanScreen(ModalScreen[SavedFiles | None]):
    """Writes the plan (and its companion bundle); dismisses with what was written."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape", "cancel", "Cancel", tooltip="Close; nothing is written", id="close")
    ]
    AUTO_FOCUS = "#save-path"
    DEFAULT_CSS = """
    SavePlanScreen { align: center middle; }
    SavePlanScreen > Vertical {
        width: 80; max-width: 100%; height: auto; border: thick $primary;
        background: $surface; padding: 1 2;
    }
    SavePlanScreen .save-title { text-style: bold; margin: 0 0 1 0; }
    SavePlanScreen #save-error { color: $text-error; height: auto; }
    SavePlanScreen Horizontal { height: auto; margin: 1 0 0 0; align: right middle; }
    SavePlanScreen Button { margin: 0 0 0 2; }
    """

    def __init__(self, plan: Plan) -> None:
        super().__init__(id="save-plan")
        self.plan = plan

    def compose(self) -> ComposeResult:
        files = bundled(self.plan)
        with Vertical():
            yield Static(Content("Save the plan for every node"), classes="save-title")
            body = "Check ids and parameters, for `cis-tui apply --plan FILE` on each node."
            if files:
                names = ", ".join(c.name for c in files)
                body += (
                    f" Its companion files ({names}) go once into FILE-companions/ (keys 0600): "
                    "every node installs exactly these bytes (--companions DIR)."
                )
            yield Static(Content(body))
            yield Input(
                str(export_dir() / "cis-tui-plan.yaml"),
                id="save-path",
                placeholder="plan file to write (enter: save)",
            )
            yield Static("", id="save-error")
            with Horizontal():
                yield Button("Cancel (esc)", id="cancel", compact=True)
                yield Button("Save (enter)", id="save-button", variant="primary", compact=True)
        yield KeyFooter()

    @on(Input.Submitted, "#save-path")
    def _submitted(self) -> None:
        self.save()

    @on(Button.Pressed)
    def _pressed(self, event: Button.Pressed) -> None:
        if event.button.id == "cancel":
            self.dismiss(None)
        else:
            self.save()

    def save(self) -> None:
        """Write to the typed path; an existing plan file asks first."""
        typed = self.query_one("#save-path", Input).value.strip()
        if not typed:
            self.query_one("#save-error", Static).update(Content("enter the plan file to write"))
            return
        try:
            path = Path(typed).expanduser()
        except RuntimeError as exc:  # no home for ~
            self.query_one("#save-error", Static).update(Content(f"{typed}: {exc}"))
            return
        if not path.exists():
            self._write(path)
            return
        body = Content.assemble((str(path), "bold"), " exists. Replace it with this plan?")
        self.app.push_screen(
            ConfirmScreen("Overwrite the plan file?", body, "Overwrite (y)"),
            callback=lambda yes: self._write(path) if yes else None,
        )

    def _write(self, path: Path) -> None:
        plan = self.plan
        bundle_dir = companions_dir(path) if bundled(plan) else None
        try:
            refs = write_bundle(bundle_dir, plan) if bundle_dir else ()
            save_plan(SavedPlan(plan.benchmark, plan.checks, plan.params, refs), path)
        except UserError as exc:
            self.query_one("#save-error", Static).update(Content(str(exc)))
            return
        data = {c.name: c.content for c in bundled(plan) if c.content is not None}
        self.dismiss(SavedFiles(path, bundle_dir, data))

    def action_cancel(self) -> None:
        self.dismiss(None)
