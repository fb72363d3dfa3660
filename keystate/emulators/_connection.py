"""One listening socket's connections: h11 parsing, counting, faults, app calls.

Per request: read it whole, count it under ``(method, app.route_name(request))``, sleep
``Knobs.latency_ms``, make one fault draw and act it out (semantics in
:mod:`keystate.emulators.faults`) or call ``app.handle`` under the app's lock. The lock
is shared by every server of one app (a weak-keyed registry), so one app may be served
on several ports from several threads.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import socket
import struct
import threading
import weakref
from collections import Counter
from http import HTTPStatus

import h11

from keystate.emulators._messages import EmulatorApp, EmuRequest, EmuResponse
from keystate.emulators.faults import FaultInjector, FaultKind, Knobs, RateLimiter

MAX_BODY_BYTES = 8 * 1024 * 1024
"""Larger request bodies are answered 413."""
_READ_CHUNK = 65536
_log = logging.getLogger("keystate.emulators")


class ServerCounters:
    """Thread-safe counters of one server: connections, requests, injected faults.

    Requests are counted once fully read (malformed ones are not), under
    ``(method, route_name)``, whether or not a fault then hits them.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._requests: Counter[tuple[str, str]] = Counter()
        self._faults: Counter[str] = Counter()
        self._connections = 0

    def record_connection(self) -> None:
        with self._lock:
            self._connections += 1

    def record_request(self, method: str, route: str) -> None:
        with self._lock:
            self._requests[(method, route)] += 1

    def record_fault(self, kind: FaultKind | str) -> None:
        with self._lock:
            self._faults[kind] += 1

    @property
    def connections(self) -> int:
        with self._lock:
            return self._connections

    @property
    def total(self) -> int:
        with self._lock:
            return sum(self._requests.values())

    @property
    def by_route(self) -> dict[tuple[str, str], int]:
        with self._lock:
            return dict(self._requests)

    @property
    def faults(self) -> dict[str, int]:
        with self._lock:
            return dict(self._faults)

    def count(self, method: str, route: str) -> int:
        with self._lock:
            return self._requests[(method, route)]

    def reset(self) -> None:
        with self._lock:
            self._requests.clear()
            self._faults.clear()
            self._connections = 0


_APP_LOCKS: weakref.WeakKeyDictionary[object, threading.Lock] = weakref.WeakKeyDictionary()
_APP_LOCKS_GUARD = threading.Lock()
_FALLBACK_LOCK = threading.Lock()


def _lock_for(app: object) -> threading.Lock:
    """The one lock shared by every server of ``app`` (a global one if not weak-referable)."""
    with _APP_LOCKS_GUARD:
        try:
            lock = _APP_LOCKS.get(app)
            if lock is None:
                lock = _APP_LOCKS[app] = threading.Lock()
        except TypeError:
            return _FALLBACK_LOCK
        return lock


class _BodyTooLargeError(Exception):
    pass


class Connections:
    """Serves the connections of one listening socket."""

    def __init__(self, app: EmulatorApp, knobs: Knobs, counters: ServerCounters) -> None:
        self.app = app
        self.knobs = knobs
        self.counters = counters
        self._faults = FaultInjector(knobs)
        self._limiter = RateLimiter(knobs.rate_limit) if knobs.rate_limit > 0 else None
        self._app_lock = _lock_for(app)
        self._tasks: set[asyncio.Task[None]] = set()

    async def close_all(self) -> None:
        tasks = [t for t in self._tasks if t is not asyncio.current_task()]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    async def connection(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        if task is not None:
            self._tasks.add(task)
        self.counters.record_connection()
        conn = h11.Connection(h11.SERVER)
        aborted = False
        try:
            while True:
                outcome = await self._cycle(conn, reader, writer)
                if outcome == "abort":
                    aborted = True
                if outcome != "again":
                    break
                conn.start_next_cycle()
        except (ConnectionError, h11.LocalProtocolError):
            pass
        except asyncio.CancelledError:
            # Server shutdown. Returning normally (not re-raising) keeps Python 3.11's
            # stream callback from logging the cancelled task as an error.
            pass
        finally:
            if task is not None:
                self._tasks.discard(task)
            if not aborted:
                writer.close()
                with contextlib.suppress(ConnectionError, asyncio.CancelledError):
                    await writer.wait_closed()

    async def _cycle(
        self, conn: h11.Connection, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> str:
        """Serve one request; "again" (keep-alive), "close" or "abort" (RST sent)."""
        try:
            request = await _read_request(conn, reader, writer)
        except h11.RemoteProtocolError as exc:
            await self._send_error(conn, writer, exc.error_status_hint)
            return "close"
        except _BodyTooLargeError:
            await self._send_error(conn, writer, HTTPStatus.REQUEST_ENTITY_TOO_LARGE)
            return "close"
        if request is None:
            return "close"
        route = self.app.route_name(request)
        self.counters.record_request(request.method, route)
        wait = self._limiter.admit() if self._limiter is not None else None
        latency = self.knobs.latency_for(route)
        if latency > 0:
            await asyncio.sleep(latency)
        if wait is not None:
            self.counters.record_fault("rate-limited")
            with self._app_lock:
                response = self.app.fault_response(429, float(max(1, math.ceil(wait))))
            await _send(conn, writer, request.method, response)
            return "again" if conn.our_state is h11.DONE else "close"
        fault = self._faults.draw(route)
        if fault is not None:
            self.counters.record_fault(fault)
            return await self._act_fault(fault, request, conn, reader, writer)
        await _send(conn, writer, request.method, self._call_app(request))
        return "again" if conn.our_state is h11.DONE and conn.their_state is h11.DONE else "close"

    async def _act_fault(
        self,
        fault: FaultKind,
        request: EmuRequest,
        conn: h11.Connection,
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
    ) -> str:
        if fault in ("429", "429-no-retry-after", "500", "503"):
            status = 429 if fault.startswith("429") else int(fault)
            retry_after = self.knobs.retry_after if fault == "429" else None
            with self._app_lock:
                response = self.app.fault_response(status, retry_after)
            await _send(conn, writer, request.method, response)
            return "again" if conn.our_state is h11.DONE else "close"
        if fault == "timeout":
            await _hold(reader, self.knobs.timeout_hold_s)
            return "close"
        if fault == "lost-response":
            self._call_app(request)
        _abort_with_rst(writer)
        return "abort"

    def _call_app(self, request: EmuRequest) -> EmuResponse:
        with self._app_lock:
            try:
                return self.app.handle(request)
            except Exception:
                _log.exception("emulator app failed on %s %s", request.method, request.path)
                return self.app.fault_response(500, None)

    async def _send_error(
        self, conn: h11.Connection, writer: asyncio.StreamWriter, status: int
    ) -> None:
        if conn.our_state not in (h11.IDLE, h11.SEND_RESPONSE):
            return
        with self._app_lock:
            response = self.app.fault_response(status, None)
        with contextlib.suppress(h11.LocalProtocolError, ConnectionError):
            await _send(conn, writer, "GET", response, close=True)


async def _read_request(
    conn: h11.Connection, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
) -> EmuRequest | None:
    """Read one whole request; None when the peer closed the connection first."""
    head: h11.Request | None = None
    body = bytearray()
    while True:
        event = conn.next_event()
        if event is h11.NEED_DATA:
            if conn.they_are_waiting_for_100_continue:
                writer.write(conn.send(h11.InformationalResponse(status_code=100, headers=[])))
            conn.receive_data(await reader.read(_READ_CHUNK))
        elif isinstance(event, h11.Request):
            head = event
        elif isinstance(event, h11.Data):
            body += event.data
            if len(body) > MAX_BODY_BYTES:
                raise _BodyTooLargeError
        elif isinstance(event, h11.EndOfMessage) and head is not None:
            headers = [(n.decode("latin-1"), v.decode("latin-1")) for n, v in head.headers]
            target = head.target.decode("latin-1")
            return EmuRequest.build(head.method.decode("ascii"), target, headers, bytes(body))
        else:  # ConnectionClosed, PAUSED
            return None


async def _send(
    conn: h11.Connection,
    writer: asyncio.StreamWriter,
    method: str,
    response: EmuResponse,
    *,
    close: bool = False,
) -> None:
    skip = {"content-length", "connection", "transfer-encoding"}
    headers = [(n, v) for n, v in response.headers if n.lower() not in skip]
    headers.append(("content-length", str(len(response.body))))
    if close:
        headers.append(("connection", "close"))
    try:
        reason = HTTPStatus(response.status).phrase.encode()
    except ValueError:
        reason = b""
    data = conn.send(h11.Response(status_code=response.status, headers=headers, reason=reason))
    if method != "HEAD" and response.body:
        data += conn.send(h11.Data(data=response.body))
    data += conn.send(h11.EndOfMessage())
    writer.write(data)
    await writer.drain()


async def _hold(reader: asyncio.StreamReader, seconds: float) -> None:
    """Send nothing for ``seconds``, or until the client goes away."""
    with contextlib.suppress(TimeoutError, ConnectionError):
        async with asyncio.timeout(seconds):
            while await reader.read(_READ_CHUNK):
                pass


def _abort_with_rst(writer: asyncio.StreamWriter) -> None:
    """Abort the connection so that the peer sees a TCP RST (SO_LINGER 0, then abort)."""
    sock = writer.get_extra_info("socket")
    if sock is not None:
        with contextlib.suppress(OSError):
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    writer.transport.abort()
