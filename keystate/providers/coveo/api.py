"""Coveo's API-key endpoints over HTTP: JSON <-> model, nothing else (coveo-api.md §1–§7).

* One host per region (``platform[-eu|-au|-ca].cloud.coveo.com``, ``platformhipaa``),
  or ``base_url``; every call sends ``Authorization: Bearer <token>``.
* Keys are addressed by id; values are masked in listings (``xx*****1343``), so a
  key's value exists only in the create response and goes straight to the sink.
* ``PUT`` takes the whole update model: keystate starts from the key as last read, so
  settings it does not manage (groups, other additional configuration) are kept.
* Dates are epoch milliseconds (ISO strings accepted too). Privileges come in two
  shapes (``targetId``, or the older ``targetIds``/``global``).
* Reads are treated as consistent: Coveo documents no lag and offers no wait API.
"""

from __future__ import annotations

import random
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import Any, Final
from urllib.parse import quote

import httpx

from keystate._version import __version__
from keystate.contract import (
    AccountConfig,
    Catalogue,
    ConnectOptions,
    CreatedKey,
    Grant,
)
from keystate.errors import NotFoundError, Problem, ProviderError
from keystate.model import KeySpec, LiveKey, Privilege
from keystate.providers.coveo import templates
from keystate.providers.coveo.reading import KeyReader
from keystate.providers.coveo.schema import LAPSING_STATUSES, SCHEMA
from keystate.providers.coveo.wire import (
    additional,
    dig,
    lifetime_days,
    needs_in,
    parse_error,
    platform_url,
    privilege_from_json,
    privileges_json,
    strings_of,
    template_ips,
)
from keystate.providers.http import HttpClient, response_json
from keystate.providers.policy import HostPool, HttpPolicy
from keystate.secrets import Secret

COVEO_POLICY: Final = HttpPolicy(connect_timeout=3.0, read_timeout=15.0, write_timeout=30.0)
_UPDATE_FIELDS: Final = ("groupsThatCanEdit", "apiKeysThatCanEdit")


class CoveoProvider:
    """One Coveo organization."""

    schema = SCHEMA

    def __init__(self, account: AccountConfig, http: HttpClient, org: str, token: Secret) -> None:
        self.account = account
        self.http = http
        self.org = org
        self.token = token
        self.prefix = f"/rest/organizations/{quote(org, safe='')}"
        self.reader = KeyReader(account.name, token)

    # -- reading ---------------------------------------------------------------------
    async def list_keys(self) -> list[LiveKey]:
        response = await self._call("GET", "/apikeys", what="list keys")
        body = response_json(response, self.account.name, "list keys")
        if not isinstance(body, list):
            raise self.reader.bad("list keys", "the answer is not a list of keys")
        if any(isinstance(i, dict) and i.get("apiKeyTemplateId") for i in body):
            await self._load_templates()
        now = datetime.now(UTC)
        return [
            self.reader.live(item, now, f"list keys (entry {i + 1})") for i, item in enumerate(body)
        ]

    async def read_key(self, key: LiveKey) -> LiveKey | None:
        what = f"read key {key.ref}"
        try:
            response = await self._call("GET", self._key_path(key), what=what)
        except NotFoundError:
            return None
        item = response_json(response, self.account.name, what)
        if isinstance(item, dict) and item.get("apiKeyTemplateId"):
            await self._load_templates()
        return self.reader.live(item, datetime.now(UTC), what)

    async def _load_templates(self) -> dict[str, dict[str, Any]]:
        if self.reader.templates is None:
            what = "list API key templates"
            response = await self._call("GET", "/templates/apikeys", what=what)
            body = response_json(response, self.account.name, what)
            if not isinstance(body, list):
                raise self.reader.bad(what, "the answer is not a list")
            self.reader.templates = {
                str(t["id"]): t
                for t in body
                if isinstance(t, dict) and isinstance(t.get("id"), str)
            }
        return self.reader.templates

    # -- writing ---------------------------------------------------------------------
    async def create(self, spec: KeySpec, stored_description: str) -> CreatedKey:
        f = spec.fields
        template = f.get("template")
        body: dict[str, Any] = {
            "displayName": f.get("display_name") or spec.name,
            "description": stored_description,
            "enabled": f.get("enabled", True) is not False,
        }
        for name, field_name in (("allowedIps", "allowed_ips"), ("deniedIps", "denied_ips")):
            ips = sorted(strings_of(f.get(field_name)))
            if ips or not template:  # a template's own lists stay unless declared
                body[name] = ips
        privileges = f.get("privileges")
        if isinstance(privileges, frozenset):
            body["privileges"] = privileges_json(privileges)
        override = f.get("override_template_privileges")
        if template and isinstance(override, frozenset) and override:
            body["overrideTemplatePrivileges"] = privileges_json(override)
        extra = additional({}, f)
        if extra:
            body["additionalConfiguration"] = extra
        expires = f.get("expires_at")
        if isinstance(expires, datetime):
            body["lifetimeDuration"] = lifetime_days(expires, datetime.now(UTC))
        params = {"apiKeyTemplateId": str(template)} if template else None
        what = f"create {spec.address}"
        response = await self._call(
            "POST", "/apikeys", what=what, write=True, idempotent=False, json=body, params=params
        )
        reply = response_json(response, self.account.name, what)
        if not isinstance(reply, dict) or not isinstance(reply.get("value"), str):
            raise self.reader.bad(what, "no key value in the create response")
        value = Secret(reply["value"])
        live = self.reader.live(reply, datetime.now(UTC), what)
        return CreatedKey(live=live, value=value, created_at=live.created_at or datetime.now(UTC))

    async def update(self, live: LiveKey, spec: KeySpec, stored_description: str) -> None:
        """PUT the whole update model (Coveo replaces the key's settings with it): the
        declared fields, and what keystate does not manage as last read."""
        key_id = str(live.handle)
        raw = self.reader.raw.get(key_id, {})
        f = spec.fields
        template = (self.reader.templates or {}).get(str(raw.get("apiKeyTemplateId") or ""))
        body: dict[str, Any] = {
            "displayName": f.get("display_name") or spec.name,
            "description": stored_description,
        }
        for name, field_name in (("allowedIps", "allowed_ips"), ("deniedIps", "denied_ips")):
            ips = strings_of(f.get(field_name))
            if not ips and template is not None:
                ips = template_ips(template, name)  # undeclared: the template's own
            body[name] = sorted(ips)
        body["additionalConfiguration"] = additional(dig(raw, "additionalConfiguration"), f)
        for name in _UPDATE_FIELDS:
            body[name] = raw.get(name) or []
        what = f"update {spec.address} ({live.ref})"
        await self._call("PUT", self._key_path(live), what=what, write=True, json=body)
        wanted = f.get("enabled", True) is not False
        verb = ""
        if wanted and live.status in LAPSING_STATUSES:
            verb = "activation/extend"  # Coveo's remedy for inactivity, not /activate
        elif wanted != live.enabled:
            verb = "activate" if wanted else "disable"
        if verb and wanted and live.exposed:
            raise ProviderError(
                f"{spec.address}: {live.ref} was reported exposed; keystate never "
                "re-enables an exposed key",
                account=self.account.name,
            )
        if verb:
            await self._call(
                "PUT", f"{self._key_path(live)}/{verb}", what=f"{verb} {spec.address}", write=True
            )

    async def check_creates(self, specs: Sequence[KeySpec]) -> list[Problem]:
        """Before any write, what Coveo would refuse in the keys a plan creates from a
        template (see :mod:`.templates`)."""
        using = [s for s in specs if s.fields.get("template")]
        if not using:
            return []
        found = await self._load_templates()
        what = "read API key template eligibility"
        response = await self._call("GET", "/templates/apikeys/privileges/eligibility", what=what)
        body = response_json(response, self.account.name, what)
        eligibility = {
            str(e.get("id")): e
            for e in (body if isinstance(body, list) else [])
            if isinstance(e, dict)
        }
        return templates.check(using, found, eligibility, self.org, datetime.now(UTC))

    async def delete(self, live: LiveKey) -> None:
        try:
            await self._call("DELETE", self._key_path(live), what=f"delete {live.ref}", write=True)
        except NotFoundError:
            return

    async def disable(self, live: LiveKey) -> None:
        await self._call(
            "PUT", f"{self._key_path(live)}/disable", what=f"disable {live.ref}", write=True
        )

    # -- privileges ------------------------------------------------------------------
    async def _privileges(self, custom: bool) -> list[Privilege]:
        what = "list assignable privileges" + (" (custom keys)" if custom else "")
        params = {"filter": "CUSTOM"} if custom else None
        response = await self._call("GET", "/privileges/apikeys", what=what, params=params)
        body = response_json(response, self.account.name, what)
        if not isinstance(body, list):
            raise self.reader.bad(what, "the answer is not a list")
        out: list[Privilege] = []
        for item in body:
            try:
                out += [
                    Privilege(p.owner, p.target_domain, p.type) for p in privilege_from_json(item)
                ]
            except (ValueError, AttributeError, TypeError):
                raise self.reader.bad(what, "a malformed privilege") from None
        return out

    async def catalogue(self) -> Catalogue:
        entries = frozenset(await self._privileges(custom=True))
        return Catalogue(
            field="privileges",
            entries=entries,
            scope=f"custom keys of organization {self.org}",
            applies=lambda spec: not spec.fields.get("template"),
        )

    async def grants(self) -> list[Grant]:
        every = await self._privileges(custom=False)
        custom = set(await self._privileges(custom=True))
        out = []
        for p in sorted(set(every), key=Privilege.sort_key):
            note = "" if p in custom else "not for custom keys (needs a template)"
            entry: dict[str, str | bool] = {"owner": p.owner, "target_domain": p.target_domain}
            if p.type is not None:
                entry["type"] = p.type
            entry["custom_keys"] = p in custom
            out.append(Grant(str(p), note, entry))
        return out

    async def aclose(self) -> None:
        await self.http.aclose()

    # -- helpers ---------------------------------------------------------------------
    def _key_path(self, key: LiveKey) -> str:
        return f"/apikeys/{quote(str(key.handle), safe='')}"

    async def _call(
        self,
        method: str,
        path: str,
        *,
        what: str,
        write: bool = False,
        idempotent: bool = True,
        json: object = None,
        params: Mapping[str, str] | None = None,
    ) -> httpx.Response:
        return await self.http.request(
            method,
            self.prefix + path,
            what=what,
            write=write,
            idempotent=idempotent,
            json=json,
            params=params,
        )


def connect(account: AccountConfig, options: ConnectOptions) -> CoveoProvider:
    policy = COVEO_POLICY.with_overrides(
        account.timeout, account.max_attempts, account.write_timeout
    )
    transport: httpx.AsyncBaseTransport | None = None
    region = account.text("region") or "us"
    sandbox = account.path("sandbox")
    if sandbox is not None:
        from keystate.emulators.coveo import CoveoEmulator
        from keystate.providers.sandbox import SandboxTransport

        emulator = CoveoEmulator(sandbox, region=region)
        emulator.persist()
        transport = SandboxTransport(emulator)
        org = emulator.organization_id
        token = Secret(emulator.token)
        source = f"sandbox {sandbox}"
    else:
        org = account.text("organization_id") or ""
        credential = account.secret("token")
        assert credential is not None, "config guarantees a token without sandbox"
        token, source = credential.secret, credential.source
    base = account.text("base_url") or platform_url(region)
    headers = {
        "authorization": f"Bearer {token.reveal()}",
        "accept": "application/json",
        "user-agent": options.user_agent or f"keystate/{__version__}",
    }
    http = HttpClient(
        account=account.name,
        service="Coveo",
        pool=HostPool.single(base),
        policy=policy,
        headers=headers,
        parse_error=parse_error,
        transport=transport,
        rng=random.Random(),
        auth_hint=f"check the token from {source}",
        needs=lambda method, path: needs_in(org, method, path),
    )
    return CoveoProvider(account, http, org, token)
