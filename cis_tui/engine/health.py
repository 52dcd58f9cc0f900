"""The health gate: the component's own probe, judged the way the kubelet will judge it.

Endpoints come from the manifest (startupProbe, readinessProbe, livenessProbe; named ports
resolved; scheme, host, path and httpHeaders as written). The kubelet sends no credentials, so
neither does the gate: 200-399 is healthy, anything else (401 and 403 included) a failure, and
401/403 answered a few times in a row ends the gate at once, since the kubelet would restart the
component in a loop (kubeadm#798). TLS is verified against the cluster CA when the serving
certificate chains to it; otherwise, only when the host resolves to loopback addresses alone,
unverified like the kubelet's own probes (and reported). A CA file that cannot be loaded fails
the gate; the system trust store is never used instead.
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
import ssl
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import httpx

from cis_tui.audit.node import Manifest
from cis_tui.layout import HealthSettings

#: 401/403 answers in a row, over at least AUTH_REFUSAL_SECONDS, after which the gate fails
#: without waiting for its timeout (the span rides out a 403 while an API server that is
#: starting has not yet loaded its RBAC roles).
AUTH_FAILURES_TO_FAIL = 3
AUTH_REFUSAL_SECONDS = 2.0
#: The gate never waits longer than this for one answer (kubeadm's probes allow 15 s).
PROBE_TIMEOUT_CAP = 5.0
#: What the kubelet sends with every HTTP probe (pkg/probe/http/request.go).
KUBELET_HEADERS = {"User-Agent": "kube-probe/1.35", "Accept": "*/*"}


class GateSetupError(Exception):
    """The gate cannot probe at all (e.g. the cluster CA file cannot be loaded)."""


@dataclass(frozen=True)
class Endpoint:
    url: str
    scheme: str
    host: str
    probe: str  # which probe it came from (the first one, when several share the URL)
    headers: tuple[tuple[str, str], ...] = ()  # the probe's httpHeaders
    timeout: float = PROBE_TIMEOUT_CAP
    #: initialDelaySeconds + periodSeconds when this URL is (also) the liveness probe.
    liveness_window: float | None = None


@dataclass(frozen=True)
class ProbeResult:
    ok: bool
    detail: str  # "200", "401 (anonymous probe refused)", "connection refused", ...
    latency_ms: float
    tls: str  # "verified", "unverified", "none"
    status: int | None = None  # the HTTP status, when there was an answer

    @property
    def auth_refused(self) -> bool:
        return self.status in (401, 403)


def manifest_endpoints(manifest: Manifest) -> list[Endpoint]:
    """Distinct probe endpoints of a manifest, in startup, readiness, liveness order."""
    seen: dict[tuple[str, tuple[tuple[str, str], ...]], Endpoint] = {}
    for probe in manifest.probes:
        port = probe.port
        if isinstance(port, str) and not port.isdigit():
            if port not in manifest.ports:
                continue
            port = manifest.ports[port]
        host = probe.host
        shown = f"[{host}]" if ":" in host else host
        path = probe.path if probe.path.startswith("/") else f"/{probe.path}"
        url = f"{probe.scheme.lower()}://{shown}:{port}{path}"
        key = (url, probe.headers)
        endpoint = seen.setdefault(
            key,
            Endpoint(
                url,
                probe.scheme.upper(),
                host,
                probe.kind,
                probe.headers,
                min(probe.timeout, PROBE_TIMEOUT_CAP),
            ),
        )
        if probe.kind == "livenessProbe":
            seen[key] = replace(endpoint, liveness_window=probe.initial_delay + probe.period)
    return list(seen.values())


def liveness_window(endpoints: list[Endpoint]) -> float | None:
    """The kubelet's first liveness judgement of a new process: initialDelaySeconds +
    periodSeconds of the liveness probe (None: the manifest has no HTTP liveness probe)."""
    return next((e.liveness_window for e in endpoints if e.liveness_window is not None), None)


def stability_window(
    settings: HealthSettings, component: str, endpoints: list[Endpoint]
) -> tuple[float, str]:
    """How long `component` must stay healthy, and where that figure comes from."""
    liveness = liveness_window(endpoints)
    window = settings.stable_window(component, liveness)
    if component in settings.stable_seconds_for or settings.stable_seconds is not None:
        return window, "[health] stable_seconds"
    if liveness is not None:
        return window, "livenessProbe initialDelaySeconds + periodSeconds"
    return window, "no liveness probe: the default"


def kubelet_endpoints(config: dict[str, Any] | None) -> list[Endpoint]:
    """The kubelet's /healthz from its config (healthzBindAddress, healthzPort)."""
    config = config or {}
    port = config.get("healthzPort", 10248)
    if not port:
        return []
    host = str(config.get("healthzBindAddress") or "127.0.0.1")
    if host in {"0.0.0.0", "::"}:
        host = "127.0.0.1"
    shown = f"[{host}]" if ":" in host else host
    return [Endpoint(f"http://{shown}:{port}/healthz", "HTTP", host, "healthz")]


def _is_loopback_address(address: str) -> bool:
    try:
        return ipaddress.ip_address(address.split("%", 1)[0]).is_loopback
    except ValueError:
        return False


class Prober:
    """Calls endpoints anonymously with the right TLS; one instance per gate."""

    def __init__(self, ca_cert: Path) -> None:
        self.ca_cert = ca_cert
        self._clients: dict[bool, httpx.AsyncClient] = {}
        self.unverified_used = False
        # Endpoints whose certificate does not chain to the CA (loopback only): learnt once.
        self._unverified: set[str] = set()
        self._loopback: dict[str, bool] = {}

    def check_ca(self) -> None:
        """GateSetupError unless the cluster CA file loads (checked before any change)."""
        self._context(True)

    def _context(self, verify: bool) -> ssl.SSLContext:
        if not verify:
            ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
            ctx.check_hostname = False
            ctx.verify_mode = ssl.CERT_NONE
            return ctx
        try:
            return ssl.create_default_context(cafile=str(self.ca_cert))
        except (OSError, ssl.SSLError) as exc:
            reason = getattr(exc, "strerror", None) or getattr(exc, "reason", None) or exc
            raise GateSetupError(
                f"cannot load the cluster CA file {self.ca_cert} ({reason}): no probe is "
                "made without it"
            ) from None

    def _client(self, verify: bool) -> httpx.AsyncClient:
        if verify not in self._clients:
            self._clients[verify] = httpx.AsyncClient(
                verify=self._context(verify),
                timeout=httpx.Timeout(PROBE_TIMEOUT_CAP, connect=2.0),
                trust_env=False,
                follow_redirects=False,
            )
        return self._clients[verify]

    async def aclose(self) -> None:
        for client in self._clients.values():
            await client.aclose()
        self._clients.clear()

    async def is_loopback(self, host: str) -> bool:
        """True when every address `host` resolves to is a loopback address."""
        if host not in self._loopback:
            try:
                ipaddress.ip_address(host.split("%", 1)[0])
                addresses = [host]
            except ValueError:
                try:
                    infos = await asyncio.get_running_loop().getaddrinfo(
                        host, None, type=socket.SOCK_STREAM
                    )
                except (OSError, UnicodeError):
                    infos = []
                addresses = [str(info[4][0]) for info in infos]
            self._loopback[host] = bool(addresses) and all(map(_is_loopback_address, addresses))
        return self._loopback[host]

    async def probe(self, endpoint: Endpoint) -> ProbeResult:
        """One anonymous GET, as the kubelet makes it. GateSetupError: cannot probe at all."""
        start = time.perf_counter()
        tls = "none" if endpoint.scheme == "HTTP" else "verified"
        if tls == "verified" and endpoint.url in self._unverified:
            tls = "unverified"
        headers = {**KUBELET_HEADERS, **dict(endpoint.headers)}
        try:
            try:
                response = await self._client(tls == "verified").get(
                    endpoint.url, headers=headers, timeout=endpoint.timeout
                )
            except httpx.ConnectError as exc:
                if tls != "verified" or not _is_verify_error(exc):
                    raise
                if not await self.is_loopback(endpoint.host):
                    return ProbeResult(
                        False,
                        f"TLS certificate not trusted by the cluster CA, and {endpoint.host} "
                        "is not only loopback: no unverified fallback",
                        _ms(start),
                        tls,
                    )
                tls = "unverified"
                self.unverified_used = True
                self._unverified.add(endpoint.url)
                response = await self._client(False).get(
                    endpoint.url, headers=headers, timeout=endpoint.timeout
                )
            status = response.status_code
            detail = str(status)
            if status in (401, 403):
                detail += (
                    " (refused the probe's own httpHeaders)"
                    if endpoint.headers
                    else " (anonymous probe refused)"
                )
            return ProbeResult(200 <= status < 400, detail, _ms(start), tls, status)
        except httpx.ConnectError as exc:
            return ProbeResult(False, _short(exc), _ms(start), tls)
        except httpx.TimeoutException:
            return ProbeResult(False, "timed out", _ms(start), tls)
        except httpx.HTTPError as exc:
            return ProbeResult(False, _short(exc), _ms(start), tls)


def _is_verify_error(exc: Exception) -> bool:
    text = repr(exc) + repr(getattr(exc, "__cause__", ""))
    return "CERTIFICATE_VERIFY_FAILED" in text or "certificate verify failed" in text


def _short(exc: Exception) -> str:
    text = str(exc) or type(exc).__name__
    if "Connection refused" in text or "All connection attempts failed" in text:
        return "connection refused"
    return text.splitlines()[0][:120]


def _ms(start: float) -> float:
    return (time.perf_counter() - start) * 1000


def poll_interval(settings: HealthSettings, elapsed: float) -> float:
    """Short polls while a restart is fresh, backing off to poll_max over ~30 s."""
    return min(settings.poll_max, settings.poll_initial + elapsed / 30.0)


def auth_refusal_message(
    endpoint: Endpoint, result: ProbeResult, times: int, seconds: float
) -> str:
    """Why a 401/403 fails the gate at once: the kubelet would restart the component."""
    again = f"{times} times in a row over {seconds:.1f} s"
    if endpoint.headers:
        return (
            f"{endpoint.url} answered {result.status} to the probe's own httpHeaders {again}: "
            "the kubelet would fail this probe and restart the component"
        )
    return (
        f"{endpoint.url} answered {result.status} to an anonymous request {again}: the "
        "kubelet's probes send no credentials, so it would fail them and restart the component "
        "in a loop (kubeadm#798)"
    )


@dataclass(frozen=True)
class Stability:
    """How far the current healthy streak has got towards the window."""

    seconds: float  # how long the streak has lasted (0 when the last poll failed)
    window: float
    successes: int
    needed: int

    @property
    def reached(self) -> bool:
        return self.successes >= self.needed and self.seconds >= self.window


@dataclass(frozen=True)
class GateResult:
    healthy: bool
    message: str
    first_healthy: float | None = None  # time.time() of the first healthy answer
    polls: int = 0
    stable: float | None = None  # how long the final healthy streak lasted


PollCallback = Callable[[Endpoint, ProbeResult, float, Stability], None]


async def health_gate(
    endpoints: list[Endpoint],
    prober: Prober,
    settings: HealthSettings,
    timeout: float,
    started: float,
    on_poll: PollCallback,
    on_first_healthy: Callable[[float], None],
    alive: Callable[[], Awaitable[str | None]],
    cancelled: Callable[[], bool],
    *,
    window: float | None = None,
) -> GateResult:
    """Poll until every endpoint answers healthy `stable_successes` times in a row spanning
    `window` seconds. A failure or a crash (alive() returns a reason) resets the streak;
    401/403 answered AUTH_FAILURES_TO_FAIL times in a row, over AUTH_REFUSAL_SECONDS at least,
    fails the gate at once."""
    if not endpoints:
        return GateResult(False, "the manifest defines no HTTP probe to gate on")
    if window is None:
        window = settings.stable_window("", None)
    streak_start: float | None = None
    streak = 0
    refusals: dict[str, tuple[int, float]] = {}  # url -> (answers in a row, since)
    first_healthy: float | None = None
    polls = 0
    last_problem = "no answer yet"
    deadline = started + timeout
    while True:
        now = time.monotonic()
        if now >= deadline:
            if streak_start is not None:
                last_problem = (
                    f"healthy for only {now - streak_start:.1f} s of the {window:g} s "
                    "stability window"
                )
            return GateResult(
                False, f"not healthy within {timeout:.0f}s: {last_problem}", first_healthy, polls
            )
        if cancelled():
            return GateResult(False, "cancelled", first_healthy, polls)
        crash = await alive()
        answers = await asyncio.gather(
            *(prober.probe(e) for e in endpoints), return_exceptions=True
        )
        for answer in answers:
            if isinstance(answer, GateSetupError):
                return GateResult(False, str(answer), first_healthy, polls)
            if isinstance(answer, BaseException):
                raise answer
        results = [a for a in answers if isinstance(a, ProbeResult)]
        polls += 1
        elapsed = time.monotonic() - started
        good = crash is None and all(r.ok for r in results)
        if good:
            if first_healthy is None:
                first_healthy = time.time()
                on_first_healthy(first_healthy)
            if streak == 0:
                streak_start = time.monotonic()
            streak += 1
        else:
            streak = 0
            streak_start = None
        stability = Stability(
            time.monotonic() - streak_start if streak_start is not None else 0.0,
            window,
            streak,
            settings.stable_successes,
        )
        for endpoint, result in zip(endpoints, results, strict=True):
            on_poll(endpoint, result, elapsed, stability)
            if not result.auth_refused:
                refusals.pop(endpoint.url, None)
                continue
            times, since = refusals.get(endpoint.url, (0, time.monotonic()))
            refusals[endpoint.url] = (times + 1, since)
            span = time.monotonic() - since
            if times + 1 >= AUTH_FAILURES_TO_FAIL and span >= AUTH_REFUSAL_SECONDS:
                message = auth_refusal_message(endpoint, result, times + 1, span)
                return GateResult(False, message, first_healthy, polls)
        if stability.reached:
            return GateResult(
                True,
                f"stable {stability.seconds:.1f} s / {window:g} s, "
                f"{streak} healthy answers in a row",
                first_healthy,
                polls,
                round(stability.seconds, 3),
            )
        if not good:
            last_problem = crash or next(
                f"{e.url}: {r.detail}" for e, r in zip(endpoints, results, strict=True) if not r.ok
            )
        await asyncio.sleep(poll_interval(settings, time.monotonic() - started))
