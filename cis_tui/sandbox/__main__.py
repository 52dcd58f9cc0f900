"""`python -m cis_tui.sandbox create|run|restart-kubelet|upgrade DIR`."""

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
    upgrade = sub.add_parser(
        "upgrade",
        help="what `kubeadm upgrade apply` does to the node: regenerate its static pods and "
        "kubelet config from the stored kubeadm-config and kubelet-config",
    )
    upgrade.add_argument("dir", type=Path, metavar="DIR")
    upgrade.add_argument(
        "--to",
        metavar="VERSION",
        default=None,
        help="the Kubernetes version to upgrade to, such as v1.35.1 (default: the stored one)",
    )
    upgrade.add_argument(
        "--restart-kubelet",
        action="store_true",
        help="then restart the kubelet, as `systemctl restart kubelet` (kubeadm does not)",
    )
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
        if args.command == "upgrade":
            from cis_tui.sandbox.upgrade import upgrade_sandbox

            upgrade_sandbox(
                args.dir, args.to, restart_kubelet=args.restart_kubelet, echo=_print_flushed
            )
            return 0
        return restart_kubelet(args.dir)
    except UserError as exc:
        print(f"cis-tui sandbox: {exc}", file=sys.stderr)
        return exc.exit_code


def _print_flushed(line: str) -> None:
    print(line, flush=True)


if __name__ == "__main__":
    sys.exit(main())
