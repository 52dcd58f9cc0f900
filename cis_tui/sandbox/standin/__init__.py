"""Stand-ins for etcd, kube-apiserver, kube-controller-manager, kube-scheduler and the kubelet.

Each runs as DIR/usr/local/bin/<binary> (the kubelet as DIR/usr/bin/kubelet), a script whose
interpreter is the Python that created the sandbox, so the process table shows the binary's
path followed by exactly the manifest's arguments. They behave like the real binaries where
cis-tui depends on them: flag and option errors, files that must exist and be mounted, TLS,
authentication, and a configurable time to become ready.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence

from cis_tui.sandbox import events as ev
from cis_tui.sandbox.standin.common import (
    Context,
    Fatal,
    klog,
    played_version,
    set_process_name,
)


def _format_fatal(binary: str, exc: Fatal) -> str:
    if exc.raw:
        return exc.message
    if binary == "etcd":
        from cis_tui.sandbox.standin.etcd import zap

        return zap("fatal", "discovery failed", error=exc.message)
    return klog("E", "command failed", err=exc.message)


def _print_version(binary: str, version: str | None) -> int:
    """`BINARY --version`, as the real binaries print it."""
    played = played_version(binary, version)
    if binary == "etcd":
        print(f"etcd Version: {played or 'unknown'}")
    else:
        print(f"Kubernetes {played or 'v0.0.0-unknown'}")
    return 0


def main(binary: str, argv: Sequence[str], version: str | None = None) -> int:
    """Run the stand-in for `binary` with the arguments after the binary's name; `version`:
    the version it plays when no pod image names one (the kubelet's)."""
    if list(argv[:1]) in (["--version"], ["--version=true"], ["--version=raw"]):
        return _print_version(binary, version)
    set_process_name(binary)
    ctx = Context.from_environment(binary, argv, version)
    code = ctx.fault("exit_at_start")
    if code is not None:
        ctx.event(ev.FAULT, fault="exit_at_start", code=code)
        print(klog("F", "injected fault: exit at start"), file=sys.stderr, flush=True)
        return int(code)
    try:
        if binary == "kube-apiserver":
            from cis_tui.sandbox.standin import apiserver

            return apiserver.run(ctx, argv)
        if binary in ("kube-controller-manager", "kube-scheduler"):
            from cis_tui.sandbox.standin import controlplane

            return controlplane.run(ctx, binary, argv)
        if binary == "etcd":
            from cis_tui.sandbox.standin import etcd

            return etcd.run(ctx, argv)
        if binary == "kubelet":
            from cis_tui.sandbox.standin import kubelet

            return kubelet.run(ctx, argv)
    except Fatal as exc:
        print(_format_fatal(binary, exc), file=sys.stderr, flush=True)
        return exc.code
    print(f"no stand-in for {binary}", file=sys.stderr)
    return 127
