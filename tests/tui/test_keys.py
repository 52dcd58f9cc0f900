"""Keys: every binding described, shown, in the help and the command palette; tmux-safe keys."""

from __future__ import annotations

import subprocess
import sys

from textual.binding import Binding

from cis_tui.tui.app import CisTuiApp
from cis_tui.tui.screens.apply import ApplyScreen
from cis_tui.tui.screens.backups import BackupsScreen
from cis_tui.tui.screens.checks import ChecksScreen, SearchInput
from cis_tui.tui.screens.confirm import ConfirmScreen
from cis_tui.tui.screens.help import HelpScreen, bindings_of
from cis_tui.tui.screens.plan import PlanScreen
from cis_tui.tui.screens.prompt import NumberPrompt
from cis_tui.tui.screens.recovery import RecoveryScreen
from tests.tui.conftest import screen_text, settle

OWNERS = (
    CisTuiApp,
    ChecksScreen,
    SearchInput,
    PlanScreen,
    ApplyScreen,
    BackupsScreen,
    ConfirmScreen,
    NumberPrompt,
    RecoveryScreen,
    HelpScreen,
)
#: Keys that terminals, tmux or SSH swallow or that collide with multiplexers.
UNSAFE = {"ctrl+enter", "ctrl+s", "ctrl+j", "ctrl+b", "ctrl+a"}


def test_every_binding_is_described_shown_and_tmux_safe():
    for owner in OWNERS:
        bindings = bindings_of(owner)
        assert bindings, owner
        for binding in bindings:
            assert isinstance(binding, Binding)
            assert binding.description, f"{owner.__name__}: {binding.key} has no description"
            assert binding.show, f"{owner.__name__}: {binding.key} is hidden from the footer"
            for key in binding.key.split(","):
                assert key not in UNSAFE and not key.startswith("alt+"), (owner, key)


async def test_help_lists_every_binding_of_the_screen_and_the_app(make_app):
    app = make_app()
    async with app.run_test(size=(100, 60)) as pilot:
        await settle(pilot)
        await pilot.press("question_mark")
        await pilot.pause()
        assert isinstance(app.screen, HelpScreen)
        text = screen_text(app)
        for binding in bindings_of(ChecksScreen) + bindings_of(CisTuiApp):
            assert binding.description in text
        await pilot.press("escape")
        assert isinstance(app.screen, ChecksScreen)


async def test_command_palette_offers_every_action(make_app):
    app = make_app()
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(pilot)
        titles = {c.title for c in app.get_system_commands(app.screen)}
        for binding in bindings_of(ChecksScreen) + bindings_of(CisTuiApp):
            assert binding.description in titles, binding
        command = next(c for c in app.get_system_commands(app.screen) if c.title == "Failing/all")
        await command.callback()
        assert app.screen.filters.failing_only
        await pilot.press("b")
        await pilot.pause()
        titles = {c.title for c in app.get_system_commands(app.screen)}
        assert {"Diff", "Restore", "Prune", "Back"} <= titles


def test_the_engine_does_not_import_textual():
    code = (
        "import sys, cis_tui.engine.transaction, cis_tui.engine.restore, cis_tui.remediate.plan;"
        "assert 'textual' not in sys.modules and 'cis_tui.tui' not in sys.modules"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


async def test_the_footer_follows_binding_changes_and_skips_needless_rebuilds(make_app):
    from textual.widgets._footer import FooterKey

    from cis_tui.tui.widgets.key_footer import KeyFooter

    app = make_app()
    async with app.run_test(size=(120, 30)) as pilot:
        await settle(pilot)
        footer = app.screen.query_one(KeyFooter)
        keys = list(footer.query(FooterKey))
        assert [k.action for k in keys][:2] == ["toggle", "plan"]
        for _ in range(3):  # a bindings update that changes nothing keeps the same keys
            app.screen.refresh_bindings()
        await pilot.pause()
        await pilot.pause()
        assert list(footer.query(FooterKey)) == keys

        await pilot.press("slash")  # the search box brings its own key
        await pilot.pause()
        await pilot.pause()
        assert "done" in [k.action for k in footer.query(FooterKey)]
        await pilot.press("escape")
        await pilot.pause()
        await pilot.pause()
        assert "done" not in [k.action for k in footer.query(FooterKey)]
