"""The generic emulator HTTP server: parsing, keep-alive, errors, threads, lifecycle."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import threading

import httpx
import pytest
from support import Servers

from keystate.emulators.algolia import AlgoliaEmulator
from keystate.emulators.http import (
    MAX_BODY_BYTES,
    EmuRequest,
    EmuResponse,
    RunningServer,
    check_loopback,
    start_in_thread,
)

from .emu_helpers import ADMIN_HEADERS, ADMIN_KEY, APP_ID, http_client


class EchoApp:
    """Answers every request with a JSON description of it; ``/boom`` raises."""

    def __init__(self) -> None:
        self.handled: list[EmuRequest] = []

    def handle(self, request: EmuRequest) -> EmuResponse:
        if request.path == "/boom":
            raise RuntimeError("boom")
        self.handled.append(request)
        body = json.dumps({"path": request.path, "body": request.body.decode()}).encode()
        return EmuResponse(200, (("content-type", "application/json"),), body)

    def fault_response(self, status: int, retry_after: float | None) -> EmuResponse:
        body = json.dumps({"fault": status, "retry_after": retry_after}).encode()
        return EmuResponse(status, (("content-type", "application/json"),), body)

    def route_name(self, request: EmuRequest) -> str:
        return "echo" if request.path != "/boom" else "boom"


def exchange(port: int, data: bytes) -> bytes:
    """Send raw bytes, read until the server closes the connection."""
    with socket.create_connection(("127.0.0.1", port), timeout=5) as sock:
        sock.sendall(data)
        chunks = []
        while chunk := sock.recv(65536):
            chunks.append(chunk)
    return b"".join(chunks)


def test_request_reaches_the_app_raw(serve: Servers) -> None:
    app = EchoApp()
    server = serve(app)
    reply = exchange(
        server.port,
        b"post /a%2Fb/c?x=1&y=%20 HTTP/1.1\r\nHost: h\r\nX-Custom-Header: Value\r\n"
        b"X-Twice: 1\r\nX-Twice: 2\r\nContent-Length: 3\r\nConnection: close\r\n\r\nabc",
    )
    assert reply.startswith(b"HTTP/1.1 200 OK\r\n")
    request = app.handled[0]
    assert (request.method, request.path, request.query) == ("POST", "/a%2Fb/c", "x=1&y=%20")
    assert request.headers["x-custom-header"] == "Value"
    assert request.headers["x-twice"] == "1, 2"
    assert request.body == b"abc"
    assert server.counters.by_route == {("POST", "echo"): 1}


def test_chunked_request_body(serve: Servers) -> None:
    app = EchoApp()
    server = serve(app)
    with http_client(server.url) as client:
        response = client.post("/x", content=iter([b"hello ", b"chunked ", b"world"]))
    assert response.json() == {"path": "/x", "body": "hello chunked world"}
    assert app.handled[0].headers["transfer-encoding"] == "chunked"


def test_keep_alive_reuses_one_connection(serve: Servers) -> None:
    server = serve(EchoApp())
    with http_client(server.url) as client:
        for i in range(5):
            assert client.get(f"/{i}").json()["path"] == f"/{i}"
    assert server.counters.connections == 1
    assert server.counters.total == 5


def test_connection_close_is_honoured(serve: Servers) -> None:
    server = serve(EchoApp())
    reply = exchange(server.port, b"GET /x HTTP/1.1\r\nHost: h\r\nConnection: close\r\n\r\n")
    head, _, body = reply.partition(b"\r\n\r\n")
    assert b"connection: close" in head.lower()
    assert json.loads(body) == {"path": "/x", "body": ""}  # and then EOF: exchange returned


def test_malformed_request_is_400_and_not_counted(
    serve: Servers,
) -> None:
    app = EchoApp()
    server = serve(app)
    reply = exchange(server.port, b"THIS IS NOT HTTP\r\n\r\n")
    assert reply.startswith(b"HTTP/1.1 400 ")
    assert json.loads(reply.partition(b"\r\n\r\n")[2]) == {"fault": 400, "retry_after": None}
    assert server.counters.total == 0
    assert app.handled == []


def test_expect_100_continue(serve: Servers) -> None:
    server = serve(EchoApp())
    with socket.create_connection(("127.0.0.1", server.port), timeout=5) as sock:
        sock.sendall(
            b"PUT /x HTTP/1.1\r\nHost: h\r\nContent-Length: 5\r\nExpect: 100-continue\r\n"
            b"Connection: close\r\n\r\n"
        )
        assert sock.recv(65536).startswith(b"HTTP/1.1 100 ")
        sock.sendall(b"12345")
        reply = b"".join(iter(lambda: sock.recv(65536), b""))
    assert reply.startswith(b"HTTP/1.1 200 ")
    assert json.loads(reply.partition(b"\r\n\r\n")[2])["body"] == "12345"


def test_oversized_body_is_413(serve: Servers) -> None:
    app = EchoApp()
    server = serve(app)
    size = MAX_BODY_BYTES + 1
    head = f"POST /x HTTP/1.1\r\nHost: h\r\nContent-Length: {size}\r\n\r\n".encode()
    reply = exchange(server.port, head + b"x" * size)
    assert reply.startswith(b"HTTP/1.1 413 ")
    assert app.handled == []


def test_app_exception_is_a_500_in_the_app_format(
    serve: Servers,
) -> None:
    server = serve(EchoApp())
    with http_client(server.url) as client:
        response = client.get("/boom")
        assert (response.status_code, response.json()["fault"]) == (500, 500)
        assert client.get("/after").status_code == 200  # the connection survives


def test_two_servers_share_one_app(serve: Servers) -> None:
    emulator = AlgoliaEmulator(app_id=APP_ID, admin_key=ADMIN_KEY)
    servers = [serve(emulator), serve(emulator)]
    assert servers[0].port != servers[1].port
    values: list[str] = []

    def work(server: RunningServer) -> None:
        with http_client(server.url, ADMIN_HEADERS) as client:
            for _ in range(25):
                values.append(client.post("/1/keys", json={"acl": ["search"]}).json()["key"])

    threads = [threading.Thread(target=work, args=(servers[i % 2],)) for i in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    with http_client(servers[1].url, ADMIN_HEADERS) as client:
        listed = {k["value"] for k in client.get("/1/keys").json()["keys"]}
    assert listed == set(values)
    assert len(listed) == 100
    assert [s.counters.count("POST", "add") for s in servers] == [50, 50]


@pytest.mark.parametrize("host", ["0.0.0.0", "192.168.1.10", "::", "example.com", ""])
def test_only_loopback_addresses_are_accepted(host: str) -> None:
    with pytest.raises(ValueError, match="loopback"):
        check_loopback(host)
    with pytest.raises(ValueError, match="loopback"):
        start_in_thread(EchoApp(), host=host)


def test_localhost_means_ipv4_loopback() -> None:
    assert check_loopback("localhost") == "127.0.0.1"
    assert check_loopback("127.0.0.1") == "127.0.0.1"
    assert check_loopback("::1") == "::1"


def test_stop_is_idempotent_and_closes_the_port() -> None:
    with start_in_thread(EchoApp()) as server:
        assert server.url == f"http://127.0.0.1:{server.port}"
        with http_client(server.url) as client:
            assert client.get("/x").status_code == 200
    server.stop()
    with pytest.raises(ConnectionRefusedError):
        socket.create_connection(("127.0.0.1", server.port), timeout=1).close()


def test_port_in_use_is_reported_to_the_caller(serve: Servers) -> None:
    server = serve(EchoApp())
    with pytest.raises(OSError):
        start_in_thread(EchoApp(), port=server.port)


SERVE_FOREVER = """
from keystate.emulators.algolia import AlgoliaEmulator
from keystate.emulators.http import serve_forever
app = AlgoliaEmulator(app_id="APP0000000", admin_key="{key}")
serve_forever(app, on_ready=lambda port: print(port, flush=True))
print("stopped", flush=True)
"""


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
def test_serve_forever_stops_cleanly_on_signal(sig: signal.Signals) -> None:
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    process = subprocess.Popen(
        [sys.executable, "-c", SERVE_FOREVER.format(key=ADMIN_KEY)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )
    try:
        assert process.stdout is not None
        port = int(process.stdout.readline())
        headers = {"x-algolia-application-id": "APP0000000", "x-algolia-api-key": ADMIN_KEY}
        with http_client(f"http://127.0.0.1:{port}", headers) as client:
            assert client.get("/1/keys").json() == {"keys": []}
        process.send_signal(sig)
        out, err = process.communicate(timeout=10)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    assert process.returncode == 0, err
    assert out.strip() == "stopped"
    with pytest.raises(httpx.ConnectError), http_client(f"http://127.0.0.1:{port}") as client:
        client.get("/1/keys")
