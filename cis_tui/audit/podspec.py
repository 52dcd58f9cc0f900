"""What makes the kubelet refuse a static pod before it runs it.

The kubelet validates every static pod like the API server validates a Pod
(`ValidatePodCreate`); a pod that fails is logged and never started, so the component is down
whatever its flags say. These are the rules a hand-edited control-plane manifest breaks: a
volume without a name, two volumes or mounts with one name or path, a mount of a volume the pod
does not define. Stdlib only.
"""

from __future__ import annotations

import re
from typing import Any

#: RFC 1123 label, as Kubernetes validates volume and container names.
_DNS_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
_SOURCES = (
    "hostPath", "emptyDir", "secret", "configMap", "projected", "downwardAPI",
    "persistentVolumeClaim", "nfs", "csi", "ephemeral", "image",
)  # fmt: skip


def refusals(doc: Any) -> list[str]:
    """Why the kubelet would refuse this Pod document, as its validation names the fields
    (empty: nothing found)."""
    spec = doc.get("spec") if isinstance(doc, dict) else None
    if not isinstance(spec, dict):
        return []
    problems: list[str] = []
    names: set[str] = set()
    volumes = spec.get("volumes") or []
    for i, volume in enumerate(volumes if isinstance(volumes, list) else []):
        where = f"spec.volumes[{i}]"
        if not isinstance(volume, dict):
            problems.append(f"{where}: not a mapping")
            continue
        name = volume.get("name")
        if not name:
            problems.append(f"{where}.name: Required value")
        elif not isinstance(name, str) or len(name) > 63 or not _DNS_LABEL.match(name):
            problems.append(f"{where}.name: Invalid value: {name!r}")
        elif name in names:
            problems.append(f"{where}.name: Duplicate value: {name!r}")
        else:
            names.add(name)
        sources = [key for key in _SOURCES if key in volume]
        if not sources:
            problems.append(f"{where}: Required value: must specify a volume type")
        elif len(sources) > 1:
            problems.append(f"{where}.{sources[1]}: Forbidden: may not specify more than 1 type")
    containers = spec.get("containers")
    for c, container in enumerate(containers if isinstance(containers, list) else []):
        if not isinstance(container, dict):
            continue
        paths: set[str] = set()
        mounts = container.get("volumeMounts") or []
        for i, mount in enumerate(mounts if isinstance(mounts, list) else []):
            where = f"spec.containers[{c}].volumeMounts[{i}]"
            if not isinstance(mount, dict):
                problems.append(f"{where}: not a mapping")
                continue
            name, path = mount.get("name"), mount.get("mountPath")
            if not name:
                problems.append(f"{where}.name: Required value")
            elif name not in names:
                problems.append(f"{where}.name: Not found: {name!r}")
            if not path:
                problems.append(f"{where}.mountPath: Required value")
            elif path in paths:
                problems.append(f"{where}.mountPath: Invalid value: {path!r}: must be unique")
            else:
                paths.add(str(path))
    return problems
