"""Coveo's wire format for the emulator: the error table, request bodies, responses.

Every error the emulator can answer is in :data:`ERRORS`, one place to correct when
real traces are captured (most codes for key errors are undocumented: coveo-api.md
§4.8, §11). Error bodies are ``{"message", "errorCode", "requestID"}`` and every
response carries ``X-Request-ID``.
"""

from __future__ import annotations

import ipaddress
import json
import re
import secrets
import uuid
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
    "lifetime-too-long": (
        400,
        "INVALID_PARAMETER",
        "The lifetime {lifetime} exceeds the template's maximum {maximum}.",
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
_DURATION = re.compile(
    r"^P(?:(?P<y>\d+)Y)?(?:(?P<mo>\d+)M)?(?:(?P<w>\d+)W)?(?:(?P<d>\d+)D)?"
    r"(?:T(?:(?P<h>\d+)H)?(?:(?P<mi>\d+)M)?(?:(?P<s>\d+(?:\.\d+)?)S)?)?$"
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


def duration_ms(text: object) -> int:
    """An ISO-8601 duration in milliseconds (a month is 30 days, a year 365: assumed)."""
    match = _DURATION.match(text) if isinstance(text, str) and text not in ("P", "PT") else None
    if not match or not any(match.groupdict().values()):
        raise CoveoError(
            "bad-body", detail=f"'{text}' is not an ISO-8601 duration (e.g. P30D, PT3600S)."
        )
    g = {k: float(v) if v else 0.0 for k, v in match.groupdict().items()}
    days = g["y"] * 365 + g["mo"] * 30 + g["w"] * 7 + g["d"]
    seconds = ((days * 24 + g["h"]) * 60 + g["mi"]) * 60 + g["s"]
    return int(seconds * 1000)


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
    if full_value and key.rotation_enabled:
        body["rotationSecret"] = secrets.token_urlsafe(24)
    return body
