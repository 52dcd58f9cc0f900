"""A change to one of kubeadm's stored configurations that makes a planned fix survive
`kubeadm upgrade`: what the plan shows, what the engine writes (re-applied to the text it finds,
so a concurrent update is merged, not overwritten), and what a rollback restores."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from cis_tui.persist.mirror import ManifestMirror, apply_kubelet, apply_mirrors
from cis_tui.persist.patchfiles import PodPatch, edit_kubelet_patch
from cis_tui.remediate.edits import unified_diff

NAMESPACE = "kube-system"
#: (ConfigMap, data key) kubeadm stores each configuration in.
CLUSTER_CONFIGURATION = ("kubeadm-config", "ClusterConfiguration")
KUBELET_CONFIGURATION = ("kubelet-config", "kubelet")


@dataclass(frozen=True)
class ConfigMapChange:
    """One ConfigMap data key as a fix changes it; `old_text`/`new_text` as planned."""

    name: str
    key: str
    old_text: str
    new_text: str
    mirror: ManifestMirror | None = None  # a manifest fix: the extraArgs and extraVolumes
    kubelet_fields: tuple[tuple[str, object], ...] = ()  # a kubelet fix: the fields
    #: `[persist] mode = "patches"`: `key` is cis-tui's patch file in this directory
    #: (cis_tui.persist.patchfiles.PatchDirectory), not a ConfigMap's data key.
    directory: Path | None = None
    pod_patch: PodPatch | None = None  # a manifest fix, as that patch carries it

    @property
    def label(self) -> str:
        """`configmap kube-system/kubeadm-config ClusterConfiguration` or the patch file's
        path: how plans and backups name it."""
        if self.directory is not None:
            return str(self.directory / self.key)
        return f"configmap {NAMESPACE}/{self.name} {self.key}"

    def edit(self, text: str) -> str:
        """The same change made to `text` (the ConfigMap as found when writing)."""
        if self.pod_patch is not None:
            return self.pod_patch.edit(text)
        if self.directory is not None:
            return edit_kubelet_patch(text, dict(self.kubelet_fields))
        if self.mirror is not None:
            return apply_mirrors(text, [self.mirror])
        return apply_kubelet(text, dict(self.kubelet_fields))

    @property
    def diff(self) -> str:
        return unified_diff(self.old_text, self.new_text, self.label)


def kubelet_fields(fields: Mapping[str, object]) -> tuple[tuple[str, object], ...]:
    return tuple(sorted(fields.items()))
