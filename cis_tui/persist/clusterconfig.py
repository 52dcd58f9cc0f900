"""Edit the YAML text of kubeadm's stored configurations: the ClusterConfiguration in
kube-system/kubeadm-config (data.ClusterConfiguration) and the KubeletConfiguration in
kube-system/kubelet-config (data.kubelet).

ruamel.yaml composes the text and says where each node lies; an edit rewrites only the lines it
owns (`cis_tui.remediate.yamltext`), so every other byte of the ConfigMap stays as kubeadm or the
user wrote it, and new text follows kubeadm's layout (sorted keys, block style, two-space indent,
sequences not indented under their key, numbers and booleans quoted as strings). Every edit is
checked by parsing the result again: it must equal the old document with exactly that change.
"""

from __future__ import annotations

import copy
import re
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from ruamel.yaml.nodes import MappingNode, Node, SequenceNode

from cis_tui.remediate import yamltext as yt
from cis_tui.remediate.edits import HOST_PATH_TYPES, KubeletConfig
from cis_tui.remediate.yamltext import EditError

__all__ = [
    "COMPONENT_KEYS",
    "SUPPORTED_API_VERSIONS",
    "V1BETA3",
    "V1BETA4",
    "ClusterConfigText",
    "ConfigEditError",
    "ExtraVolume",
    "KubeletConfigText",
]

V1BETA3 = "kubeadm.k8s.io/v1beta3"  # extraArgs: a map of name -> value
V1BETA4 = "kubeadm.k8s.io/v1beta4"  # extraArgs: a list of {name, value}, duplicates allowed
SUPPORTED_API_VERSIONS = (V1BETA3, V1BETA4)

#: Where each component's extraArgs (and extraVolumes) live in a ClusterConfiguration.
COMPONENT_KEYS: dict[str, tuple[str, ...]] = {
    "kube-apiserver": ("apiServer",),
    "kube-controller-manager": ("controllerManager",),
    "kube-scheduler": ("scheduler",),
    "etcd": ("etcd", "local"),
}

PATH_TYPES = HOST_PATH_TYPES  # core/v1 HostPathType values ("" = no check)
_DNS_LABEL = re.compile(r"[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?")

_CLUSTER = "ClusterConfiguration"
_KUBELET = "KubeletConfiguration"

Part = str | int  # a mapping key, or an index into a sequence that exists


class ConfigEditError(Exception):
    """A stored configuration that cannot be read or edited safely (one line, naming it)."""


@dataclass(frozen=True)
class ExtraVolume:
    """One extraVolumes entry (kubeadm's HostPathMount): a hostPath volume and its mount."""

    name: str
    host_path: str
    mount_path: str
    read_only: bool = False
    path_type: str = ""

    def as_yaml(self) -> dict[str, object]:
        """The entry as kubeadm serialises it: sorted keys, empty fields left out."""
        item: dict[str, object] = {
            "hostPath": self.host_path,
            "mountPath": self.mount_path,
            "name": self.name,
        }
        if self.path_type:
            item["pathType"] = self.path_type
        if self.read_only:
            item["readOnly"] = True
        return item


class ClusterConfigText:
    """A kubeadm ClusterConfiguration (v1beta3 or v1beta4) being edited, component by component.

    The apiVersion found is kept: kubeadm converts on its next upload, cis-tui never does.
    """

    def __init__(self, text: str) -> None:
        self._text = text
        self._root, self._data = _parse_cluster(text)
        self.api_version: str = self._data["apiVersion"]

    def text(self) -> str:
        return self._text

    # -- extraArgs --

    def extra_args(self, component: str) -> list[tuple[str, str]]:
        """The component's extraArgs as (name without `--`, value), in document order."""
        args = _get(self._data, [*_keys(component), "extraArgs"])
        if not args:
            return []
        if isinstance(args, dict):
            return [(str(name), str(value)) for name, value in args.items()]
        return [(str(entry["name"]), str(entry.get("value", ""))) for entry in args]

    def set_arg(self, component: str, name: str, value: str) -> None:
        """Give flag `name` the value `value`: a map key (v1beta3), or the value of the last
        entry of that name else a new entry at the end (v1beta4). Sections are created."""
        name = _arg_name(name)
        where = [*self._parts(component), "extraArgs"]
        args = _get(self._data, where)
        with _errors(_CLUSTER):
            if self.api_version == V1BETA3:
                if not args or args.get(name) != value:
                    self._put([*where, name], value)
                return
            item = {"name": name, "value": value}
            index = [i for i, entry in enumerate(args or []) if entry.get("name") == name]
            if index and args[index[-1]].get("value", "") == value:
                return
            if index:
                self._put([*where, index[-1], "value"], value)
            elif args:
                self._append(where, item)
            else:
                self._put(where, [item])

    def remove_arg(self, component: str, name: str) -> bool:
        """Remove every extraArgs entry for flag `name`; False when there was none."""
        name = _arg_name(name)
        where = [*_keys(component), "extraArgs"]
        args = _get(self._data, where)
        if isinstance(args, dict):
            index = [i for i, key in enumerate(args) if key == name]
        else:
            index = [i for i, entry in enumerate(args or []) if entry.get("name") == name]
        if not index:
            return False
        with _errors(_CLUSTER):
            if len(index) == len(args):
                self._delete(where)
            else:
                self._drop_items(where, index)
        return True

    # -- extraVolumes --

    def extra_volumes(self, component: str) -> list[ExtraVolume]:
        """The component's extraVolumes in document order (etcd has none)."""
        if component == "etcd":
            _keys(component)
            return []
        volumes = _get(self._data, [*_keys(component), "extraVolumes"]) or []
        return [_volume(entry) for entry in volumes]

    def add_volume(self, component: str, volume: ExtraVolume) -> None:
        """Add `volume` to the component's extraVolumes at the end, or replace the entry of the
        same name (kubeadm keys them by name, the last one wins)."""
        if component == "etcd":
            raise ConfigEditError(
                f"{_CLUSTER}: etcd.local has no extraVolumes; volume {volume.name} cannot be "
                "added to local etcd through the ClusterConfiguration"
            )
        _check_volume(volume)
        where = [*self._parts(component), "extraVolumes"]
        volumes = _get(self._data, where) or []
        item = volume.as_yaml()
        index = [i for i, entry in enumerate(volumes) if entry.get("name") == volume.name]
        with _errors(_CLUSTER):
            if index:
                if volumes[index[-1]] == item and len(index) == 1:
                    return
                self._replace_item(where, index[-1], item, drop=index[:-1])
            elif volumes:
                self._append(where, item)
            else:
                self._put(where, [item])

    # -- internals --

    def _parts(self, component: str) -> list[Part]:
        """The keys of a component's section, refusing external etcd (no local extraArgs)."""
        keys = _keys(component)
        if component == "etcd" and _get(self._data, ["etcd", "external"]) is not None:
            raise ConfigEditError(
                f"{_CLUSTER}: etcd is external; etcd.local.extraArgs do not reach it"
            )
        return list(keys)

    def _put(self, parts: list[Part], value: object) -> None:
        """Set the value at `parts`, creating missing mappings in sorted position."""
        text, ind = self._text, yt.detect_indents(self._text, self._root)
        node: Node = self._root
        data: Any = self._data
        spans: list[yt.Span] = []
        for depth, part in enumerate(parts):
            if isinstance(part, int):  # an existing item of a block sequence
                assert isinstance(node, SequenceNode)
                node, data = node.value[part], data[part]
                if not (isinstance(node, MappingNode) and yt.is_block(node) and node.value):
                    raise ConfigEditError(
                        f"{_CLUSTER}: {_dotted(parts[: depth + 1])} is not a block mapping"
                    )
                continue
            assert isinstance(node, MappingNode)
            found = yt.find_key(node, part)
            if found is None:
                spans = yt.insert_key(text, node, part, _nest(parts[depth + 1 :], value), ind)
                break
            key, child = found
            last = depth == len(parts) - 1
            empty = yt.is_null(child) or (
                isinstance(child, (MappingNode, SequenceNode)) and not child.value
            )
            if last or empty:
                spans = yt.replace_value(text, key, child, _nest(parts[depth + 1 :], value), ind)
                break
            if isinstance(child, (MappingNode, SequenceNode)) and not yt.is_block(child):
                # A flow collection cannot take a line of its own: rewrite it in block style.
                merged = copy.deepcopy(data[part])
                _assign(merged, parts[depth + 1 :], value)
                spans = yt.replace_value(text, key, child, merged, ind)
                break
            if not isinstance(child, (MappingNode, SequenceNode)):
                raise ConfigEditError(f"{_CLUSTER}: {_dotted(parts[: depth + 1])} is not a mapping")
            node, data = child, data[part]
        expected = copy.deepcopy(self._data)
        _assign(expected, parts, value)
        self._commit(yt.apply_spans(text, spans), expected)

    def _append(self, parts: list[Part], item: dict[str, object]) -> None:
        """Add `item` after the last item of the non-empty list at `parts`."""
        seq = self._sequence(parts)
        if seq is None:
            self._put(parts, [*_get(self._data, parts), item])
            return
        text = self._text
        lines = yt.render_sequence(
            [self._like(seq, item)],
            yt.dash_column(text, seq.value[0]),
            yt.detect_indents(text, self._root),
        )
        spans = [yt.insert_after_line(text, yt.content_end(text, seq.value[-1]), lines)]
        expected = copy.deepcopy(self._data)
        _get(expected, parts).append(item)
        self._commit(yt.apply_spans(text, spans), expected)

    def _replace_item(
        self, parts: list[Part], index: int, item: dict[str, object], drop: list[int]
    ) -> None:
        """Put `item` in place of the list item at `index`, removing the items in `drop`."""
        items = list(_get(self._data, parts))
        new_items = [item if i == index else old for i, old in enumerate(items) if i not in drop]
        seq = self._sequence(parts)
        if seq is None:
            self._put(parts, new_items)
            return
        text = self._text
        node = seq.value[index]
        yt.item_prefix(text, node)  # refuses layouts the line arithmetic below cannot handle
        lines = yt.render_sequence(
            [self._like(seq, item)], yt.dash_column(text, node), yt.detect_indents(text, self._root)
        )
        start = yt.line_start(text, node.start_mark.index)
        end = yt.line_end(text, yt.content_end(text, node))
        spans = [yt.Span(start, end, yt.eol(text).join(lines))]
        spans += self._item_lines(seq, drop)
        expected = copy.deepcopy(self._data)
        _assign(expected, parts, new_items)
        self._commit(yt.apply_spans(text, spans), expected)

    def _drop_items(self, parts: list[Part], index: list[int]) -> None:
        """Remove some (not all) items of a list, or keys of a map, at `parts`."""
        old = _get(self._data, parts)
        if isinstance(old, dict):
            keep: Any = {k: v for i, (k, v) in enumerate(old.items()) if i not in index}
        else:
            keep = [v for i, v in enumerate(old) if i not in index]
        container = self._node(parts)
        if not yt.is_block(container):
            self._put(parts, keep)
            return
        if isinstance(container, MappingNode):
            spans: list[yt.Span] = []
            for i in index:
                spans += yt.remove_key_lines(self._text, *container.value[i])
        else:
            assert isinstance(container, SequenceNode)
            spans = self._item_lines(container, index)
        expected = copy.deepcopy(self._data)
        _assign(expected, parts, keep)
        self._commit(yt.apply_spans(self._text, spans), expected)

    def _delete(self, parts: list[Part]) -> None:
        """Remove the key at `parts`; a section left empty becomes `{}` as kubeadm writes it."""
        parent_parts, last = parts[:-1], parts[-1]
        parent = self._node(parent_parts)
        assert isinstance(parent, MappingNode) and isinstance(last, str)
        parent_data = _get(self._data, parent_parts)
        if not parent_parts and len(parent_data) == 1:
            raise ConfigEditError(f"{_CLUSTER}: cannot remove the only key of the document")
        if len(parent_data) == 1:
            self._put(parent_parts, {})
            return
        if not yt.is_block(parent):
            self._put(parent_parts, {k: v for k, v in parent_data.items() if k != last})
            return
        found = yt.find_key(parent, last)
        assert found is not None
        expected = copy.deepcopy(self._data)
        del _get(expected, parent_parts)[last]
        self._commit(yt.apply_spans(self._text, yt.remove_key_lines(self._text, *found)), expected)

    def _item_lines(self, seq: SequenceNode, index: list[int]) -> list[yt.Span]:
        ranges = []
        for i in index:
            node = seq.value[i]
            yt.item_prefix(self._text, node)
            ranges.append((node.start_mark.index, yt.content_end(self._text, node)))
        return yt.delete_lines(self._text, ranges)

    def _node(self, parts: list[Part]) -> Node:
        node: Node = self._root
        for part in parts:
            if isinstance(part, int):
                assert isinstance(node, SequenceNode)
                node = node.value[part]
            else:
                assert isinstance(node, MappingNode)
                found = yt.find_key(node, part)
                assert found is not None
                node = found[1]
        return node

    def _sequence(self, parts: list[Part]) -> SequenceNode | None:
        """The block sequence at `parts`; None when it is written in flow style."""
        node = self._node(parts)
        assert isinstance(node, SequenceNode) and node.value
        return node if yt.is_block(node) else None

    def _like(self, seq: SequenceNode, item: dict[str, object]) -> dict[str, object]:
        """`item` with its keys in the order the list's existing entries use."""
        example = next(
            (n for n in seq.value if isinstance(n, MappingNode) and yt.is_block(n) and n.value),
            None,
        )
        return yt.order_like(item, example) if example is not None else item

    def _commit(self, text: str, expected: dict[str, Any]) -> None:
        root, data = _parse_cluster(text)
        if not yt.same(data, expected):
            raise ConfigEditError(
                f"{_CLUSTER}: internal: the edit did not verify; text left unchanged"
            )
        self._text, self._root, self._data = text, root, data


class KubeletConfigText:
    """A KubeletConfiguration being edited by dotted key (`authentication.anonymous.enabled`)."""

    def __init__(self, text: str) -> None:
        with _errors(_KUBELET):
            self._editor = KubeletConfig(text)

    def get(self, dotted: str) -> object | None:
        with _errors(_KUBELET):
            return self._editor.get(dotted)

    def set(self, dotted: str, value: object) -> None:
        """Set a field, creating intermediate mappings in sorted position (no-op when equal)."""
        with _errors(_KUBELET):
            self._editor.set(dotted, value)

    def text(self) -> str:
        return self._editor.text


@contextmanager
def _errors(what: str) -> Iterator[None]:
    """Turn the text editor's EditError into a ConfigEditError naming the document."""
    try:
        yield
    except EditError as exc:
        raise ConfigEditError(f"{what}: {exc}") from None


# --- parsing and validation --------------------------------------------------------------------


def _parse_cluster(text: str) -> tuple[MappingNode, dict[str, Any]]:
    with _errors(_CLUSTER):
        yt.check_line_breaks(text)
        root = yt.compose(text)
        data = yt.construct(root) if root is not None else None
    if root is None:
        raise ConfigEditError(f"{_CLUSTER}: empty document")
    if not isinstance(root, MappingNode) or not yt.is_block(root) or not isinstance(data, dict):
        raise ConfigEditError(f"{_CLUSTER}: the document is not a YAML block mapping")
    kind = data.get("kind")
    if kind != _CLUSTER:
        raise ConfigEditError(
            f"{_CLUSTER}: the document is kind {kind or '(missing)'}, not {_CLUSTER}"
        )
    api = data.get("apiVersion")
    if api not in SUPPORTED_API_VERSIONS:
        raise ConfigEditError(
            f"{_CLUSTER}: apiVersion {api or '(missing)'} is not supported "
            f"(only {V1BETA3} and {V1BETA4})"
        )
    for keys in COMPONENT_KEYS.values():
        _check_section(data, list(keys), api)
    return root, data


def _check_section(data: dict[str, Any], keys: list[Part], api: str) -> None:
    """Refuse a component section kubeadm itself could not decode."""
    for depth in range(1, len(keys) + 1):
        found = _get(data, keys[:depth])
        if found is not None and not isinstance(found, dict):
            raise ConfigEditError(f"{_CLUSTER}: {_dotted(keys[:depth])} is not a mapping")
    where = _dotted([*keys, "extraArgs"])
    args = _get(data, [*keys, "extraArgs"])
    if api == V1BETA3 and args is not None:
        if not isinstance(args, dict):
            raise ConfigEditError(
                f"{_CLUSTER}: {where} must be a map of flag: value in {api}, not a {_shape(args)}"
            )
        for name, value in args.items():
            if not isinstance(value, str):
                raise ConfigEditError(f"{_CLUSTER}: {where}.{name} is not a string")
    if api == V1BETA4 and args is not None:
        if not isinstance(args, list):
            raise ConfigEditError(
                f"{_CLUSTER}: {where} must be a list of name/value entries in {api}, not a "
                f"{_shape(args)}"
            )
        for i, entry in enumerate(args):
            if (
                not isinstance(entry, dict)
                or not isinstance(entry.get("name"), str)
                or not isinstance(entry.get("value", ""), str)
            ):
                raise ConfigEditError(
                    f"{_CLUSTER}: {where} item {i + 1} is not a name/value pair of strings"
                )
    volumes = _get(data, [*keys, "extraVolumes"])
    if volumes is not None and keys != ["etcd", "local"]:
        label = _dotted([*keys, "extraVolumes"])
        if not isinstance(volumes, list) or not all(
            isinstance(v, dict) and isinstance(v.get("name"), str) for v in volumes
        ):
            raise ConfigEditError(f"{_CLUSTER}: {label} must be a list of named volumes")


def _shape(value: object) -> str:
    return {dict: "map", list: "list"}.get(type(value), type(value).__name__)


def _keys(component: str) -> tuple[str, ...]:
    try:
        return COMPONENT_KEYS[component]
    except KeyError:
        raise ConfigEditError(f"{_CLUSTER}: no section for component {component!r}") from None


def _arg_name(name: str) -> str:
    """The flag name as extraArgs hold it: without the leading `--`."""
    bare = name[2:] if name.startswith("--") else name
    if not bare or bare.startswith("-") or "=" in bare or any(c.isspace() for c in bare):
        raise ConfigEditError(f"{_CLUSTER}: invalid flag name {name!r}")
    return bare


def _check_volume(volume: ExtraVolume) -> None:
    if not _DNS_LABEL.fullmatch(volume.name):
        raise ConfigEditError(f"{_CLUSTER}: invalid volume name {volume.name!r}")
    for label, path in (("hostPath", volume.host_path), ("mountPath", volume.mount_path)):
        if not path.startswith("/") or "\n" in path:
            raise ConfigEditError(f"{_CLUSTER}: volume {volume.name}: {label} must be absolute")
    if volume.path_type not in PATH_TYPES:
        raise ConfigEditError(
            f"{_CLUSTER}: volume {volume.name}: invalid pathType {volume.path_type!r}"
        )


def _volume(entry: dict[str, Any]) -> ExtraVolume:
    return ExtraVolume(
        name=str(entry.get("name", "")),
        host_path=str(entry.get("hostPath", "")),
        mount_path=str(entry.get("mountPath", "")),
        read_only=entry.get("readOnly") is True,
        path_type=str(entry.get("pathType") or ""),
    )


# --- plain data helpers ------------------------------------------------------------------------


def _get(data: Any, parts: list[Part]) -> Any:
    """The value at `parts`; None when a step is missing."""
    for part in parts:
        if isinstance(part, int):
            if not isinstance(data, list) or part >= len(data):
                return None
        elif not isinstance(data, dict) or part not in data:
            return None
        data = data[part]
    return data


def _assign(data: Any, parts: list[Part], value: object) -> None:
    """Set the value at `parts` in plain data, replacing missing or null steps with maps."""
    for part in parts[:-1]:
        if isinstance(part, str) and not isinstance(data.get(part), (dict, list)):
            data[part] = {}
        data = data[part]
    data[parts[-1]] = copy.deepcopy(value)


def _nest(parts: list[Part], value: object) -> object:
    """`value` under the (new) mapping keys `parts`."""
    for part in reversed(parts):
        assert isinstance(part, str), "only existing list items are addressed by index"
        value = {part: value}
    return value


def _dotted(parts: list[Part]) -> str:
    """`apiServer.extraArgs[0].value`: a path as the user sees it in messages."""
    out = ""
    for part in parts:
        out += f"[{part}]" if isinstance(part, int) else f".{part}" if out else part
    return out
