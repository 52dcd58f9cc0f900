"""The help screen: every key of the screen below and of the app, with what it does."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import ClassVar

from textual.app import App, ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.content import Content
from textual.dom import DOMNode
from textual.screen import ModalScreen, Screen
from textual.widgets import Static

from cis_tui.tui.widgets.key_footer import KeyFooter

INTRO = (
    "cis-tui scans this node against the CIS Kubernetes Benchmark and fixes failing checks "
    "safely: every change is previewed as a diff, backed up, written atomically, health-gated "
    "and rolled back when the component does not come back healthy. ctrl+p opens the command "
    "palette with every action. The middle column is each action's id: rebind it in the "
    'config file\'s [keys] table, e.g. plan = "p,enter".'
)


def bindings_of(node: DOMNode | type[DOMNode]) -> list[Binding]:
    """The Bindings a class declares (its own BINDINGS only), aliases kept together."""
    cls = node if isinstance(node, type) else type(node)
    declared = cls.__dict__.get("BINDINGS", [])
    return [b if isinstance(b, Binding) else Binding(*b) for b in declared]


def keys_of(app: App[object], binding: Binding) -> list[str]:
    """The keys that run a binding now: the config's `[keys]` for its id, else its own."""
    keymap: Mapping[str, str] = getattr(app, "keymap", {})
    chosen = keymap.get(binding.id) if binding.id else None
    return [k.strip() for k in (chosen or binding.key).split(",")]


def key_clashes(app: App[object], owners: Iterable[DOMNode]) -> list[str]:
    """Keys that `[keys]` gives to two actions of the same owners (a screen and the app);
    keys the defaults already share (escape: cancel or back, by state) are no clash."""
    holders: dict[str, list[str]] = {}
    by_default: dict[str, set[str]] = {}  # keys shared on purpose (escape: cancel or back)
    for owner in owners:
        for binding in bindings_of(owner):
            name = binding.id or binding.action
            for key in keys_of(app, binding):
                holders.setdefault(key, []).append(name)
            for key in binding.key.split(","):
                by_default.setdefault(key.strip(), set()).add(name)
    clashes = []
    for key, names in holders.items():
        ids = list(dict.fromkeys(names))
        if len(ids) > 1 and not set(ids) <= by_default.get(key, set()):
            shown = app.get_key_display(Binding(key, ""))
            clashes.append(f"[keys]: {shown} runs both {' and '.join(ids)}; give one another key.")
    return clashes


def key_list(app: App[object], binding: Binding) -> str:
    return ", ".join(app.get_key_display(Binding(k, binding.action)) for k in keys_of(app, binding))


#: Keys of Textual's own widgets, listed for completeness.
MOVING = [
    Binding("up,down", "", "Move in a table or list"),
    Binding("pageup,pagedown", "", "Move a page"),
    Binding("home,end", "", "First / last row"),
    Binding("tab,shift+tab", "", "Next / previous area (tables, panes, parameter inputs)"),
    Binding("enter", "", "Plan the highlighted or selected checks (checks table)"),
    Binding("ctrl+p", "", "Command palette: every action by name"),
]


def help_sections(app: App[object], screen: Screen[object]) -> Iterable[tuple[str, list[Binding]]]:
    """The screen's keys, the app's and Textual's; without those the screen hides (read-only)."""
    title = getattr(screen, "BINDING_GROUP_TITLE", None) or "This screen"
    allows = getattr(app, "allows", lambda binding_id: True)
    yield title, [b for b in bindings_of(screen) if allows(b.id or "")]
    yield "Everywhere", bindings_of(app)
    yield "Moving around", MOVING


class HelpScreen(ModalScreen[None]):
    """Lists every binding; escape, F1 or ? closes it."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape,f1,question_mark", "close", "Close", tooltip="Close the help", id="close")
    ]

    DEFAULT_CSS = """
    HelpScreen { align: center middle; }
    HelpScreen > Vertical {
        width: 84; max-width: 100%; height: 90%; border: thick $primary;
        background: $surface; padding: 0 1;
    }
    HelpScreen .help-title { text-style: bold; margin: 0 0 1 0; }
    HelpScreen .help-intro { margin: 0 0 1 0; }
    HelpScreen .help-section { margin: 1 0 0 0; }
    HelpScreen .help-row { height: auto; }
    HelpScreen .help-keys { padding: 0 0 0 2; }
    HelpScreen .help-id { color: $text-muted; }
    HelpScreen .help-what { width: 1fr; }
    """

    def __init__(self, screen: Screen[object]) -> None:
        super().__init__()
        self.below = screen

    def compose(self) -> ComposeResult:
        sections = [
            (title, [(key_list(self.app, b), b) for b in bindings])
            for title, bindings in help_sections(self.app, self.below)
        ]
        key_width = max(len(keys) for _, rows in sections for keys, _ in rows) + 4  # pad, gap
        id_width = max(len(b.id or "") for _, rows in sections for _, b in rows) + 2
        with Vertical():
            yield Static("Keys", classes="help-title")
            with VerticalScroll():
                yield Static(Content(INTRO), classes="help-intro")
                for title, rows in sections:
                    yield Static(Content.styled(title, "bold $text-accent"), classes="help-section")
                    for keys, binding in rows:
                        extra = binding.tooltip if binding.tooltip != binding.description else ""
                        with Horizontal(classes="help-row"):
                            key = Static(Content.styled(keys, "bold"), classes="help-keys")
                            key.styles.width = key_width
                            yield key
                            ident = Static(Content(binding.id or ""), classes="help-id")
                            ident.styles.width = id_width
                            yield ident
                            yield Static(
                                Content.assemble(
                                    binding.description,
                                    (f" — {extra}" if extra else "", "$text-muted"),
                                ),
                                classes="help-what",
                            )
        yield KeyFooter()

    def action_close(self) -> None:
        self.dismiss()
