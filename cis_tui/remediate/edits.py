"""Edits of static pod manifests and the kubelet config that keep the file's own style.

Each edit locates nodes with ruamel.yaml, changes only the text of the lines it owns (see
`yamltext`), then re-parses the result and checks the intended effect: the whole document must
equal the old one with exactly the intended change, and the component must read the intended
flags. A failed check raises `EditError`; a wrong file is never returned.
"""

from __future__ import annotations

import copy
import difflib
import functools
import posixpath
import re
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from ruamel.yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

from cis_tui.audit.flags import (
    FlagSpec,
    Occurrence,
    ParsedArgs,
    flag_table,
    parse_args,
    parse_bool,
    split_list,
    split_map,
    validate_value,
)
from cis_tui.audit.versions import Version, fact, flag_table_at, image_version, missing
from cis_tui.remediate import yamltext as yt
from cis_tui.remediate.yamltext import EditError

__all__ = [
    "EditError",
    "EditResult",
    "KubeletConfig",
    "MountPathTaken",
    "PodManifest",
    "VolumeNameTaken",
    "unified_diff",
]

_SHELLS = {"sh", "bash", "ash", "dash", "zsh", "busybox"}
_DNS_LABEL = re.compile(r"[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?")
#: core/v1 HostPathType values ("" = no check).
HOST_PATH_TYPES = frozenset(
    {
        "",
        "DirectoryOrCreate",
        "Directory",
        "FileOrCreate",
        "File",
        "Socket",
        "CharDevice",
        "BlockDevice",
    }
)


class VolumeNameTaken(EditError):
    """The volume name is used by a different volume (pick another name)."""


class MountPathTaken(EditError):
    """The mount path is used by another volume's mount."""


@dataclass(frozen=True)
class EditResult:
    """The edited file content and what the editor wants a human to know."""

    text: str
    notes: tuple[str, ...]


def unified_diff(old: str, new: str, path: str) -> str:
    """A unified diff with `a/` `b/` headers and 3 lines of context.

    A file whose line breaks are CRLF before and after is shown with plain line breaks (a CR
    before each one only garbles a terminal) and a note saying the file keeps its CRLF.
    """
    name = path.lstrip("/")
    lines = list(
        difflib.unified_diff(
            old.splitlines(keepends=True),
            new.splitlines(keepends=True),
            f"a/{name}",
            f"b/{name}",
            n=3,
        )
    )
    out = []
    if lines and yt.eol(old) == yt.eol(new) == "\r\n":
        out.append("# CRLF line endings: shown as plain line breaks, kept in the file\n")
        lines = [line[:-2] + "\n" if line.endswith("\r\n") else line for line in lines]
    for line in lines:
        if line.endswith("\n"):
            out.append(line)
        else:
            out.append(line + "\n\\ No newline at end of file\n")
    return "".join(out)


class _Editor:
    """The text being edited; a byte-order mark is set aside (libyaml does not count it)."""

    def __init__(self, text: str) -> None:
        self.original = text
        self._bom = "\ufeff" if text.startswith("\ufeff") else ""
        self._body = text[len(self._bom) :]
        self.notes: list[str] = []

    @property
    def text(self) -> str:
        """The current file content."""
        return self._bom + self._body

    def result(self) -> EditResult:
        return EditResult(self.text, tuple(self.notes))


# --- static pod manifests ----------------------------------------------------------------------


@dataclass(frozen=True)
class _Pod:
    """A parsed manifest: nodes for positions, data for verification, argv slots for flags."""

    root: MappingNode
    spec: MappingNode
    container: MappingNode
    seqs: dict[str, SequenceNode]  # "command" / "args", when present and not null
    slots: tuple[tuple[str, int], ...]  # argv index -> (sequence key, item index)
    parsed: ParsedArgs
    data: dict[str, Any]
    #: The flags of the version in the image tag.
    table: Mapping[str, FlagSpec]
    #: That version (None without a usable tag: the newest flags are assumed).
    version: Version | None

    def node(self, index: int) -> ScalarNode:
        key, item = self.slots[index]
        return self.seqs[key].value[item]

    def parsed_item(self, index: int) -> str:
        return self.node(index).value


@dataclass
class _ArgvEdit:
    """Item-level changes to command/args, by argv index."""

    replace: dict[int, str]
    delete: set[int]
    insert: list[str]  # new items after the last flag of the sequence that holds flags


class PodManifest(_Editor):
    """A static pod manifest being edited: one container, flags in `command` and/or `args`."""

    def __init__(self, text: str, component: str) -> None:
        super().__init__(text)
        self.component = component
        self._pod = _parse_pod(self._body, component)

    def flags(self) -> ParsedArgs:
        """The flags the component reads: `command[1:] + args` (or `args` alone)."""
        return self._pod.parsed

    # -- flags --

    def set_flag(self, flag: str, value: str) -> None:
        """Give `flag` the effective value `value`, editing in place in the file's style."""
        spec = self._spec(flag)
        if spec is not None and (problem := validate_value(spec, value)):
            raise EditError(problem)
        pod = self._editable()
        occs = [o for o in pod.parsed.occurrences if o.name == flag]
        edit = _ArgvEdit({}, set(), [])
        notes: list[str] = []
        if not occs:
            edit.insert = self._new_items(flag, value)
        else:
            earlier, last = occs[:-1], occs[-1]
            for occ in earlier:
                edit.delete |= self._slots_of(occ, notes)
            if earlier:
                lines = ", ".join(str(self._line(pod, o.index)) for o in earlier)
                kind = "earlier occurrence" if _accumulates(spec) else "shadowed duplicate"
                plural = "s" if len(earlier) > 1 else ""
                notes.append(f"removed {len(earlier)} {kind}{plural} of {flag} (line {lines})")
            if last.style == "bare":
                edit.delete |= self._slots_of(last, notes) - {last.index}
                if value != "true":
                    edit.replace[last.index] = pod.parsed_item(last.index) + "=" + value
            elif last.value != value:
                edit.replace.update(self._value_edit(last, value))
        expected = dict(pod.parsed.values)
        expected[flag] = value
        self._commit(edit, expected, notes, f"{flag} is already {value}")

    def remove_flag(self, flag: str) -> None:
        """Remove every occurrence of `flag` (with its separate value item, if any)."""
        self._spec(flag)
        pod = self._editable()
        occs = [o for o in pod.parsed.occurrences if o.name == flag]
        edit = _ArgvEdit({}, set(), [])
        notes: list[str] = []
        for occ in occs:
            edit.delete |= self._slots_of(occ, notes)
        if len(occs) > 1:
            lines = ", ".join(str(self._line(pod, o.index)) for o in occs)
            notes.append(f"removed {len(occs)} occurrences of {flag} (line {lines})")
        expected = {k: v for k, v in pod.parsed.values.items() if k != flag}
        self._commit(edit, expected, notes, f"{flag} is not set")

    def add_list_item(self, flag: str, item: str) -> None:
        """Add one element to a list flag (creating the flag if absent)."""
        spec = self._spec(flag)
        if spec is not None and not spec.is_list:
            raise EditError(f"{flag} is not a list flag")
        item = _element(item)
        pod = self._editable()
        current = split_list(pod.parsed.values.get(flag, ""))
        if item in current:
            self.notes.append(f"{item} is already in {flag}")
            return
        occs = [o for o in pod.parsed.occurrences if o.name == flag]
        if not occs:
            self.set_flag(flag, item)
            return
        last = occs[-1]
        new_value = _append_part(last.value or "", item)
        self._validate(spec, new_value)
        edit = _ArgvEdit(self._value_edit(last, new_value), set(), [])
        expected = dict(pod.parsed.values)
        expected[flag] = ",".join([*current, item])
        self._commit(edit, expected, [], "")

    def remove_list_item(self, flag: str, item: str) -> None:
        """Remove one element (exact match) from a list flag; an emptied flag is removed."""
        spec = self._spec(flag)
        if spec is not None and not spec.is_list:
            raise EditError(f"{flag} is not a list flag")
        item = _element(item)
        pod = self._editable()
        current = split_list(pod.parsed.values.get(flag, ""))
        if item not in current:
            self.notes.append(f"{item} is not in {flag}")
            return
        remaining = [x for x in current if x != item]
        occs = [o for o in pod.parsed.occurrences if o.name == flag]
        edit = _ArgvEdit({}, set(), [])
        notes: list[str] = []
        expected = dict(pod.parsed.values)
        if not remaining:
            for occ in occs:
                edit.delete |= self._slots_of(occ, notes)
            notes.append(f"removed {flag}: its list became empty")
            del expected[flag]
        else:
            for occ in occs:
                parts = (occ.value or "").split(",")
                kept = [p for p in parts if p.strip() != item]
                if len(kept) == len(parts):
                    continue
                new_value = ",".join(p for p in kept if p.strip()).strip()
                if new_value:
                    edit.replace.update(self._value_edit(occ, new_value))
                else:
                    edit.delete |= self._slots_of(occ, notes)
            expected[flag] = ",".join(remaining)
        self._commit(edit, expected, notes, "")

    def set_map_item(self, flag: str, key: str, value: str) -> None:
        """Set one `key=value` entry of a map flag such as `--feature-gates`."""
        self._map_item(flag, key, value)

    def remove_map_item(self, flag: str, key: str) -> None:
        """Remove one key of a map flag; an emptied flag is removed."""
        self._map_item(flag, key, None)

    # -- volumes --

    def add_host_path_volume(
        self, name: str, host_path: str, mount_path: str, type: str, read_only: bool
    ) -> None:
        """Add a hostPath volume and its volumeMount in the file's style (no-op if present)."""
        if not _DNS_LABEL.fullmatch(name):
            raise EditError(f"invalid volume name {name!r}: must be a DNS label")
        for label, path in (("host path", host_path), ("mount path", mount_path)):
            if not path.startswith("/") or "\n" in path:
                raise EditError(f"{label} must be absolute: {path!r}")
        if type not in HOST_PATH_TYPES:
            raise EditError(f"invalid hostPath type {type!r}")
        pod = self._pod
        spec_data = pod.data["spec"]
        container_data = spec_data["containers"][0]
        volumes = _list_of_dicts(spec_data.get("volumes"), "spec.volumes")
        mounts = _list_of_dicts(container_data.get("volumeMounts"), "volumeMounts")
        host_norm, mount_norm = posixpath.normpath(host_path), posixpath.normpath(mount_path)
        notes: list[str] = []
        same_name = next((v for v in volumes if v.get("name") == name), None)
        if same_name is not None:
            existing = same_name.get("hostPath")
            if (
                not isinstance(existing, dict)
                or posixpath.normpath(str(existing.get("path", ""))) != host_norm
            ):
                raise VolumeNameTaken(f"volume name {name} is taken by a different volume")
            if existing.get("type", "") != type:
                notes.append(f"volume {name} exists with type {existing.get('type', '')!r}; kept")
        same_path = next(
            (m for m in mounts if posixpath.normpath(str(m.get("mountPath", ""))) == mount_norm),
            None,
        )
        if same_path is not None:
            if same_path.get("name") != name:
                raise MountPathTaken(
                    f"mountPath {mount_path} is already used by volume {same_path.get('name')}"
                )
            if bool(same_path.get("readOnly", False)) != read_only:
                notes.append(f"the mount of {name} exists with readOnly={not read_only}; kept")
        if same_name is not None and same_path is not None:
            self.notes.extend(notes)
            self.notes.append(f"volume {name} is already mounted at {mount_path}")
            return
        hostpath: dict[str, object] = {"path": host_path}
        if type:
            hostpath["type"] = type
        volume: dict[str, object] = {"hostPath": hostpath, "name": name}
        mount: dict[str, object] = {"mountPath": mount_path, "name": name}
        if read_only:
            mount["readOnly"] = True
        ind = yt.detect_indents(self._body, pod.root)
        spans: list[yt.Span] = []
        expected = copy.deepcopy(pod.data)
        # The mount first: when both land after the same line, the container's key goes first.
        if same_path is None:
            target = expected["spec"]["containers"][0]
            spans += self._add_item(pod.container, "volumeMounts", mount, ind, target)
        if same_name is None:
            spans += self._add_item(pod.spec, "volumes", volume, ind, expected["spec"])
        new_text = yt.apply_spans(self._body, spans)
        new_pod = _parse_pod(new_text, self.component)
        if not yt.same(new_pod.data, expected):
            raise EditError("internal: the volume edit did not verify; file left unchanged")
        self._accept(new_text, new_pod, notes)

    def container_path_for(self, host_path: str) -> str | None:
        """Where a host path is visible inside the container, through hostPath volume mounts."""
        spec_data = self._pod.data["spec"]
        volumes = {
            v.get("name"): v for v in _list_of_dicts(spec_data.get("volumes"), "spec.volumes")
        }
        mounts = _list_of_dicts(spec_data["containers"][0].get("volumeMounts"), "volumeMounts")
        target = posixpath.normpath(host_path)
        for mount in mounts:
            hostpath = (volumes.get(mount.get("name")) or {}).get("hostPath")
            if not isinstance(hostpath, dict) or not hostpath.get("path"):
                continue
            root = posixpath.normpath(
                posixpath.join(str(hostpath["path"]), str(mount.get("subPath") or ""))
            )
            if target == root or target.startswith(root.rstrip("/") + "/"):
                rel = posixpath.relpath(target, root)
                inside = str(mount.get("mountPath", ""))
                return inside if rel == "." else posixpath.join(inside, rel)
        return None

    def has_mount_for(self, host_path: str) -> bool:
        """Whether a host path is visible in the container (prefix match on path components)."""
        return self.container_path_for(host_path) is not None

    # -- internals --

    def _spec(self, flag: str) -> FlagSpec | None:
        if not flag.startswith("--") or len(flag) < 3 or "=" in flag:
            raise EditError(f"invalid flag name {flag!r}: expected --name")
        table = self._pod.table
        if not table:
            return None
        spec = table.get(flag)
        if spec is None:
            # A flag of other versions says which version has it; one of none is unknown.
            known = fact("flag", self.component, flag) is not None
            why = missing("flag", self.component, flag, self._pod.version) if known else None
            raise EditError(why or f"unknown flag {flag} for {self.component}")
        return spec

    def _validate(self, spec: FlagSpec | None, value: str) -> None:
        if spec is not None and (problem := validate_value(spec, value)):
            raise EditError(problem)

    def _editable(self) -> _Pod:
        pod = self._pod
        for key, seq in pod.seqs.items():
            if seq.flow_style and seq.value:
                raise EditError(f"flow-style {key} lists are not supported")
        return pod

    @staticmethod
    def _line(pod: _Pod, index: int) -> int:
        return pod.node(index).start_mark.line + 1

    def _slots_of(self, occ: Occurrence, notes: list[str]) -> set[int]:
        """The argv items of one occurrence: the flag, its value item, a stray bool value."""
        pod = self._pod
        slots = {occ.index}
        if occ.style == " ":
            slots.add(occ.index + 1)
        stray = _stray_value(pod, occ)
        if stray is not None:
            slots.add(stray)
            notes.append(
                f"removed the stray item {pod.parsed_item(stray)!r} after {occ.name} "
                f"(line {self._line(pod, stray)}): a boolean flag never reads a separate value"
            )
        return slots

    def _value_edit(self, occ: Occurrence, value: str) -> dict[int, str]:
        pod = self._pod
        if occ.style == " ":
            return {occ.index + 1: value}
        head = pod.parsed_item(occ.index).partition("=")[0]
        return {occ.index: f"{head}={value}"}

    def _new_items(self, flag: str, value: str) -> list[str]:
        pod = self._pod
        styles = Counter(o.style for o in pod.parsed.occurrences if o.style in ("=", " "))
        spec = pod.table.get(flag)
        takes_value = spec is None or not spec.takes_optional_value
        if takes_value and styles[" "] > styles["="]:
            return [flag, value]
        return [f"{flag}={value}"]

    def _map_item(self, flag: str, key: str, value: str | None) -> None:
        spec = self._spec(flag)
        if spec is not None and not spec.is_map:
            raise EditError(f"{flag} is not a map flag")
        key = key.strip()
        if not key or any(ch in key for ch in ",="):
            raise EditError(f"invalid map key {key!r}")
        if value is not None and "," in value:
            raise EditError(f"invalid map value {value!r}")
        pod = self._editable()
        current = split_map(pod.parsed.values.get(flag, ""))
        occs = [o for o in pod.parsed.occurrences if o.name == flag]
        holders = [o for o in occs if key in split_map(o.value or "")]
        entry = f"{key}={value}"
        if value is None and not holders:
            self.notes.append(f"{flag} has no {key}")
            return
        if (
            value is not None
            and current.get(key) == value
            and len(holders) == 1
            and sum(1 for p in split_list(holders[0].value or "") if _part_key(p) == key) == 1
        ):
            self.notes.append(f"{flag} already has {entry}")
            return
        if not occs:
            self.set_flag(flag, entry)
            return
        expected_map = dict(current)
        if value is None:
            expected_map.pop(key)
        else:
            expected_map[key] = value
        edit = _ArgvEdit({}, set(), [])
        notes: list[str] = []
        expected = dict(pod.parsed.values)
        if not expected_map:
            for occ in occs:
                edit.delete |= self._slots_of(occ, notes)
            notes.append(f"removed {flag}: it became empty")
            del expected[flag]
            self._commit(edit, expected, notes, "")
            return
        keep_in = holders[-1] if holders and value is not None else None
        copies = sum(_part_key(p) == key for o in holders for p in (o.value or "").split(","))
        for occ in holders or [occs[-1]]:
            parts = (occ.value or "").split(",")
            if occ is keep_in:
                last = max(i for i, p in enumerate(parts) if _part_key(p) == key)
                lead = parts[last][: len(parts[last]) - len(parts[last].lstrip())]
                parts[last] = lead + entry
                parts = [p for i, p in enumerate(parts) if i == last or _part_key(p) != key]
            elif holders:
                parts = [p for p in parts if _part_key(p) != key]
            else:
                parts = _append_part(occ.value or "", entry).split(",")
            new_value = ",".join(p for p in parts if p.strip()).strip()
            if not new_value:
                edit.delete |= self._slots_of(occ, notes)
            else:
                self._validate(spec, new_value)
                edit.replace.update(self._value_edit(occ, new_value))
        if value is not None and copies > 1:
            notes.append(f"removed shadowed {key} entries of {flag}")
        expected[flag] = ",".join(f"{k}={v}" for k, v in expected_map.items())
        self._commit(edit, expected, notes, "")

    def _commit(
        self, edit: _ArgvEdit, expected: dict[str, str], notes: list[str], unchanged: str
    ) -> None:
        """Apply item-level changes to the text, verify the result, and accept it."""
        pod = self._pod
        if not (edit.replace or edit.delete or edit.insert):
            self.notes.extend(notes)
            if unchanged:
                self.notes.append(unchanged)
            return
        text = self._body
        quote = _common_quote(pod)
        spans: list[yt.Span] = []
        container = pod.data["spec"]["containers"][0]
        new_lists: dict[str, list[object]] = {key: list(container[key]) for key in pod.seqs}
        for index, new in edit.replace.items():
            node = pod.node(index)
            yt.item_prefix(text, node)
            _check_editable(node)
            spans.append(
                yt.Span(
                    node.start_mark.index,
                    node.end_mark.index,
                    yt.render_str(new, node.style or None, quote),
                )
            )
            key, item = pod.slots[index]
            new_lists[key][item] = new
        by_seq: dict[str, list[int]] = {}
        for index in edit.delete:
            key, item = pod.slots[index]
            by_seq.setdefault(key, []).append(item)
        for key, items in by_seq.items():
            seq = pod.seqs[key]
            ranges = []
            for item in items:
                node = seq.value[item]
                yt.item_prefix(text, node)
                _check_editable(node)
                ranges.append((node.start_mark.index, yt.content_end(text, node)))
            spans += yt.delete_lines(text, ranges)
            if len(items) == len(seq.value):  # an emptied list becomes `[]`, not null
                key_node = (yt.find_key(pod.container, key) or (seq, seq))[0]
                colon = yt.colon_end(text, key_node)
                spans.append(yt.Span(colon, colon, " []"))
            for item in sorted(items, reverse=True):
                del new_lists[key][item]
        if edit.insert:  # only for an absent flag: nothing else changes in the same edit
            key, anchor_item = self._insert_anchor(edit.insert[0].split("=", 1)[0])
            seq = pod.seqs[key]
            if anchor_item is None:  # `args: []`
                key_node = (yt.find_key(pod.container, key) or (seq, seq))[0]
                ind = yt.detect_indents(text, pod.root)
                spans += yt.replace_value(text, key_node, seq, edit.insert, ind)
                anchor_item = -1
            else:
                anchor = seq.value[anchor_item]
                prefix = yt.item_prefix(text, anchor)
                # Copy the quoting of a neighbouring flag (the anchor may be the binary name).
                flags = [n for n in seq.value[anchor_item:] if str(n.value).startswith("-")]
                model = anchor if str(anchor.value).startswith("-") else (flags or [anchor])[0]
                style = (model.style or None) if str(model.value).startswith("-") else None
                lines = [prefix + yt.render_str(item, style, quote) for item in edit.insert]
                spans.append(yt.insert_after_line(text, yt.content_end(text, anchor), lines))
            new_lists[key][anchor_item + 1 : anchor_item + 1] = edit.insert
        new_text = yt.apply_spans(text, spans)
        new_pod = _parse_pod(new_text, self.component)
        want = copy.deepcopy(pod.data)
        for key, items in new_lists.items():
            want["spec"]["containers"][0][key] = items
        ok = yt.same(new_pod.data, want)
        ok = ok and _normalize(self.component, new_pod.parsed.values) == _normalize(
            self.component, expected
        )
        ok = ok and set(new_pod.parsed.errors) <= set(pod.parsed.errors)
        if not ok:
            raise EditError("internal: the flag edit did not verify; file left unchanged")
        self._accept(new_text, new_pod, notes)

    def _insert_anchor(self, flag: str) -> tuple[str, int | None]:
        """Where new flag items go, in args (if used) else command: in name order when the
        flags there are sorted (as kubeadm writes them), else after the last flag."""
        pod = self._pod
        used = [key for key in ("args", "command") if key in pod.seqs and pod.seqs[key].value]
        key = used[0] if used else "args" if "args" in pod.seqs else "command"
        seq = pod.seqs[key]
        if not seq.value:
            return key, None
        last = len(seq.value) - 1
        spans: list[tuple[str, list[int]]] = []
        for occ in pod.parsed.occurrences:
            items = [
                pod.slots[slot][1] for slot in self._slots_of(occ, []) if pod.slots[slot][0] == key
            ]
            if items:
                spans.append((occ.name, items))
        flag_items = [item for _, items in spans for item in items]
        names = [name for name, _ in spans]
        if names and names == sorted(names):
            before = [max(items) for name, items in spans if name < flag]
            if before:
                return key, max(before)
            first = min(spans[0][1])
            if first > 0:
                return key, first - 1
        return key, max(flag_items, default=last)

    def _add_item(
        self,
        parent: MappingNode,
        key: str,
        item: dict[str, object],
        ind: yt.Indents,
        expected_parent: dict[str, Any],
    ) -> list[yt.Span]:
        """Spans adding `item` to the list under `key` (sorted by name when the list is)."""
        found = yt.find_key(parent, key)
        if (
            found is None
            or yt.is_null(found[1])
            or (isinstance(found[1], SequenceNode) and not found[1].value)
        ):
            expected_parent[key] = [item]
            if found is None:
                return yt.insert_key(self._body, parent, key, [item], ind)
            return yt.replace_value(self._body, found[0], found[1], [item], ind)
        seq = found[1]
        if not isinstance(seq, SequenceNode) or seq.flow_style:
            raise EditError(f"{key} must be a block list")
        names = [yt.mapping_scalar(node, "name") for node in seq.value]
        if all(isinstance(n, str) for n in names) and names == sorted(names):
            index = sum(1 for n in names if str(n) <= str(item["name"]))
        else:
            index = len(names)
        example = next(
            (n for n in seq.value if isinstance(n, MappingNode) and yt.is_block(n) and n.value),
            None,
        )
        dash = yt.dash_column(self._body, seq.value[0])
        if example is not None:
            item = yt.order_like(item, example)
            nested = yt.find_key(example, "hostPath")
            if nested is not None and yt.is_block(nested[1]) and nested[1].value:
                child = nested[1].value[0][0].start_mark.column - example.start_mark.column
                ind = yt.Indents(child, ind.seq)
                item["hostPath"] = yt.order_like(item["hostPath"], nested[1])  # type: ignore[arg-type]
        lines = yt.render_sequence([item], dash, ind)
        expected_parent[key] = [*expected_parent[key][:index], item, *expected_parent[key][index:]]
        if index == 0:
            return [yt.insert_before_line(self._body, seq.value[0].start_mark.index, lines)]
        return [
            yt.insert_after_line(
                self._body, yt.content_end(self._body, seq.value[index - 1]), lines
            )
        ]

    def _accept(self, text: str, pod: _Pod, notes: list[str]) -> None:
        self._body = text
        self._pod = pod
        self.notes.extend(notes)


@functools.lru_cache(maxsize=32)
def _parse_pod(text: str, component: str) -> _Pod:
    """The parsed pod of a manifest text. Cached: a plan parses each intermediate text once
    (a check's result is the next check's start); a `_Pod` is never modified, only replaced."""
    yt.check_line_breaks(text)
    root = yt.compose(text)
    if root is None:
        raise EditError("empty document")
    if not isinstance(root, MappingNode):
        raise EditError("not a Pod manifest: the document is not a mapping")
    kind = yt.scalar((yt.find_key(root, "kind") or (None, None))[1])
    if kind != "Pod":
        raise EditError(f"not a Pod manifest (kind: {kind or 'missing'})")
    spec = (yt.find_key(root, "spec") or (None, None))[1]
    if not isinstance(spec, MappingNode):
        raise EditError("spec is missing or not a mapping")
    containers = (yt.find_key(spec, "containers") or (None, None))[1]
    if not isinstance(containers, SequenceNode) or not containers.value:
        raise EditError("the pod has no containers")
    if len(containers.value) > 1:
        names = [str(yt.mapping_scalar(c, "name")) for c in containers.value]
        raise EditError(f"expected one container, found {len(names)}: {', '.join(names)}")
    container = containers.value[0]
    if not isinstance(container, MappingNode):
        raise EditError("the container is not a mapping")
    seqs: dict[str, SequenceNode] = {}
    for key in ("command", "args"):
        value = (yt.find_key(container, key) or (None, None))[1]
        if yt.is_null(value):
            continue
        if not isinstance(value, SequenceNode):
            raise EditError(f"{key} is not a list")
        for i, item in enumerate(value.value):
            if not isinstance(item, ScalarNode):
                raise EditError(f"{key} item {i + 1} is not a string")
        seqs[key] = value
    if not seqs:
        raise EditError("the container has neither command nor args")
    slots: list[tuple[str, int]] = []
    if "command" in seqs:
        command = seqs["command"].value
        if command and posixpath.basename(command[0].value) in _SHELLS:
            raise EditError("shell-wrapped command lines are not supported")
        slots += [("command", i) for i in range(1, len(command))]
    if "args" in seqs:
        slots += [("args", i) for i in range(len(seqs["args"].value))]
    argv = [seqs[key].value[i].value for key, i in slots]
    image = yt.mapping_scalar(container, "image")
    version = image_version(component, image) if image else None
    table = flag_table_at(component, version)
    parsed = parse_args(component, argv, table)
    # Built from the tree already composed (one parse, not two), unless a merge key is there:
    # constructing one rewrites the tree whose positions the edits use.
    data = yt.load(text) if "<<" in text else yt.construct(root)
    return _Pod(root, spec, container, seqs, tuple(slots), parsed, data, table, version)


def _stray_value(pod: _Pod, occ: Occurrence) -> int | None:
    """The item after a bare boolean that reads like its value (`--anonymous-auth`, `false`)."""
    after = occ.index + 1
    if occ.style != "bare" or after >= len(pod.slots):
        return None
    value = pod.parsed_item(after)
    return after if not value.startswith("-") and parse_bool(value) is not None else None


def _check_editable(node: ScalarNode) -> None:
    if node.style in ("|", ">"):
        raise EditError(
            f"block scalars in command lists are not supported (line {node.start_mark.line + 1})"
        )


def _common_quote(pod: _Pod) -> str:
    """The quote the file uses most in command/args (double quotes when it uses none)."""
    styles = Counter(
        item.style for seq in pod.seqs.values() for item in seq.value if item.style in ("'", '"')
    )
    return styles.most_common(1)[0][0] if styles else '"'


def _normalize(component: str, values: dict[str, str]) -> dict[str, object]:
    """Effective flags compared by meaning: list flags element-wise, map flags by key."""
    table = flag_table(component)
    out: dict[str, object] = {}
    for name, value in values.items():
        spec = table.get(name)
        if spec is not None and spec.is_list:
            out[name] = split_list(value)
        elif spec is not None and spec.is_map:
            out[name] = split_map(value)
        else:
            out[name] = value
    return out


def _accumulates(spec: FlagSpec | None) -> bool:
    return spec is not None and (spec.is_list or spec.is_map)


def _element(item: str) -> str:
    item = item.strip()
    if not item or "," in item:
        raise EditError(f"invalid list element {item!r}")
    return item


def _append_part(raw: str, part: str) -> str:
    if not raw.strip():
        return part
    sep = ", " if ", " in raw else ","
    return raw.rstrip().rstrip(",") + sep + part


def _part_key(part: str) -> str:
    return part.partition("=")[0].strip()


def _list_of_dicts(value: object, what: str) -> list[dict[str, Any]]:
    if value is None:
        return []
    if not isinstance(value, list):
        raise EditError(f"{what} is not a list")
    return [item for item in value if isinstance(item, dict)]


# --- kubelet config ----------------------------------------------------------------------------


class KubeletConfig(_Editor):
    """A KubeletConfiguration being edited by dotted key (`authentication.anonymous.enabled`)."""

    def __init__(self, text: str) -> None:
        super().__init__(text)
        self._root, self._data = _parse_kubelet(self._body)

    def get(self, dotted: str) -> object | None:
        node: object = self._data
        for part in _path(dotted):
            if not isinstance(node, dict) or part not in node:
                return None
            node = node[part]
        return copy.deepcopy(node)

    def set(self, dotted: str, value: object) -> None:
        """Set a key, creating intermediate mappings; new keys go in sorted position if sorted."""
        parts = _path(dotted)
        _check_value(value)
        text, ind = self._body, yt.detect_indents(self._body, self._root)
        mapping: MappingNode = self._root
        for depth, part in enumerate(parts):
            rest: object = value
            for later in reversed(parts[depth + 1 :]):
                rest = {later: rest}
            found = yt.find_key(mapping, part)
            if found is None:
                spans = yt.insert_key(text, mapping, part, rest, ind)
                break
            key, node = found
            if depth == len(parts) - 1:
                if yt.same(self.get(dotted), _plain(value)):
                    self.notes.append(f"{dotted} is already {_show(value)}")
                    return
                spans = yt.replace_value(text, key, node, rest, ind)
                break
            if isinstance(node, MappingNode) and yt.is_block(node) and node.value:
                mapping = node
                continue
            if yt.is_null(node) or (isinstance(node, MappingNode) and not node.value):
                spans = yt.replace_value(text, key, node, rest, ind)
                break
            raise EditError(f"{'.'.join(parts[: depth + 1])} is not a block mapping")
        expected = copy.deepcopy(self._data)
        target = expected
        for part in parts[:-1]:
            if not isinstance(target.get(part), dict):
                target[part] = {}
            target = target[part]
        target[parts[-1]] = copy.deepcopy(_plain(value))
        self._commit(yt.apply_spans(text, spans), expected)

    def remove(self, dotted: str) -> None:
        """Remove a key; a mapping left empty becomes `{}`."""
        parts = _path(dotted)
        if not self._has(parts):
            self.notes.append(f"{dotted} is not set")
            return
        chain: list[tuple[Node, Node]] = []
        mapping: MappingNode = self._root
        for part in parts:
            found = yt.find_key(mapping, part)
            assert found is not None
            chain.append(found)
            if isinstance(found[1], MappingNode):
                mapping = found[1]
        key, value = chain[-1]
        parent_mapping = chain[-2][1] if len(chain) > 1 else self._root
        assert isinstance(parent_mapping, MappingNode)
        if len(parent_mapping.value) > 1:
            spans = yt.remove_key_lines(self._body, key, value)
        elif len(chain) > 1:
            parent_key = chain[-2][0]
            spans = yt.replace_value(self._body, parent_key, parent_mapping, {}, yt.Indents())
        else:
            raise EditError("cannot remove the only key of the document")
        expected = copy.deepcopy(self._data)
        target = expected
        for part in parts[:-1]:
            target = target[part]
        del target[parts[-1]]
        self._commit(yt.apply_spans(self._body, spans), expected)

    def _has(self, parts: list[str]) -> bool:
        node: object = self._data
        for part in parts:
            if not isinstance(node, dict) or part not in node:
                return False
            node = node[part]
        return True

    def _commit(self, text: str, expected: dict[str, Any]) -> None:
        root, data = _parse_kubelet(text)
        if not yt.same(data, expected):
            raise EditError("internal: the kubelet config edit did not verify; file left unchanged")
        self._body, self._root, self._data = text, root, data


def _parse_kubelet(text: str) -> tuple[MappingNode, dict[str, Any]]:
    yt.check_line_breaks(text)
    root = yt.compose(text)
    if root is None:
        raise EditError("empty document")
    if not isinstance(root, MappingNode) or not yt.is_block(root) or not root.value:
        raise EditError("not a KubeletConfiguration: the document is not a block mapping")
    data = yt.load(text)
    if data.get("kind") != "KubeletConfiguration":
        raise EditError(f"not a KubeletConfiguration (kind: {data.get('kind') or 'missing'})")
    return root, data


def _path(dotted: str) -> list[str]:
    parts = dotted.split(".")
    if not all(parts):
        raise EditError(f"invalid key path {dotted!r}")
    return parts


def _check_value(value: object) -> None:
    if isinstance(value, dict):
        for key, child in value.items():
            if not isinstance(key, str) or not key:
                raise EditError(f"invalid key {key!r}")
            _check_value(child)
    elif isinstance(value, (list, tuple)):
        for child in value:
            _check_value(child)
    elif value is not None and not isinstance(value, (bool, int, float, str)):
        raise EditError(f"unsupported value type {type(value).__name__}")


def _plain(value: object) -> object:
    if isinstance(value, tuple):
        return [_plain(v) for v in value]
    if isinstance(value, list):
        return [_plain(v) for v in value]
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    return value


def _show(value: object) -> str:
    return yt.render_scalar(value) if not isinstance(value, (dict, list, tuple)) else repr(value)
