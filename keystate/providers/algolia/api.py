"""Algolia's key API over HTTP: JSON <-> model, nothing else (algolia-api.md §1–§5).

* Hosts as the official clients use them: reads (any GET) go to ``{app}-dsn.algolia.net``
  first, writes to ``{app}.algolia.net``, then the three ``algolianet.com`` fallbacks in
  an order shuffled once per client.
* A key is addressed by its value, so the value is a :class:`Secret` handle and never
  appears in a log line or message; keys are named by SHA-256 fingerprint instead.
* ``PUT`` replaces the whole key: every update sends every field.
* ``validity`` is a lifetime on write and the *remaining* seconds on read, so expiry is
  carried as an absolute time and compared with a tolerance.
"""

from __future__ import annotations

import math
import random
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime, timedelta
from typing import Final
from urllib.parse import quote

import httpx

from keystate._version import __version__
from keystate.contract import AccountConfig, ConnectOptions, CreatedKey, Grant
from keystate.errors import NotFoundError, Problem, ProviderError, UsageError
from keystate.kinds import canonical_query
from keystate.model import FieldValue, KeySpec, LiveKey
from keystate.providers.algolia.schema import ACL_DOCS, ACLS, SCHEMA
from keystate.providers.http import ApiError, HttpClient, response_json
from keystate.providers.policy import Host, HostPool, HttpPolicy
from keystate.secrets import Secret, fingerprint

FINGERPRINT_SHOWN: Final = 16
# Every key operation needs the application's Admin API key ("Required API Key ACLs:
# admin"; algolia-api.md §2): no ACL of another key is enough.
ADMIN_NEEDED: Final = "the application's Admin API key (no other key may manage keys)"
ALGOLIA_POLICY: Final = HttpPolicy(connect_timeout=2.0, read_timeout=5.0, write_timeout=30.0)


def key_ref(value: str, digest: str | None = None) -> str:
    """``fingerprint:<hex>``; ``digest`` is the value's fingerprint when already known."""
    return f"fingerprint:{(digest or fingerprint(value))[:FINGERPRINT_SHOWN]}"


def default_hosts(app_id: str, rng: random.Random) -> HostPool:
    fallbacks = [Host(f"https://{app_id}-{i}.algolianet.com") for i in (1, 2, 3)]
    rng.shuffle(fallbacks)
    read = [Host(f"https://{app_id}-dsn.algolia.net"), *fallbacks]
    write = [Host(f"https://{app_id}.algolia.net"), *fallbacks]
    return HostPool(read, write)


def parse_error(response: httpx.Response) -> ApiError:
    request_id = response.headers.get("correlation-id")
    try:
        body = response.json()
    except ValueError:
        kind = response.headers.get("content-type", "no content type").split(";")[0]
        return ApiError(f"non-JSON error body ({kind})", request_id)
    if isinstance(body, dict) and isinstance(body.get("message"), str):
        return ApiError(body["message"], request_id)
    return ApiError("error body without a message", request_id)


class AlgoliaProvider:
    """One Algolia application."""

    schema = SCHEMA

    def __init__(
        self,
        account: AccountConfig,
        http: HttpClient,
        admin_key: Secret,
        credential_source: str,
    ) -> None:
        self.account = account
        self.http = http
        self.admin_key = admin_key
        self.credential_source = credential_source
        # One object per distinct set read (thousands of keys share a few ACL sets).
        self.sets: dict[frozenset[str], frozenset[str]] = {}

    # -- reading ---------------------------------------------------------------------
    async def list_keys(self) -> list[LiveKey]:
        response = await self.http.request("GET", "/1/keys", what="list keys")
        now = datetime.now(UTC)
        body = response_json(response, self.account.name, "list keys")
        if not isinstance(body, dict) or not isinstance(body.get("keys"), list):
            raise self._bad("list keys", "no 'keys' list in the response")
        admin = self.admin_key.fingerprint
        live = self._live
        keys: list[LiveKey] = []
        for i, item in enumerate(body["keys"]):
            try:
                keys.append(live(item, now, "list keys", admin))
            except ProviderError:
                # The same check again, to name the entry (built only on this rare path).
                live(item, now, f"list keys (entry {i + 1})", admin)
                raise
        return keys

    async def read_key(self, key: LiveKey) -> LiveKey | None:
        what = f"read key {key.ref}"
        try:
            response = await self.http.request("GET", self._path(key), what=what)
        except NotFoundError:
            return None
        body = response_json(response, self.account.name, what)
        return self._live(body, datetime.now(UTC), what, self.admin_key.fingerprint)

    def _live(self, item: object, now: datetime, what: str, admin: str) -> LiveKey:
        """One key of an answer; ``admin`` is the fingerprint of the account's credential."""
        if not isinstance(item, dict):
            raise self._bad(what, "a key is not a JSON object")
        value = item.get("value")
        if not isinstance(value, str) or not value:
            raise self._bad(what, "a key has no 'value'")
        secret = Secret(value)
        validity = _int(item, "validity", self, what)
        created_at = _epoch(item.get("createdAt"))
        try:
            expires_at = _snap(now + timedelta(seconds=validity)) if validity > 0 else None
        except OverflowError:
            raise self._bad(what, "'validity' is out of range") from None
        fields: dict[str, FieldValue] = {
            "acl": _strings(item, "acl", self, what),
            "indexes": _strings(item, "indexes", self, what),
            "referers": _strings(item, "referers", self, what),
            "max_hits_per_query": _int(item, "maxHitsPerQuery", self, what),
            "max_queries_per_ip_per_hour": _int(item, "maxQueriesPerIPPerHour", self, what),
            "query_parameters": _query(_str(item, "queryParameters", self, what)),
            "expires_at": expires_at,
        }
        digest = fingerprint(value)
        return LiveKey(
            ref=key_ref(value, digest),
            handle=secret,
            stored_description=_str(item, "description", self, what),
            fields=fields,
            value=secret,
            fingerprint=digest,
            is_credential=digest == admin,
            created_at=created_at,
        )

    # -- writing ---------------------------------------------------------------------
    async def create(self, spec: KeySpec, stored_description: str) -> CreatedKey:
        body = self._body(spec, stored_description)
        response = await self.http.request(
            "POST",
            "/1/keys",
            what=f"create {spec.address}",
            write=True,
            idempotent=False,
            json=body,
        )
        reply = response_json(response, self.account.name, f"create {spec.address}")
        if not isinstance(reply, dict) or not isinstance(reply.get("key"), str):
            raise self._bad(f"create {spec.address}", "no 'key' in the response")
        value = Secret(reply["key"])
        created_at = _timestamp(reply.get("createdAt")) or datetime.now(UTC)
        fields = dict(spec.fields)
        digest = value.fingerprint
        live = LiveKey(
            ref=key_ref(value.reveal(), digest),
            handle=value,
            stored_description=stored_description,
            fields=fields,
            value=value,
            fingerprint=digest,
            created_at=created_at,
        )
        return CreatedKey(live=live, value=value, created_at=created_at)

    async def update(self, live: LiveKey, spec: KeySpec, stored_description: str) -> None:
        await self.http.request(
            "PUT",
            self._path(live),
            what=f"update {spec.address} ({live.ref})",
            write=True,
            json=self._body(spec, stored_description),
        )

    async def delete(self, live: LiveKey) -> None:
        try:
            what = f"delete {live.ref}"
            await self.http.request("DELETE", self._path(live), what=what, write=True)
        except NotFoundError:
            return  # already gone: the goal is reached

    async def disable(self, live: LiveKey) -> None:
        raise UsageError("Algolia keys cannot be disabled; use removal: delete")

    async def grants(self) -> list[Grant]:
        out = []
        for acl in ACLS:
            doc = ACL_DOCS.get(acl, "")
            out.append(Grant(acl, doc, {"name": acl, "doc": doc}))
        return out

    async def catalogue(self) -> None:
        return None  # ACLs are a fixed enum, checked offline by the configuration loader

    async def check_creates(self, specs: Sequence[KeySpec]) -> list[Problem]:
        return []  # nothing about a new key is known to the API but what validate checks

    async def aclose(self) -> None:
        await self.http.aclose()

    # -- helpers ---------------------------------------------------------------------
    def _path(self, key: LiveKey) -> str:
        handle = key.handle
        value = handle.reveal() if isinstance(handle, Secret) else handle
        return "/1/keys/" + quote(value, safe="")

    def _body(self, spec: KeySpec, stored_description: str) -> dict[str, object]:
        f = spec.fields
        expires = f.get("expires_at")
        validity = 0
        if isinstance(expires, datetime):
            validity = max(1, math.ceil((expires - datetime.now(UTC)).total_seconds()))
        return {
            "acl": sorted(_set(f.get("acl"))),
            "description": stored_description,
            "indexes": sorted(_set(f.get("indexes"))),
            "referers": sorted(_set(f.get("referers"))),
            "maxHitsPerQuery": f.get("max_hits_per_query") or 0,
            "maxQueriesPerIPPerHour": f.get("max_queries_per_ip_per_hour") or 0,
            "queryParameters": f.get("query_parameters") or "",
            "validity": validity,
        }

    def _bad(self, what: str, detail: str) -> ProviderError:
        return ProviderError(
            f"{what}: unexpected answer from Algolia: {detail}", account=self.account.name
        )


def _set(value: FieldValue) -> frozenset[str]:
    if isinstance(value, frozenset):
        return frozenset(str(v) for v in value)
    return frozenset()


_NONE: Final[frozenset[str]] = frozenset()  # one object: each frozenset() is a new one


def _query(text: str) -> str:
    return canonical_query(text) if text else ""


def _strings(
    item: Mapping[str, object], name: str, p: AlgoliaProvider, what: str
) -> frozenset[str]:
    raw = item.get(name)
    if raw is None or raw == []:
        return _NONE
    if not isinstance(raw, list) or not all(isinstance(v, str) for v in raw):
        raise p._bad(what, f"'{name}' is not a list of strings")
    value = frozenset(raw)
    return p.sets.setdefault(value, value)


def _int(item: Mapping[str, object], name: str, p: AlgoliaProvider, what: str) -> int:
    raw = item.get(name, 0)
    if raw is None:
        return 0
    if isinstance(raw, bool) or not isinstance(raw, int) or raw < 0:
        raise p._bad(what, f"'{name}' is not a non-negative integer")
    return raw


def _str(item: Mapping[str, object], name: str, p: AlgoliaProvider, what: str) -> str:
    raw = item.get(name, "")
    if raw is None:
        return ""
    if not isinstance(raw, str):
        raise p._bad(what, f"'{name}' is not a string")
    return raw


def _epoch(raw: object) -> datetime | None:
    """``createdAt`` in a listing: epoch seconds; None when absent or unreadable (it is
    only shown, never compared)."""
    if not isinstance(raw, (int, float)) or isinstance(raw, bool):
        return None
    try:
        return datetime.fromtimestamp(raw, UTC)
    except (ValueError, OverflowError, OSError):
        return None


def _timestamp(raw: object) -> datetime | None:
    if not isinstance(raw, str):
        return None
    try:
        return datetime.fromisoformat(raw).astimezone(UTC)
    except ValueError:
        return None


def connect(account: AccountConfig, options: ConnectOptions) -> AlgoliaProvider:
    policy = ALGOLIA_POLICY.with_overrides(
        account.timeout, account.max_attempts, account.write_timeout
    )
    transport: httpx.AsyncBaseTransport | None = None
    sandbox = account.path("sandbox")
    rng = random.Random()
    if sandbox is not None:
        from keystate.emulators.algolia import AlgoliaEmulator
        from keystate.providers.sandbox import SandboxTransport

        emulator = AlgoliaEmulator(sandbox)
        emulator.persist()
        transport = SandboxTransport(emulator)
        app_id = emulator.app_id
        admin_key = Secret(emulator.admin_key)
        source = f"sandbox {sandbox}"
    else:
        app_id = account.text("application_id") or ""
        credential = account.secret("api_key")
        assert credential is not None, "config guarantees api_key without sandbox"
        admin_key = credential.secret
        source = credential.source
    hosts = account.urls("hosts")
    pool = (
        HostPool([Host(h) for h in hosts], [Host(h) for h in hosts])
        if hosts
        else default_hosts(app_id, rng)
    )
    headers = {
        "x-algolia-application-id": app_id,
        "x-algolia-api-key": admin_key.reveal(),
        "content-type": "application/json",
        "user-agent": options.user_agent or f"keystate/{__version__}",
    }
    http = HttpClient(
        account=account.name,
        service="Algolia",
        pool=pool,
        policy=policy,
        headers=headers,
        parse_error=parse_error,
        transport=transport,
        rng=rng,
        auth_hint=f"check the admin API key from {source} and the application id",
        needs=lambda _method, _path: ADMIN_NEEDED,
    )
    return AlgoliaProvider(account, http, admin_key, source)


SNAP_SECONDS: Final = 5


def _snap(moment: datetime) -> datetime:
    """An expiry read back from a remaining ``validity`` is off by a second or two (it
    was rounded up on write, and is counted in whole seconds from "now"): one within
    SNAP_SECONDS of a whole minute is that minute, so that it shows as declared
    (``2030-06-30T00:00:00Z``, not ``...00:01Z``)."""
    minute = (moment + timedelta(seconds=30)).replace(second=0, microsecond=0)
    return minute if abs((moment - minute).total_seconds()) <= SNAP_SECONDS else moment
