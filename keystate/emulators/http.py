"""A small HTTP/1.1 server for the emulators, with fault injection.

An emulator is an :class:`EmulatorApp`: a pure, synchronous ``handle(EmuRequest) ->
EmuResponse`` plus ``fault_response`` (the provider's error body for injected faults) and
``route_name`` (a short label such as ``"add"`` used by the counters). This module puts
one on the wire:

- :func:`serve` — asyncio + ``h11``; keep-alive, ``Connection: close``, content-length
  and chunked request bodies, ``Expect: 100-continue``, 400 on malformed requests. Runs
  until cancelled.
- :func:`start_in_thread` — the same server on its own event loop in a daemon thread,
  returned as a :class:`RunningServer` (``port``, ``url``, ``counters``, ``stop()``,
  context manager). Tests and benchmarks use this.
- :func:`serve_forever` — blocking entry point for the CLI; stops on SIGINT/SIGTERM.

Per request the server (1) reads the whole request, (2) counts it under
``(method, app.route_name(request))``, (3) sleeps ``Knobs.latency_ms``, (4) makes one
fault draw and acts it out (semantics in :mod:`keystate.emulators.faults`) or calls
``app.handle``. Calls into one app are serialised with a ``threading.Lock`` shared by
every server serving that app, so one app may sit behind several ports in several
threads (e.g. to test a client's host fallback). Servers only ever bind to loopback.
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import logging
import signal
import threading
from collections.abc import Callable
from types import TracebackType

from keystate.emulators._connection import MAX_BODY_BYTES, Connections, ServerCounters
from keystate.emulators._messages import EmulatorApp, EmuRequest, EmuResponse
from keystate.emulators.faults import Knobs

__all__ = [
    "MAX_BODY_BYTES",
    "EmuRequest",
    "EmuResponse",
    "EmulatorApp",
    "RunningServer",
    "ServerCounters",
    "check_loopback",
    "serve",
    "serve_forever",
    "start_in_thread",
]

_log = logging.getLogger("keystate.emulators")


def check_loopback(host: str) -> str:
    """Return the address to bind for ``host``; ValueError unless it is loopback."""
    if host == "localhost":
        return "127.0.0.1"
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        raise ValueError(
            f"emulators bind to loopback only; {host!r} is not an IP address"
        ) from None
    if not address.is_loopback:
        raise ValueError(f"emulators bind to loopback only; refusing {host}")
    return host


async def serve(
    app: EmulatorApp,
    knobs: Knobs,
    host: str = "127.0.0.1",
    port: int = 0,
    ready: Callable[[int], None] | None = None,
    *,
    counters: ServerCounters | None = None,
) -> None:
    """Serve ``app`` on ``host:port`` until cancelled; ``ready(port)`` once listening."""
    bind = check_loopback(host)
    connections = Connections(app, knobs, counters if counters is not None else ServerCounters())
    server = await asyncio.start_server(connections.connection, bind, port)
    try:
        if ready is not None:
            ready(int(server.sockets[0].getsockname()[1]))
        await server.serve_forever()
    finally:
        server.close()
        await connections.close_all()


class RunningServer:
    """A server running on its own event loop in a daemon thread."""

    def __init__(self, app: EmulatorApp, knobs: Knobs, host: str, port: int) -> None:
        self.app = app
        self.knobs = knobs
        self.host = check_loopback(host)
        self.counters = ServerCounters()
        self.port = 0
        self._requested_port = port
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stop_event: asyncio.Event | None = None
        self._started = threading.Event()
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._run, name="keystate-emulator", daemon=True)
        self._thread.start()
        self._started.wait()
        if self._error is not None:
            self._thread.join()
            raise self._error

    @property
    def url(self) -> str:
        """Base URL, e.g. ``http://127.0.0.1:8100``."""
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}"

    def stop(self) -> None:
        """Stop serving, close every connection and wait for the thread; idempotent."""
        loop, stop_event = self._loop, self._stop_event
        if loop is not None and stop_event is not None:
            with contextlib.suppress(RuntimeError):  # loop already closed
                loop.call_soon_threadsafe(stop_event.set)
        self._thread.join()

    def __enter__(self) -> RunningServer:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    def __repr__(self) -> str:
        return f"<RunningServer {self.url}>"

    def _on_ready(self, port: int) -> None:
        self.port = port
        self._started.set()

    def _run(self) -> None:
        try:
            asyncio.run(self._main())
        except BaseException as exc:  # reported to the starting thread
            if not self._started.is_set():
                self._error = exc
            else:
                _log.exception("emulator server thread failed")
        finally:
            self._started.set()

    async def _main(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._stop_event = asyncio.Event()
        serving = asyncio.create_task(
            serve(
                self.app,
                self.knobs,
                self.host,
                self._requested_port,
                self._on_ready,
                counters=self.counters,
            )
        )
        stopping = asyncio.create_task(self._stop_event.wait())
        await asyncio.wait({serving, stopping}, return_when=asyncio.FIRST_COMPLETED)
        stopping.cancel()
        if serving.done():
            serving.result()  # startup failure: re-raise it
            return
        serving.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await serving


def start_in_thread(
    app: EmulatorApp, knobs: Knobs | None = None, host: str = "127.0.0.1", port: int = 0
) -> RunningServer:
    """Start serving ``app`` in a daemon thread; returns once it is listening."""
    return RunningServer(app, knobs if knobs is not None else Knobs(), host, port)


def serve_forever(
    app: EmulatorApp,
    knobs: Knobs | None = None,
    host: str = "127.0.0.1",
    port: int = 0,
    on_ready: Callable[[int], None] | None = None,
) -> None:
    """Serve in the calling thread until SIGINT or SIGTERM, then return normally."""
    check_loopback(host)
    asyncio.run(
        _serve_until_signal(app, knobs if knobs is not None else Knobs(), host, port, on_ready)
    )


async def _serve_until_signal(
    app: EmulatorApp,
    knobs: Knobs,
    host: str,
    port: int,
    on_ready: Callable[[int], None] | None,
) -> None:
    loop = asyncio.get_running_loop()
    task = asyncio.create_task(serve(app, knobs, host, port, on_ready))
    installed: list[signal.Signals] = []
    for sig in (signal.SIGINT, signal.SIGTERM):
        try:
            loop.add_signal_handler(sig, task.cancel)
            installed.append(sig)
        except (NotImplementedError, RuntimeError, ValueError):  # not the main thread
            pass
    try:
        with contextlib.suppress(asyncio.CancelledError):
            await task
    finally:
        for sig in installed:
            loop.remove_signal_handler(sig)
