"""A backup against what it was taken from, as it is now: a file on the node, a ConfigMap on
the API server or a kubeadm patch file (kind `configmap`), or file modes and owners."""

from __future__ import annotations

from pathlib import Path

from cis_tui.engine.backups import Backup, BackupStore
from cis_tui.layout import Settings
from cis_tui.remediate.edits import unified_diff


def current_text(settings: Settings, backup: Backup) -> str:
    """The text the backup's target holds now ("" for a file that is gone); UserError when a
    ConfigMap cannot be read."""
    if backup.kind == "configmap":
        from cis_tui.persist.planner import current_configmap_text

        return current_configmap_text(settings, backup.component, backup.path)
    try:  # bytes: keeps CRLF
        return Path(backup.path).read_bytes().decode("utf-8", errors="replace")
    except FileNotFoundError:
        return ""


def backup_diff(settings: Settings, store: BackupStore, backup: Backup) -> str:
    """The backup against its target now, as a unified diff of verified bytes (a line per
    recorded mode and owner for an attributes backup); empty when they are the same."""
    if backup.kind == "attributes":
        lines = []
        for rec in backup.attributes:
            try:
                st = Path(rec.path).lstat()
                now = f"mode {st.st_mode & 0o7777:04o} uid {st.st_uid} gid {st.st_gid}"
            except OSError:
                now = "missing"
            lines.append(
                f"# {rec.path}: backup mode {rec.mode:04o} uid {rec.uid} gid {rec.gid}, now {now}\n"
            )
        return "".join(lines)
    old = store.original_bytes(backup).decode("utf-8", errors="replace")
    return unified_diff(old, current_text(settings, backup), backup.path)
