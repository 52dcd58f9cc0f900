"""CIS 1.3.7 and 1.4.2 as the controller manager and the scheduler really listen, at their version.

A version serves on up to two ports: the secure port on `--bind-address` (from v1.12 for the
controller manager, v1.13 for the scheduler; default 0.0.0.0) and, until insecure serving was
disabled (v1.22 and v1.23), the unauthenticated port on `--address` (default 0.0.0.0) unless
`--port=0`. The check passes only when every port the version serves is on loopback: a v1.16
controller manager with `--bind-address=127.0.0.1` still serves /metrics and /debug/pprof to the
network on 0.0.0.0:10252 when kubeadm left out `--port=0`. Which version has what comes from
versions.tsv (kinds `flag` and `serving`).
"""

from __future__ import annotations

from dataclasses import dataclass

from cis_tui.audit.evaluate import Result, Status, is_loopback
from cis_tui.audit.node import NodeSnapshot
from cis_tui.audit.versions import Version, fact, has
from cis_tui.benchmarks.catalog import Check

SECURE_ADDRESS = "--bind-address"
INSECURE_ADDRESS = "--address"
#: Default ports: (secure, insecure).
PORTS = {"kube-controller-manager": ("10257", "10252"), "kube-scheduler": ("10259", "10251")}
ALL_INTERFACES = "0.0.0.0"


@dataclass(frozen=True)
class Listener:
    """One port a component serves, and the flag that chooses its address."""

    flag: str  # --bind-address or --address
    address: str | None  # None: the flag is absent (0.0.0.0)
    port: str
    secure: bool

    @property
    def on_loopback(self) -> bool:
        return self.address is not None and is_loopback(self.address)

    def describe(self, version: Version | None) -> str:
        where = f"{self.address or ALL_INTERFACES}:{self.port}"
        if self.secure:
            if self.address is None:
                return (
                    f"{self.flag} absent: :{self.port} on {ALL_INTERFACES} (kube-bench passes it)"
                )
            return f"{self.flag}={self.address} (:{self.port})"
        served = f"{version} serves it" if version else "it is served"
        said = f"{self.flag}={self.address}" if self.address else f"{self.flag} absent"
        return f"{said}: the unauthenticated port {where} ({served} unless --port=0)"


def _serving(component: str, which: str, version: Version | None) -> bool:
    row = fact("serving", component, which)
    if row is None:
        return False
    if version is None:  # unknown: a current version serves securely only
        return which == "secure"
    return row.present_in(version)


def serves_securely(component: str, version: Version | None) -> bool:
    """Whether the version serves its secure port by default (unknown: assume so)."""
    return _serving(component, "secure", version)


def serves_insecurely(component: str, version: Version | None) -> bool:
    """Whether the version still serves the unauthenticated port (unknown: a current one does
    not)."""
    return _serving(component, "insecure", version)


def listeners(component: str, flags: dict[str, str], version: Version | None) -> list[Listener]:
    """The ports `component` at `version` serves with these flags."""
    secure_port, insecure_port = PORTS[component]
    found = []
    if has("flag", component, SECURE_ADDRESS, version):
        port = flags.get(
            "--secure-port", secure_port if serves_securely(component, version) else "0"
        )
        if port != "0":
            found.append(Listener(SECURE_ADDRESS, flags.get(SECURE_ADDRESS), port, True))
    if serves_insecurely(component, version):
        port = flags.get("--port", insecure_port)
        if port != "0":
            found.append(Listener(INSECURE_ADDRESS, flags.get(INSECURE_ADDRESS), port, False))
    return found


def _judge(component: str, flags: dict[str, str], version: Version | None) -> tuple[bool, str]:
    served = listeners(component, flags, version)
    if not served:
        return True, "no port served (--secure-port=0 and --port=0)"
    text = "; ".join(listener.describe(version) for listener in served)
    if not any(listener.secure for listener in served):
        if not has("flag", component, SECURE_ADDRESS, version):
            text += f" ({component} {version} has no --bind-address: --address is its listener)"
        elif not serves_securely(component, version):
            text += f" ({component} {version} serves no secure port unless --secure-port is set)"
    return all(listener.on_loopback for listener in served), text


def expected(component: str, version: Version | None) -> str:
    if serves_insecurely(component, version) and serves_securely(component, version):
        return "--bind-address and --address on loopback (or --port=0)"
    if serves_insecurely(component, version):
        return "--address on a loopback address"
    return "--bind-address=127.0.0.1"


def evaluate_listeners(check: Check, snap: NodeSnapshot) -> Result:
    """1.3.7 / 1.4.2 on the manifest (what will run) and the live process (what runs now)."""
    comp = check.component
    version = snap.versions.of(comp)
    want = expected(comp, version)
    if comp in snap.manifest_errors:
        return Result(check, Status.ERROR, want, None, None, str(snap.manifest_errors[comp]))
    manifest = snap.manifests.get(comp)
    live = snap.live_flags(comp)
    if manifest is None and live is None:
        why = f"{comp} not found (no file and no running process)"
        return Result(check, Status.SKIP, want, None, None, why)
    file_out = _judge(comp, manifest.flags.values, version) if manifest is not None else None
    live_out = _judge(comp, live.values, version) if live is not None else None
    file_value = file_out[1] if file_out else None
    live_value = live_out[1] if live_out else None
    disagreement = None
    if file_out and live_out and file_out[1] != live_out[1]:
        disagreement = f"the file says {file_out[1]}, the running {comp} still has {live_out[1]}"
    outcomes = [o for o in (file_out, live_out) if o is not None]
    if all(passed for passed, _ in outcomes):
        return Result(
            check, Status.PASS, want, file_value, live_value, outcomes[0][1], disagreement
        )
    failed = file_out if file_out is not None and not file_out[0] else live_out
    assert failed is not None
    where = "file" if failed is file_out else f"running {comp}"
    status = Status.FAIL if check.scored else Status.WARN
    reason = f"{where}: {failed[1]}"
    return Result(check, status, want, file_value, live_value, reason, disagreement)
