"""Writing a fix into kubeadm's stored configuration, and taking it back on rollback, with
optimistic concurrency: what was read is what is replaced, or the write is redone on the fresh
object (a concurrent change is merged, never overwritten)."""

from __future__ import annotations

import hashlib
import time
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from typing import TypeVar

from cis_tui.persist.apiclient import ApiError, ConfigStore, Conflict
from cis_tui.persist.changes import NAMESPACE, ConfigMapChange

ATTEMPTS = 5
T = TypeVar("T")


def answered(call: Callable[[], T], wait: float) -> T:
    """`call()`, tried again while the API server gives no answer at all (it is restarting)
    for up to `wait` seconds; an HTTP answer (403, 409 ...) is never retried here."""
    deadline = time.monotonic() + wait
    delay = 0.2
    while True:
        try:
            return call()
        except ApiError as exc:
            left = deadline - time.monotonic()
            if exc.status is not None or left <= 0:
                raise
            time.sleep(min(delay, left))
            delay = min(delay * 2, 2.0)


@dataclass(frozen=True)
class Written:
    """What a change replaced (`old`) and wrote (`new`), for a rollback."""

    change: ConfigMapChange
    old: str
    new: str


def sha256_text(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def write_change(
    client: ConfigStore,
    change: ConfigMapChange,
    before_write: Callable[[str, str], None],
    wait: float = 0.0,
) -> Written | None:
    """Make `change` on the ConfigMap as it is now; `before_write(old, new)` runs (a backup of
    `old`, a journal record of `new`) before each write. None when the ConfigMap already holds
    it. ApiError on failure; `wait`: seconds to wait for an API server that does not answer."""
    for _ in range(ATTEMPTS):
        found = answered(lambda: client.get(change.name, NAMESPACE), wait)
        if change.key not in found.data:
            raise ApiError(f"{NAMESPACE}/{change.name} has no {change.key} key", status=None)
        old = found.data[change.key]
        new = change.edit(old)
        if new == old:
            return None
        before_write(old, new)
        try:
            answered(partial(client.replace, found, {**found.data, change.key: new}), wait)
        except Conflict:
            continue  # changed since it was read: redo the change on the fresh object
        return Written(change, old, new)
    raise ApiError(
        f"{NAMESPACE}/{change.name} kept changing: gave up after {ATTEMPTS} conflicts", status=409
    )


def revert_change(client: ConfigStore, written: Written, wait: float = 0.0) -> str | None:
    """Put `written.old` back while the ConfigMap still holds what was written; the problem in
    one line when it cannot (None: reverted)."""
    change = written.change
    new_sha256 = sha256_text(written.new)
    return revert_text(client, change.name, change.key, written.old, new_sha256, wait, change.label)


def revert_text(
    client: ConfigStore,
    name: str,
    key: str,
    old: str,
    written_sha256: str,
    wait: float = 0.0,
    label: str = "",
) -> str | None:
    """Put `old` back into ConfigMap `name` key `key` while it holds the text whose sha256 is
    `written_sha256` (cis-tui's write); the problem in one line when it cannot."""
    label = label or f"configmap {NAMESPACE}/{name} {key}"
    for _ in range(ATTEMPTS):
        try:
            found = answered(lambda: client.get(name, NAMESPACE), wait)
        except ApiError as exc:
            return f"cannot read {label}: {exc}"
        current = found.data.get(key)
        if current == old:
            return None
        if current is None or sha256_text(current) != written_sha256:
            return f"{label} was changed by someone else since the fix was written"
        try:
            answered(partial(client.replace, found, {**found.data, key: old}), wait)
        except Conflict:
            continue
        except ApiError as exc:
            return f"cannot restore {label}: {exc}"
        return None
    return f"{label} kept changing: gave up after {ATTEMPTS} conflicts"
