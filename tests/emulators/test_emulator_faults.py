"""Fault injection: parsing the spec, draws, and each fault kind as a client sees it."""

from __future__ import annotations

import math
import socket
import time
from collections import Counter

import httpx
import pytest
from support import Servers

from keystate.emulators.algolia import AlgoliaEmulator
from keystate.emulators.faults import FAULT_KINDS, FaultInjector, FaultSpec, Knobs
from keystate.emulators.http import RunningServer

from .emu_helpers import ADMIN_HEADERS, ADMIN_KEY, APP_ID, http_client

ADD_REQUEST = (
    b"POST /1/keys HTTP/1.1\r\nHost: h\r\n"
    + b"".join(f"{k}: {v}\r\n".encode() for k, v in ADMIN_HEADERS.items())
    + b"Content-Type: application/json\r\nContent-Length: 2\r\n\r\n{}"
)


def faulty(serve: Servers, spec: str, **knobs: float) -> RunningServer:
    emulator = AlgoliaEmulator(app_id=APP_ID, admin_key=ADMIN_KEY)
    return serve(emulator, Knobs(faults=FaultSpec.parse(spec), **knobs))  # type: ignore[arg-type]


def stored(server: RunningServer) -> int:
    app = server.app
    assert isinstance(app, AlgoliaEmulator)
    return len(app.snapshot())


# --- the spec -----------------------------------------------------------------------------


def test_parse_reads_every_kind() -> None:
    spec = FaultSpec.parse(
        " 429=0.1, 429-no-retry-after=0.05,500=0.05,503=0.1,"
        "timeout=0.02,reset=0.01,lost-response=0.03 "
    )
    assert [kind for kind, _ in spec.rates] == list(FAULT_KINDS)
    assert spec.rate("timeout") == 0.02
    assert spec.rate("lost-response") == 0.03
    assert FaultSpec.parse(str(spec)) == spec
    assert bool(spec)


def test_empty_spec_means_no_faults() -> None:
    assert not FaultSpec.parse("")
    assert not FaultSpec.parse("429=0")
    assert FaultSpec.parse("").pick(0.0) is None


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("teapot=0.1", "unknown fault kind 'teapot'; expected one of 429, 429-no-retry-after"),
        ("429", "bad fault '429': expected KIND=RATE"),
        ("=0.1", "bad fault '=0.1': expected KIND=RATE"),
        ("500=", "bad fault '500=': expected KIND=RATE"),
        ("429=abc", "bad fault rate 'abc' for '429'"),
        ("429=1.5", "fault rate for '429' must be between 0 and 1, got 1.5"),
        ("reset=-0.1", "fault rate for 'reset' must be between 0 and 1"),
        ("timeout=nan", "fault rate for 'timeout' must be between 0 and 1"),
        ("429=0.6,500=0.5", "fault rates add up to 1.1; their sum must be at most 1"),
        ("429=0.1,429=0.2", "fault kind '429' is given twice"),
    ],
)
def test_parse_errors_are_clear(text: str, message: str) -> None:
    with pytest.raises(ValueError) as raised:
        FaultSpec.parse(text)
    assert str(raised.value).startswith(message)


def test_rates_summing_to_one_are_accepted() -> None:
    assert FaultSpec.parse("429=0.7,500=0.2,reset=0.1").pick(0.999) == "reset"


@pytest.mark.parametrize(
    "kwargs", [{"latency_ms": -1}, {"retry_after": -1}, {"timeout_hold_s": math.inf}]
)
def test_knobs_are_validated(kwargs: dict[str, float]) -> None:
    with pytest.raises(ValueError, match="must be a non-negative number"):
        Knobs(**kwargs)  # type: ignore[arg-type]


def test_cumulative_ranges_follow_the_canonical_order() -> None:
    spec = FaultSpec.parse("500=0.2,429=0.1")  # written out of order on purpose
    assert spec.pick(0.0) == "429"
    assert spec.pick(0.099) == "429"
    assert spec.pick(0.1) == "500"
    assert spec.pick(0.299) == "500"
    assert spec.pick(0.301) is None


def test_draws_are_seeded_and_follow_the_rates() -> None:
    knobs = Knobs(faults=FaultSpec.parse("429=0.2,reset=0.1"), fault_seed=42)
    one, two = FaultInjector(knobs), FaultInjector(knobs)
    sequence = [one.draw() for _ in range(3000)]
    assert sequence == [two.draw() for _ in range(3000)]
    counts = Counter(sequence)
    assert 540 <= counts["429"] <= 660
    assert 250 <= counts["reset"] <= 350
    assert set(counts) == {"429", "reset", None}
    other = FaultInjector(Knobs(faults=knobs.faults, fault_seed=43))
    assert [other.draw() for _ in range(3000)] != sequence


# --- each kind on the wire ----------------------------------------------------------------


@pytest.mark.parametrize(("retry_after", "header"), [(2, "2"), (2.5, "2.5"), (0.25, "0.25")])
def test_429_sends_retry_after_and_is_not_processed(
    serve: Servers, retry_after: float, header: str
) -> None:
    server = faulty(serve, "429=1", retry_after=retry_after)
    with http_client(server.url, ADMIN_HEADERS) as client:
        response = client.post("/1/keys", json={"acl": ["search"]})
    assert response.status_code == 429
    assert response.headers["retry-after"] == header
    assert response.json() == {"message": "Too Many Requests", "status": 429}
    assert stored(server) == 0
    assert server.counters.faults == {"429": 1}


def test_429_without_retry_after(serve: Servers) -> None:
    server = faulty(serve, "429-no-retry-after=1")
    with http_client(server.url, ADMIN_HEADERS) as client:
        response = client.post("/1/keys", json={})
    assert response.status_code == 429
    assert "retry-after" not in response.headers
    assert response.json() == {"message": "Too Many Requests", "status": 429}
    assert stored(server) == 0


@pytest.mark.parametrize(
    ("status", "message"), [(500, "Internal Server Error"), (503, "Service Unavailable")]
)
def test_5xx_is_not_processed(serve: Servers, status: int, message: str) -> None:
    server = faulty(serve, f"{status}=1")
    with http_client(server.url, ADMIN_HEADERS) as client:
        responses = [client.post("/1/keys", json={}) for _ in range(3)]
    assert [r.status_code for r in responses] == [status] * 3
    assert responses[0].json() == {"message": message, "status": status}
    assert stored(server) == 0
    assert server.counters.connections == 1  # error responses keep the connection alive


def test_timeout_sends_nothing_and_is_not_processed(
    serve: Servers,
) -> None:
    server = faulty(serve, "timeout=1", timeout_hold_s=5)
    # The client's own read timeout (0.2 s) fires, long before the 5 s hold would close
    # the connection (that would be a RemoteProtocolError): not one byte was sent.
    with (
        http_client(server.url, ADMIN_HEADERS, timeout=0.2) as client,
        pytest.raises(httpx.ReadTimeout),
    ):
        client.post("/1/keys", json={})
    assert stored(server) == 0
    assert server.counters.faults == {"timeout": 1}


def test_timeout_closes_the_connection_after_the_hold(
    serve: Servers,
) -> None:
    server = faulty(serve, "timeout=1", timeout_hold_s=0.3)
    # Closed by the server (RemoteProtocolError), not by the client's 5 s read timeout
    # (ReadTimeout), and not before the hold: a lower bound, which load cannot break.
    with http_client(server.url, ADMIN_HEADERS, timeout=5) as client:
        start = time.monotonic()
        with pytest.raises(httpx.RemoteProtocolError, match="without sending a response"):
            client.get("/1/keys")
        elapsed = time.monotonic() - start
    assert elapsed >= 0.3
    assert server.counters.faults == {"timeout": 1}


def test_reset_is_a_tcp_rst_and_is_not_processed(
    serve: Servers,
) -> None:
    server = faulty(serve, "reset=1")
    with socket.create_connection(("127.0.0.1", server.port), timeout=5) as sock:
        sock.sendall(ADD_REQUEST)
        with pytest.raises(ConnectionResetError):
            sock.recv(65536)
    with http_client(server.url, ADMIN_HEADERS) as client, pytest.raises(httpx.TransportError) as e:
        client.post("/1/keys", json={})
    assert not isinstance(e.value, httpx.TimeoutException)
    assert stored(server) == 0


def test_lost_response_commits_the_write_then_resets(
    serve: Servers,
) -> None:
    server = faulty(serve, "lost-response=1")
    with http_client(server.url, ADMIN_HEADERS) as client, pytest.raises(httpx.TransportError) as e:
        client.post("/1/keys", json={"acl": ["search"]})
    assert not isinstance(e.value, httpx.TimeoutException)
    assert stored(server) == 1
    with socket.create_connection(("127.0.0.1", server.port), timeout=5) as sock:
        sock.sendall(ADD_REQUEST)
        with pytest.raises(ConnectionResetError):
            sock.recv(65536)
    assert stored(server) == 2
    assert server.counters.faults == {"lost-response": 2}


def test_rate_zero_never_faults(serve: Servers) -> None:
    server = faulty(serve, ",".join(f"{kind}=0" for kind in FAULT_KINDS))
    with http_client(server.url, ADMIN_HEADERS) as client:
        assert {client.get("/1/keys").status_code for _ in range(30)} == {200}
    assert server.counters.faults == {}


def test_seed_fixes_the_fault_sequence_on_the_wire(
    serve: Servers,
) -> None:
    def statuses(seed: int) -> list[int]:
        server = faulty(serve, "500=0.3,429-no-retry-after=0.2", fault_seed=seed)
        with http_client(server.url, ADMIN_HEADERS) as client:
            return [client.get("/1/keys").status_code for _ in range(40)]

    first = statuses(7)
    assert first == statuses(7)
    assert first != statuses(8)
    assert {200, 429, 500} == set(first)


def test_latency_is_added_before_responses_and_faults(
    serve: Servers,
) -> None:
    # Lower bounds only (a loaded machine is slower, never faster); the latency's cost
    # as a whole is measured by make bench (latency-injected emulators).
    for spec, status in (("", 200), ("503=1", 503)):
        server = faulty(serve, spec, latency_ms=150)
        with http_client(server.url, ADMIN_HEADERS) as client:
            client.get("/1/keys")  # connect outside the measurement
            start = time.monotonic()
            response = client.get("/1/keys")
            elapsed = time.monotonic() - start
        assert response.status_code == status, spec
        assert elapsed >= 0.15, spec
