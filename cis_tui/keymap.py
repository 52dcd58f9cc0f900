"""The wizard's key binding ids (the `[keys]` table of the config file) and key-name checks.

The ids are API, like the JSON field names: a config file names them. Every binding of the
wizard carries one of these ids (a test holds the two together); bindings that do the same
thing on different screens share an id, so `back = "h,escape"` changes it everywhere.
No Textual import here: the config is read before any screen exists.
"""

from __future__ import annotations

import unicodedata

#: Every binding id, with what it does (the README lists them the same way).
BINDING_IDS: dict[str, str] = {
    # everywhere
    "quit": "quit (blocked while a change is in flight)",
    "help": "help: every key of the screen",
    # checks screen
    "select": "select or unselect the highlighted check, then move down",
    "plan": "plan the selected checks (or the highlighted one)",
    "select_all": "select every fixable check the filters show (again: unselect)",
    "failing": "show only failing checks, or all",
    "component": "cycle the component filter",
    "scored": "show only scored checks, or all",
    "search": "search by id or title",
    "search_done": "keep the search and go back to the table",
    "clear_search": "clear the search",
    "rescan": "read the node again",
    "backups": "open the backups screen",
    "export": "export the scan to a file (JSON, JUnit XML, an HTML or Markdown report)",
    "top": "first row, or the start of the plan",
    "bottom": "last row, or the end of the plan",
    # plan screen and its pager
    "apply": "apply the plan (asks first)",
    "save_plan": "save the plan and its companion files, for `apply --plan` on other nodes",
    "edit_parameters": "edit the plan's parameters",
    "next_file": "plan: next file",
    "previous_file": "plan: this file's start, then the previous file",
    "next_hunk": "plan: next @@ hunk",
    "previous_hunk": "plan: previous @@ hunk",
    "fold": "plan: fold or unfold the file at the top",
    "fold_all": "plan: fold or unfold every file",
    "line_down": "plan: scroll one line down",
    "line_up": "plan: scroll one line up",
    "page_down": "plan: scroll one page down",
    "page_up": "plan: scroll one page up",
    # apply screen
    "cancel": "cancel the running change: roll back",
    "back": "back to the previous screen",
    # backups screen
    "diff": "diff a backup against the current file",
    "restore": "restore a backup (asks first)",
    "prune": "delete all but the newest N finished backups",
    # dialogs
    "yes": "confirm",
    "no": "decline; nothing changes",
    "close": "close a dialog or the help; nothing changes",
    "recover": "recovery dialog: restore the pre-change state now",
    "later": "recovery dialog: leave it for `cis-tui recover`",
}

#: What a read-only wizard never does (their bindings are hidden, their jobs refused).
WRITE_IDS: frozenset[str] = frozenset({"apply", "restore", "prune", "recover"})

MODIFIERS = frozenset({"ctrl", "alt", "shift", "meta", "super", "hyper"})
_NAMED = frozenset(
    {
        "enter",
        "escape",
        "space",
        "tab",
        "backspace",
        "delete",
        "insert",
        "home",
        "end",
        "pageup",
        "pagedown",
        "up",
        "down",
        "left",
        "right",
        # Textual's short names for some punctuation keys
        "slash",
        "backslash",
        "at",
        "minus",
        "plus",
        "underscore",
        *(f"f{n}" for n in range(1, 25)),
    }
)


def is_key(key: str) -> bool:
    """Whether `key` names a key as Textual does: `p`, `P`, `?`, `ctrl+p`, `f5`, `enter`,
    `question_mark` (punctuation by its Unicode name), with modifiers before a `+`."""
    *mods, name = key.split("+")
    if any(m not in MODIFIERS for m in mods) or len(set(mods)) != len(mods):
        return False
    if len(name) == 1:
        return name.isprintable() and not name.isspace() and name != ","
    if name in _NAMED:
        return True
    try:
        char = unicodedata.lookup(name.replace("_", " ").upper())
    except KeyError:
        return False
    return name.islower() and char.isprintable() and not char.isalnum() and not char.isspace()


def key_problem(binding_id: object, value: object) -> str | None:
    """Why a `[keys]` entry is wrong, or None; keys are a string (`"p,enter"`) or a list."""
    if binding_id not in BINDING_IDS:
        return f"unknown binding id {binding_id!r} in [keys] (F1 in the wizard shows each key's id)"
    if isinstance(value, str):
        keys = value.split(",")
    elif isinstance(value, list) and all(isinstance(k, str) for k in value):
        keys = list(value)
    else:
        return f'keys.{binding_id} must be a string of keys, e.g. "p,enter"'
    keys = [k.strip() for k in keys]
    if not keys or not all(keys):
        return f"keys.{binding_id}: an empty key in {value!r}"
    for key in keys:
        if not is_key(key):
            return (
                f"keys.{binding_id}: {key!r} is not a key "
                '(e.g. "p", "P", "ctrl+p", "f5", "enter", "escape", "question_mark")'
            )
    return None


def key_string(value: str | list[str]) -> str:
    """A valid `[keys]` value as Textual's keymap takes it: comma-separated, no spaces."""
    keys = value.split(",") if isinstance(value, str) else value
    return ",".join(k.strip() for k in keys)
