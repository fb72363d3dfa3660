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

import calendar
import difflib
import random
import re
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime, timedelta
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
from keystate.errors import NotFoundError, Problem, ProviderError
from keystate.model import FieldValue, KeySpec, LiveKey, Privilege, Record
from keystate.providers.coveo.schema import IDENTITY, LAPSING_STATUSES, SCHEMA
from keystate.providers.http import ApiError, HostPool, HttpClient, HttpPolicy, response_json
from keystate.secrets import Secret

COVEO_POLICY: Final = HttpPolicy(connect_timeout=3.0, read_timeout=15.0, write_timeout=30.0)
_API_KEY_SHAPE: Final = re.compile(
    r"^xx[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$"
)
_UPDATE_FIELDS: Final = ("groupsThatCanEdit", "apiKeysThatCanEdit")
_DISABLED: Final = ("DISABLED", "DISABLED_EXPOSED")
_SEVERITIES: Final = ("CRITICAL", "HIGH", "MEDIUM", "LOW", "WARN")
_SOURCES: Final = ("GITHUB", "MANUAL")
_PERIOD: Final = re.compile(
    r"^(?P<sign>[-+]?)P(?:(?P<y>[-+]?\d{1,9})Y)?(?:(?P<mo>[-+]?\d{1,9})M)?"
    r"(?:(?P<w>[-+]?\d{1,9})W)?(?:(?P<d>[-+]?\d{1,9})D)?$",
    re.IGNORECASE,
)


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


def lifetime_days(expires: datetime, now: datetime) -> str:
    """``expires_at`` as Coveo's ``lifetimeDuration``: whole days, ``P<n>D``.

    Coveo's lifetimes are date-based periods (``P1M``, ``P14D``, ``P1Y3M14D`` in every
    example; the server very probably parses a ``java.time.Period``, which refuses
    ``PT…S``), so the expiry lands on the nearest whole day from now (at least one):
    within half a day of the declared time, well inside the one-day tolerance with which
    Coveo expiries are compared (docs/configuration.md).
    """
    days = max(1, round((expires - now).total_seconds() / 86400))
    return f"P{days}D"


def period_end(text: str, start: datetime) -> datetime | None:
    """When an ISO-8601 period (``P90D``, ``P1Y``) that starts at ``start`` ends; None
    when ``text`` is not a date-based period. Years and months are calendar ones."""
    match = _PERIOD.match(text)
    if match is None or not any(match.groupdict().values()):
        return None
    sign = -1 if match.group("sign") == "-" else 1
    g = {k: sign * int(v or 0) for k, v in match.groupdict().items() if k != "sign"}
    months = start.month - 1 + g["y"] * 12 + g["mo"]
    year, month = start.year + months // 12, months % 12 + 1
    try:
        day = min(start.day, calendar.monthrange(year, month)[1])
        return start.replace(year=year, month=month, day=day) + timedelta(days=g["w"] * 7 + g["d"])
    except (ValueError, OverflowError):
        return None


def exposure_summary(report: Mapping[str, Any]) -> str:
    """One line about an exposure report: severity, sources, dates. Only known enum
    words and dates are kept: never a URL or free text, which could quote the value."""
    parts: list[str] = []
    severity = report.get("severity")
    if severity in _SEVERITIES:
        parts.append(f"severity {severity}")
    raw_reasons = report.get("reasons")
    reasons: list[Any] = raw_reasons if isinstance(raw_reasons, list) else []
    sources = sorted(
        {
            str(r["source"]) if r.get("source") in _SOURCES else "other"
            for r in reasons
            if isinstance(r, dict)
        }
    )
    if sources:
        parts.append(f"source {', '.join(sources)}")
    for label, name in (("reported", "createdDate"), ("deactivation", "deactivationDate")):
        moment = millis(report.get(name))
        if moment is not None:
            parts.append(f"{label} {moment.date().isoformat()}")
    return "; ".join(parts) or "no details"


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
        # The organization's key templates by id, read once when a key uses one.
        self._templates: dict[str, dict[str, Any]] | None = None

    # -- reading ---------------------------------------------------------------------
    async def list_keys(self) -> list[LiveKey]:
        response = await self._call("GET", "/apikeys", what="list keys")
        body = response_json(response, self.account.name, "list keys")
        if not isinstance(body, list):
            raise self._bad("list keys", "the answer is not a list of keys")
        if any(isinstance(i, dict) and i.get("apiKeyTemplateId") for i in body):
            await self._load_templates()
        now = datetime.now(UTC)
        return [self._live(item, now, f"list keys (entry {i + 1})") for i, item in enumerate(body)]

    async def read_key(self, key: LiveKey) -> LiveKey | None:
        what = f"read key {key.ref}"
        try:
            response = await self._call("GET", self._key_path(key), what=what)
        except NotFoundError:
            return None
        item = response_json(response, self.account.name, what)
        if isinstance(item, dict) and item.get("apiKeyTemplateId"):
            await self._load_templates()
        return self._live(item, datetime.now(UTC), what)

    async def _load_templates(self) -> dict[str, dict[str, Any]]:
        if self._templates is None:
            what = "list API key templates"
            response = await self._call("GET", "/templates/apikeys", what=what)
            body = response_json(response, self.account.name, what)
            if not isinstance(body, list):
                raise self._bad(what, "the answer is not a list")
            self._templates = {
                str(t["id"]): t
                for t in body
                if isinstance(t, dict) and isinstance(t.get("id"), str)
            }
        return self._templates

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
        status = item.get("status") if isinstance(item.get("status"), str) else None
        report = item.get("exposureReport")
        exposed = isinstance(report, dict) or status == "DISABLED_EXPOSED"
        # A key Coveo disabled for inactivity is still enabled in the sense of the field:
        # it comes back with activation/extend, shown as a status change (diff.STATUS).
        enabled = status not in _DISABLED and (
            item.get("enabled", True) is not False or status in LAPSING_STATUSES
        )
        display = item.get("displayName")
        if display is not None and not isinstance(display, str):
            raise self._bad(what, f"key id:{key_id}: 'displayName' is not a string")
        restrictions = _dig(search, "impersonationRestrictions") or _dig(
            search, "impersonationRestriction"
        )
        catalog = _dig(item, "additionalConfiguration", "commerce").get("catalogId")
        if catalog is not None and not isinstance(catalog, str):
            raise self._bad(what, f"key id:{key_id}: 'catalogId' is not a string")
        template_id = str(item.get("apiKeyTemplateId") or "")
        template = (self._templates or {}).get(template_id) if template_id else None
        allowed = self._strings(item, "allowedIps", what, key_id)
        denied = self._strings(item, "deniedIps", what, key_id)
        override: frozenset[Privilege] = frozenset()
        if template is not None:
            # A template's own IP lists and privileges are the template's: what the key
            # declares is what differs from them.
            allowed = frozenset() if allowed == _template_ips(template, "allowedIps") else allowed
            denied = frozenset() if denied == _template_ips(template, "deniedIps") else denied
            override = _beyond(privileges, _template_privileges(template))
        fields: dict[str, FieldValue] = {
            "privileges": privileges,
            "allowed_ips": allowed,
            "denied_ips": denied,
            "enabled": enabled,
            "search_hub": hub if isinstance(hub, str) else "",
            "template": template_id,
            "display_name": display or "",
            "impersonation_allowed_user_ids": self._identities(
                restrictions.get("allowedUserIds"), what, key_id
            ),
            "api_key_query_authentication": self._identities(
                search.get("apiKeyQueryAuthentication"), what, key_id
            ),
            "commerce_catalog_id": catalog or "",
            "override_template_privileges": override,
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
            status=status,
            exposed=exposed,
            exposure=exposure_summary(report) if isinstance(report, dict) else "",
            last_used_at=millis(item.get("lastUsedDate")),
            display_name=str(item.get("displayName") or ""),
        )

    def _identities(self, raw: object, what: str, key_id: str) -> frozenset[Record]:
        if raw is None:
            return frozenset()
        if not isinstance(raw, list) or not all(
            isinstance(i, dict) and isinstance(i.get("name"), str) for i in raw
        ):
            raise self._bad(what, f"key id:{key_id}: an identity list is not [{{name, ...}}]")
        return frozenset(
            Record(IDENTITY.normalise({k: str(v) for k, v in i.items() if k in IDENTITY.fields}))
            for i in raw
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
        template = f.get("template")
        body: dict[str, Any] = {
            "displayName": f.get("display_name") or spec.name,
            "description": stored_description,
            "enabled": f.get("enabled", True) is not False,
        }
        for name, field_name in (("allowedIps", "allowed_ips"), ("deniedIps", "denied_ips")):
            ips = sorted(_set(f.get(field_name)))
            if ips or not template:  # a template's own lists stay unless declared
                body[name] = ips
        privileges = f.get("privileges")
        if isinstance(privileges, frozenset):
            body["privileges"] = _privileges_json(privileges)
        override = f.get("override_template_privileges")
        if template and isinstance(override, frozenset) and override:
            body["overrideTemplatePrivileges"] = _privileges_json(override)
        additional = _additional({}, f)
        if additional:
            body["additionalConfiguration"] = additional
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
            raise self._bad(what, "no key value in the create response")
        value = Secret(reply["value"])
        live = self._live(reply, datetime.now(UTC), what)
        return CreatedKey(live=live, value=value, created_at=live.created_at or datetime.now(UTC))

    async def update(self, live: LiveKey, spec: KeySpec, stored_description: str) -> None:
        """PUT the whole update model (Coveo replaces the key's settings with it): the
        declared fields, and what keystate does not manage as last read."""
        key_id = str(live.handle)
        raw = self._raw.get(key_id, {})
        f = spec.fields
        template = (self._templates or {}).get(str(raw.get("apiKeyTemplateId") or ""))
        body: dict[str, Any] = {
            "displayName": f.get("display_name") or spec.name,
            "description": stored_description,
        }
        for name, field_name in (("allowedIps", "allowed_ips"), ("deniedIps", "denied_ips")):
            ips = _set(f.get(field_name))
            if not ips and template is not None:
                ips = _template_ips(template, name)  # undeclared: the template's own
            body[name] = sorted(ips)
        body["additionalConfiguration"] = _additional(_dig(raw, "additionalConfiguration"), f)
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
        template: an unknown template, one the caller may not generate keys from
        (eligibility), and an expiry beyond the template's enforcedLifetimePeriod."""
        using = [s for s in specs if s.fields.get("template")]
        if not using:
            return []
        templates = await self._load_templates()
        what = "read API key template eligibility"
        response = await self._call("GET", "/templates/apikeys/privileges/eligibility", what=what)
        body = response_json(response, self.account.name, what)
        eligibility = {
            str(e.get("id")): e
            for e in (body if isinstance(body, list) else [])
            if isinstance(e, dict)
        }
        problems: list[Problem] = []
        now = datetime.now(UTC)
        for spec in sorted(using, key=lambda s: s.name):
            name = str(spec.fields.get("template"))
            template = templates.get(name)
            if template is None:
                close = difflib.get_close_matches(name, sorted(templates), n=1)
                hint = f"; did you mean {close[0]!r}?" if close else ""
                known = ", ".join(sorted(templates)) or "none"
                problems.append(
                    Problem(
                        f"{spec.address}: template {name!r} does not exist in organization "
                        f"{self.org}{hint} (templates: {known})",
                        spec.where("template"),
                    )
                )
                continue
            verdict = eligibility.get(name)
            if verdict is not None and verdict.get("canGenerate") is False:
                missing = []
                for item in verdict.get("missingPrivileges") or []:
                    try:
                        missing += [str(p) for p in privilege_from_json(item)]
                    except (ValueError, AttributeError, TypeError):
                        continue
                problems.append(
                    Problem(
                        f"{spec.address}: the token may not create keys from template {name!r}"
                        f" in organization {self.org}: it lacks "
                        f"{', '.join(sorted(missing)) or 'privileges the template grants'} "
                        "(a key can only be given privileges its creator holds)",
                        spec.where("template"),
                    )
                )
            cap = template.get("enforcedLifetimePeriod")
            expires = spec.fields.get("expires_at")
            end = period_end(cap, now) if isinstance(cap, str) else None
            if (
                end is not None
                and isinstance(expires, datetime)
                and expires > end + timedelta(days=1)
            ):
                problems.append(
                    Problem(
                        f"{spec.address}: expires_at {expires.date().isoformat()} is beyond "
                        f"template {name!r}'s maximum lifetime {cap} (keys made from it now "
                        f"expire by {end.date().isoformat()}); declare an earlier expires_at, "
                        "or leave it out to get the template's maximum",
                        spec.where("expires_at"),
                    )
                )
        return problems

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


def _privileges_json(value: frozenset[Any]) -> list[dict[str, str]]:
    ordered = sorted((p for p in value if isinstance(p, Privilege)), key=Privilege.sort_key)
    return [privilege_to_json(p) for p in ordered]


def _identities_json(value: FieldValue) -> list[dict[str, str]]:
    if not isinstance(value, frozenset):
        return []
    records = sorted((r for r in value if isinstance(r, Record)), key=str)
    return [dict(r.items) for r in records]


def _put(config: dict[str, Any], path: tuple[str, ...], value: object) -> None:
    """Set (a truthy value) or remove (a falsy one) a nested entry, pruning empty parents."""
    head, *rest = path
    if not rest:
        if value:
            config[head] = value
        else:
            config.pop(head, None)
        return
    inner = dict(config[head]) if isinstance(config.get(head), dict) else {}
    _put(inner, tuple(rest), value)
    if inner:
        config[head] = inner
    else:
        config.pop(head, None)


def _additional(current: Mapping[str, Any], f: Mapping[str, FieldValue]) -> dict[str, Any]:
    """The key's additionalConfiguration with the declared fields set (or removed), and
    everything else keystate does not manage kept as it was."""
    config = dict(current)
    search = config.get("search")
    if isinstance(search, dict) and "impersonationRestriction" in search:
        # The official client's singular spelling: rewritten in the OAS spelling.
        search = dict(search)
        old = search.pop("impersonationRestriction")
        search.setdefault("impersonationRestrictions", old)
        config["search"] = search
    hub = f.get("search_hub")
    _put(config, ("search", "enforcedQueryPipelineConfiguration", "searchHub"), hub or None)
    _put(
        config,
        ("search", "impersonationRestrictions", "allowedUserIds"),
        _identities_json(f.get("impersonation_allowed_user_ids")),
    )
    _put(
        config,
        ("search", "apiKeyQueryAuthentication"),
        _identities_json(f.get("api_key_query_authentication")),
    )
    _put(config, ("commerce", "catalogId"), f.get("commerce_catalog_id") or None)
    return config


def _template_ips(template: Mapping[str, Any], name: str) -> frozenset[str]:
    raw = template.get(name)
    return frozenset(str(v) for v in raw) if isinstance(raw, list) else frozenset()


def _template_privileges(template: Mapping[str, Any]) -> frozenset[Privilege]:
    out: set[Privilege] = set()
    for item in template.get("privileges") or []:
        try:
            out.update(privilege_from_json(item))
        except (ValueError, AttributeError, TypeError):
            continue
    return frozenset(out)


def _beyond(live: frozenset[Privilege], template: frozenset[Privilege]) -> frozenset[Privilege]:
    """The privileges a key holds beyond its template's ("*" and no target id alike)."""

    def base(p: Privilege) -> Privilege:
        return Privilege(p.owner, p.target_domain, p.type) if p.target_id == "*" else p

    given = {base(p) for p in template}
    return frozenset(p for p in live if base(p) not in given)


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
