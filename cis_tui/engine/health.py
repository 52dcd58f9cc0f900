"""The health gate: the component's own probe, as the kubelet would call it.

Endpoints come from the manifest (startupProbe, readinessProbe, livenessProbe; named ports
resolved; scheme, host and path as written). TLS is verified against the cluster CA when the
serving certificate chains to it; otherwise, on loopback only, unverified like the kubelet's
own probes (and reported). 401/403 means anonymous access is off: retry with a client
certificate signed by the cluster CA.
"""

from __future__ import annotations

import asyncio
import ipaddress
import ssl
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

from cis_tui.audit.node import Manifest
from cis_tui.layout import HealthSettings


@dataclass(frozen=True)
class Endpoint:
    url: str
    scheme: str
    host: str
    probe: str  # which probe it came from

    @property
    def loopback(self) -> bool:
        if self.host == "localhost":
            return True
        try:
            return ipaddress.ip_address(self.host).is_loopback
        except ValueError:
            return False


@dataclass(frozen=True)
class ProbeResult:
    ok: bool
    detail: str  # "200", "401 (anonymous)", "connection refused", ...
    latency_ms: float
    tls: str  # "verified", "unverified", "none"
    client_cert: bool = False


def manifest_endpoints(manifest: Manifest) -> list[Endpoint]:
    """Distinct probe endpoints of a manifest, in startup, readiness, liveness order."""
    seen: dict[str, Endpoint] = {}
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
        seen.setdefault(url, Endpoint(url, probe.scheme.upper(), host, probe.kind))
    return list(seen.values())


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


class Prober:
    """Calls endpoints with the right TLS; one instance per gate (contexts are reused)."""

    def __init__(self, ca_cert: Path, client_cert: Path | None, client_key: Path | None) -> None:
        self.ca_cert = ca_cert
        self.client_cert = client_cert
        self.client_key = client_key
        self._clients: dict[tuple[bool, bool], httpx.AsyncClient] = {}
        self.unverified_used = False
        # Endpoints whose certificate does not chain to the CA (loopback only), and those that
        # want a client certificate: learnt once per gate, not re-tried on every poll.
        self._unverified: set[str] = set()
        self._needs_cert: set[str] = set()

    def _context(self, verify: bool, with_cert: bool) -> ssl.SSLContext:
        if verify:
            ctx = ssl.create_default_context(cafile=str(self.ca_cert))
        else:
            ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
            ctx.check_hostname = False
            ctx.verify_mode = ssl.CERT_NONE
        if with_cert and self.client_cert and self.client_key:
            ctx.load_cert_chain(str(self.client_cert), str(self.client_key))
        return ctx

    def _client(self, verify: bool, with_cert: bool) -> httpx.AsyncClient:
        key = (verify, with_cert)
        if key not in self._clients:
            try:
                ctx: ssl.SSLContext | bool = self._context(verify, with_cert)
            except (OSError, ssl.SSLError):
                ctx = False if not verify else ssl.create_default_context()
            self._clients[key] = httpx.AsyncClient(
                verify=ctx, timeout=httpx.Timeout(5.0, connect=2.0), trust_env=False
            )
        return self._clients[key]

    async def aclose(self) -> None:
        for client in self._clients.values():
            await client.aclose()
        self._clients.clear()

    async def probe(self, endpoint: Endpoint) -> ProbeResult:
        start = time.perf_counter()
        tls = "none" if endpoint.scheme == "HTTP" else "verified"
        if tls == "verified" and endpoint.url in self._unverified:
            tls = "unverified"
        with_cert = endpoint.url in self._needs_cert
        try:
            try:
                response = await self._client(tls == "verified", with_cert).get(endpoint.url)
            except httpx.ConnectError as exc:
                if tls != "verified" or not _is_verify_error(exc):
                    raise
                if not endpoint.loopback:
                    return ProbeResult(
                        False,
                        "TLS certificate not trusted by the cluster CA",
                        _ms(start),
                        tls,
                    )
                tls = "unverified"
                self.unverified_used = True
                self._unverified.add(endpoint.url)
                response = await self._client(False, with_cert).get(endpoint.url)
            if response.status_code in (401, 403) and self.client_cert and not with_cert:
                with_cert = True
                self._needs_cert.add(endpoint.url)
                response = await self._client(tls == "verified", True).get(endpoint.url)
            ok = 200 <= response.status_code < 300
            detail = str(response.status_code)
            if response.status_code in (401, 403):
                detail += " (anonymous access off, client certificate refused)"
            elif with_cert:
                detail += " (client certificate)"
            return ProbeResult(ok, detail, _ms(start), tls, with_cert)
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


@dataclass(frozen=True)
class GateResult:
    healthy: bool
    message: str
    first_healthy: float | None = None  # time.time() of the first healthy answer
    polls: int = 0


PollCallback = Callable[[Endpoint, ProbeResult, float], None]


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
) -> GateResult:
    """Poll until every endpoint answers healthy `stable_successes` times in a row spanning
    `stable_seconds`. A failure or a crash (alive() returns a reason) resets the streak."""
    if not endpoints:
        return GateResult(False, "the manifest defines no HTTP probe to gate on")
    streak_start: float | None = None
    streak = 0
    first_healthy: float | None = None
    polls = 0
    last_problem = "no answer yet"
    deadline = started + timeout
    while True:
        now = time.monotonic()
        if now >= deadline:
            return GateResult(
                False, f"not healthy within {timeout:.0f}s: {last_problem}", first_healthy, polls
            )
        if cancelled():
            return GateResult(False, "cancelled", first_healthy, polls)
        crash = await alive()
        results = await asyncio.gather(*(prober.probe(e) for e in endpoints))
        polls += 1
        elapsed = time.monotonic() - started
        for endpoint, result in zip(endpoints, results, strict=True):
            on_poll(endpoint, result, elapsed)
        good = crash is None and all(r.ok for r in results)
        if good:
            if first_healthy is None:
                first_healthy = time.time()
                on_first_healthy(first_healthy)
            if streak == 0:
                streak_start = time.monotonic()
            streak += 1
            assert streak_start is not None
            if (
                streak >= settings.stable_successes
                and time.monotonic() - streak_start >= settings.stable_seconds
            ):
                return GateResult(
                    True,
                    f"healthy {streak} times over {time.monotonic() - streak_start:.1f}s",
                    first_healthy,
                    polls,
                )
        else:
            last_problem = crash or next(
                f"{e.url}: {r.detail}" for e, r in zip(endpoints, results, strict=True) if not r.ok
            )
            streak = 0
            streak_start = None
        await asyncio.sleep(poll_interval(settings, time.monotonic() - started))
