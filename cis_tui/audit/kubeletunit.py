"""The kubelet's command line as systemd starts it: kubelet.service, every `*.conf` drop-in of
kubelet.service.d (in file-name order, a name in /etc hiding the same name in /usr/lib), the
Environment= and EnvironmentFile= variables they set (a file's override Environment=, a later
assignment an earlier one) and the last ExecStart=, with `$VAR` split into words and `${VAR}`
kept in one (systemd.service(5), systemd.exec(5)). kubeadm's 10-kubeadm.conf reads
KUBELET_EXTRA_ARGS from /etc/default/kubelet; a hand-built node puts its flags in the unit.
"""

from __future__ import annotations

import re
import shlex
from collections.abc import Callable
from pathlib import Path

from cis_tui.layout import Layout

#: Where systemd looks for a system unit and its drop-ins, highest priority first.
UNIT_DIRS = (
    "/etc/systemd/system",
    "/run/systemd/system",
    "/usr/local/lib/systemd/system",
    "/usr/lib/systemd/system",
    "/lib/systemd/system",
)
DEFAULT_DROP_IN = Path("/etc/systemd/system/kubelet.service.d/10-kubeadm.conf")
_VAR = re.compile(r"\$\{(\w+)\}|\$(\w+)")

Reader = Callable[[Path], str | None]


def _unit_files(layout: Layout, read: Reader) -> list[str]:
    """The unit file's text, then its drop-ins' in the order systemd applies them. A layout
    whose drop-in is not kubeadm's (a sandbox, a moved tree) names the only directory to read."""
    dropin_dir = layout.kubelet_service.parent
    unit_name = dropin_dir.name.removesuffix(".d") or "kubelet.service"
    if layout.kubelet_service == layout.host_path(DEFAULT_DROP_IN):
        dirs = [layout.host_path(d) for d in UNIT_DIRS]
    else:
        dirs = [dropin_dir.parent]
    texts: list[str] = []
    for directory in dirs:
        text = read(directory / unit_name)
        if text is not None:
            texts.append(text)
            break
    dropins: dict[str, Path] = {}
    for directory in [dropin_dir.parent, *dirs]:
        try:
            names = sorted(p.name for p in (directory / dropin_dir.name).glob("*.conf"))
        except OSError:
            continue
        for name in names:
            dropins.setdefault(name, directory / dropin_dir.name / name)
    dropins.setdefault(layout.kubelet_service.name, layout.kubelet_service)
    for name in sorted(dropins):
        text = read(dropins[name])
        if text is not None:
            texts.append(text)
    return texts


def _service_settings(text: str) -> list[tuple[str, str]]:
    """(key, value) of the [Service] section, continuation lines joined."""
    found: list[tuple[str, str]] = []
    section = ""
    for raw in re.sub(r"\\\n", " ", text).splitlines():
        line = raw.strip()
        if not line or line[0] in "#;":
            continue
        if line.startswith("[") and line.endswith("]"):
            section = line[1:-1]
        elif section == "Service" and "=" in line:
            key, _, value = line.partition("=")
            found.append((key.strip(), value.strip()))
    return found


def _env_file(text: str) -> dict[str, str]:
    env: dict[str, str] = {}
    for raw in re.sub(r"\\\n", "", text).splitlines():
        line = raw.strip().removeprefix("export ")
        key, sep, value = line.partition("=")
        if not sep or not key.strip() or line[0] in "#;":
            continue
        try:
            words = shlex.split(value, comments=False)
        except ValueError:
            continue
        env[key.strip()] = " ".join(words) if value.strip()[:1] in "\"'" else value.strip()
    return env


def _expand(word: str, env: dict[str, str]) -> list[str]:
    whole = re.fullmatch(r"\$(\w+)", word)
    if whole:  # $VAR alone: its value split at whitespace (none when empty)
        return env.get(whole[1], "").split()
    return [_VAR.sub(lambda m: env.get(m[1] or m[2], ""), word)]


def kubelet_unit_args(layout: Layout, read: Reader) -> tuple[str, ...]:
    """The kubelet's arguments as systemd would pass them. Without an ExecStart= (a tree that
    keeps only its flags file), every KUBELET_*_ARGS variable in the order it was set."""
    argv, env = _unit_command(layout, read)
    if argv is None:
        return tuple(
            arg
            for name, value in env.items()
            if name.startswith("KUBELET_") and name.endswith("_ARGS")
            for arg in value.split()
        )
    return tuple(argv[1:])


def kubelet_unit_binary(layout: Layout, read: Reader) -> str | None:
    """The program the unit's last ExecStart= runs (None without one)."""
    argv, _env = _unit_command(layout, read)
    return argv[0] if argv else None


def _unit_command(layout: Layout, read: Reader) -> tuple[list[str] | None, dict[str, str]]:
    """The last ExecStart='s words, variables expanded (None without one, or unparsable),
    and the environment the unit's settings and environment files give it."""
    env: dict[str, str] = {}
    env_files: list[Path] = []
    exec_start = ""
    for text in _unit_files(layout, read):
        for key, value in _service_settings(text):
            if key == "Environment":
                if not value:  # an empty assignment resets the list
                    env = {}
                try:
                    assignments = shlex.split(value)
                except ValueError:
                    continue
                for item in assignments:
                    name, sep, val = item.partition("=")
                    if sep:
                        env[name] = val
            elif key == "EnvironmentFile":
                env_files = [] if not value else [*env_files, Path(value.removeprefix("-"))]
            elif key == "ExecStart":
                exec_start = value
    named = [layout.host_path(p) for p in env_files if p.is_absolute()]
    if layout.kubelet_flags_env not in named:  # the layout's own flags file, lowest precedence
        named.insert(0, layout.kubelet_flags_env)
    for path in named:
        text = read(path)
        if text is not None:
            env.update(_env_file(text))
    if not exec_start:
        return None, env
    try:
        words = shlex.split(exec_start.lstrip("-@:+!"))
    except ValueError:
        return [], env
    return [arg for word in words for arg in _expand(word, env)], env
