"""CIS 1.2.1 as the API server decides it: `--anonymous-auth`, or the `anonymous` section of the
AuthenticationConfiguration that `--authentication-config` names (Kubernetes 1.32 and later),
which can allow anonymous requests on chosen paths only (KEP-4633).

kubeadm's liveness, readiness and startup probes of the API server are anonymous, and
`kubeadm join` token discovery reads the cluster-info ConfigMap before it has credentials: an
allow-list of exactly those paths is the fix that keeps a kubeadm node working, and passes.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from cis_tui.audit.evaluate import Result, Status
from cis_tui.audit.flags import parse_bool
from cis_tui.audit.node import InputError, NodeSnapshot, load_yaml_document, read_text_file
from cis_tui.benchmarks.catalog import Check

COMPONENT = "kube-apiserver"
HEALTH_PATHS = ("/livez", "/readyz", "/healthz")
#: What `kubeadm join` token discovery reads anonymously (KEP-4633 story 2).
CLUSTER_INFO_PATH = "/api/v1/namespaces/kube-public/configmaps/cluster-info"
#: Paths an allow-list may hold and still pass 1.2.1.
ALLOWED_PATHS = (*HEALTH_PATHS, CLUSTER_INFO_PATH)
EXPECTED = (
    "--anonymous-auth=false, or an AuthenticationConfiguration (--authentication-config) "
    "allowing anonymous requests only to /livez, /readyz, /healthz and the kube-public "
    "cluster-info ConfigMap"
)


@dataclass(frozen=True)
class AnonymousSection:
    """The `anonymous` section of an AuthenticationConfiguration."""

    enabled: bool
    paths: tuple[str, ...]  # the conditions' paths; empty: every path


def parse_anonymous_section(data: Any) -> AnonymousSection | None:
    """The `anonymous` section of a loaded AuthenticationConfiguration; None when it has none.
    ValueError when the section is malformed."""
    if not isinstance(data, dict) or data.get("kind") != "AuthenticationConfiguration":
        raise ValueError("not an AuthenticationConfiguration")
    section = data.get("anonymous")
    if section is None:
        return None
    if not isinstance(section, dict) or not isinstance(section.get("enabled", False), bool):
        raise ValueError("anonymous must be a mapping with a boolean enabled")
    paths = []
    for condition in section.get("conditions") or []:
        if not isinstance(condition, dict) or not isinstance(condition.get("path"), str):
            raise ValueError("anonymous.conditions entries need a path")
        paths.append(condition["path"])
    return AnonymousSection(bool(section.get("enabled", False)), tuple(paths))


def read_anonymous_section(snap: NodeSnapshot, node_path: str) -> AnonymousSection | None:
    """The `anonymous` section of the file `--authentication-config` names (InputError)."""
    path = snap.layout.confined(snap.layout.host_path(node_path))
    what = "authentication configuration"
    data = load_yaml_document(read_text_file(path, what), path, what)
    try:
        return parse_anonymous_section(data)
    except ValueError as exc:
        raise InputError(path, str(exc)) from None


@dataclass(frozen=True)
class _Outcome:
    passed: bool
    value: str  # what was found, for display
    error: str = ""
    why: str = ""  # why a pass is a pass, when that is not obvious


def _judge(flags: dict[str, str], snap: NodeSnapshot) -> _Outcome:
    """What one source (the manifest or the running process) says about anonymous requests."""
    flag = flags.get("--anonymous-auth")
    config = flags.get("--authentication-config")
    section = None
    if config:
        try:
            section = read_anonymous_section(snap, config)
        except InputError as exc:
            return _Outcome(False, f"--authentication-config={config}", str(exc))
    if section is not None:
        if flag is not None:
            return _Outcome(
                False,
                f"--anonymous-auth={flag} and an anonymous section in {config}: the API server "
                "refuses to start with both",
            )
        if not section.enabled:
            return _Outcome(True, f"anonymous requests disabled ({config})")
        if not section.paths:
            return _Outcome(False, f"{config} allows anonymous requests to every path")
        extra = [p for p in section.paths if p not in ALLOWED_PATHS]
        if extra:
            return _Outcome(False, f"{config} also allows anonymous requests to {', '.join(extra)}")
        return _Outcome(
            True,
            f"anonymous requests only to {', '.join(section.paths)} ({config})",
            why="kubeadm's probes and join discovery keep working; any other anonymous request "
            "gets 401",
        )
    if flag is None:
        return _Outcome(False, "--anonymous-auth absent (default true)")
    return _Outcome(parse_bool(flag) is False, f"--anonymous-auth={flag}")


def _expected(snap: NodeSnapshot) -> str:
    """What passes on this API server: the allow-list needs v1.32 (KEP-4633)."""
    version = snap.versions.of(COMPONENT)
    if version is not None and (version.major, version.minor) < (1, 32):
        return f"--anonymous-auth=false ({COMPONENT} {version} has no anonymous allow-list)"
    return EXPECTED


def evaluate_anonymous_auth(check: Check, snap: NodeSnapshot) -> Result:
    """1.2.1 on the manifest (what will run) and the live process (what runs now)."""
    expected = _expected(snap)
    if COMPONENT in snap.manifest_errors:
        return Result(
            check, Status.ERROR, expected, None, None, str(snap.manifest_errors[COMPONENT])
        )
    manifest = snap.manifests.get(COMPONENT)
    live = snap.live_flags(COMPONENT)
    if manifest is None and live is None:
        why = f"{COMPONENT} not found (no file and no running process)"
        return Result(check, Status.SKIP, expected, None, None, why)
    file_out = _judge(manifest.flags.values, snap) if manifest is not None else None
    live_out = _judge(live.values, snap) if live is not None else None
    outcomes = [o for o in (file_out, live_out) if o is not None]
    file_value = file_out.value if file_out else None
    live_value = live_out.value if live_out else None
    for out in outcomes:
        if out.error:
            return Result(check, Status.ERROR, expected, file_value, live_value, out.error)
    disagreement = None
    if file_out and live_out and file_out.value != live_out.value:
        disagreement = (
            f"the file says {file_out.value}, the running {COMPONENT} still has {live_out.value}"
        )
    if all(o.passed for o in outcomes):
        first = outcomes[0]
        reason = f"{first.value}: {first.why}" if first.why else first.value
        return Result(check, Status.PASS, expected, file_value, live_value, reason, disagreement)
    failed = file_out if file_out is not None and not file_out.passed else live_out
    assert failed is not None
    where = "file" if failed is file_out else f"running {COMPONENT}"
    status = Status.FAIL if check.scored else Status.WARN
    return Result(
        check, status, expected, file_value, live_value, f"{where}: {failed.value}", disagreement
    )
