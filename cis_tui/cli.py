"""Command-line interface: argument parsing, exit codes, output.

Exit codes: 0 success / all pass; 1 checks fail, or a remediation failed and was rolled back;
2 bad input or usage; 3 CRITICAL (rollback could not restore health); 4 node locked.
"""

from __future__ import annotations

import argparse
import contextlib
import sys
from collections.abc import Callable, Sequence
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING

from cis_tui import __version__
from cis_tui.errors import NodeLocked, UserError

if TYPE_CHECKING:
    from cis_tui.audit.node import NodeSnapshot
    from cis_tui.benchmarks.catalog import Catalog
    from cis_tui.layout import Settings
    from cis_tui.remediate.plan import Plan
    from cis_tui.remediate.planfile import SavedPlan
    from cis_tui.report import Scan

EXIT_OK = 0
EXIT_FAIL = 1
EXIT_USAGE = 2
EXIT_CRITICAL = 3
EXIT_LOCKED = 4

Handler = Callable[[argparse.Namespace], int]


class _Parser(argparse.ArgumentParser):
    """argparse that reports usage errors as one line and exit code 2."""

    def error(self, message: str) -> None:  # type: ignore[override]
        self.exit(EXIT_USAGE, f"{self.prog}: error: {message}\n")


def _add_globals(parser: argparse.ArgumentParser, suppress: bool) -> None:
    default = argparse.SUPPRESS if suppress else None
    group = parser.add_argument_group("global options")
    group.add_argument(
        "--config",
        type=Path,
        default=default,
        metavar="FILE",
        help="TOML config file (default: $CIS_TUI_CONFIG or the user config dir)",
    )
    group.add_argument(
        "--root",
        type=Path,
        default=default,
        metavar="DIR",
        help="analyse or edit a copy of a node's tree under DIR (no live processes)",
    )
    group.add_argument(
        "--state-dir",
        type=Path,
        default=default,
        metavar="DIR",
        help="where backups, the journal and the lock live",
    )
    group.add_argument(
        "--benchmark",
        default=argparse.SUPPRESS if suppress else None,
        metavar="NAME",
        help="cis-1.10, cis-1.11, cis-1.12 or cis-2.0 (default: chosen from the node's "
        "Kubernetes version, as kube-bench maps it)",
    )


def _settings(args: argparse.Namespace):  # noqa: ANN202 - Settings, imported lazily
    """The settings, with the kubelet config file the kubelet itself names."""
    from cis_tui.audit.node import with_kubelet_config
    from cis_tui.layout import load_settings

    settings = load_settings(
        config=args.config, root=args.root, state_dir=args.state_dir, benchmark=args.benchmark
    )
    return with_kubelet_config(settings)


def _for_node(settings, versions=None):  # noqa: ANN001, ANN202 - Settings, NodeVersions
    """Settings with the benchmark decided for the node (given, or from its Kubernetes
    version), warning on stderr when the version is unknown or older than every benchmark."""
    from cis_tui.audit.versions import read_node_versions, with_benchmark

    if versions is None:
        versions = read_node_versions(settings)
    settings, warning = with_benchmark(settings, versions)
    if warning:
        print(f"cis-tui: warning: {warning}", file=sys.stderr)
    return settings


def _read_scan(args: argparse.Namespace) -> Scan:
    """The node (or a kube-bench report) judged, with the config's waivers applied; waiver
    warnings go to stderr. Shared by `scan` and `report`."""
    from cis_tui.audit.evaluate import evaluate
    from cis_tui.audit.node import take_snapshot
    from cis_tui.audit.versions import UNKNOWN
    from cis_tui.audit.waive import apply_waivers
    from cis_tui.benchmarks.catalog import load_catalog
    from cis_tui.benchmarks.selection import DEFAULT_BENCHMARK
    from cis_tui.persist.status import persisted as persisted_passes
    from cis_tui.report import Scan

    settings = _settings(args)
    snap = None
    if args.from_kube_bench:  # no node to read a version from
        settings = replace(
            settings,
            benchmark=settings.benchmark or DEFAULT_BENCHMARK,
            benchmark_chosen_by=settings.benchmark_chosen_by
            or "default: a kube-bench report has no node version to choose by",
        )
    else:
        snap = take_snapshot(settings)
        problem = snap.found_problem()
        if problem is not None:  # an empty or mistyped --root is not a node that passes
            raise UserError(problem)
        settings = _for_node(settings, snap.versions)
    catalog = load_catalog(settings.benchmark)
    ids = [i for group in (getattr(args, "check", None) or []) for i in group.split(",") if i]
    for check_id in ids:
        catalog.get(check_id)  # unknown ids are a usage error before any judging
    versions = snap.versions if snap is not None else UNKNOWN
    if snap is None:
        from cis_tui.audit.kubebench import import_report

        results = import_report(args.from_kube_bench, catalog)
        strays = ()
        persisted: dict[str, bool] = {}
        if ids:
            results = [r for r in results if r.id in set(ids)]
        live, source = False, f"kube-bench report {args.from_kube_bench}"
    else:
        for impostor in snap.ignored_processes:  # named like a component, but not it
            print(f"cis-tui: warning: {impostor}", file=sys.stderr)
        results = evaluate(catalog, snap, ids or None)
        live, source = snap.live, "node"
        strays = () if ids else snap.strays
        persisted = persisted_passes(snap, catalog, results, settings)
    waived = apply_waivers(results, settings.waivers, catalog, config=settings.config_path)
    for warning in waived.warnings:
        print(f"cis-tui: warning: {warning}", file=sys.stderr)
    return Scan(
        waived.results, settings, live, source, tuple(strays), versions, persisted, waived.warnings
    )


def cmd_scan(args: argparse.Namespace) -> int:
    import json

    from cis_tui.audit.evaluate import Status
    from cis_tui.drift import compare, load_baseline, render_drift
    from cis_tui.report import (
        render_reverted,
        render_strays,
        render_table,
        render_versions,
        scan_document,
        sort_results,
    )

    baseline = load_baseline(args.baseline) if args.baseline else None  # exit 2 before judging
    scan = _read_scan(args)
    settings, results = scan.settings, scan.results
    drift = compare(baseline, results, settings.benchmark) if baseline is not None else None
    failing = {Status.FAIL, Status.WARN, Status.ERROR}
    shown = tuple(r for r in results if r.status in failing) if args.failing else results
    color = sys.stdout.isatty() and not _no_color()
    if args.format == "table":
        if scan.source == "node":
            print(render_versions(scan.versions, settings))
        print(render_table(sort_results(shown), settings.benchmark, color=color))
        if reverted := render_reverted(shown, scan.persisted):
            print(reverted)
        if scan.strays:
            print(render_strays(scan.strays, color=color))
        if drift is not None:
            print("\n" + render_drift(drift, settings.benchmark, color=color))
    else:  # the same document the wizard exports (report.SCAN_FORMATS)
        document = scan_document(args.format, replace(scan, results=shown))
        if drift is not None and args.format == "json":  # one more key: `drift`
            doc = json.loads(document)
            doc["drift"] = drift.to_dict()
            document = json.dumps(doc, indent=2) + "\n"
        elif drift is not None:  # JUnit has no place for it: stderr, as text
            print(render_drift(drift, settings.benchmark), file=sys.stderr)
        sys.stdout.write(document)
    if drift is not None:  # drift mode: the baseline's failures are known; alert on new ones
        return EXIT_FAIL if drift.regressions else EXIT_OK
    failed = any(r.status in {Status.FAIL, Status.ERROR} for r in results)
    return EXIT_FAIL if failed or any(s.serious for s in scan.strays) else EXIT_OK


def cmd_report(args: argparse.Namespace) -> int:
    """The auditor's report: this node (or a kube-bench report, or a fleet scan) as one
    self-contained HTML file or Markdown, with the node's change history."""
    from cis_tui.engine.atomic import atomic_write
    from cis_tui.reporting import load_fleet, node_report, render_fleet, render_node

    if args.fleet and args.from_kube_bench:
        raise UserError("--fleet and --from-kube-bench are two different inputs: give one")
    if args.fleet:
        text = render_fleet(args.format, load_fleet(args.fleet))
    else:
        scan = _read_scan(args)
        report = node_report(scan, include_history=scan.source == "node")
        text = render_node(args.format, report)
    if args.output is None:
        sys.stdout.write(text)
        return EXIT_OK
    import os

    atomic_write(args.output, text.encode("utf-8"), mode=0o600, uid=os.geteuid(), gid=os.getegid())
    print(f"Wrote the {args.format} report to {args.output}", file=sys.stderr)
    return EXIT_OK


def _waived(settings: Settings, catalog: Catalog, snap: NodeSnapshot) -> dict[str, str]:
    """Check id -> waiver note, for the checks the config's waivers accept (never planned)."""
    from cis_tui.audit.evaluate import evaluate
    from cis_tui.audit.waive import apply_waivers

    if not settings.waivers:
        return {}
    results = evaluate(catalog, snap)
    return apply_waivers(results, settings.waivers, catalog, config=settings.config_path).waived_ids


def _node_plan(
    args: argparse.Namespace, settings: Settings, catalog: Catalog, snap: NodeSnapshot
) -> tuple[Plan, SavedPlan | None, dict[str, bytes] | None]:
    """The plan for this node from the command line or a saved plan (`--plan`, with its
    companion bundle), waivers honoured, persistence attached: (plan, saved plan, bundle)."""
    from cis_tui.persist.planner import attach_persistence
    from cis_tui.remediate.bundle import saved_inputs
    from cis_tui.remediate.params import parse_param_options
    from cis_tui.remediate.plan import build_plan

    saved, bundle = saved_inputs(args, catalog)
    ids = list(saved.checks) if saved else _check_ids(args, catalog)
    params = saved.params if saved else parse_param_options(args.param or [], catalog)
    plan = build_plan(
        catalog,
        snap,
        ids,
        params,
        include_manual=args.include_manual,
        bundle=bundle,
        waived=_waived(settings, catalog, snap),
    )
    return attach_persistence(plan, settings), saved, bundle


def _check_ids(args: argparse.Namespace, catalog: Catalog) -> list[str] | None:
    """Check ids from positional arguments, or None for --all-failing."""
    if args.include_manual and not args.all_failing:
        raise UserError("--include-manual widens --all-failing; named checks are always planned")
    if args.all_failing:
        if args.ids:
            raise UserError("give check ids or --all-failing, not both")
        return None
    ids = [i.strip() for group in args.ids for i in group.split(",") if i.strip()]
    if not ids:
        raise UserError("give check ids (e.g. 1.2.15 1.2.16) or --all-failing")
    return [catalog.get(i).id for i in ids]


def cmd_plan(args: argparse.Namespace) -> int:
    import json

    from cis_tui.audit.node import take_snapshot
    from cis_tui.benchmarks.catalog import load_catalog
    from cis_tui.remediate.bundle import plan_document, secret_problem, write_bundle
    from cis_tui.remediate.planfile import SavedPlan, save_plan
    from cis_tui.report import render_plan

    settings = _settings(args)
    snap = take_snapshot(settings)
    problem = snap.found_problem()
    if problem is not None:
        raise UserError(problem)
    settings = _for_node(settings, snap.versions)
    catalog = load_catalog(settings.benchmark)
    if args.plan and args.save:
        raise UserError("--plan reads a saved plan; --save writes one: not both")
    if args.companions and not (args.plan or args.save):
        raise UserError("--companions goes with --save (writes the bundle) or --plan (reads it)")
    plan, saved, bundle = _node_plan(args, settings, catalog, snap)
    if saved or (args.save and not args.companions):  # a plan for every node: one shared key
        problem = secret_problem(plan, saved, bundle is not None)
        if problem:
            raise UserError(problem)
    if args.format == "json":
        print(json.dumps(plan_document(plan), indent=2))
    else:
        print(render_plan(plan, color=sys.stdout.isatty() and not _no_color()))
        _print_left_out(plan)
    if args.save:
        if not plan.checks:
            raise UserError("nothing to save: the plan fixes no check")
        refs = write_bundle(args.companions, plan) if args.companions else ()
        save_plan(SavedPlan(catalog.benchmark, plan.checks, plan.params, refs), args.save)
        if args.format == "text":
            with_bundle = f" and {len(refs)} companion files to {args.companions}" if refs else ""
            print(f"Saved the plan ({len(plan.checks)} checks) to {args.save}{with_bundle}")
    # A check that could not be evaluated was asked for and cannot be planned: not a success.
    return EXIT_FAIL if any(s.error for s in plan.skipped) else EXIT_OK


def _print_left_out(plan: Plan) -> None:
    """Say which manual checks --all-failing left out, and how to take them."""
    if plan.manual_left_out:
        print(
            f"left out: {', '.join(plan.manual_left_out)}: manual checks are a human's decision; "
            "name them or add --include-manual"
        )


def _print_event_sink(fmt: str, log_path: Path | None, log_settings=None):  # noqa: ANN001, ANN202
    """A sink that prints events (text or JSON lines) and appends them to the (rotated) log
    file."""
    import json

    from cis_tui.engine.eventlog import RotatingLog
    from cis_tui.engine.events import Event, Kind, format_event

    log = RotatingLog(log_path, log_settings) if log_path is not None else None

    last_poll: dict[str, tuple[bool | None, float]] = {}

    def worth_printing(event: Event) -> bool:
        """Text mode: a poll line when the answer changes, else at most one a second."""
        if event.kind is not Kind.POLL:
            return True
        key = f"{event.component} {event.data.get('url', '')}"
        ok, when = last_poll.get(key, (None, 0.0))
        if ok == event.ok and event.time - when < 1.0:
            return False
        last_poll[key] = (event.ok, event.time)
        return True

    def sink(event: Event) -> None:
        line = json.dumps(event.to_dict())
        if log is not None:
            log.write(line)
        try:  # after SIGHUP the terminal may be gone: keep going regardless
            text = line if fmt == "json" else format_event(event)
            if text is not None and (fmt == "json" or worth_printing(event)):
                print(text, flush=True)
        except OSError:
            pass

    return sink


def _print_table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> None:
    """Columns as wide as their widest cell (nothing cut); the last one is not padded."""
    widths = [max(len(r[i]) for r in (header, *rows)) for i in range(len(header) - 1)]
    for row in (header, *rows):
        cells = [f"{c:<{w}}" for c, w in zip(row, widths, strict=False)]
        print("  ".join([*cells, row[-1]]))


def _confirm(question: str, assume_yes: bool) -> bool:
    if assume_yes:
        return True
    if not sys.stdin.isatty():
        raise UserError("confirmation needed: run on a terminal, or pass --yes")
    try:
        answer = input(f"{question} [y/N] ")
    except EOFError:
        return False
    return answer.strip().lower() in {"y", "yes"}


def _run_engine(engine, work) -> object:  # noqa: ANN001
    """Run an engine coroutine with SIGINT/SIGTERM/SIGHUP turned into a safe cancel."""
    import asyncio
    import signal

    async def main() -> object:
        loop = asyncio.get_running_loop()

        def on_signal(signum: int) -> None:
            if not engine.cancel.is_set():
                with contextlib.suppress(OSError):
                    print(
                        f"cis-tui: {signal.Signals(signum).name}: finishing or rolling back, "
                        "never stopping half-way",
                        file=sys.stderr,
                        flush=True,
                    )
            engine.stop(f"stopped by {signal.Signals(signum).name}")

        for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
            loop.add_signal_handler(sig, on_signal, sig)
        return await work()

    return asyncio.run(main())


def _engine(args: argparse.Namespace, settings, catalog, fmt: str = "text"):  # noqa: ANN001, ANN202
    from cis_tui.engine.transaction import Engine

    sink = _print_event_sink(fmt, settings.log_dir / "events.jsonl", settings.events)
    return Engine(
        settings,
        catalog,
        sink,
        health_gate=not getattr(args, "no_health_gate", False),
        timeout=getattr(args, "timeout", None),
    )


def cmd_apply(args: argparse.Namespace) -> int:
    from cis_tui.audit.node import take_snapshot
    from cis_tui.benchmarks.catalog import load_catalog
    from cis_tui.engine.statedir import check_trusted
    from cis_tui.remediate.bundle import secret_problem
    from cis_tui.report import render_plan

    settings = _settings(args)
    check_trusted(settings.state_dir)  # refused before a plan is shown, not after
    snap = take_snapshot(settings)
    settings = _for_node(settings, snap.versions)
    catalog = load_catalog(settings.benchmark)
    if args.format == "json" and not args.yes:
        raise UserError("--format json needs --yes (there is no terminal prompt in JSON mode)")
    if args.timeout is not None and args.timeout <= 0:
        raise UserError("--timeout must be a positive number of seconds")
    if args.companions and not args.plan:
        raise UserError("--companions goes with --plan (the bundle saved with it)")
    plan, saved, bundle = _node_plan(args, settings, catalog, snap)
    engine = _engine(args, settings, catalog, args.format)
    if engine.gate and settings.has_root_override:
        raise UserError("a --root tree has no live processes to gate on; add --no-health-gate")
    problem = secret_problem(plan, saved, bundle is not None) if saved else None
    if problem:
        raise UserError(problem)
    if args.format == "text":
        print(render_plan(plan, color=sys.stdout.isatty() and not _no_color()))
        _print_left_out(plan)
    if plan.empty:
        unfixable = [s for s in plan.skipped if s.reason != "already passes" and not s.waived]
        return EXIT_FAIL if unfixable else EXIT_OK
    restarts = ", ".join(plan.restarts) or "no component"
    if not _confirm(f"Apply {len(plan.files)} file change(s)? This restarts {restarts}.", args.yes):
        print("Nothing changed.")
        return EXIT_FAIL
    result = _run_engine(engine, lambda: engine.apply(plan))
    return result.exit_code  # type: ignore[attr-defined]


def cmd_backups(args: argparse.Namespace) -> int:
    import json

    from cis_tui.benchmarks.catalog import load_catalog
    from cis_tui.engine.backups import BackupStore

    settings = _settings(args)
    store = BackupStore(settings.state_dir, settings.layout)
    action = args.backups_action
    if action == "list":
        backups = store.list()
        if args.format == "json":
            print(json.dumps([b.public() for b in backups], indent=2))
        elif not backups:
            print(f"No backups in {store.root}")
        else:
            _print_table(
                ("ID", "TIME", "OUTCOME", "CHECKS", "FILE"),
                [
                    (
                        b.id,
                        b.time,
                        b.outcome,
                        ",".join(b.checks) or "-",
                        b.path or f"{len(b.attributes)} file modes/owners",
                    )
                    for b in backups
                ],
            )
        for name, why in store.unreadable.items():
            print(f"cis-tui: warning: backup {name} not listed: {why}", file=sys.stderr)
        return EXIT_OK
    if action == "prune":
        from cis_tui.engine.journal import Journal
        from cis_tui.engine.lock import node_lock

        with node_lock(settings.state_dir):
            pending = Journal(settings.state_dir).open_transactions()
            open_ids = {tx.backup_id for tx in pending}
            for note in store.clean_leftovers(open_ids):
                print(note)
            protected = open_ids | {tx.persist_backup_id for tx in pending}
            policy = settings.retention
            if args.keep is None:
                doomed = store.expired(policy, protected)
                kept = (
                    f"kept the newest {policy.keep_per_file} of each file and those younger "
                    f"than {policy.keep_days:g} days ([backups] in the config)"
                )
            else:
                doomed = store.prunable(args.keep, protected)
                kept = f"kept the newest {args.keep} finished ones"
            if not doomed:
                print(f"Nothing to prune: {kept}.")
                return EXIT_OK
            print(f"These {len(doomed)} backup(s) would be deleted:")
            for b in doomed:
                print(f"  {b.id}  {b.time}  {b.outcome}  {b.path or 'file modes and owners'}")
            if not _confirm(f"Delete {len(doomed)} backup(s)?", args.yes):
                print("Nothing changed.")
                return EXIT_FAIL
            store.remove(doomed)
        print(f"Removed {len(doomed)} backup(s); {kept}.")
        return EXIT_OK
    backup = store.get(args.id)
    if action == "show":
        info = backup.public()
        for key, value in info.items():
            if isinstance(value, list):
                value = ", ".join(str(v) for v in value) or "-"
            if value is not None:
                print(f"{key}: {value}")
        if backup.kind in {"file", "configmap"}:
            print("--- content ---")
            print(store.original_bytes(backup).decode("utf-8", errors="replace"), end="")
        else:
            for rec in backup.attributes:
                print(f"{rec.path}: mode {rec.mode:04o} uid {rec.uid} gid {rec.gid}")
        return EXIT_OK
    if action == "diff":
        if backup.kind == "attributes":
            raise UserError("an attributes backup has no content to diff; use `backups show`")
        from cis_tui.engine.backupdiff import backup_diff

        diff = backup_diff(settings, store, backup)
        if not diff:
            print(f"{backup.path} is identical to backup {backup.id}")
            return EXIT_OK
        lines = diff.splitlines(keepends=True)
        for i, line in enumerate(lines[:4]):
            if line.startswith(("--- ", "+++ ")):
                now = "current ConfigMap" if backup.kind == "configmap" else "current file"
                side = f"backup {backup.id}" if line.startswith("---") else now
                lines[i] = f"{line.rstrip()}  ({side})\n"
        print("".join(lines), end="")
        return EXIT_OK
    # restore
    from cis_tui.engine.restore import restore

    settings = _for_node(settings)
    catalog = load_catalog(settings.benchmark)
    engine = _engine(args, settings, catalog)
    store.original_bytes(backup)  # verify before asking
    what = backup.path or "the recorded file modes and owners"
    if not _confirm(f"Restore {what} from backup {backup.id}?", args.yes):
        print("Nothing changed.")
        return EXIT_FAIL
    result = _run_engine(engine, lambda: restore(engine, backup.id))
    return result.exit_code  # type: ignore[attr-defined]


def cmd_persist(args: argparse.Namespace) -> int:
    """Put settings that pass only in the node's files into kubeadm's configuration."""
    from cis_tui.audit.evaluate import Status, evaluate
    from cis_tui.audit.node import take_snapshot
    from cis_tui.benchmarks.catalog import load_catalog
    from cis_tui.engine.backups import BackupStore
    from cis_tui.persist.apiclient import ApiError, ConfigMapClient
    from cis_tui.persist.changes import CLUSTER_CONFIGURATION, KUBELET_CONFIGURATION, NAMESPACE
    from cis_tui.persist.existing import plan_persist
    from cis_tui.persist.patchfiles import PatchDirectory
    from cis_tui.persist.patchnames import PATCHES
    from cis_tui.persist.planner import PATCH_FILES, decide, open_store
    from cis_tui.persist.status import persisted, read_access, regenerate
    from cis_tui.persist.writes import write_change
    from cis_tui.report import colorize_diff

    settings = _settings(args)
    if bool(args.ids) == bool(args.all):
        raise UserError("name the checks to persist, or --all")
    snap = take_snapshot(settings)
    settings = _for_node(settings, snap.versions)
    catalog = load_catalog(settings.benchmark)
    for check_id in args.ids:
        catalog.get(check_id)
    access = read_access(settings)
    if access is None:
        raise UserError(
            "no kubeadm configuration to persist into: this needs a kubeadm node's "
            f"{settings.persist.kubeconfig or settings.layout.admin_conf} (not --root)"
        )
    regen = regenerate(snap, access)
    if regen is None:
        raise UserError("cannot read or regenerate kube-system/kubeadm-config from the API server")
    results = evaluate(catalog, snap)
    kept = persisted(snap, catalog, results, settings)
    by_id = {r.id: r for r in results}
    chosen = []
    for check_id in args.ids or [r.id for r in results if kept.get(r.id) is False]:
        result = by_id[catalog.get(check_id).id]
        if result.status is not Status.PASS:
            print(f"not persisted: {result.id}: {result.status.value} on the node; fix it first")
        elif kept.get(result.id) is True:
            print(f"{result.id}: already kept by kubeadm upgrade")
        elif result.id not in kept:
            print(f"not persisted: {result.id}: kubeadm does not regenerate what it judges")
        else:
            chosen.append(result)
    if not chosen:
        print("Nothing to persist.")
        return EXIT_OK
    texts = {}
    persistence = decide(settings)
    patches_dir = persistence.patches_dir if persistence.mode == PATCH_FILES else None
    if patches_dir is not None:
        try:
            found = PatchDirectory(patches_dir).get().data
        except ApiError as exc:
            raise UserError(f"cannot read the patches directory: {exc}", patches_dir) from None
        texts = {(PATCHES, key): text for key, text in found.items()}
    with ConfigMapClient(access) as api:
        for name, key in (CLUSTER_CONFIGURATION, KUBELET_CONFIGURATION):
            try:
                texts[(name, key)] = api.get(name, NAMESPACE).data[key]
            except (ApiError, KeyError):
                continue
        plan = plan_persist(snap, chosen, regen, texts, patches_dir)
        color = sys.stdout.isatty() and not _no_color()
        for change in plan.changes:
            print(colorize_diff(change.diff) if color else change.diff, end="")
        for check_id, why in plan.skipped:
            print(f"not persisted: {check_id}: {why}")
        if not plan.changes:
            return EXIT_FAIL
        where = "kubeadm's configuration"
        if patches_dir is not None:
            where = f"kubeadm patch files ({persistence.upgrade_hint()})"
        if not _confirm(f"Persist {', '.join(plan.checks)} into {where}?", args.yes):
            print("Nothing changed.")
            return EXIT_FAIL
        store = BackupStore(settings.state_dir, settings.layout)
        for change in plan.changes:
            saved = []

            def backup(old: str, _new: str, change=change, saved=saved) -> None:  # noqa: ANN001
                saved.append(
                    store.create_configmap_backup(
                        change.label, change.name, old, plan.checks, {"persist": list(plan.checks)}
                    )
                )

            try:
                with open_store(persistence, change) as store_of_change:
                    write_change(store_of_change, change, backup)
            except ApiError as exc:
                raise UserError(f"cannot write {change.label}: {exc}") from None
            for made in saved[-1:]:
                store.set_outcome(made, "committed")
            print(f"persisted in {change.label}" + (f" (backup {saved[-1].id})" if saved else ""))
    after = persisted(take_snapshot(settings), catalog, chosen, settings)
    lost = [r.id for r in chosen if after.get(r.id) is not True]
    if lost:
        print(f"kubeadm upgrade would still revert: {', '.join(lost)}")
        return EXIT_FAIL
    print(f"kubeadm upgrade now keeps {', '.join(r.id for r in chosen)}")
    return EXIT_OK


def cmd_recover(args: argparse.Namespace) -> int:
    from cis_tui.benchmarks.catalog import load_catalog
    from cis_tui.engine.restore import recover

    settings = _for_node(_settings(args))
    engine = _engine(args, settings, load_catalog(settings.benchmark))
    if settings.has_root_override:
        engine.gate = False
    pending = engine.journal.open_transactions()
    if not pending:
        from cis_tui.engine.lock import node_lock

        if engine.store.root.is_dir() or engine.journal.path.exists():
            with node_lock(settings.state_dir):
                if engine.store.root.is_dir():  # leftovers of a crash before the intent
                    for note in engine.store.clean_leftovers(set()):
                        print(note)
                engine.journal.compact()  # a journal written before compaction existed
        print("Nothing to recover: no unfinished transaction in the journal.")
        return EXIT_OK
    for tx in pending:
        print(
            f"unfinished: {tx.path or 'file modes and owners'} (backup {tx.backup_id}, "
            f"stopped after step {tx.last_step!r}, cis-tui PID {tx.pid})"
        )
    if not _confirm("Restore the pre-change state of these files?", args.yes):
        print("Nothing changed.")
        return EXIT_FAIL
    done = _run_engine(engine, lambda: recover(engine))
    for item in done:  # type: ignore[attr-defined]
        print(f"{'recovered' if item.ok else 'FAILED'}: {item.path}: {item.action}")
    if any(not item.ok for item in done):  # type: ignore[attr-defined]
        return EXIT_CRITICAL
    return EXIT_OK


def cmd_tui(args: argparse.Namespace) -> int:
    from cis_tui.audit.node import take_snapshot
    from cis_tui.benchmarks.catalog import load_catalog
    from cis_tui.tui.app import run_tui

    settings = _settings(args)
    try:  # one reading of the node: its versions choose the benchmark, then it is judged
        snap = take_snapshot(settings)
    except Exception:  # the app's own scan then shows the error
        snap = None
    settings = _for_node(settings, snap.versions if snap is not None else None)
    catalog = load_catalog(settings.benchmark)
    from cis_tui.audit.waive import check_waivers

    check_waivers(settings.waivers, catalog, settings.config_path)  # exit 2 before any frame
    return run_tui(
        settings, catalog, mouse=not args.no_mouse, read_only=args.read_only, snapshot=snap
    )


def cmd_demo(args: argparse.Namespace) -> int:
    from cis_tui.demo import run_demo

    return run_demo(args.scenario, mouse=not args.no_mouse, read_only=args.read_only)


def cmd_sandbox(args: argparse.Namespace) -> int:
    from cis_tui.sandbox.__main__ import main as sandbox_main

    return sandbox_main(args.sandbox_args)


def _no_color() -> bool:
    import os

    return bool(os.environ.get("NO_COLOR"))


_READ_ONLY = "scan, plan, diff and review backups; no apply, restore, prune or recover"


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="cis-tui",
        description="Scan a kubeadm control-plane node against the CIS Kubernetes Benchmark "
        "and fix it safely.",
    )
    _add_globals(parser, suppress=False)
    parser.add_argument("--version", action="version", version=f"cis-tui {__version__}")
    parser.add_argument(
        "--no-mouse", action="store_true", help="wizard: leave the mouse to the terminal"
    )
    parser.add_argument("--read-only", action="store_true", help=f"wizard: {_READ_ONLY}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)

    scan = sub.add_parser("scan", help="audit the node and list check results")
    _add_globals(scan, suppress=True)
    scan.add_argument("--format", choices=("table", "json", "junit"), default="table")
    scan.add_argument("--failing", action="store_true", help="show only FAIL, WARN and ERROR")
    scan.add_argument(
        "--check", action="append", metavar="ID", help="only this check (repeat or comma-separate)"
    )
    scan.add_argument(
        "--from-kube-bench",
        type=Path,
        metavar="REPORT.json",
        help="read results from kube-bench --json output instead of the node",
    )
    scan.add_argument(
        "--baseline",
        type=Path,
        metavar="PREVIOUS.json",
        help="compare with an earlier `scan --format json`: list regressions and improvements; "
        "exit 1 on any regression (and only then)",
    )
    scan.set_defaults(handler=cmd_scan)

    report = sub.add_parser(
        "report",
        help="the auditor's report: checks, waivers and the change history, as HTML or Markdown",
    )
    _add_globals(report, suppress=True)
    report.add_argument("--format", choices=("html", "markdown"), default="html")
    report.add_argument(
        "--output", type=Path, metavar="FILE", help="write here (mode 0600) instead of stdout"
    )
    report.add_argument(
        "--from-kube-bench",
        type=Path,
        metavar="REPORT.json",
        help="report on kube-bench --json output instead of the node",
    )
    report.add_argument(
        "--fleet",
        type=Path,
        metavar="FILE",
        help='a fleet scan: {"nodes": {"<hostname>": <scan --format json>, ...}}',
    )
    report.set_defaults(handler=cmd_report)

    plan = sub.add_parser("plan", help="show what fixing checks would change (changes nothing)")
    _add_globals(plan, suppress=True)
    plan.add_argument("ids", nargs="*", metavar="ID", help="check ids to fix")
    plan.add_argument(
        "--all-failing", action="store_true", help="every scored failing check with a fix"
    )
    plan.add_argument(
        "--include-manual",
        action="store_true",
        help="with --all-failing: manual (WARN) checks too, such as 1.2.1",
    )
    plan.add_argument(
        "--param",
        action="append",
        metavar="ID.NAME=VALUE",
        help="a remediation parameter, e.g. 1.2.17.maxage=60 (repeatable)",
    )
    plan.add_argument(
        "--save",
        type=Path,
        metavar="PLAN.yaml",
        help="write a node-independent plan (check ids and parameters)",
    )
    plan.add_argument("--plan", type=Path, metavar="PLAN.yaml", help="re-plan a saved plan here")
    plan.add_argument(
        "--companions",
        type=Path,
        metavar="DIR",
        help="with --save: write the companion files (encryption key ...) into DIR once; with "
        "--plan: the bundle to install",
    )
    plan.add_argument("--format", choices=("text", "json"), default="text")
    plan.set_defaults(handler=cmd_plan)

    apply = sub.add_parser("apply", help="apply fixes: backup, atomic write, health gate, rollback")
    _add_globals(apply, suppress=True)
    apply.add_argument("ids", nargs="*", metavar="ID", help="check ids to fix")
    apply.add_argument(
        "--all-failing", action="store_true", help="every scored failing check with a fix"
    )
    apply.add_argument(
        "--include-manual",
        action="store_true",
        help="with --all-failing: manual (WARN) checks too, such as 1.2.1",
    )
    apply.add_argument("--plan", type=Path, metavar="PLAN.yaml", help="a saved plan")
    apply.add_argument(
        "--companions",
        type=Path,
        metavar="DIR",
        help="the plan's companion bundle: these bytes are installed, never regenerated",
    )
    apply.add_argument(
        "--param",
        action="append",
        metavar="ID.NAME=VALUE",
        help="a remediation parameter (repeatable)",
    )
    apply.add_argument("--yes", action="store_true", help="do not ask for confirmation")
    apply.add_argument(
        "--timeout",
        type=float,
        metavar="SECONDS",
        help="health-gate timeout per component (default from the config)",
    )
    apply.add_argument(
        "--no-health-gate",
        action="store_true",
        help="offline trees: back up and write atomically, no restart wait",
    )
    apply.add_argument(
        "--format",
        choices=("text", "json"),
        default="text",
        help="progress as readable lines or JSON lines",
    )
    apply.set_defaults(handler=cmd_apply)

    backups = sub.add_parser("backups", help="list, show, diff, restore and prune backups")
    _add_globals(backups, suppress=True)
    bsub = backups.add_subparsers(
        dest="backups_action", metavar="ACTION", required=True, parser_class=_Parser
    )
    blist = bsub.add_parser("list", help="every backup, newest first")
    blist.add_argument("--format", choices=("table", "json"), default="table")
    for name, text in (
        ("show", "a backup's metadata and content"),
        ("diff", "the backup against the current file"),
    ):
        p = bsub.add_parser(name, help=text)
        p.add_argument("id", metavar="ID")
    brestore = bsub.add_parser("restore", help="put a backup back (health-gated)")
    brestore.add_argument("id", metavar="ID")
    brestore.add_argument("--yes", action="store_true", help="do not ask for confirmation")
    brestore.add_argument("--timeout", type=float, metavar="SECONDS")
    brestore.add_argument("--no-health-gate", action="store_true")
    bprune = bsub.add_parser(
        "prune",
        help="delete what the [backups] retention policy expires, or all but the newest N",
    )
    bprune.add_argument(
        "--keep", type=int, metavar="N", help="keep the newest N finished backups instead"
    )
    bprune.add_argument("--yes", action="store_true", help="do not ask for confirmation")
    for p in (blist, brestore, bprune, *[bsub.choices["show"], bsub.choices["diff"]]):
        _add_globals(p, suppress=True)
    backups.set_defaults(handler=cmd_backups)

    persist = sub.add_parser(
        "persist",
        help="put passing settings that kubeadm upgrade would revert into kubeadm's configuration",
    )
    _add_globals(persist, suppress=True)
    persist.add_argument("ids", nargs="*", metavar="ID", help="check ids (or --all)")
    persist.add_argument(
        "--all", action="store_true", help="every pass the next kubeadm upgrade would revert"
    )
    persist.add_argument("--yes", action="store_true", help="do not ask for confirmation")
    persist.set_defaults(handler=cmd_persist)
    recover = sub.add_parser("recover", help="finish a transaction interrupted by a crash")
    _add_globals(recover, suppress=True)
    recover.add_argument("--yes", action="store_true", help="do not ask for confirmation")
    recover.add_argument("--timeout", type=float, metavar="SECONDS")
    recover.set_defaults(handler=cmd_recover)

    tui = sub.add_parser("tui", help="the interactive wizard (the default command)")
    _add_globals(tui, suppress=True)
    tui.add_argument(
        "--no-mouse",
        action="store_true",
        default=argparse.SUPPRESS,
        help="leave the mouse to the terminal",
    )
    tui.add_argument("--read-only", action="store_true", default=argparse.SUPPRESS, help=_READ_ONLY)
    tui.set_defaults(handler=cmd_tui)

    from cis_tui.sandbox import SCENARIOS

    demo = sub.add_parser("demo", help="try everything on a built-in sandbox node")
    demo.add_argument("--scenario", default="default", choices=SCENARIOS)
    demo.add_argument(
        "--no-mouse",
        action="store_true",
        default=argparse.SUPPRESS,
        help="leave the mouse to the terminal",
    )
    demo.add_argument(
        "--read-only", action="store_true", default=argparse.SUPPRESS, help=_READ_ONLY
    )
    demo.set_defaults(handler=cmd_demo)

    sandbox = sub.add_parser(
        "sandbox",
        help="a kubeadm-like test node: create DIR | run DIR | restart-kubelet DIR",
        add_help=False,
    )
    sandbox.add_argument("sandbox_args", nargs=argparse.REMAINDER)
    sandbox.set_defaults(handler=cmd_sandbox)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv[:1] == ["sandbox"]:  # its own parser: `cis-tui sandbox --help` must reach it
        from cis_tui.sandbox.__main__ import main as sandbox_main

        try:
            return sandbox_main(argv[1:])
        except SystemExit as exc:
            return int(exc.code or 0)
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:  # --help, --version and usage errors
        return int(exc.code or 0)
    handler: Handler | None = getattr(args, "handler", None)
    if handler is None:  # no command: the wizard
        handler = cmd_tui
    try:
        return handler(args)
    except UserError as exc:
        print(f"cis-tui: error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except NodeLocked as exc:
        print(f"cis-tui: {exc}", file=sys.stderr)
        return EXIT_LOCKED
    except KeyboardInterrupt:
        print("cis-tui: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:
        return EXIT_OK
    except OSError as exc:  # a failing disk or a refused file the command did not expect
        where = f"{exc.filename}: " if exc.filename else ""
        print(f"cis-tui: error: {where}{exc.strerror or exc}", file=sys.stderr)
        return EXIT_USAGE


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
