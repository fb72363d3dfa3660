"""Coveo's wire format for the emulator: the error table, request bodies, responses.

Every error the emulator can answer is in :data:`ERRORS`, one place to correct when
real traces are captured (most codes for key errors are undocumented: coveo-api.md
§4.8, §11). Error bodies are ``{"message", "errorCode", "requestID"}`` and every
response carries ``X-Request-ID``.
"""

from __future__ import annotations

import calendar
import ipaddress
import json
import re
import secrets
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any, Final

from keystate.emulators._coveo_state import StoredApiKey
from keystate.emulators.http import EmuResponse

# name: (status, errorCode, message template). Statuses and codes marked "assumed" are
# not documented anywhere we could read; the rest come from coveo-api.md.
ERRORS: Final[dict[str, tuple[int, str, str]]] = {
    "unknown-uri": (404, "INVALID_URI", "No resource found at the provided URI."),  # CTC
    "invalid-token": (401, "INVALID_TOKEN", "The provided access token is invalid."),  # assumed
    "missing-privilege": (
        401,
        "ACCESS_DENIED",
        "The access token is missing the privilege {privilege}.",
    ),  # D159: "likely 401"
    "api-key-bearer": (
        401,
        "ACCESS_DENIED",
        "An API key cannot view or edit other API keys.",
    ),  # D60/D38
    "other-organization": (
        403,
        "ACCESS_DENIED",
        "The access token cannot access organization '{org}'.",
    ),  # assumed
    "wrong-region": (
        400,
        "INVALID_REQUEST",
        "Organization: '{org}' does not accept requests in current region '{current}'. "
        "Allowed region(s): '[{allowed}]'.",
    ),  # CTC fixture
    "key-not-found": (404, "API_KEY_NOT_FOUND", "The API key '{id}' does not exist."),  # assumed
    "bad-body": (400, "INVALID_PARAMETER", "{detail}"),  # assumed
    "malformed-json": (400, "MALFORMED_JSON", "The request body is not valid JSON."),  # assumed
    "unknown-privilege": (
        400,
        "INVALID_PRIVILEGE",
        "The privilege {privilege} does not exist in organization '{org}'.",
    ),  # assumed
    "custom-forbidden": (
        412,
        "PRECONDITION_FAILED",
        "The privilege {privilege} cannot be granted to a custom API key; "
        "create the key from an API key template.",
    ),  # cli PR #1513 (status only)
    "unknown-template": (
        400,
        "INVALID_PARAMETER",
        "The API key template '{id}' does not exist.",
    ),  # CTC (code)
    "bad-period": (
        400,
        "INVALID_PARAMETER",
        "{field}: Text '{value}' cannot be parsed to a Period "
        "(a date-based ISO-8601 period, e.g. P30D, P1M, P1Y3M14D).",
    ),  # assumed code; the message is java.time.Period.parse's
    "lifetime-too-long": (
        400,
        "INVALID_PARAMETER",
        "The lifetime {lifetime} exceeds the template's maximum {maximum}.",
    ),  # assumed
    "extend-exposed": (
        412,
        "PRECONDITION_FAILED",
        "The API key '{id}' was disabled because it was exposed; its activation cannot be "
        "extended.",
    ),  # assumed
    "activate-expired": (
        412,
        "PRECONDITION_FAILED",
        "The API key '{id}' has expired and cannot be activated.",
    ),  # doc recommendation
    "bulk-unknown": (
        412,
        "PRECONDITION_FAILED",
        "The API key '{id}' does not exist.",
    ),  # OAS: 412 on bulk
    "too-many-requests": (429, "TOO_MANY_REQUESTS", "Too many requests."),
    "server-error": (500, "INTERNAL_ERROR", "An internal error occurred."),
    "unavailable": (503, "SERVICE_UNAVAILABLE", "The service is temporarily unavailable."),
}
AWS_REGIONS: Final = {
    "us": "us-east-1",
    "eu": "eu-west-1",
    "au": "ap-southeast-2",
    "ca": "ca-central-1",
    "hipaa": "us-east-1",
}
# java.time.Period.parse: an optional sign, then P with years, months, weeks and days
# (each optionally signed), case-insensitive; no time part, no fractions.
_PERIOD = re.compile(
    r"^(?P<sign>[-+]?)P(?:(?P<y>[-+]?\d{1,9})Y)?(?:(?P<mo>[-+]?\d{1,9})M)?"
    r"(?:(?P<w>[-+]?\d{1,9})W)?(?:(?P<d>[-+]?\d{1,9})D)?$",
    re.IGNORECASE,
)
_ID_ALPHABET: Final = "abcdefghijklmnopqrstuvwxyz0123456789"


class CoveoError(Exception):
    def __init__(self, name: str, status: int | None = None, **params: str) -> None:
        code_status, self.code, template = ERRORS[name]
        self.status = status or code_status
        self.message = template.format(**params)
        super().__init__(self.message)


def request_id() -> str:
    return secrets.token_hex(16)


def response(
    status: int, body: object | None = None, extra: tuple[tuple[str, str], ...] = ()
) -> EmuResponse:
    headers = [("x-request-id", request_id()), *extra]
    if body is None:
        return EmuResponse(status, tuple(headers), b"")
    headers.append(("content-type", "application/json"))
    return EmuResponse(status, tuple(headers), json.dumps(body).encode())


def error(err: CoveoError, retry_after: str | None = None) -> EmuResponse:
    rid = request_id()
    body = {"message": err.message, "errorCode": err.code, "requestID": rid}
    headers = [("x-request-id", rid), ("content-type", "application/json")]
    if retry_after is not None:
        headers.append(("retry-after", retry_after))
    return EmuResponse(err.status, tuple(headers), json.dumps(body).encode())


def new_id() -> str:
    return "".join(secrets.choice(_ID_ALPHABET) for _ in range(26))


def new_value() -> str:
    return f"xx{uuid.uuid4()}"


def masked(value: str) -> str:
    return f"xx*****{value[-4:]}"


def period_ms(text: object, now_ms: int, what: str = "lifetimeDuration") -> int:
    """How long an ISO-8601 **period** lasts from ``now_ms``, in milliseconds.

    Coveo's lifetimes are date-based (``P1M``, ``P14D``, ``P1Y3M14D`` in every example,
    and a value with years and months cannot be a ``java.time.Duration``), so the server
    very probably parses them as a ``java.time.Period``: years, months, weeks and days,
    no time part, whole numbers only. Like ``Period.parse``, this refuses ``PT3600S`` and
    ``P1.5D``; a period that is not positive is refused too (a key that never lives).
    Years and months are calendar ones, added to the UTC date of ``now_ms``.
    """
    match = _PERIOD.match(text) if isinstance(text, str) else None
    if match is None or not any(match.groupdict().values()):
        raise CoveoError("bad-period", value=str(text), field=what)
    sign = -1 if match.group("sign") == "-" else 1
    g = {k: sign * int(v or 0) for k, v in match.groupdict().items() if k != "sign"}
    start = datetime.fromtimestamp(now_ms / 1000, UTC)
    months = start.month - 1 + g["y"] * 12 + g["mo"]
    year, month = start.year + months // 12, months % 12 + 1
    try:
        day = min(start.day, calendar.monthrange(year, month)[1])
        end = start.replace(year=year, month=month, day=day)
        end += timedelta(days=g["w"] * 7 + g["d"])
    except (ValueError, OverflowError):
        raise CoveoError("bad-period", value=str(text), field=what) from None
    ms = int((end - start).total_seconds() * 1000)
    if ms <= 0:
        raise CoveoError("bad-period", value=str(text), field=what)
    return ms


def parse_body(raw: bytes, expect: type = dict) -> Any:
    try:
        body = json.loads(raw or b"null")
    except (ValueError, UnicodeDecodeError):
        raise CoveoError("malformed-json") from None
    if not isinstance(body, expect):
        kind = "an object" if expect is dict else "an array"
        raise CoveoError("bad-body", detail=f"The request body must be {kind}.")
    return body


def strings(body: dict[str, Any], name: str) -> list[str] | None:
    value = body.get(name)
    if value is None:
        return None
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise CoveoError("bad-body", detail=f"'{name}' must be an array of strings.")
    return list(value)


def ips(body: dict[str, Any], name: str) -> list[str] | None:
    values = strings(body, name)
    for value in values or []:
        try:
            ipaddress.ip_network(value, strict=False)
        except ValueError:
            raise CoveoError(
                "bad-body", detail=f"'{value}' in '{name}' is not an IP address or CIDR block."
            ) from None
    return values


def text(body: dict[str, Any], name: str, maximum: int) -> str | None:
    value = body.get(name)
    if value is None:
        return None
    if not isinstance(value, str):
        raise CoveoError("bad-body", detail=f"'{name}' must be a string.")
    if len(value) > maximum:
        raise CoveoError("bad-body", detail=f"'{name}' is longer than {maximum} characters.")
    return value


def privileges(body: dict[str, Any], name: str) -> list[dict[str, Any]] | None:
    """Privileges in either shape (``targetId``, or older ``targetIds``/``global``),
    normalised to ``{owner, targetDomain, type?, targetId?}``."""
    raw = body.get(name)
    if raw is None:
        return None
    if not isinstance(raw, list):
        raise CoveoError("bad-body", detail=f"'{name}' must be an array.")
    out: list[dict[str, Any]] = []
    for item in raw:
        if (
            not isinstance(item, dict)
            or not isinstance(item.get("owner"), str)
            or not isinstance(item.get("targetDomain"), str)
        ):
            raise CoveoError("bad-body", detail="A privilege needs 'owner' and 'targetDomain'.")
        base = {"owner": item["owner"], "targetDomain": item["targetDomain"]}
        if isinstance(item.get("type"), str):
            base["type"] = item["type"]
        targets: list[str | None]
        if "targetIds" in item and "targetId" not in item:
            ids = item.get("targetIds") or []
            targets = ["*"] if item.get("global") else [str(i) for i in ids] or [None]
        else:
            target = item.get("targetId")
            targets = [None if target is None else str(target)]
        for target in targets:
            entry = dict(base)
            if target is not None:
                entry["targetId"] = str(target)
            if entry not in out:
                out.append(entry)
    return out


def additional_configuration(body: dict[str, Any]) -> dict[str, Any] | None:
    value = body.get("additionalConfiguration")
    if value is None:
        return None
    if not isinstance(value, dict):
        raise CoveoError("bad-body", detail="'additionalConfiguration' must be an object.")
    config: dict[str, Any] = json.loads(json.dumps(value))
    search = config.get("search")
    if isinstance(search, dict) and "impersonationRestriction" in search:  # TS spelling
        search.setdefault("impersonationRestrictions", search.pop("impersonationRestriction"))
    return config


def render_key(
    key: StoredApiKey, organization_id: str, now_ms: int, *, full_value: bool
) -> dict[str, Any]:
    body: dict[str, Any] = {
        "id": key.id,
        "organizationId": organization_id,
        "value": key.value if full_value else masked(key.value),
        "displayName": key.display_name,
        "description": key.description,
        "privileges": key.privileges,
        "allowedIps": key.allowed_ips,
        "deniedIps": key.denied_ips,
        "enabled": key.enabled,
        "status": key.status(now_ms),
        "createdDate": key.created_ms,
        "lastUsedDate": key.last_used_ms,
        "resourceId": key.id,
        "tokenId": key.id,
        "privacyLevel": key.privacy_level,
        "groupsThatCanEdit": key.groups_that_can_edit,
        "apiKeysThatCanEdit": key.api_keys_that_can_edit,
        "createdBy": {
            "username": "keystate-emulator",
            "displayName": "keystate emulator",
            "email": None,
        },
    }
    for name, value in (
        ("expirationDate", key.expiration_ms),
        ("activationDate", key.activation_ms),
        ("disabledDate", key.disabled_ms),
        ("apiKeyTemplateId", key.template_id),
    ):
        if value is not None:
            body[name] = value
    if key.exposure_report is not None:
        body["exposureReport"] = key.exposure_report
    if key.additional_configuration:
        body["additionalConfiguration"] = key.additional_configuration
    if key.exposure_report is not None:
        body["exposureReport"] = key.exposure_report
    if full_value and key.rotation_enabled:
        body["rotationSecret"] = secrets.token_urlsafe(24)
    return body
