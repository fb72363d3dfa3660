"""One behaviour suite, every provider: what differs per provider lives here.

A harness starts its provider's emulator (optionally with faults), writes the YAML for
an account and its keys, and observes the emulator's stored state directly — never
through keystate — to check what keystate did.
"""

from __future__ import annotations

import json
import time
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, Protocol

from support import Servers, knobs

from keystate.emulators.algolia import AlgoliaEmulator
from keystate.emulators.coveo import CoveoEmulator
from keystate.emulators.http import EmuRequest, RunningServer
from keystate.model import Marker, parse_description

APP_ID = "BEHAVIOUR1"
ADMIN_KEY = "be0000000000000000000000000000be"


@dataclass
class Running:
    app: Any
    server: RunningServer

    @property
    def url(self) -> str:
        return self.server.url

    @contextmanager
    def fault_free(self) -> Iterator[Running]:
        """The same emulator (same keys, same propagation delay) behind one more server
        that injects no fault: for checks that must not depend on fault draws."""
        with Servers() as servers:
            yield Running(self.app, servers.start(self.app))


class Harness(Protocol):
    provider: str
    account: str
    env: dict[str, str]
    bad_env: dict[str, str]  # wrong credentials, to check errors echo none

    def start(
        self,
        serve: Servers,
        faults: str = "",
        seed: int = 1,
        clock: Callable[[], float] = ...,
        **knobs: Any,
    ) -> Running:
        """Serve a fresh emulator through ``serve`` (the test's ``serve`` fixture)."""
        ...

    def account_yaml(self, url: str, extra: str = "") -> str: ...
    def key_yaml(self, name: str, variant: int = 0) -> str: ...
    def stored(self, running: Running) -> list[dict[str, Any]]: ...
    def value_of(self, key: dict[str, Any]) -> str: ...
    def add_unmanaged(self, running: Running, description: str) -> None: ...
    def drift(self, running: Running, name: str) -> None: ...
    def secrets(self, running: Running) -> set[str]: ...
    def authenticates(self, running: Running, value: str) -> bool: ...
    def lifecycle_key_yaml(self, name: str, rotate: str = "", lifetime: str = "") -> str: ...


def markers(harness: Harness, running: Running) -> Counter[tuple[str, bool]]:
    """(name, pending) of every key carrying a keystate marker, counted."""
    out: Counter[tuple[str, bool]] = Counter()
    for key in harness.stored(running):
        marker: Marker | None = parse_description(str(key.get("description") or ""))[1]
        if marker is not None:
            out[(marker.name, marker.pending)] += 1
    return out


class AlgoliaHarness:
    provider = "algolia"
    account = "algolia-prod"
    env = {"ALGOLIA_APPLICATION_ID": APP_ID, "ALGOLIA_ADMIN_API_KEY": ADMIN_KEY}
    bad_env = {"ALGOLIA_APPLICATION_ID": APP_ID, "ALGOLIA_ADMIN_API_KEY": "f0" * 16}

    def start(
        self,
        serve: Servers,
        faults: str = "",
        seed: int = 1,
        propagation_delay_ms: float = 0,
        clock: Callable[[], float] = time.time,
        **kw: Any,
    ) -> Running:
        app = AlgoliaEmulator(
            app_id=APP_ID,
            admin_key=ADMIN_KEY,
            propagation_delay_ms=propagation_delay_ms,
            clock=clock,
        )
        return Running(app, serve(app, knobs(faults, seed, **kw)))

    def account_yaml(self, url: str, extra: str = "") -> str:
        return (
            f"  {self.account}:\n    provider: algolia\n"
            "    application_id: ${ALGOLIA_APPLICATION_ID}\n    api_key: ${ALGOLIA_ADMIN_API_KEY}\n"
            f'    hosts: ["{url}"]\n    timeout: 0.5\n    wait_timeout: 5\n{extra}'
        )

    def key_yaml(self, name: str, variant: int = 0) -> str:
        acl = ["search", "browse", "analytics"][variant % 3]
        return (
            f"    {name}:\n      description: key {name}\n      acl: [{acl}]\n"
            "      referers: ['https://shop.example.com/*']\n      expires_at: 2031-01-01T00:00:00Z\n"
        )

    def stored(self, running: Running) -> list[dict[str, Any]]:
        return list(running.app.snapshot())

    def value_of(self, key: dict[str, Any]) -> str:
        return str(key["value"])

    def _call(
        self, running: Running, method: str, path: str, body: dict[str, Any] | None = None
    ) -> Any:
        app: AlgoliaEmulator = running.app
        headers = {"x-algolia-application-id": app.app_id, "x-algolia-api-key": app.admin_key}
        reply = app.handle(
            EmuRequest(method, path, "", headers, json.dumps(body).encode() if body else b"")
        )
        assert 200 <= reply.status < 300, reply.body
        return json.loads(reply.body) if reply.body else None

    def add_unmanaged(self, running: Running, description: str) -> None:
        self._call(running, "POST", "/1/keys", {"acl": ["search"], "description": description})

    def drift(self, running: Running, name: str) -> None:
        key = next(k for k in self.stored(running) if f"/{name}" in str(k.get("description")))
        self._call(
            running,
            "PUT",
            f"/1/keys/{key['value']}",
            {"acl": ["deleteIndex"], "description": key["description"]},
        )

    def secrets(self, running: Running) -> set[str]:
        return {str(k["value"]) for k in self.stored(running)} | {ADMIN_KEY}

    def authenticates(self, running: Running, value: str) -> bool:
        """Whether a key still works: Algolia lets a key read itself."""
        headers = {"x-algolia-application-id": APP_ID, "x-algolia-api-key": value}
        reply = running.app.handle(EmuRequest("GET", f"/1/keys/{value}", "", headers, b""))
        return bool(reply.status == 200)

    def lifecycle_key_yaml(self, name: str, rotate: str = "", lifetime: str = "") -> str:
        return (
            f"    {name}:\n      description: key {name}\n      acl: [search]\n"
            "      referers: ['https://shop.example.com/*']\n"
            + (f"      rotate: {rotate}\n" if rotate else "")
            + (f"      lifetime: {lifetime}\n" if lifetime else "")
        )


ORG = "behaviour"
TOKEN = "xbehaviourtoken00000000000000000"


class CoveoHarness:
    provider = "coveo"
    account = "coveo-prod"
    env = {"COVEO_ACCESS_TOKEN": TOKEN}
    bad_env = {"COVEO_ACCESS_TOKEN": "xwrongtoken0000000000000000000000"}

    def start(
        self,
        serve: Servers,
        faults: str = "",
        seed: int = 1,
        propagation_delay_ms: float = 0,
        clock: Callable[[], float] = time.time,
        **kw: Any,
    ) -> Running:
        app = CoveoEmulator(
            organization_id=ORG,
            token=TOKEN,
            propagation_delay_ms=propagation_delay_ms,
            clock=clock,
        )
        return Running(app, serve(app, knobs(faults, seed, **kw)))

    def account_yaml(self, url: str, extra: str = "") -> str:
        return (
            f"  {self.account}:\n    provider: coveo\n    organization_id: {ORG}\n"
            "    token: ${COVEO_ACCESS_TOKEN}\n"
            f"    base_url: {url}\n    timeout: 0.5\n    wait_timeout: 5\n{extra}"
        )

    def key_yaml(self, name: str, variant: int = 0) -> str:
        ip = ["203.0.113.0/24", "198.51.100.0/24", "192.0.2.0/24"][variant % 3]
        return (
            f"    {name}:\n      description: key {name}\n      privileges:\n"
            "        - {owner: SEARCH_API, target_domain: EXECUTE_QUERY}\n"
            f'      allowed_ips: ["{ip}"]\n      expires_at: 2031-01-01T00:00:00Z\n'
        )

    def stored(self, running: Running) -> list[dict[str, Any]]:
        return list(running.app.snapshot())

    def value_of(self, key: dict[str, Any]) -> str:
        return str(key["value"])

    def _call(self, running: Running, method: str, path: str, body: Any = None) -> Any:
        headers = {"authorization": f"Bearer {TOKEN}", "content-type": "application/json"}
        raw = json.dumps(body).encode() if body is not None else b""
        reply = running.app.handle(
            EmuRequest(method, f"/rest/organizations/{ORG}{path}", "", headers, raw)
        )
        assert 200 <= reply.status < 300, reply.body
        return json.loads(reply.body) if reply.body else None

    def add_unmanaged(self, running: Running, description: str) -> None:
        body = {
            "displayName": "hand-made",
            "description": description,
            "privileges": [{"owner": "SEARCH_API", "targetDomain": "EXECUTE_QUERY"}],
        }
        self._call(running, "POST", "/apikeys", body)

    def drift(self, running: Running, name: str) -> None:
        key = next(k for k in self.stored(running) if f"/{name}" in str(k.get("description")))
        model = self._call(running, "GET", f"/apikeys/{key['id']}")
        model["allowedIps"] = ["0.0.0.0/0"]
        self._call(running, "PUT", f"/apikeys/{key['id']}", model)

    def secrets(self, running: Running) -> set[str]:
        return {str(k["value"]) for k in self.stored(running)} | {TOKEN}

    def authenticates(self, running: Running, value: str) -> bool:
        """Whether a key still works: Coveo refuses an unknown, disabled or expired key
        with 401 invalid token, and a working one without the privilege otherwise."""
        headers = {"authorization": f"Bearer {value}"}
        reply = running.app.handle(
            EmuRequest("GET", f"/rest/organizations/{ORG}/apikeys", "", headers, b"")
        )
        return b"INVALID_TOKEN" not in reply.body

    def lifecycle_key_yaml(self, name: str, rotate: str = "", lifetime: str = "") -> str:
        return (
            f"    {name}:\n      description: key {name}\n      privileges:\n"
            "        - {owner: SEARCH_API, target_domain: EXECUTE_QUERY}\n"
            '      allowed_ips: ["203.0.113.0/24"]\n'
            + (f"      rotate: {rotate}\n" if rotate else "")
            + (f"      lifetime: {lifetime}\n" if lifetime else "")
        )


HARNESSES: dict[str, Harness] = {"algolia": AlgoliaHarness(), "coveo": CoveoHarness()}
