"""The names of the kubeadm patch files cis-tui owns (`[persist] mode = "patches"`): one per
target, sorted after the admin's own so that kubeadm applies them last (`~` sorts after letters
and digits), e.g. `kube-apiserver~cis-tui+json.json`."""

from __future__ import annotations

import re

#: The pseudo ConfigMap name a patch-file change and its backups carry.
PATCHES = "kubeadm-patches"
SUFFIX = "~cis-tui"
POD_TARGETS = ("kube-apiserver", "kube-controller-manager", "kube-scheduler", "etcd")
KUBELET_TARGET = "kubeletconfiguration"
_FILE = re.compile(
    rf"({'|'.join(map(re.escape, (*POD_TARGETS, KUBELET_TARGET)))}){re.escape(SUFFIX)}"
    r"\+(json\.json|strategic\.yaml)"
)


def file_name(target: str) -> str:
    """The file cis-tui keeps its patch for `target` (a component, or the kubelet) in."""
    if target == "kubelet":
        return f"{KUBELET_TARGET}{SUFFIX}+strategic.yaml"
    return f"{target}{SUFFIX}+json.json"


def is_own_file(name: str) -> bool:
    return _FILE.fullmatch(name) is not None
