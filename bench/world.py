"""Builds the benchmark worlds: emulator fleets on 127.0.0.1, seeded keys, and the
keystate configuration that declares them (with a share of drift)."""

from __future__ import annotations

import json
import random
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from keystate.emulators.algolia import AlgoliaEmulator
from keystate.emulators.faults import Knobs
from keystate.emulators.http import EmuRequest, RunningServer, start_in_thread

OWNER = "bench"
ACLS = ("search", "browse", "listIndexes", "analytics", "usage", "settings")


@dataclass
class Account:
    name: str
    provider: str
    url: str
    server: RunningServer
    app: Any
    credentials: dict[str, str]
    handles: list[str] = field(default_factory=list)  # key values (Algolia) or ids (Coveo)


@dataclass
class World:
    accounts: list[Account]
    config: Path
    env: dict[str, str]

    def requests(self) -> int:
        return sum(a.server.counters.total for a in self.accounts)

    def reset_counters(self) -> None:
        for account in self.accounts:
            account.server.counters.reset()

    def describe(self, path: Path) -> Path:
        """A JSON description of the world for the peer scripts (fake credentials only)."""
        data = [
            {
                "name": a.name,
                "provider": a.provider,
                "url": a.url,
                "credentials": a.credentials,
                "handles": a.handles,
            }
            for a in self.accounts
        ]
        path.write_text(json.dumps({"accounts": data, "config": str(self.config)}))
        return path


def _algolia_key(rng: random.Random, index: int) -> dict[str, Any]:
    return {
        "acl": sorted(rng.sample(ACLS, rng.randint(1, 3))),
        "description": f"bench key {index}",
        "indexes": [f"products_{index % 7}_*"],
        "maxHitsPerQuery": 20 + index % 30,
    }


def _post(app: AlgoliaEmulator, body: dict[str, Any]) -> str:
    headers = {"x-algolia-application-id": app.app_id, "x-algolia-api-key": app.admin_key}
    reply = app.handle(EmuRequest("POST", "/1/keys", "", headers, json.dumps(body).encode()))
    assert reply.status == 200, reply.body
    return str(json.loads(reply.body)["key"])


def algolia_account(
    i: int, n_keys: int, latency_ms: float, rng: random.Random
) -> tuple[Account, list[dict[str, Any]]]:
    app = AlgoliaEmulator(app_id=f"BENCH{i:05d}", admin_key=f"{i:032x}")
    specs = []
    handles = []
    for j in range(n_keys):
        spec = _algolia_key(rng, j)
        stored = dict(spec, description=f"{spec['description']} keystate:{OWNER}/key-{j:05d}")
        handles.append(_post(app, stored))
        specs.append(spec)
    server = start_in_thread(app, Knobs(latency_ms=latency_ms))
    name = f"algolia-{i:03d}"
    credentials = {"application_id": app.app_id, "api_key": app.admin_key}
    return Account(name, "algolia", server.url, server, app, credentials, handles), specs


def _yaml_algolia_key(j: int, spec: dict[str, Any], drift: bool) -> str:
    acl = list(spec["acl"])
    if drift:
        acl = sorted(set(acl) ^ {"logs"})
    return (
        f"    key-{j:05d}:\n"
        f"      description: {spec['description']}\n"
        f"      acl: [{', '.join(acl)}]\n"
        f'      indexes: ["{spec["indexes"][0]}"]\n'
        f"      max_hits_per_query: {spec['maxHitsPerQuery']}\n"
    )


def write_config(
    path: Path,
    accounts: list[tuple[Account, list[dict[str, Any]]]],
    drift: float,
    rng: random.Random,
) -> dict[str, str]:
    """The declared configuration: the seeded keys, ``drift`` of them changed."""
    env: dict[str, str] = {}
    lines = ["version: 1", f"owner: {OWNER}", "accounts:"]
    for account, _ in accounts:
        var = account.name.upper().replace("-", "_")
        env[f"{var}_KEY"] = account.credentials["api_key"]
        lines += [
            f"  {account.name}:",
            "    provider: algolia",
            f"    application_id: {account.credentials['application_id']}",
            f"    api_key: ${{{var}_KEY}}",
            f'    hosts: ["{account.url}"]',
        ]
    lines.append("keys:")
    for account, specs in accounts:
        lines.append(f"  {account.name}:")
        body = [_yaml_algolia_key(j, spec, rng.random() < drift) for j, spec in enumerate(specs)]
        lines.append("".join(body).rstrip("\n"))
    path.write_text("\n".join(lines) + "\n")
    return env


@contextmanager
def algolia_world(
    workdir: Path,
    n_accounts: int,
    keys_per_account: int,
    latency_ms: float,
    drift: float,
    seed: int = 1,
) -> Iterator[World]:
    rng = random.Random(seed)
    built = [algolia_account(i, keys_per_account, latency_ms, rng) for i in range(n_accounts)]
    config = workdir / f"bench-{n_accounts}x{keys_per_account}.yaml"
    env = write_config(config, built, drift, rng)
    world = World([a for a, _ in built], config, env)
    try:
        yield world
    finally:
        for account in world.accounts:
            account.server.stop()
