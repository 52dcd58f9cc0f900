"""The kubelet's probes of one container, as pkg/kubelet/prober runs them.

Every probe is an anonymous HTTP(S) GET (TLS unverified, the probe's httpHeaders, the kubelet's
User-Agent); 200-399 is success. Each probe starts initialDelaySeconds after the container
started and repeats every periodSeconds, each attempt bounded by timeoutSeconds. A startup
probe gates the others; failing failureThreshold times in a row, it or the liveness probe gets
the container killed and restarted (with the usual CrashLoopBackOff, which the pod worker
applies). Readiness only marks the container ready or not. Between attempts the loops sleep:
nothing here polls.
"""

from __future__ import annotations

import asyncio
import contextlib
import ssl
import time
from collections.abc import AsyncIterator, Callable, Sequence

from cis_tui.sandbox import events as ev
from cis_tui.sandbox.pods import Probe

USER_AGENT = "kube-probe/1.35"
#: What a probe loop reports: an event name and its details (component and pid are added).
ProbeLog = Callable[..., None]

_unverified: ssl.SSLContext | None = None


def _tls() -> ssl.SSLContext:
    """The kubelet skips verification of probe certificates; one context for every probe."""
    global _unverified
    if _unverified is None:
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
        _unverified = ctx
    return _unverified


async def http_probe(probe: Probe, timeout: float | None = None) -> tuple[bool, str]:
    """One attempt, as the kubelet makes it: (success, the kubelet's words for the result)."""
    limit = probe.timeout if timeout is None else timeout
    url = probe.url
    host = f"[{probe.host}]" if ":" in probe.host else probe.host
    headers = {"Host": f"{host}:{probe.port}", "User-Agent": USER_AGENT, "Accept": "*/*"}
    headers.update(dict(probe.headers))
    writer: asyncio.StreamWriter | None = None
    try:
        reader, writer = await asyncio.wait_for(
            asyncio.open_connection(
                probe.host, probe.port, ssl=_tls() if probe.scheme == "HTTPS" else None
            ),
            limit,
        )
        lines = "".join(f"{k}: {v}\r\n" for k, v in headers.items())
        writer.write(f"GET {probe.path} HTTP/1.1\r\n{lines}Connection: close\r\n\r\n".encode())
        await writer.drain()
        status_line = await asyncio.wait_for(reader.readline(), limit)
    except asyncio.TimeoutError:
        return False, f'Get "{url}": context deadline exceeded (Client.Timeout exceeded)'
    except ConnectionRefusedError:
        return (
            False,
            f'Get "{url}": dial tcp {probe.host}:{probe.port}: connect: connection refused',
        )
    except (OSError, ValueError) as exc:  # ssl.SSLError is an OSError
        return False, f'Get "{url}": {str(exc) or type(exc).__name__}'
    finally:
        if writer is not None:
            writer.close()
            with contextlib.suppress(Exception):
                await writer.wait_closed()
    parts = status_line.split()
    if len(parts) < 2 or not parts[1].isdigit():
        return False, f'Get "{url}": malformed HTTP response'
    code = int(parts[1])
    if 200 <= code < 400:
        return True, f"HTTP probe succeeded with statuscode: {code}"
    return False, f"HTTP probe failed with statuscode: {code}"


async def _ticks(probe: Probe, started: float) -> AsyncIterator[None]:
    """The probe's schedule: initialDelaySeconds after the container started, then every
    periodSeconds (an attempt that overran its period is followed by the next at once)."""
    due = max(started + probe.initial_delay, time.monotonic())
    while True:
        wait = due - time.monotonic()
        if wait > 0:
            await asyncio.sleep(wait)
        yield
        due = max(due + probe.period, time.monotonic())


async def _until_threshold(probe: Probe, started: float, log: ProbeLog, once: bool) -> bool:
    """Run a startup (`once`) or liveness probe: True once a startup probe succeeds, False when
    the probe failed failureThreshold times in a row (the container must be restarted)."""
    failures = 0
    async for _ in _ticks(probe, started):
        ok, message = await http_probe(probe)
        if ok:
            if once or failures:
                log(ev.PROBE_SUCCEEDED, probe=probe.name, message=message)
            if once:
                return True
            failures = 0
            continue
        failures += 1
        log(
            ev.PROBE_FAILED,
            probe=probe.name,
            message=f"{probe.name.capitalize()} probe failed: {message}",
            failures=failures,
            threshold=probe.failure_threshold,
        )
        if failures >= probe.failure_threshold:
            return False
    return False  # pragma: no cover - the schedule never ends


async def _readiness(probe: Probe, started: float, log: ProbeLog) -> None:
    """Mark the container ready after successThreshold successes, not ready after
    failureThreshold failures; logged on every change. Runs until cancelled."""
    ready = False
    failures = successes = 0
    async for _ in _ticks(probe, started):
        ok, message = await http_probe(probe)
        failures, successes = (0, successes + 1) if ok else (failures + 1, 0)
        if not ready and successes >= probe.success_threshold:
            ready = True
            log(ev.READY, probe=probe.name, message=message)
        elif ready and failures >= probe.failure_threshold:
            ready = False
            log(ev.NOT_READY, probe=probe.name, message=f"Readiness probe failed: {message}")


async def cancel_and_wait(task: asyncio.Future[object]) -> None:
    """Cancel a task and wait until it has ended. Python 3.11's asyncio.wait_for can swallow a
    cancel that lands as its awaitable completes (a probe answering just then), so one cancel
    may not end a probe loop: cancel again until it does."""
    while not task.done():
        task.cancel()
        await asyncio.wait({task}, timeout=0.1)
    with contextlib.suppress(asyncio.CancelledError, Exception):
        task.result()


async def probe_container(
    container: str, probes: Sequence[Probe], started: float, log: ProbeLog
) -> str:
    """Probe one running container like the kubelet; return why it must be restarted.

    Returns only when the startup or liveness probe failed failureThreshold times in a row;
    otherwise runs until cancelled (the container exited, or its pod is being replaced).
    """
    by_kind = {p.kind: p for p in probes}
    startup = by_kind.get("startupProbe")
    if startup is not None and not await _until_threshold(startup, started, log, once=True):
        return f"Container {container} failed startup probe, will be restarted"
    readiness = by_kind.get("readinessProbe")
    liveness = by_kind.get("livenessProbe")
    ready_task = asyncio.ensure_future(_readiness(readiness, started, log)) if readiness else None
    try:
        if liveness is None:
            # Nothing can fail this container any more: wait to be cancelled.
            await asyncio.get_running_loop().create_future()
        else:
            await _until_threshold(liveness, started, log, once=False)
        return f"Container {container} failed liveness probe, will be restarted"
    finally:
        if ready_task is not None:
            await cancel_and_wait(ready_task)
