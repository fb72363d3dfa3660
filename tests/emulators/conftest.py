"""Fixtures for the emulator tests: an Algolia emulator on the fake clock, its server
and httpx clients (``serve`` and ``clock`` come from tests/conftest.py)."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest
from support import FakeClock, Servers

from keystate.emulators.algolia import AlgoliaEmulator
from keystate.emulators.http import RunningServer

from .emu_helpers import ADMIN_HEADERS, ADMIN_KEY, APP_ID, http_client


@pytest.fixture
def emulator(clock: FakeClock) -> AlgoliaEmulator:
    return AlgoliaEmulator(app_id=APP_ID, admin_key=ADMIN_KEY, clock=clock)


@pytest.fixture
def server(emulator: AlgoliaEmulator, serve: Servers) -> RunningServer:
    return serve(emulator)


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
