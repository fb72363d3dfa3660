"""Coveo's JSON, pure: error bodies, dates, lifetimes, privileges, exposure reports,
``additionalConfiguration`` (coveo-api.md §4). No I/O; :mod:`.api` sends what this builds.
"""

from __future__ import annotations

import calendar
import re
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from typing import Any, Final
from urllib.parse import quote, unquote

import httpx

from keystate.model import FieldValue, Privilege, Record
from keystate.providers.http import ApiError

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


def dig(item: object, *path: str) -> dict[str, Any]:
    for name in path:
        item = item.get(name) if isinstance(item, dict) else None
    return item if isinstance(item, dict) else {}


def privileges_json(value: frozenset[Any]) -> list[dict[str, str]]:
    ordered = sorted((p for p in value if isinstance(p, Privilege)), key=Privilege.sort_key)
    return [privilege_to_json(p) for p in ordered]


def identities_json(value: FieldValue) -> list[dict[str, str]]:
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


def additional(current: Mapping[str, Any], f: Mapping[str, FieldValue]) -> dict[str, Any]:
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
        identities_json(f.get("impersonation_allowed_user_ids")),
    )
    _put(
        config,
        ("search", "apiKeyQueryAuthentication"),
        identities_json(f.get("api_key_query_authentication")),
    )
    _put(config, ("commerce", "catalogId"), f.get("commerce_catalog_id") or None)
    return config


def template_ips(template: Mapping[str, Any], name: str) -> frozenset[str]:
    raw = template.get(name)
    return frozenset(str(v) for v in raw) if isinstance(raw, list) else frozenset()


def template_privileges(template: Mapping[str, Any]) -> frozenset[Privilege]:
    out: set[Privilege] = set()
    for item in template.get("privileges") or []:
        try:
            out.update(privilege_from_json(item))
        except (ValueError, AttributeError, TypeError):
            continue
    return frozenset(out)


def beyond(live: frozenset[Privilege], template: frozenset[Privilege]) -> frozenset[Privilege]:
    """The privileges a key holds beyond its template's ("*" and no target id alike)."""

    def base(p: Privilege) -> Privilege:
        return Privilege(p.owner, p.target_domain, p.type) if p.target_id == "*" else p

    given = {base(p) for p in template}
    return frozenset(p for p in live if base(p) not in given)


def strings_of(value: FieldValue) -> frozenset[str]:
    return frozenset(str(v) for v in value) if isinstance(value, frozenset) else frozenset()


def needs_in(org: str, method: str, path: str) -> str:
    """What a request needs, in words: its privilege in the organization."""
    prefix = f"/rest/organizations/{quote(org, safe='')}"
    privilege = required_privilege(method, path.removeprefix(prefix))
    return f"the privilege {privilege} in organization {org}" if privilege else ""
