"""`python -m cis_tui.sandbox create|run|restart-kubelet DIR`."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

from cis_tui.errors import UserError
from cis_tui.sandbox import SCENARIOS, create_sandbox, restart_kubelet, run_agent


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="cis-tui sandbox", description="A kubeadm-like node for tests and the demo."
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    create = sub.add_parser("create", help="lay out a sandbox node in an empty directory")
    create.add_argument("dir", type=Path, metavar="DIR")
    create.add_argument("--scenario", default="default", choices=SCENARIOS)
    create.add_argument(
        "--etcd",
        default="auto",
        choices=("auto", "real", "standin"),
        help="run the installed etcd binary (auto: when there is one) or the stand-in",
    )
    create.add_argument(
        "--kubeadm-config",
        choices=("v1beta4", "v1beta3"),
        default=None,
        help="format of the seeded kube-system/kubeadm-config "
        "(default: what the node's kubeadm writes, v1beta4 from v1.31)",
    )
    run = sub.add_parser("run", help="run the node agent in the foreground")
    run.add_argument("dir", type=Path, metavar="DIR")
    restart = sub.add_parser("restart-kubelet", help="restart the sandbox kubelet")
    restart.add_argument("dir", type=Path, metavar="DIR")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        if args.command == "create":
            config = create_sandbox(
                args.dir, args.scenario, etcd=args.etcd, kubeadm_config_version=args.kubeadm_config
            )
            print(f"sandbox node created: {config.parent}")
            print(f"  run it:  cis-tui sandbox run {config.parent}")
            print(f"  scan it: cis-tui --config {config} scan")
            return 0
        if args.command == "run":
            return run_agent(args.dir)
        return restart_kubelet(args.dir)
    except UserError as exc:
        print(f"cis-tui sandbox: {exc}", file=sys.stderr)
        return exc.exit_code


if __name__ == "__main__":
    sys.exit(main())
