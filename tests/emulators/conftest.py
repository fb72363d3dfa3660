"""Fixtures for the emulator tests: a fake clock, running servers and httpx clients."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import httpx
import pytest

from keystate.emulators.algolia import AlgoliaEmulator
from keystate.emulators.faults import Knobs
from keystate.emulators.http import EmulatorApp, RunningServer, start_in_thread

from .emu_helpers import ADMIN_HEADERS, ADMIN_KEY, APP_ID, FakeClock, http_client


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def make_server() -> Iterator[Callable[..., RunningServer]]:
    """Factory: ``make_server(app, knobs=None)``; every server is stopped at teardown."""
    servers: list[RunningServer] = []

    def make(app: EmulatorApp, knobs: Knobs | None = None) -> RunningServer:
        server = start_in_thread(app, knobs)
        servers.append(server)
        return server

    yield make
    for server in servers:
        server.stop()


@pytest.fixture
def emulator(clock: FakeClock) -> AlgoliaEmulator:
    return AlgoliaEmulator(app_id=APP_ID, admin_key=ADMIN_KEY, clock=clock)


@pytest.fixture
def server(emulator: AlgoliaEmulator, make_server: Callable[..., RunningServer]) -> RunningServer:
    return make_server(emulator)


@pytest.fixture
def client(server: RunningServer) -> Iterator[httpx.Client]:
    """An httpx client authenticated with the admin key."""
    with http_client(server.url, ADMIN_HEADERS) as c:
        yield c


@pytest.fixture
def anon(server: RunningServer) -> Iterator[httpx.Client]:
    """An httpx client without credentials."""
    with http_client(server.url) as c:
        yield c
