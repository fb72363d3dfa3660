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

import math
import random
import re
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any, Final
from urllib.parse import quote, unquote

import httpx

from keystate._version import __version__
from keystate.contract import (
    AccountConfig,
    Catalogue,
    ConnectOptions,
    CreatedKey,
    Grant,
)
from keystate.errors import NotFoundError, ProviderError
from keystate.model import FieldValue, KeySpec, LiveKey, Privilege
from keystate.providers.coveo.schema import SCHEMA
from keystate.providers.http import ApiError, HostPool, HttpClient, HttpPolicy, response_json
from keystate.secrets import Secret

COVEO_POLICY: Final = HttpPolicy(connect_timeout=3.0, read_timeout=15.0, write_timeout=30.0)
_API_KEY_SHAPE: Final = re.compile(
    r"^xx[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$"
)
_UPDATE_FIELDS: Final = ("groupsThatCanEdit", "apiKeysThatCanEdit")


def platform_url(region: str) -> str:
    if region == "hipaa":
        return "https://platformhipaa.cloud.coveo.com"
    suffix = "" if region == "us" else f"-{region}"
    return f"https://platform{suffix}.cloud.coveo.com"


def required_privilege(method: str, path: str) -> str:
    """The privilege an API-key operation needs: the OAS ``x-required-privilege`` of the
    route (coveo-api.md §2), for permission errors and docs/credentials.md. ``path`` is
    the part after ``/rest/organizations/{organizationId}``, query excluded."""
    parts = [unquote(p) for p in path.split("?", 1)[0].strip("/").split("/")]
    if parts[:2] == ["privileges", "apikeys"]:
        return "PLATFORM/ORGANIZATION/VIEW"
    if parts[:2] == ["templates", "apikeys"]:
        return "PLATFORM/API_KEY/CREATE"
    if parts[:1] != ["apikeys"]:
        return ""
    if method == "GET":
        return "PLATFORM/API_KEY/VIEW"
    if len(parts) == 1 or parts[-1] == "duplicate":
        return "PLATFORM/API_KEY/CREATE"
    if len(parts) == 3 and parts[2] == "bulk":
        return "PLATFORM/API_KEY/EDIT (on all keys, or on each key named)"
    return f"PLATFORM/API_KEY/EDIT (on all keys, or on key id:{parts[1]})"


def parse_error(response: httpx.Response) -> ApiError:
    request_id = response.headers.get("x-request-id")
    if response.headers.get("x-coveo-waf-action") == "block":
        return ApiError("blocked by Coveo's web application firewall", request_id)
    try:
        body = response.json()
    except ValueError:
        kind = response.headers.get("content-type", "no content type").split(";")[0]
        if response.status_code == 502:
            return ApiError(f"endpoint unreachable (502, {kind})", request_id)
        return ApiError(f"non-JSON error body ({kind})", request_id)
    if not isinstance(body, dict):
        return ApiError("error body is not an object", request_id)
    code = next(
        (body[k] for k in ("title", "type", "errorCode", "code") if isinstance(body.get(k), str)),
        None,
    )
    detail = next((body[k] for k in ("detail", "message") if isinstance(body.get(k), str)), "")
    request_id = request_id or (
        body.get("requestID") if isinstance(body.get("requestID"), str) else None
    )
    text = f"{code}: {detail}" if code and detail else (code or detail or "error without a message")
    return ApiError(text, request_id)


def millis(raw: object) -> datetime | None:
    """A Coveo date: epoch milliseconds (or an ISO string); None when absent or unreadable
    (out of range included)."""
    if isinstance(raw, bool) or raw is None:
        return None
    try:
        if isinstance(raw, (int, float)):
            return datetime.fromtimestamp(raw / 1000, UTC)
        if isinstance(raw, str):
            return datetime.fromisoformat(raw).astimezone(UTC)
    except (ValueError, OverflowError, OSError):
        return None
    return None


def privilege_from_json(item: Mapping[str, Any]) -> list[Privilege]:
    """Both shapes: ``targetId`` or the older ``targetIds`` + ``global``."""
    owner, domain = item.get("owner"), item.get("targetDomain")
    if not isinstance(owner, str) or not isinstance(domain, str):
        raise ValueError("privilege without owner/targetDomain")
    kind = item.get("type") if isinstance(item.get("type"), str) else None
    if "targetIds" in item and "targetId" not in item:
        ids = [str(i) for i in item.get("targetIds") or []]
        if item.get("global") or not ids:
            return [Privilege(owner, domain, kind, "*" if item.get("global") else None)]
        return [Privilege(owner, domain, kind, i) for i in ids]
    target = item.get("targetId")
    return [Privilege(owner, domain, kind, str(target) if target is not None else None)]


def privilege_to_json(privilege: Privilege) -> dict[str, str]:
    out = {"owner": privilege.owner, "targetDomain": privilege.target_domain}
    if privilege.type is not None:
        out["type"] = privilege.type
    if privilege.target_id is not None:
        out["targetId"] = privilege.target_id
    return out


class CoveoProvider:
    """One Coveo organization."""

    schema = SCHEMA

    def __init__(self, account: AccountConfig, http: HttpClient, org: str, token: Secret) -> None:
        self.account = account
        self.http = http
        self.org = org
        self.token = token
        self.prefix = f"/rest/organizations/{quote(org, safe='')}"
        # The last JSON read of each key, so an update keeps what keystate does not manage.
        self._raw: dict[str, dict[str, Any]] = {}

    # -- reading ---------------------------------------------------------------------
    async def list_keys(self) -> list[LiveKey]:
        response = await self._call("GET", "/apikeys", what="list keys")
        body = response_json(response, self.account.name, "list keys")
        if not isinstance(body, list):
            raise self._bad("list keys", "the answer is not a list of keys")
        now = datetime.now(UTC)
        return [self._live(item, now, f"list keys (entry {i + 1})") for i, item in enumerate(body)]

    async def read_key(self, key: LiveKey) -> LiveKey | None:
        what = f"read key {key.ref}"
        try:
            response = await self._call("GET", self._key_path(key), what=what)
        except NotFoundError:
            return None
        return self._live(response_json(response, self.account.name, what), datetime.now(UTC), what)

    def _live(self, item: object, now: datetime, what: str) -> LiveKey:
        if not isinstance(item, dict) or not isinstance(item.get("id"), str):
            raise self._bad(what, "a key without an id")
        key_id: str = item["id"]
        try:
            privileges = frozenset(
                p for raw in item.get("privileges") or [] for p in privilege_from_json(raw)
            )
        except (ValueError, AttributeError, TypeError):
            raise self._bad(what, f"key id:{key_id} has a malformed privilege") from None
        search = _dig(item, "additionalConfiguration", "search")
        hub = _dig(search, "enforcedQueryPipelineConfiguration").get("searchHub")
        # What keystate compares must be read exactly: a value it cannot read is an error,
        # never a default that would plan a change (or a replacement) nobody asked for.
        expires = millis(item.get("expirationDate"))
        if expires is None and item.get("expirationDate") is not None:
            raise self._bad(what, f"key id:{key_id}: 'expirationDate' is not a date")
        if not isinstance(item.get("enabled", True), bool):
            raise self._bad(what, f"key id:{key_id}: 'enabled' is not true or false")
        if hub is not None and not isinstance(hub, str):
            raise self._bad(what, f"key id:{key_id}: 'searchHub' is not a string")
        description = item.get("description")
        if description is not None and not isinstance(description, str):
            raise self._bad(what, f"key id:{key_id}: 'description' is not a string")
        enabled = item.get("enabled", True) is not False and item.get("status") not in (
            "DISABLED",
            "DISABLED_FOR_INACTIVITY",
            "DISABLED_EXPOSED",
        )
        fields: dict[str, FieldValue] = {
            "privileges": privileges,
            "allowed_ips": self._strings(item, "allowedIps", what, key_id),
            "denied_ips": self._strings(item, "deniedIps", what, key_id),
            "enabled": enabled,
            "search_hub": hub if isinstance(hub, str) else "",
            "template": str(item.get("apiKeyTemplateId") or ""),
            "expires_at": expires,
        }
        self._raw[key_id] = item
        masked = str(item.get("value") or "")
        return LiveKey(
            ref=f"id:{key_id}",
            handle=key_id,
            stored_description=description or "",
            fields=fields,
            id=key_id,
            enabled=enabled,
            expired=item.get("status") == "EXPIRED" or (expires is not None and expires <= now),
            is_credential=self._is_credential(masked),
            created_at=millis(item.get("createdDate")),
            status=item["status"] if isinstance(item.get("status"), str) else None,
            exposed=isinstance(item.get("exposureReport"), dict)
            or item.get("status") == "DISABLED_EXPOSED",
            exposure=_exposure(item.get("exposureReport")),
            last_used_at=millis(item.get("lastUsedDate")),
            display_name=str(item.get("displayName") or ""),
        )

    def _is_credential(self, masked: str) -> bool:
        """Whether a listed key may be the API key keystate runs with. Values are masked
        to their last four characters, so this errs on the safe side: a key that merely
        shares them is left alone too."""
        token = self.token.reveal()
        return (
            bool(_API_KEY_SHAPE.match(token))
            and masked.startswith("xx")
            and masked[-4:] == token[-4:]
        )

    # -- writing ---------------------------------------------------------------------
    async def create(self, spec: KeySpec, stored_description: str) -> CreatedKey:
        f = spec.fields
        body: dict[str, Any] = {
            "displayName": spec.name,
            "description": stored_description,
            "allowedIps": sorted(_set(f.get("allowed_ips"))),
            "deniedIps": sorted(_set(f.get("denied_ips"))),
            "enabled": f.get("enabled", True) is not False,
        }
        privileges = f.get("privileges")
        if isinstance(privileges, frozenset):
            ordered = sorted(
                (p for p in privileges if isinstance(p, Privilege)), key=Privilege.sort_key
            )
            body["privileges"] = [privilege_to_json(p) for p in ordered]
        hub = f.get("search_hub")
        if hub:
            body["additionalConfiguration"] = {
                "search": {"enforcedQueryPipelineConfiguration": {"searchHub": hub}}
            }
        expires = f.get("expires_at")
        if isinstance(expires, datetime):
            seconds = max(1, math.ceil((expires - datetime.now(UTC)).total_seconds()))
            body["lifetimeDuration"] = f"PT{seconds}S"
        template = f.get("template")
        params = {"apiKeyTemplateId": str(template)} if template else None
        what = f"create {spec.address}"
        response = await self._call(
            "POST", "/apikeys", what=what, write=True, idempotent=False, json=body, params=params
        )
        reply = response_json(response, self.account.name, what)
        if not isinstance(reply, dict) or not isinstance(reply.get("value"), str):
            raise self._bad(what, "no key value in the create response")
        value = Secret(reply["value"])
        live = self._live(reply, datetime.now(UTC), what)
        return CreatedKey(live=live, value=value, created_at=live.created_at or datetime.now(UTC))

    async def update(self, live: LiveKey, spec: KeySpec, stored_description: str) -> None:
        key_id = str(live.handle)
        raw = self._raw.get(key_id, {})
        f = spec.fields
        additional = dict(_dig(raw, "additionalConfiguration"))
        search = dict(_dig(additional, "search"))
        pipeline = dict(_dig(search, "enforcedQueryPipelineConfiguration"))
        hub = f.get("search_hub")
        if hub:
            pipeline["searchHub"] = hub
        else:
            pipeline.pop("searchHub", None)
        if pipeline:
            search["enforcedQueryPipelineConfiguration"] = pipeline
        else:
            search.pop("enforcedQueryPipelineConfiguration", None)
        if search:
            additional["search"] = search
        else:
            additional.pop("search", None)
        body: dict[str, Any] = {
            "displayName": spec.name,
            "description": stored_description,
            "allowedIps": sorted(_set(f.get("allowed_ips"))),
            "deniedIps": sorted(_set(f.get("denied_ips"))),
            "additionalConfiguration": additional,
        }
        for name in _UPDATE_FIELDS:
            if name in raw:
                body[name] = raw[name]
        what = f"update {spec.address} ({live.ref})"
        await self._call("PUT", self._key_path(live), what=what, write=True, json=body)
        wanted = f.get("enabled", True) is not False
        if wanted != live.enabled:
            verb = "activate" if wanted else "disable"
            await self._call(
                "PUT", f"{self._key_path(live)}/{verb}", what=f"{verb} {spec.address}", write=True
            )

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
            raise self._bad(what, "the answer is not a list")
        out: list[Privilege] = []
        for item in body:
            try:
                out += [
                    Privilege(p.owner, p.target_domain, p.type) for p in privilege_from_json(item)
                ]
            except (ValueError, AttributeError, TypeError):
                raise self._bad(what, "a malformed privilege") from None
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

    def _strings(
        self, item: Mapping[str, Any], name: str, what: str, key_id: str
    ) -> frozenset[str]:
        raw = item.get(name)
        if raw is None:
            return frozenset()
        if not isinstance(raw, list) or not all(isinstance(v, str) for v in raw):
            raise self._bad(what, f"key id:{key_id}: '{name}' is not a list of strings")
        return frozenset(raw)

    def _bad(self, what: str, detail: str) -> ProviderError:
        return ProviderError(
            f"{what}: unexpected answer from Coveo: {detail}", account=self.account.name
        )


def _dig(item: object, *path: str) -> dict[str, Any]:
    for name in path:
        item = item.get(name) if isinstance(item, dict) else None
    return item if isinstance(item, dict) else {}


def _set(value: FieldValue) -> frozenset[str]:
    return frozenset(str(v) for v in value) if isinstance(value, frozenset) else frozenset()


def _needs_in(org: str, method: str, path: str) -> str:
    """What a request needs, in words: its privilege in the organization."""
    prefix = f"/rest/organizations/{quote(org, safe='')}"
    privilege = required_privilege(method, path.removeprefix(prefix))
    return f"the privilege {privilege} in organization {org}" if privilege else ""


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
        needs=lambda method, path: _needs_in(org, method, path),
    )
    return CoveoProvider(account, http, org, token)


def _exposure(report: object) -> str:
    """One line about an exposure report (coveo-api.md §4.4): severity, where it was
    found, when the key is deactivated. Never the key, never a reason's free text."""
    if not isinstance(report, dict):
        return ""
    parts = []
    if isinstance(report.get("severity"), str):
        parts.append(f"severity {report['severity']}")
    raw_reasons = report.get("reasons")
    reasons: list[Any] = raw_reasons if isinstance(raw_reasons, list) else []
    sources = sorted(
        {r["source"] for r in reasons if isinstance(r, dict) and isinstance(r.get("source"), str)}
    )
    if sources:
        parts.append(f"reported by {', '.join(sources)}")
    deactivation = millis(report.get("deactivationDate"))
    if deactivation is not None:
        parts.append(f"deactivation {deactivation.strftime('%Y-%m-%d')}")
    return "; ".join(parts) or "exposure reported"
