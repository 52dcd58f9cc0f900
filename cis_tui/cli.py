"""Command-line interface: argument parsing, exit codes, output.

Exit codes: 0 success / all pass; 1 checks fail, or a remediation failed and was rolled back;
2 bad input or usage; 3 CRITICAL (rollback could not restore health); 4 node locked.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Sequence
from pathlib import Path

from cis_tui import __version__
from cis_tui.errors import UserError

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
        default=argparse.SUPPRESS if suppress else "cis-1.12",
        help="benchmark version (default: cis-1.12)",
    )


def _settings(args: argparse.Namespace):  # noqa: ANN202 - Settings, imported lazily
    from cis_tui.layout import load_settings

    return load_settings(
        config=args.config, root=args.root, state_dir=args.state_dir, benchmark=args.benchmark
    )


def cmd_scan(args: argparse.Namespace) -> int:
    from cis_tui.audit.evaluate import Status, evaluate
    from cis_tui.audit.node import take_snapshot
    from cis_tui.benchmarks.catalog import load_catalog
    from cis_tui.report import render_json, render_junit, render_table, sort_results

    settings = _settings(args)
    catalog = load_catalog(settings.benchmark)
    ids = [i for group in (args.check or []) for i in group.split(",") if i]
    for check_id in ids:
        catalog.get(check_id)  # unknown ids are a usage error before any work
    if args.from_kube_bench:
        from cis_tui.audit.kubebench import import_report

        results = import_report(args.from_kube_bench, catalog)
        if ids:
            results = [r for r in results if r.id in set(ids)]
        live, source = False, f"kube-bench report {args.from_kube_bench}"
    else:
        snap = take_snapshot(settings)
        results = evaluate(catalog, snap, ids or None)
        live, source = snap.live, "node"
    failing = {Status.FAIL, Status.WARN, Status.ERROR}
    shown = [r for r in results if r.status in failing] if args.failing else results
    if args.format == "json":
        print(render_json(shown, settings, live, source))
    elif args.format == "junit":
        print(render_junit(shown, settings.benchmark))
    else:
        color = sys.stdout.isatty() and not _no_color()
        print(render_table(sort_results(shown), settings.benchmark, color=color))
    return EXIT_FAIL if any(r.status in {Status.FAIL, Status.ERROR} for r in results) else EXIT_OK


def _no_color() -> bool:
    import os

    return bool(os.environ.get("NO_COLOR"))


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="cis-tui",
        description="Scan a kubeadm control-plane node against the CIS Kubernetes Benchmark "
        "and fix it safely.",
    )
    _add_globals(parser, suppress=False)
    parser.add_argument("--version", action="version", version=f"cis-tui {__version__}")
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
    scan.set_defaults(handler=cmd_scan)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:  # --help, --version and usage errors
        return int(exc.code or 0)
    handler: Handler | None = getattr(args, "handler", None)
    if handler is None:
        parser.print_help()
        return EXIT_USAGE
    try:
        return handler(args)
    except UserError as exc:
        print(f"cis-tui: error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:
        print("cis-tui: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:
        return EXIT_OK


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
