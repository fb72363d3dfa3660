"""Builds the benchmark worlds: emulator fleets on 127.0.0.1, seeded keys, and the
keystate configuration that declares them (with a share of drift).

The configuration is a directory with one file per account (its account block and its
keys), the layout a company with dozens of accounts keeps, and the one that stays under
keystate's 10 MB per-file limit at 100,000 keys.
"""

from __future__ import annotations

import json
import random
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from keystate.emulators.algolia import AlgoliaEmulator
from keystate.emulators.coveo import CoveoEmulator
from keystate.emulators.faults import Knobs
from keystate.emulators.http import EmuRequest, RunningServer, start_in_thread

OWNER = "bench"
ACLS = ("search", "browse", "listIndexes", "analytics", "usage", "settings")
PRIVILEGES = (
    ("SEARCH_API", "EXECUTE_QUERY", None),
    ("SEARCH_API", "QUERY_PIPELINE", "VIEW"),
    ("USAGE_ANALYTICS", "ANALYTICS_DATA", "VIEW"),
    ("USAGE_ANALYTICS", "REPORTS", "VIEW"),
    ("COVEO_ML", "MODELS", "VIEW"),
    ("PLATFORM", "FIELD", "VIEW"),
)


@dataclass
class Account:
    name: str
    provider: str
    url: str
    server: RunningServer
    credentials: dict[str, str]
    handles: list[str] = field(default_factory=list)  # key values (Algolia) or ids (Coveo)
    specs: list[dict[str, Any]] = field(default_factory=list)  # the declared keys

    @property
    def requests(self) -> int:
        return self.server.counters.total

    def env_var(self) -> str:
        return self.name.upper().replace("-", "_") + "_SECRET"


@dataclass
class World:
    accounts: list[Account]
    config: Path  # a directory of *.yaml files
    env: dict[str, str]
    drifted: int  # keys whose declaration differs from the live key

    @property
    def keys(self) -> int:
        return sum(len(a.handles) for a in self.accounts)

    def requests(self) -> int:
        return sum(a.requests for a in self.accounts)

    def rate_limited(self) -> int:
        """429s the emulators' rate limits answered since the last reset."""
        return sum(a.server.counters.faults.get("rate-limited", 0) for a in self.accounts)

    def requests_by_provider(self) -> dict[str, set[int]]:
        """The distinct request counts of the accounts of each provider."""
        out: dict[str, set[int]] = {}
        for account in self.accounts:
            out.setdefault(account.provider, set()).add(account.requests)
        return out

    def count(self, provider: str) -> int:
        return sum(1 for a in self.accounts if a.provider == provider)

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
        files = sorted(str(p) for p in self.config.glob("*.yaml"))
        path.write_text(json.dumps({"accounts": data, "config": files}))
        return path


def _marker(j: int) -> str:
    return f"keystate:{OWNER}/key-{j:05d}"


# -- Algolia ------------------------------------------------------------------------------
def expiry() -> datetime:
    """When every benchmark key expires: a year from today, so the configuration is as
    lint-clean as a well-kept one (no key without an expiry)."""
    today = datetime.now(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
    return today + timedelta(days=365)


def _seconds_left(at: datetime) -> int:
    return int((at - datetime.now(UTC)).total_seconds())


def _algolia_spec(rng: random.Random, j: int) -> dict[str, Any]:
    return {
        "acl": sorted(rng.sample(ACLS, rng.randint(1, 3))),
        "description": f"bench key {j}",
        "indexes": [f"products_{j % 7}_*"],
        "maxHitsPerQuery": 20 + j % 30,
        "maxQueriesPerIPPerHour": 1000 + j % 500,
    }


def _algolia_seed(app: AlgoliaEmulator, spec: dict[str, Any], j: int) -> str:
    body = dict(spec, description=f"{spec['description']} {_marker(j)}")
    body["validity"] = _seconds_left(expiry())
    headers = {"x-algolia-application-id": app.app_id, "x-algolia-api-key": app.admin_key}
    reply = app.handle(EmuRequest("POST", "/1/keys", "", headers, json.dumps(body).encode()))
    assert reply.status == 200, reply.body
    return str(json.loads(reply.body)["key"])


def algolia_account(i: int, n_keys: int, knobs: Knobs, rng: random.Random) -> Account:
    app = AlgoliaEmulator(app_id=f"BENCH{i:05d}", admin_key=f"{i:032x}")
    specs = [_algolia_spec(rng, j) for j in range(n_keys)]
    handles = [_algolia_seed(app, spec, j) for j, spec in enumerate(specs)]
    server = start_in_thread(app, knobs)
    credentials = {"application_id": app.app_id, "api_key": app.admin_key}
    return Account(f"algolia-{i:03d}", "algolia", server.url, server, credentials, handles, specs)


def _algolia_yaml(j: int, spec: dict[str, Any], drift: bool) -> str:
    acl = list(spec["acl"])
    if drift:
        acl = sorted(set(acl) ^ {"logs"})
    return (
        f"    key-{j:05d}:\n"
        f"      description: {spec['description']}\n"
        f"      acl: [{', '.join(acl)}]\n"
        f'      indexes: ["{spec["indexes"][0]}"]\n'
        f"      max_hits_per_query: {spec['maxHitsPerQuery']}\n"
        f"      max_queries_per_ip_per_hour: {spec['maxQueriesPerIPPerHour']}\n"
        f"      expires_at: {_rfc3339(expiry())}\n"
    )


# -- Coveo --------------------------------------------------------------------------------
def _coveo_spec(rng: random.Random, j: int) -> dict[str, Any]:
    chosen = sorted(rng.sample(PRIVILEGES, rng.randint(1, 3)), key=lambda p: (p[0], p[1]))
    return {
        "description": f"bench key {j}",
        "privileges": chosen,
        "allowed_ips": [f"11.{j % 200}.{j % 250}.0/24"],  # public (Coveo refuses private)
        "search_hub": f"hub-{j % 11}",
    }


def _coveo_seed(app: CoveoEmulator, spec: dict[str, Any], j: int) -> str:
    privileges = []
    for owner, domain, kind in spec["privileges"]:
        item = {"owner": owner, "targetDomain": domain}
        if kind:
            item["type"] = kind
        privileges.append(item)
    body = {
        "displayName": f"key-{j:05d}",
        "description": f"{spec['description']} {_marker(j)}",
        "privileges": privileges,
        "allowedIps": spec["allowed_ips"],
        "additionalConfiguration": {
            "search": {"enforcedQueryPipelineConfiguration": {"searchHub": spec["search_hub"]}}
        },
        # Coveo lifetimes are whole days (a date-based Period), as the provider sends them.
        "lifetimeDuration": f"P{max(1, round(_seconds_left(expiry()) / 86400))}D",
    }
    path = f"/rest/organizations/{app.organization_id}/apikeys"
    headers = {"authorization": f"Bearer {app.token}", "content-type": "application/json"}
    reply = app.handle(EmuRequest("POST", path, "", headers, json.dumps(body).encode()))
    assert reply.status == 201, reply.body
    return str(json.loads(reply.body)["id"])


def coveo_account(i: int, n_keys: int, knobs: Knobs, rng: random.Random) -> Account:
    app = CoveoEmulator(organization_id=f"benchorg{i:04d}", token=f"x{i:032x}")
    specs = [_coveo_spec(rng, j) for j in range(n_keys)]
    handles = [_coveo_seed(app, spec, j) for j, spec in enumerate(specs)]
    server = start_in_thread(app, knobs)
    credentials = {"organization_id": app.organization_id, "token": app.token}
    return Account(f"coveo-{i:03d}", "coveo", server.url, server, credentials, handles, specs)


def _coveo_yaml(j: int, spec: dict[str, Any], drift: bool) -> str:
    ips = list(spec["allowed_ips"]) + (["192.0.2.0/24"] if drift else [])
    privileges = []
    for owner, domain, kind in spec["privileges"]:
        typed = f", type: {kind}" if kind else ""
        privileges.append(f"        - {{owner: {owner}, target_domain: {domain}{typed}}}\n")
    return (
        f"    key-{j:05d}:\n"
        f"      description: {spec['description']}\n"
        f"      privileges:\n{''.join(privileges)}"
        f"      allowed_ips: [{', '.join(ips)}]\n"
        f"      search_hub: {spec['search_hub']}\n"
        f"      expires_at: {_rfc3339(expiry())}\n"
    )


def _rfc3339(at: datetime) -> str:
    return at.isoformat().replace("+00:00", "Z")


# -- configuration ------------------------------------------------------------------------
def _account_yaml(account: Account) -> list[str]:
    secret = f"${{{account.env_var()}}}"
    if account.provider == "algolia":
        return [
            "    provider: algolia",
            f"    application_id: {account.credentials['application_id']}",
            f"    api_key: {secret}",
            f'    hosts: ["{account.url}"]',
        ]
    return [
        "    provider: coveo",
        f"    organization_id: {account.credentials['organization_id']}",
        f"    token: {secret}",
        f"    base_url: {account.url}",
    ]


def write_config(
    directory: Path, accounts: list[Account], drift: float, rng: random.Random
) -> tuple[dict[str, str], int]:
    """One file per account: the seeded keys, ``drift`` of them changed. Returns the
    environment the ``${VAR}`` credentials come from and the number of drifted keys."""
    directory.mkdir(parents=True, exist_ok=True)
    env: dict[str, str] = {}
    drifted = 0
    for account in accounts:
        env[account.env_var()] = account.credentials.get("api_key") or account.credentials["token"]
        render = _algolia_yaml if account.provider == "algolia" else _coveo_yaml
        body = []
        for j, spec in enumerate(account.specs):
            changed = rng.random() < drift
            drifted += changed
            body.append(render(j, spec, changed))
        head = ["version: 1", f"owner: {OWNER}", "accounts:", f"  {account.name}:"]
        text = "\n".join([*head, *_account_yaml(account), "keys:", f"  {account.name}:"])
        (directory / f"{account.name}.yaml").write_text(text + "\n" + "".join(body))
    return env, drifted


@contextmanager
def world(
    workdir: Path,
    *,
    algolia: int,
    coveo: int = 0,
    keys_per_account: int,
    latency_ms: float,
    drift: float,
    seed: int = 1,
    rate_limit: float = 0,
) -> Iterator[World]:
    """Emulator servers for ``algolia`` + ``coveo`` accounts of ``keys_per_account`` keys
    each, answering after ``latency_ms`` (at most ``rate_limit`` requests per second
    each, if given); stopped on exit."""
    rng = random.Random(seed)
    knobs = Knobs(latency_ms=latency_ms, rate_limit=rate_limit)
    with ExitStack() as stack:
        accounts: list[Account] = []
        for i in range(algolia):
            accounts.append(algolia_account(i, keys_per_account, knobs, rng))
            stack.callback(accounts[-1].server.stop)
        for i in range(coveo):
            accounts.append(coveo_account(i, keys_per_account, knobs, rng))
            stack.callback(accounts[-1].server.stop)
        name = f"config-{algolia}a{coveo}c-{keys_per_account}-s{seed}"
        config = workdir / name
        env, drifted = write_config(config, accounts, drift, rng)
        yield World(accounts, config, env, drifted)
