"""Shared fixtures: emulators on 127.0.0.1, a fake clock, configuration files, and the
CLI runner. Emulators are served only through :class:`support.Servers` (``serve``)."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from click.testing import CliRunner, Result
from support import FakeClock, Servers, knobs

from keystate.cli import cli
from keystate.emulators.algolia import AlgoliaEmulator
from keystate.emulators.http import RunningServer

APP_ID = "KSTESTAPP1"
ADMIN_KEY = "ad0000000000000000000000000000ad"  # canary: must never appear in any output


@pytest.fixture
def serve() -> Iterator[Servers]:
    """``serve(app, knobs=None)`` -> a RunningServer; every server stops at teardown."""
    with Servers() as servers:
        yield servers


@pytest.fixture
def clock() -> FakeClock:
    """A frozen clock for emulators: ``clock.advance(seconds)``."""
    return FakeClock()


@dataclass
class Algolia:
    emulator: AlgoliaEmulator
    server: RunningServer

    @property
    def url(self) -> str:
        return self.server.url

    def requests(self) -> int:
        return self.server.counters.total


@pytest.fixture
def algolia(serve: Servers) -> Algolia:
    """An Algolia emulator on a free loopback port, no faults."""
    emulator = AlgoliaEmulator(app_id=APP_ID, admin_key=ADMIN_KEY)
    return Algolia(emulator, serve(emulator))


@pytest.fixture
def algolia_factory(serve: Servers) -> Callable[..., Algolia]:
    """``algolia_factory(faults="500=0.3", seed=1, propagation_delay_ms=0, ...)``."""

    def make(
        faults: str = "",
        seed: int | None = 1,
        propagation_delay_ms: float = 0,
        latency_ms: float = 0,
        retry_after: float = 0.0,
        timeout_hold_s: float = 2.0,
        **kwargs: object,
    ) -> Algolia:
        emulator = AlgoliaEmulator(
            app_id=APP_ID,
            admin_key=ADMIN_KEY,
            propagation_delay_ms=propagation_delay_ms,
            **kwargs,  # type: ignore[arg-type]
        )
        knob = knobs(
            faults,
            seed,
            latency_ms=latency_ms,
            retry_after=retry_after,
            timeout_hold_s=timeout_hold_s,
        )
        return Algolia(emulator, serve(emulator, knob))

    return make


def algolia_account(url: str, name: str = "algolia-prod", extra: str = "") -> str:
    """YAML for an account pointing at an emulator, credentials from the environment."""
    return (
        f"  {name}:\n"
        "    provider: algolia\n"
        "    application_id: ${ALGOLIA_APPLICATION_ID}\n"
        "    api_key: ${ALGOLIA_ADMIN_API_KEY}\n"
        f'    hosts: ["{url}"]\n'
        "    timeout: 2\n"
        "    wait_timeout: 5\n"
        f"{extra}"
    )


CREDENTIALS = {"ALGOLIA_APPLICATION_ID": APP_ID, "ALGOLIA_ADMIN_API_KEY": ADMIN_KEY}


@pytest.fixture
def run(monkeypatch: pytest.MonkeyPatch) -> Callable[..., Result]:
    """Run the CLI in-process: ``run("plan", "-c", path, env={...})``."""

    def invoke(*args: str, env: dict[str, str] | None = None, input: str | None = None) -> Result:
        merged = dict(CREDENTIALS)
        merged.update(env or {})
        for key, value in merged.items():
            monkeypatch.setenv(key, value)
        monkeypatch.delenv("GITHUB_ACTIONS", raising=False)
        runner = CliRunner()
        return runner.invoke(cli, list(args), input=input, catch_exceptions=False)

    return invoke


@pytest.fixture
def write(tmp_path: Path) -> Callable[[str, str], Path]:
    def write_file(text: str, name: str = "keystate.yaml") -> Path:
        path = tmp_path / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
        return path

    return write_file


def pytest_configure(config: pytest.Config) -> None:
    os.environ.setdefault("NO_COLOR", "1")


def official_client(url: str, api_key: str = ADMIN_KEY) -> object:
    """Algolia's official Python client, pointed at an emulator URL."""
    from urllib.parse import urlsplit

    from algoliasearch.http.hosts import Host, HostsCollection
    from algoliasearch.search.client import SearchClientSync
    from algoliasearch.search.config import SearchConfig

    parts = urlsplit(url)
    config = SearchConfig(APP_ID, api_key)
    config.hosts = HostsCollection([Host(parts.hostname, scheme="http", port=parts.port)])
    config.proxies = {}
    return SearchClientSync.create_with_config(config)
