"""Files in the manifests directory that the kubelet runs but that are not the components' own.

The kubelet runs every regular, non-hidden file of its static pod directory as a pod, whatever
its name: `kube-apiserver.yaml.bak`, left by `cp` before an edit, is a second API server pod,
and the copy's spec may be the one that runs (kubeadm#2823, kubernetes#136962). Hidden files
(a leading dot, like cis-tui's own temporary files) are ignored by the kubelet and here.
"""

from __future__ import annotations

import os
import shlex
import stat
from dataclasses import dataclass
from enum import Enum
from pathlib import Path
from typing import TYPE_CHECKING

from cis_tui import safeyaml
from cis_tui.layout import COMPONENTS, Layout

if TYPE_CHECKING:
    from cis_tui.audit.node import Manifest

#: Name endings editors, package managers and admins leave behind.
LEFTOVER_SUFFIXES = (
    ".bak", ".backup", ".old", ".orig", ".save", ".sav", ".tmp", ".swp", ".swo", "~",
    ".dpkg-old", ".dpkg-dist", ".dpkg-new", ".rpmnew", ".rpmsave", ".ucf-old", ".copy",
)  # fmt: skip
#: Larger files are not parsed to find out what they run.
PARSE_LIMIT = 1 << 20


class StrayKind(str, Enum):
    COPY = "second-pod"  # runs a control-plane component a second time
    LEFTOVER = "leftover"  # a backup or editor file the kubelet tries to run
    EXTRA = "extra-pod"  # another static pod (kube-vip, haproxy …): not judged, only listed
    REFUSED = "refused-pod"  # a component's own manifest the kubelet will not run


@dataclass(frozen=True)
class StrayFile:
    """A file the kubelet runs from the manifests directory besides the components' own."""

    path: Path
    kind: StrayKind
    component: str | None  # the control-plane binary its container runs, if any
    message: str
    remedy: str

    @property
    def serious(self) -> bool:
        """A second component pod or a leftover is a defect; another static pod is not."""
        return self.kind is not StrayKind.EXTRA

    def to_dict(self, shown: str) -> dict[str, object]:
        return {
            "path": shown,
            "kind": self.kind.value,
            "component": self.component,
            "message": self.message,
            "remedy": self.remedy,
        }


def _runs(path: Path) -> str | None:
    """The control-plane component the pod in `path` runs, by its container's binary."""
    try:
        if path.stat().st_size > PARSE_LIMIT:
            return None
        doc = safeyaml.load(path.read_text(encoding="utf-8", errors="replace"))
    except Exception:  # unreadable, not YAML, a bomb: not a pod we can name
        return None
    spec = doc.get("spec") if isinstance(doc, dict) else None
    containers = spec.get("containers") if isinstance(spec, dict) else None
    for container in containers if isinstance(containers, list) else []:
        if not isinstance(container, dict):
            continue
        command = container.get("command")
        if isinstance(command, list) and command and isinstance(command[0], str):
            binary = os.path.basename(command[0])
            if binary in COMPONENTS:
                return binary
    return None


def find_strays(layout: Layout) -> list[StrayFile]:
    """Every file besides the components' manifests that the kubelet would run, by name."""
    directory = layout.manifests_dir
    own = set(layout.manifest_names.values())
    try:
        entries = sorted(directory.iterdir())
    except OSError:
        return []  # an unreadable directory is reported by the manifest checks themselves
    found = []
    for path in entries:
        if path.name.startswith(".") or path.name in own:
            continue
        try:
            if not stat.S_ISREG(path.stat().st_mode):
                continue  # the kubelet skips directories and the like
        except OSError:
            continue
        component = _runs(path)
        leftover = path.name.endswith(LEFTOVER_SUFFIXES)
        # Its parent is outside the kubelet's view and on the same filesystem.
        away = layout.node_path(directory.parent)
        move = f"mv {shlex.quote(layout.node_path(path))} {shlex.quote(away)}/"
        if component is not None:
            kind = StrayKind.COPY
            message = (
                f"the kubelet runs this file as a second {component} pod beside "
                f"{layout.manifest_names.get(component, component)}; either may be the one "
                "that runs"
            )
            remedy = (
                f"compare it with the real manifest, then move it out of the directory (do not "
                f"edit it in place): {move}"
            )
        elif leftover:
            kind = StrayKind.LEFTOVER
            message = "a backup or editor leftover: the kubelet tries to run every file here"
            remedy = f"move it out of the manifests directory: {move}"
        else:
            kind = StrayKind.EXTRA
            message = "another static pod (not a control-plane component; not judged here)"
            remedy = "nothing to do if it is meant to run (kube-vip, haproxy, keepalived …)"
        found.append(StrayFile(path, kind, component, message, remedy))
    return found


def refused_pod(manifest: Manifest) -> StrayFile:
    """A component's own manifest that the kubelet refuses to run: the component is down
    whatever its flags say (they are still judged: they are what would run once it is fixed)."""
    first = manifest.refused[0]
    more = f" (and {len(manifest.refused) - 1} more)" if len(manifest.refused) > 1 else ""
    return StrayFile(
        manifest.path,
        StrayKind.REFUSED,
        manifest.component,
        f"the kubelet refuses to run this pod: {first}{more}; {manifest.component} is not "
        "started from it",
        "fix the manifest by hand (cis-tui plans no change to it until the kubelet accepts it)",
    )
