"""Text edits on kubeadm's files that keep kubeadm's exact formatting.

kubeadm sorts flags by name, volumes and volumeMounts by name, and top-level
KubeletConfiguration keys alphabetically; these helpers insert in the same order, so a
sandbox manifest looks like one kubeadm wrote with the same options.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

_HOST_PATH = re.compile(r"(?<=[=\s])(-?)/(?=(?:etc|var|usr|run|opt|lib)/)")
_FLAG_LINE = re.compile(r"^(?P<indent>\s*)- (?P<flag>--[^=\s]+)(?:=(?P<value>.*))?$")


def template(name: str) -> str:
    """One of the kubeadm reference files shipped with the package."""
    return (resources.files("cis_tui.sandbox") / "kubeadm" / name).read_text(encoding="utf-8")


def rewrite_host_paths(text: str, root: Path) -> str:
    """Move every absolute host path (flags, hostPath, mountPath, ExecStart, ...) under root."""
    text = text.replace("unix:///", f"unix://{root}/")
    return _HOST_PATH.sub(lambda m: f"{m[1]}{root}/", text)


def _flag_block(lines: list[str]) -> tuple[int, int]:
    """Index range [start, end) of the flag lines after `- command:` and the binary."""
    for i, line in enumerate(lines):
        if line.strip() == "- command:":
            start = i + 2
            end = start
            while end < len(lines) and _FLAG_LINE.match(lines[end]):
                end += 1
            return start, end
    raise ValueError("no container command in manifest")


def flags(text: str) -> dict[str, str | None]:
    """The flags of the first container command, in file order."""
    lines = text.splitlines()
    start, end = _flag_block(lines)
    found: dict[str, str | None] = {}
    for line in lines[start:end]:
        m = _FLAG_LINE.match(line)
        assert m is not None
        found[m["flag"]] = m["value"]
    return found


def set_flag(text: str, flag: str, value: str | None) -> str:
    """Set `--flag=value` (bare `--flag` when value is None), in kubeadm's sorted position."""
    lines = text.splitlines(keepends=True)
    start, end = _flag_block([ln.rstrip("\n") for ln in lines])
    indent = _FLAG_LINE.match(lines[start - 1].rstrip("\n"))
    pad = indent["indent"] if indent else "    "
    new = f"{pad}- {flag}" + (f"={value}" if value is not None else "") + "\n"
    position = end
    for i in range(start, end):
        m = _FLAG_LINE.match(lines[i].rstrip("\n"))
        assert m is not None
        if m["flag"] == flag:
            lines[i] = new
            return "".join(lines)
        if m["flag"] > flag and position == end:
            position = i
    lines.insert(position, new)
    return "".join(lines)


def remove_flag(text: str, flag: str) -> str:
    lines = text.splitlines(keepends=True)
    start, end = _flag_block([ln.rstrip("\n") for ln in lines])
    keep = [
        ln
        for i, ln in enumerate(lines)
        if not (start <= i < end and (m := _FLAG_LINE.match(ln.rstrip("\n"))) and m["flag"] == flag)
    ]
    return "".join(keep)


def _items(lines: list[str], header: str) -> tuple[int, int, list[list[str]]]:
    """The list under `header` (exact line): its range and its items as line blocks."""
    idx = lines.index(header)
    item_prefix = header[: len(header) - len(header.lstrip())] + "- "
    blocks: list[list[str]] = []
    i = idx + 1
    while i < len(lines):
        line = lines[i]
        if line.startswith(item_prefix):
            blocks.append([line])
        elif blocks and line.startswith(" " * (len(item_prefix))):
            blocks[-1].append(line)
        else:
            break
        i += 1
    return idx + 1, i, blocks


def _block_name(block: list[str]) -> str:
    for line in block:
        stripped = line.strip().removeprefix("- ")
        if stripped.startswith("name: "):
            return stripped[len("name: ") :]
    return ""


@dataclass(frozen=True)
class HostPathVolume:
    """A hostPath volume and its mount in the (only) container."""

    name: str
    host_path: str
    mount_path: str
    type: str = "DirectoryOrCreate"
    read_only: bool = True


def add_volume(text: str, volume: HostPathVolume) -> str:
    """Add a hostPath volume and its volumeMount, both sorted by name as kubeadm does."""
    lines = text.splitlines()
    start, end, blocks = _items(lines, "    volumeMounts:")
    mount = [f"    - mountPath: {volume.mount_path}", f"      name: {volume.name}"]
    if volume.read_only:
        mount.append("      readOnly: true")
    blocks.append(mount)
    blocks.sort(key=_block_name)
    lines[start:end] = [ln for b in blocks for ln in b]
    start, end, blocks = _items(lines, "  volumes:")
    vol = ["  - hostPath:", f"      path: {volume.host_path}"]
    if volume.type:
        vol.append(f"      type: {volume.type}")
    vol.append(f"    name: {volume.name}")
    blocks.append(vol)
    blocks.sort(key=_block_name)
    lines[start:end] = [ln for b in blocks for ln in b]
    return "\n".join(lines) + "\n"


def _top_level_blocks(lines: list[str]) -> list[list[str]]:
    blocks: list[list[str]] = []
    for line in lines:
        if line and not line.startswith((" ", "-")):
            blocks.append([line])
        elif blocks:
            blocks[-1].append(line)
    return blocks


def set_top_level(text: str, key: str, value_yaml: str) -> str:
    """Set a top-level key of a sorted YAML mapping (value_yaml: ` x` or `\\n- a\\n- b`)."""
    blocks = _top_level_blocks(text.splitlines())
    new = f"{key}:{value_yaml}".splitlines()
    for i, block in enumerate(blocks):
        if block[0].split(":", 1)[0] == key:
            blocks[i] = new
            break
    else:
        blocks.append(new)
        blocks.sort(key=lambda b: b[0].split(":", 1)[0])
    return "\n".join(ln for b in blocks for ln in b) + "\n"
