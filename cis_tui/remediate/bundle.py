"""Companion bundles: the files a saved plan creates (encryption key, admission and audit
configuration), written once by `plan --save PLAN --companions DIR` and installed byte for byte
on every node by `apply --plan PLAN --companions DIR`.

Each node generating its own encryption key is the HA failure this exists for: the API servers
would then be unable to read each other's Secrets (kubernetes/website#44622).
"""

from __future__ import annotations

import hashlib
import os
import stat
from pathlib import Path
from typing import Any

from cis_tui.benchmarks.catalog import Catalog
from cis_tui.errors import UserError
from cis_tui.remediate.plan import Plan
from cis_tui.remediate.planfile import CompanionRef, SavedPlan, load_plan
from cis_tui.remediate.recipes import CompanionFile

#: A companion file is a small YAML document; anything bigger is not one cis-tui wrote.
MAX_COMPANION_BYTES = 1 << 20


def sha256_hex(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def bundled(plan: Plan) -> list[CompanionFile]:
    """The plan's companion files that belong in a bundle (files, not directories)."""
    return [c for f in plan.files for c in f.companions if not c.is_dir and c.name]


def _write_new(path: Path, data: bytes, mode: int) -> None:
    """Create `path` with `data` (O_EXCL, never through a symlink), fsynced."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, mode)
    try:
        os.fchmod(fd, mode)  # whatever the umask
        view = memoryview(data)
        while view:
            view = view[os.write(fd, view) :]
        os.fsync(fd)
    finally:
        os.close(fd)


def write_bundle(directory: Path, plan: Plan) -> tuple[CompanionRef, ...]:
    """Write the plan's companion files into `directory` (created 0700; secret files 0600,
    others 0644). A file already there with the same bytes is kept; with other bytes it is
    a UserError, never overwritten."""
    files = bundled(plan)
    try:
        directory.mkdir(mode=0o700, parents=True, exist_ok=True)
    except OSError as exc:
        raise UserError(
            f"cannot create the companion directory: {exc.strerror}", directory
        ) from None
    if not directory.is_dir():
        raise UserError("not a directory", directory)
    refs: dict[str, CompanionRef] = {}
    for comp in files:
        assert comp.content is not None
        target = directory / comp.name
        if comp.name in refs:
            raise UserError(f"two files of the plan are both {comp.name}", target)
        try:
            if os.path.lexists(target):
                if _read_regular(target) != comp.content:
                    raise UserError(
                        "exists with other content; choose an empty directory (a bundle is "
                        "never overwritten)",
                        target,
                    )
            else:
                _write_new(target, comp.content, 0o600 if comp.secret else 0o644)
        except OSError as exc:
            raise UserError(f"cannot write: {exc.strerror or exc}", target) from None
        refs[comp.name] = CompanionRef(comp.name, comp.check, sha256_hex(comp.content), comp.secret)
    return tuple(refs.values())


def _read_regular(path: Path) -> bytes:
    """A regular file's bytes (not a symlink, not above MAX_COMPANION_BYTES)."""
    fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW)
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            raise UserError("not a regular file", path)
        if st.st_size > MAX_COMPANION_BYTES:
            raise UserError(f"larger than {MAX_COMPANION_BYTES} bytes", path)
        with os.fdopen(os.dup(fd), "rb") as fh:
            return fh.read(MAX_COMPANION_BYTES + 1)
    finally:
        os.close(fd)


def load_bundle(directory: Path, saved: SavedPlan) -> dict[str, bytes]:
    """The plan's companion files from `directory`, each verified against the plan's sha256."""
    if not saved.companions:
        raise UserError(
            "the plan lists no companion files (it was saved without --companions); drop "
            "--companions",
            directory,
        )
    if not directory.is_dir():
        raise UserError("companion directory not found", directory)
    out: dict[str, bytes] = {}
    for ref in saved.companions:
        path = directory / ref.file
        try:
            data = _read_regular(path)
        except FileNotFoundError:
            raise UserError(f"missing: the plan's {ref.check} needs it", path) from None
        except OSError as exc:
            if exc.errno == 40:  # ELOOP: a symlink
                raise UserError("is a symlink; the bundle holds regular files", path) from None
            raise UserError(f"cannot read: {exc.strerror or exc}", path) from None
        if sha256_hex(data) != ref.sha256:
            raise UserError(
                "does not match the plan's sha256: the plan and its companions must come "
                "from the same `plan --save ... --companions DIR`",
                path,
            )
        out[ref.file] = data
    return out


def secret_problem(plan: Plan, saved: SavedPlan | None, bundle_given: bool) -> str | None:
    """Why a saved plan cannot be applied on this node as it stands (None: it can).

    A saved plan is meant for several nodes: a secret companion generated here would differ
    from every other node's, so it must come from the bundle.
    """
    fresh = [c for c in bundled(plan) if c.secret and not c.shared]
    if fresh:
        names = ", ".join(f"{c.check} ({c.name})" for c in fresh)
        if saved is not None and saved.secrets and not bundle_given:
            return (
                f"the plan needs the shared key of {names} from its companion bundle: add "
                "--companions DIR (the directory `plan --save --companions DIR` wrote); a key "
                "generated on each node would differ and the API servers could not read each "
                "other's Secrets"
            )
        return (
            f"{names} would generate a new key on this node, and a saved plan is for every "
            "control-plane node: save the plan with --companions DIR so that all of them get "
            "the same key, then apply it with --plan PLAN --companions DIR"
        )
    return None


def plan_document(plan: Plan) -> dict[str, Any]:
    """`plan --format json`: what would change on this node (field names are API)."""
    return {
        "schema_version": 1,
        "benchmark": plan.benchmark,
        "checks": list(plan.checks),
        "params": {k: dict(v) for k, v in plan.params.items()},
        "files": [
            {
                "path": str(f.path) if f.path is not None else None,
                "kind": f.kind,
                "component": f.component,
                "checks": list(f.checks),
                "restarts": list(f.restarts),
                "companions": [_companion_doc(c) for c in f.companions],
                "notes": list(f.notes),
                "risks": list(f.risks),
                "diff": f.diff,
            }
            for f in plan.files
        ],
        "skipped": [{"id": s.check_id, "reason": s.reason, "error": s.error} for s in plan.skipped],
        "manual_left_out": list(plan.manual_left_out),
    }


def _companion_doc(comp: CompanionFile) -> dict[str, Any]:
    doc: dict[str, Any] = {
        "path": str(comp.path),
        "name": comp.name or None,
        "check": comp.check,
        "directory": comp.is_dir,
        "secret": comp.secret,
        "shared": comp.shared,
    }
    if comp.content is not None:
        doc["sha256"] = sha256_hex(comp.content)
    return doc


def saved_inputs(args: Any, catalog: Catalog) -> tuple[SavedPlan | None, dict[str, bytes] | None]:
    """`--plan PLAN.yaml [--companions DIR]`: the saved plan and its verified bundle."""
    if not args.plan:
        return None, None
    if args.ids or args.all_failing or args.include_manual or args.param:
        raise UserError("--plan takes no check ids, --all-failing, --include-manual or --param")
    saved = load_plan(args.plan, catalog)
    return saved, load_bundle(args.companions, saved) if args.companions else None
