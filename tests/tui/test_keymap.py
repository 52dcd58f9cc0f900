"""A configurable keymap (issue 12 item 14b): `[keys]` in the TOML config rebinds any action by
its binding id; every binding of the wizard has a stable id, shown in the help."""

from __future__ import annotations

import importlib
import inspect
import pkgutil
from pathlib import Path

import pytest
from textual.binding import Binding
from textual.dom import DOMNode

import cis_tui.tui
from cis_tui.cli import main
from cis_tui.keymap import BINDING_IDS, is_key
from cis_tui.layout import load_settings, load_user_keys
from cis_tui.tui.screens.checks import ChecksScreen
from cis_tui.tui.screens.help import HelpScreen, bindings_of
from cis_tui.tui.screens.plan import PlanScreen
from tests.tui.conftest import screen_text, settle, wait_until

README = Path(__file__).resolve().parents[2] / "README.md"


def binding_owners() -> list[type[DOMNode]]:
    """Every screen, widget and the App of cis_tui.tui that declares its own BINDINGS."""
    owners = []
    for info in pkgutil.walk_packages(cis_tui.tui.__path__, "cis_tui.tui."):
        module = importlib.import_module(info.name)
        for _name, cls in inspect.getmembers(module, inspect.isclass):
            if (
                cls.__module__ == module.__name__
                and issubclass(cls, DOMNode)
                and "BINDINGS" in cls.__dict__
            ):
                owners.append(cls)
    return owners


def test_every_binding_has_a_documented_id_and_every_id_is_bound():
    owners = binding_owners()
    assert {"CisTuiApp", "ChecksScreen", "PlanScreen", "ExportScreen", "CheckTable"} <= {
        o.__name__ for o in owners
    }
    used = set()
    for owner in owners:
        ids = [b.id for b in bindings_of(owner)]
        for binding in bindings_of(owner):
            assert binding.id in BINDING_IDS, f"{owner.__name__}: {binding.key} has no known id"
        assert len(ids) == len(set(ids)), f"{owner.__name__} uses an id twice: {ids}"
        used.update(ids)
    assert used == set(BINDING_IDS), f"ids nothing binds: {set(BINDING_IDS) - used}"


def test_the_readme_documents_every_binding_id():
    text = README.read_text()
    section = text[text.index("[keys]") :]
    missing = [i for i in BINDING_IDS if f"`{i}`" not in section]
    assert missing == []


@pytest.mark.parametrize(
    ("key", "ok"),
    [
        ("p", True),
        ("P", True),
        ("?", True),
        ("ctrl+a", True),
        ("shift+tab", True),
        ("f12", True),
        ("question_mark", True),
        ("right_square_bracket", True),
        ("ctrl+", False),
        ("ctrl+entr", False),
        ("Ctrl+p", False),
        ("ctrl+ctrl+p", False),
        ("latin_small_letter_a", False),
        ("", False),
    ],
)
def test_key_names(key, ok):
    assert is_key(key) is ok


def write_config(tmp_path: Path, keys: str) -> Path:
    path = tmp_path / "config.toml"
    path.write_text(f"[keys]\n{keys}\n")
    return path


def test_keys_are_read_from_the_config(tmp_path, kubeadm_node):
    config = write_config(tmp_path, 'select_all = "ctrl+a"\nplan = ["o", " enter"]')
    settings = load_settings(config=config, root=kubeadm_node)
    assert settings.keys == {"select_all": "ctrl+a", "plan": "o,enter"}


@pytest.mark.parametrize(
    ("entry", "says"),
    [
        ('select_everything = "ctrl+a"', "unknown binding id 'select_everything' in [keys]"),
        ('plan = "ctrl+entr"', "keys.plan: 'ctrl+entr' is not a key"),
        ("plan = 5", "keys.plan must be a string of keys"),
        ('plan = "p,,enter"', "keys.plan: an empty key"),
        ("plan = { x = 1 }", "keys.plan must be a string of keys"),
    ],
)
def test_a_bad_keys_entry_exits_2_naming_the_config(tmp_path, kubeadm_node, capsys, entry, says):
    config = write_config(tmp_path, entry)
    code = main(["--config", str(config), "--root", str(kubeadm_node), "tui"])
    out, err = capsys.readouterr()
    assert code == 2
    assert err.startswith(f"cis-tui: error: {config}: ") and says in err
    assert err.count("\n") == 1 and out == ""


def test_the_demo_takes_the_users_keys(tmp_path, monkeypatch):
    config = write_config(tmp_path, 'quit = "x,ctrl+q"')
    monkeypatch.setenv("CIS_TUI_CONFIG", str(config))
    assert load_user_keys() == {"quit": "x,ctrl+q"}
    monkeypatch.delenv("CIS_TUI_CONFIG")
    assert load_user_keys() == {}  # no config file at the default place: no keymap


async def test_a_remapped_action_works_with_its_new_key_and_help_shows_it(make_app, tree, tmp_path):
    config = write_config(tmp_path, 'select_all = "ctrl+a"\nplan = "o"\nbackups = "B"')
    app = make_app(load_settings(config=config, root=tree))
    async with app.run_test(size=(100, 40)) as pilot:
        await settle(pilot)
        screen = app.screen
        assert isinstance(screen, ChecksScreen)
        await pilot.press("a")  # the old key does nothing now
        assert screen.selected == set()
        await pilot.press("ctrl+a")
        assert screen.selected
        footer = screen_text(app).splitlines()[-1]
        assert "^a Select all" in footer and "o Plan" in footer

        await pilot.press("f1")
        await pilot.pause()
        assert isinstance(app.screen, HelpScreen)
        lines = screen_text(app).splitlines()
        assert any("^a" in line and "select_all" in line for line in lines)
        assert any(" o " in line and " plan " in line for line in lines)
        await pilot.press("escape")
        await pilot.pause()

        titles = {c.title: c.help for c in app.get_system_commands(app.screen)}
        assert "(key: o)" in titles["Plan"]

        await pilot.press("p")  # no longer plans
        await pilot.pause()
        assert isinstance(app.screen, ChecksScreen)
        await pilot.press("o")
        await wait_until(pilot, lambda: isinstance(app.screen, PlanScreen), what="the plan")


async def test_help_names_every_action_by_its_id(make_app):
    app = make_app()
    async with app.run_test(size=(100, 60)) as pilot:
        await settle(pilot)
        await pilot.press("f1")
        await pilot.pause()
        text = screen_text(app)
        for binding in bindings_of(ChecksScreen) + bindings_of(type(app)):
            assert isinstance(binding, Binding) and binding.id
            assert binding.id in text, binding.id


async def test_a_key_taken_from_another_binding_is_reported_once(make_app, tree, tmp_path):
    config = write_config(tmp_path, 'select_all = "p"')
    app = make_app(load_settings(config=config, root=tree))
    async with app.run_test(size=(100, 40)) as pilot:
        await settle(pilot)
        await pilot.press("p")
        await pilot.press("p")
        assert isinstance(app.screen, ChecksScreen)  # p selects now; it no longer plans
        clashes = [n.message for n in app._notifications if n.title == "Key clash"]
        assert clashes == ["[keys]: p runs both plan and select_all; give one another key."]


async def test_a_clash_on_a_screen_opened_later_is_reported_when_it_opens(make_app, tree, tmp_path):
    config = write_config(tmp_path, 'apply = "e"')
    app = make_app(load_settings(config=config, root=tree))
    async with app.run_test(size=(100, 40)) as pilot:
        await settle(pilot)
        assert not [n for n in app._notifications if n.title == "Key clash"]
        await pilot.press("p")
        await wait_until(pilot, lambda: isinstance(app.screen, PlanScreen), what="the plan")
        await pilot.pause()
        clashes = [n.message for n in app._notifications if n.title == "Key clash"]
        assert clashes == ["[keys]: e runs both apply and edit_parameters; give one another key."]


async def test_on_screen_hints_name_the_remapped_keys(make_app, tree, tmp_path):
    config = write_config(tmp_path, 'apply = "ctrl+y"\ncancel = "ctrl+x"')
    app = make_app(load_settings(config=config, root=tree))
    async with app.run_test(size=(100, 40)) as pilot:
        await settle(pilot)
        app.open_plan(["1.2.15"])
        await wait_until(pilot, lambda: "applies" in screen_text(app), what="the plan summary")
        text = screen_text(app)
        assert "^y applies" in text and "; a applies" not in text
        assert app.key_hint("cancel", "x") == "^x"
