"""The health gate judges a probe as the kubelet will: real HTTPS servers on this machine.

Every server here is a real TLS listener; what it saw (client certificates, headers) is
recorded by the server itself, not inferred from the client.
"""

from __future__ import annotations

import asyncio
import http.server
import json
import os
import re
import shutil
import socket
import ssl
import subprocess
import sys
import textwrap
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import psutil
import pytest

from cis_tui.audit.node import parse_manifest
from cis_tui.engine.events import Event, Kind, format_event
from cis_tui.engine.health import (
    AUTH_FAILURES_TO_FAIL,
    Endpoint,
    GateResult,
    Prober,
    ProbeResult,
    Stability,
    health_gate,
    manifest_endpoints,
    stability_window,
)
from cis_tui.errors import UserError
from cis_tui.layout import HealthSettings, load_settings
from cis_tui.sandbox.pki import KeyPair, make_ca, make_cert, self_signed_serving

KUBEADM = Path(__file__).resolve().parents[2] / "cis_tui" / "sandbox" / "kubeadm"
FAST = HealthSettings(stable_successes=2, stable_seconds=0.3, poll_initial=0.05, poll_max=0.2)


@dataclass(frozen=True)
class Pki:
    dir: Path
    ca: Path
    client_cert: Path
    client_key: Path
    ca_pair: KeyPair
    serving: KeyPair  # signed by the CA, for 127.0.0.1 and localhost


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Pki:
    d = tmp_path_factory.mktemp("pki")
    ca = make_ca("kubernetes")
    client = make_cert(
        ca, "kube-apiserver-kubelet-client", orgs=["kubeadm:cluster-admins"], client=True
    )
    serving = make_cert(ca, "kube-apiserver", server=True, dns=["localhost"], ips=["127.0.0.1"])
    (d / "ca.crt").write_bytes(ca.cert_pem)
    (d / "client.crt").write_bytes(client.cert_pem)
    (d / "client.key").write_bytes(client.key_pem)
    return Pki(d, d / "ca.crt", d / "client.crt", d / "client.key", ca, serving)


@dataclass
class Seen:
    client_cert: bool
    headers: dict[str, str]


@dataclass
class Server:
    """A threaded HTTPS server; `answer(seen) -> status` decides each reply."""

    port: int
    seen: list[Seen] = field(default_factory=list)


@pytest.fixture
def https_server(tmp_path: Path, pki: Pki) -> Iterator[Callable[..., Server]]:
    servers: list[http.server.ThreadingHTTPServer] = []

    def start(
        answer: Callable[[Seen], int],
        serving: KeyPair | None = None,
        bind: str = "127.0.0.1",
    ) -> Server:
        pair = serving or pki.serving
        n = len(servers)
        (tmp_path / f"s{n}.crt").write_bytes(pair.cert_pem)
        (tmp_path / f"s{n}.key").write_bytes(pair.key_pem)
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.load_cert_chain(tmp_path / f"s{n}.crt", tmp_path / f"s{n}.key")
        # Client certificates signed by the cluster CA are accepted when offered.
        ctx.load_verify_locations(cafile=str(pki.ca))
        ctx.verify_mode = ssl.CERT_OPTIONAL
        record = Server(0)

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                seen = Seen(bool(self.connection.getpeercert()), dict(self.headers.items()))
                record.seen.append(seen)
                status = answer(seen)
                body = b"ok" if status < 400 else b'{"reason":"Unauthorized"}'
                self.send_response(status)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args: object) -> None:
                return

        server = http.server.ThreadingHTTPServer((bind, 0), Handler)
        server.daemon_threads = True
        server.socket = ctx.wrap_socket(server.socket, server_side=True)
        record.port = server.server_address[1]
        threading.Thread(
            target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        ).start()
        servers.append(server)
        return record

    yield start
    for server in servers:
        server.shutdown()
        server.server_close()


def anonymous_only(seen: Seen) -> int:
    """--anonymous-auth=false: 401 without a client certificate, 200 with one."""
    return 200 if seen.client_cert else 401


def endpoint(
    port: int, host: str = "127.0.0.1", headers: tuple[tuple[str, str], ...] = ()
) -> Endpoint:
    return Endpoint(f"https://{host}:{port}/livez", "HTTPS", host, "livenessProbe", headers)


def gate(
    endpoints: list[Endpoint],
    ca: Path,
    settings: HealthSettings = FAST,
    timeout: float = 30.0,
    window: float | None = None,
) -> tuple[GateResult, list[tuple[ProbeResult, Stability]], float, Prober]:
    polls: list[tuple[ProbeResult, Stability]] = []
    prober = Prober(ca)

    async def run() -> GateResult:
        async def alive() -> str | None:
            return None

        try:
            return await health_gate(
                endpoints,
                prober,
                settings,
                timeout,
                time.monotonic(),
                lambda e, r, elapsed, s: polls.append((r, s)),
                lambda when: None,
                alive,
                lambda: False,
                window=window,
            )
        finally:
            await prober.aclose()

    start = time.monotonic()
    result = asyncio.run(run())
    return result, polls, time.monotonic() - start, prober


# ---- 401/403: the kubelet's probe sends no credentials ----


def test_401_to_anonymous_requests_fails_the_gate_within_seconds(https_server, pki):
    """Before: the 401 was retried with the client certificate, counted healthy, committed."""
    server = https_server(anonymous_only)
    settings = HealthSettings(
        stable_successes=2,
        stable_seconds=0.3,
        poll_initial=0.05,
        poll_max=0.2,
        client_cert=pki.client_cert,  # configured, as on every kubeadm node
        client_key=pki.client_key,
    )
    result, polls, took, _ = gate([endpoint(server.port)], pki.ca, settings, timeout=180)
    assert not result.healthy
    assert took < 5, took  # not the 180 s timeout
    assert len(polls) >= AUTH_FAILURES_TO_FAIL
    assert re.search(
        r"answered 401 to an anonymous request \d+ times in a row over 2\.\d s", result.message
    )
    assert "kubeadm#798" in result.message and "restart the component" in result.message
    assert all(not r.ok and r.status == 401 and r.tls == "verified" for r, _ in polls)
    assert server.seen and not any(s.client_cert for s in server.seen)
    assert all(s.headers.get("User-Agent", "").startswith("kube-probe/") for s in server.seen)


def test_403_also_fails_fast(https_server, pki):
    server = https_server(lambda seen: 403)
    result, _, took, _ = gate([endpoint(server.port)], pki.ca, timeout=180)
    assert not result.healthy and took < 5
    assert "answered 403" in result.message


def test_a_brief_403_while_the_server_starts_is_ridden_out(https_server, pki):
    """An API server that has just started may answer 403 until its RBAC roles are loaded:
    several refusals in well under AUTH_REFUSAL_SECONDS do not fail the gate."""
    began = time.monotonic()
    server = https_server(lambda seen: 403 if time.monotonic() - began < 0.6 else 200)
    result, polls, _, _ = gate([endpoint(server.port)], pki.ca, timeout=30)
    assert result.healthy, result.message
    assert sum(1 for r, _ in polls if r.status == 403) >= AUTH_FAILURES_TO_FAIL


def test_a_probe_with_its_own_headers_sends_them_and_is_judged_by_the_answer(https_server, pki):
    def needs_token(seen: Seen) -> int:
        return 200 if seen.headers.get("Authorization") == "Bearer s3cret" else 401

    server = https_server(needs_token)
    good = endpoint(server.port, headers=(("Authorization", "Bearer s3cret"),))
    result, _, _, _ = gate([good], pki.ca)
    assert result.healthy, result.message
    assert server.seen[-1].headers["Authorization"] == "Bearer s3cret"
    assert not any(s.client_cert for s in server.seen)
    # Headers the server refuses are a failure too: the kubelet sends exactly those.
    bad = endpoint(server.port, headers=(("Authorization", "Bearer wrong"),))
    result, _, took, _ = gate([bad], pki.ca, timeout=180)
    assert not result.healthy and took < 5
    assert "answered 401 to the probe's own httpHeaders" in result.message


def test_3xx_is_healthy_like_the_kubelet(https_server, pki):
    server = https_server(lambda seen: 302)
    result, polls, _, _ = gate([endpoint(server.port)], pki.ca)
    assert result.healthy and polls[0][0].status == 302


# ---- TLS: client certificates, the CA, loopback ----


def test_a_server_not_chaining_to_the_ca_never_receives_the_client_certificate(https_server, pki):
    """Before: after the unverified loopback fallback, the 401 was retried with the client
    certificate, handing it to a server nobody had verified."""
    stranger = self_signed_serving("localhost")
    server = https_server(anonymous_only, serving=stranger)
    result, polls, _, prober = gate([endpoint(server.port)], pki.ca, timeout=180)
    assert not result.healthy
    assert prober.unverified_used  # loopback: unverified, as the kubelet probes
    assert {r.tls for r, _ in polls} == {"unverified"}
    assert server.seen and not any(s.client_cert for s in server.seen)


def test_an_unreadable_ca_file_fails_the_gate_naming_it(https_server, pki, tmp_path):
    """Before: the system trust store was used instead, then the loopback fallback passed."""
    server = https_server(lambda seen: 200)
    garbage = tmp_path / "garbage-ca.crt"
    garbage.write_text("not a certificate\n")
    for ca in (tmp_path / "missing" / "ca.crt", garbage):
        result, polls, took, _ = gate([endpoint(server.port)], ca, timeout=60)
        assert not result.healthy
        assert str(ca) in result.message and "cluster CA" in result.message
        assert polls == [] and took < 2
    assert server.seen == []  # nothing was sent without the CA


def test_an_http_endpoint_needs_no_ca(tmp_path):
    """The kubelet's own /healthz is plain HTTP: a missing CA file does not matter there."""

    class Ok(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            self.send_response(200)
            self.send_header("Content-Length", "2")
            self.end_headers()
            self.wfile.write(b"ok")

        def log_message(self, *args: object) -> None:
            return

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Ok)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        port = server.server_address[1]
        plain = Endpoint(f"http://127.0.0.1:{port}/healthz", "HTTP", "127.0.0.1", "healthz")
        result, _, _, _ = gate([plain], tmp_path / "no-ca.crt")
        assert result.healthy, result.message
    finally:
        server.shutdown()
        server.server_close()


def test_loopback_is_decided_on_resolved_addresses():
    async def check() -> dict[str, bool]:
        prober = Prober(Path("/nonexistent"))
        names = ["127.0.0.1", "::1", "localhost", "192.0.2.7", "no-such-host.invalid"]
        return {n: await prober.is_loopback(n) for n in names}

    found = asyncio.run(check())
    assert found == {
        "127.0.0.1": True,
        "::1": True,
        "localhost": True,  # resolved: every address it has here is a loopback one
        "192.0.2.7": False,
        "no-such-host.invalid": False,
    }


def _non_loopback_address() -> str | None:
    for addresses in psutil.net_if_addrs().values():
        for a in addresses:
            if a.family == socket.AF_INET and not a.address.startswith("127."):
                return a.address
    return None


GATE_IN_SUBPROCESS = textwrap.dedent(
    """
    import asyncio, json, sys, time
    from pathlib import Path
    from cis_tui.engine.health import Endpoint, Prober, health_gate
    from cis_tui.layout import HealthSettings

    port, ca = int(sys.argv[1]), Path(sys.argv[2])
    ep = Endpoint(f"https://localhost:{port}/livez", "HTTPS", "localhost", "livenessProbe")
    settings = HealthSettings(stable_successes=2, stable_seconds=0.2, poll_initial=0.05)

    async def main():
        prober = Prober(ca)
        polls = []

        async def alive():
            return None

        try:
            result = await health_gate(
                [ep], prober, settings, 3.0, time.monotonic(),
                lambda e, r, el, s: polls.append(r.detail), lambda w: None, alive, lambda: False,
            )
        finally:
            await prober.aclose()
        print(json.dumps({"healthy": result.healthy, "polls": polls,
                          "unverified": prober.unverified_used}))

    asyncio.run(main())
    """
)


@pytest.mark.skipif(
    os.geteuid() != 0 or not shutil.which("unshare"), reason="needs root and unshare(1)"
)
def test_localhost_resolving_to_a_non_loopback_address_gets_no_unverified_fallback(
    https_server, pki, tmp_path
):
    """In a private mount namespace /etc/hosts says `localhost` is this machine's network
    address, where a server with a certificate the CA did not sign answers. Before: the name
    `localhost` was trusted as loopback and the server was probed unverified (and passed)."""
    address = _non_loopback_address()
    if address is None:
        pytest.skip("this machine has no non-loopback IPv4 address")
    server = https_server(
        lambda seen: 200, serving=self_signed_serving("localhost"), bind="0.0.0.0"
    )
    hosts = tmp_path / "hosts"
    hosts.write_text(f"{address} localhost\n")
    script = tmp_path / "gate.py"
    script.write_text(GATE_IN_SUBPROCESS)
    shell = 'mount --bind "$1" /etc/hosts && shift && exec "$@"'
    done = subprocess.run(
        ["unshare", "--mount", "--propagation", "private", "sh", "-c", shell, "sh", str(hosts),
         sys.executable, str(script), str(server.port), str(pki.ca)],
        capture_output=True, text=True, timeout=60, cwd=Path(__file__).resolve().parents[2],
    )  # fmt: skip
    if done.returncode != 0 and "mount" in done.stderr:
        pytest.skip(f"cannot bind-mount /etc/hosts here: {done.stderr.strip()}")
    assert done.returncode == 0, done.stderr
    out = json.loads(done.stdout.strip().splitlines()[-1])
    assert out["healthy"] is False and out["unverified"] is False
    assert all("no unverified fallback" in p for p in out["polls"]), out["polls"]
    assert server.seen == []  # the TLS handshake failed: no request reached it


# ---- the stability window ----


def test_the_default_window_of_kubeadms_api_server_is_20_seconds():
    path = KUBEADM / "kube-apiserver.yaml"
    endpoints = manifest_endpoints(parse_manifest(path.read_text(), path, "kube-apiserver"))
    assert stability_window(HealthSettings(), "kube-apiserver", endpoints) == (
        20.0,
        "livenessProbe initialDelaySeconds + periodSeconds",
    )
    # The liveness probe shares /livez with the startup probe: one endpoint, both roles.
    assert [e.url.rsplit("/", 1)[1] for e in endpoints] == ["livez", "readyz"]
    # A global override wins, a per-component one wins over that; no probe: 5 s.
    assert stability_window(HealthSettings(stable_seconds=1.0), "kube-apiserver", endpoints)[0] == 1
    per = HealthSettings(stable_seconds=1.0, stable_seconds_for={"kube-apiserver": 30.0})
    assert stability_window(per, "kube-apiserver", endpoints)[0] == 30
    assert stability_window(HealthSettings(), "kubelet", [])[0] == 5.0


def test_absent_probe_timings_take_kubernetes_defaults(tmp_path):
    text = (KUBEADM / "kube-scheduler.yaml").read_text()
    text = text.replace("      initialDelaySeconds: 10\n", "", 1)  # the livenessProbe's
    text = text.replace("      periodSeconds: 10\n", "", 1)
    manifest = parse_manifest(text, tmp_path / "s.yaml", "kube-scheduler")
    liveness = next(p for p in manifest.probes if p.kind == "livenessProbe")
    assert (liveness.initial_delay, liveness.period) == (0.0, 10.0)
    assert (
        stability_window(HealthSettings(), "kube-scheduler", manifest_endpoints(manifest))[0] == 10
    )


def write_config(tmp_path: Path, health: str) -> Path:
    path = tmp_path / "config.toml"
    path.write_text(health)
    return path


def test_stable_seconds_is_a_number_for_every_component_or_a_table(tmp_path):
    assert load_settings(config=write_config(tmp_path, "")).health.stable_seconds is None
    one = load_settings(config=write_config(tmp_path, "[health]\nstable_seconds = 1.0\n"))
    assert one.health.stable_window("etcd", 20.0) == 1.0
    table = "[health.stable_seconds]\nkube-apiserver = 30\nkubelet = 8\n"
    some = load_settings(config=write_config(tmp_path, table)).health
    assert some.stable_window("kube-apiserver", 20.0) == 30.0
    assert some.stable_window("kubelet", None) == 8.0
    assert some.stable_window("kube-scheduler", 20.0) == 20.0  # from its manifest
    with pytest.raises(UserError, match="unknown component 'apiserver'"):
        load_settings(config=write_config(tmp_path, "[health.stable_seconds]\napiserver = 3\n"))
    with pytest.raises(UserError, match=r"health\.stable_seconds\.etcd must be a number"):
        load_settings(config=write_config(tmp_path, '[health.stable_seconds]\netcd = "x"\n'))


def test_the_gate_reports_its_progress_through_the_window(https_server, pki):
    server = https_server(lambda seen: 200)
    settings = HealthSettings(stable_successes=3, poll_initial=0.05, poll_max=0.1)
    result, polls, took, _ = gate([endpoint(server.port)], pki.ca, settings, window=1.0)
    assert result.healthy and took >= 1.0
    assert result.message.startswith("stable ") and "/ 1 s" in result.message
    seconds = [s.seconds for _, s in polls]
    assert seconds == sorted(seconds) and seconds[0] < 0.05 and seconds[-1] >= 1.0
    assert {s.window for _, s in polls} == {1.0}
    event = Event(
        Kind.POLL, "f", "kube-apiserver", ok=True, message="https://x/livez 200", stable=3.14,
        window=20.0, elapsed=5.0, timeout=180.0,
    )  # fmt: skip
    assert format_event(event) == (
        "kube-apiserver: probe https://x/livez 200 [5.0s/180s] stable 3.1 s / 20 s"
    )
    assert event.to_dict()["window"] == 20.0


def test_the_wizard_shows_the_window():
    from cis_tui.tui.widgets.file_progress import _gate_info

    event = Event(
        Kind.POLL, "f", "kube-apiserver", ok=True, message="https://x:1/livez 200 (ok)",
        latency_ms=3.0, stable=3.1, window=20.0, elapsed=12.5, timeout=180.0,
        data={"url": "https://x:1/livez"},
    )  # fmt: skip
    assert _gate_info(event) == " 12.5 s / 180 s  stable 3.1 s / 20 s  /livez 200 (ok) in 3 ms"
