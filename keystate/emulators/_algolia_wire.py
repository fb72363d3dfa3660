"""Algolia key objects on the wire: strict request parsing and response rendering.

Request bodies (``POST /1/keys``, ``PUT /1/keys/{key}``) are parsed into
:class:`KeyFields` with deliberately strict checks — unknown fields and wrong types are
400 errors naming the field — so that client bugs surface in tests instead of being
silently ignored. A missing ``acl`` is accepted (as ``[]``), as the live API does.

Responses follow ``shared/providers/algolia-api.md`` §2-§3: ``createdAt`` as integer
Unix seconds, ``validity`` as remaining seconds, empty ``description``/``indexes``/
``referers``/``queryParameters`` and zero ``maxHitsPerQuery`` omitted, fields in the
spec's order; errors are ``{"message": ..., "status": ...}``.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from keystate.emulators._algolia_state import StoredKey
from keystate.emulators.faults import format_retry_after
from keystate.emulators.http import EmuResponse

ACL_VALUES: tuple[str, ...] = (
    "addObject",
    "analytics",
    "browse",
    "deleteObject",
    "deleteIndex",
    "editSettings",
    "inference",
    "listIndexes",
    "logs",
    "personalization",
    "recommendation",
    "search",
    "seeUnretrievableAttributes",
    "settings",
    "usage",
    "nluWriteProject",
    "nluReadProject",
    "nluWriteEntity",
    "nluReadEntity",
    "nluWriteIntent",
    "nluReadIntent",
    "nluPrediction",
    "nluReadAnswers",
)
"""The ACL enum of the spec, in spec order."""

_ACL_SET = frozenset(ACL_VALUES)
_MAX_INT = 2**53 - 1  # largest integer every JSON parser reads exactly
_STRING_LISTS = ("acl", "indexes", "referers")
_STRINGS = ("description", "queryParameters")
_INTEGERS = ("maxHitsPerQuery", "maxQueriesPerIPPerHour", "validity")
WRITABLE_FIELDS = frozenset(_STRING_LISTS + _STRINGS + _INTEGERS)
_JSON_HEADERS = (("content-type", "application/json; charset=utf-8"),)


class ApiError(Exception):
    """An error answer of the API: HTTP status and ``message``."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


@dataclass(frozen=True)
class KeyFields:
    """The writable attributes of a key, as sent in one add or update."""

    acl: tuple[str, ...] = ()
    description: str = ""
    indexes: tuple[str, ...] = ()
    referers: tuple[str, ...] = ()
    query_parameters: str = ""
    max_hits_per_query: int = 0
    max_queries_per_ip_per_hour: int = 0
    validity: int = 0

    def to_key(self, value: str, created_at: int, now: float) -> StoredKey:
        """The stored key; ``validity`` becomes an absolute expiry counted from ``now``."""
        return StoredKey(
            value=value,
            created_at=created_at,
            acl=self.acl,
            description=self.description,
            indexes=self.indexes,
            referers=self.referers,
            query_parameters=self.query_parameters,
            max_hits_per_query=self.max_hits_per_query,
            max_queries_per_ip_per_hour=self.max_queries_per_ip_per_hour,
            expires_at=now + self.validity if self.validity > 0 else None,
        )


def parse_key_body(body: bytes) -> KeyFields:
    """Parse and validate an add/update body; ApiError(400) naming the problem."""
    try:
        data = json.loads(body, parse_constant=_reject_constant)
    except (UnicodeDecodeError, json.JSONDecodeError, ValueError):
        raise ApiError(400, "Invalid JSON in request body") from None
    if not isinstance(data, dict):
        raise ApiError(400, "Request body must be a JSON object")
    for name in data:
        if name not in WRITABLE_FIELDS:
            raise ApiError(400, f"Unknown field '{name}' in API key object")
    for name in _STRING_LISTS:
        if name in data and not _is_string_list(data[name]):
            raise ApiError(400, f"'{name}' must be an array of strings")
    for name in _STRINGS:
        if name in data and not isinstance(data[name], str):
            raise ApiError(400, f"'{name}' must be a string")
    for name in _INTEGERS:
        if name in data and not _is_count(data[name]):
            raise ApiError(400, f"'{name}' must be a non-negative integer")
    for acl in data.get("acl", []):
        if acl not in _ACL_SET:
            raise ApiError(400, f"Invalid ACL '{acl}'")
    return KeyFields(
        acl=tuple(data.get("acl", ())),
        description=data.get("description", ""),
        indexes=tuple(data.get("indexes", ())),
        referers=tuple(data.get("referers", ())),
        query_parameters=data.get("queryParameters", ""),
        max_hits_per_query=data.get("maxHitsPerQuery", 0),
        max_queries_per_ip_per_hour=data.get("maxQueriesPerIPPerHour", 0),
        validity=data.get("validity", 0),
    )


def render_key(key: StoredKey, now: float, *, redact: bool, reorder: bool) -> dict[str, Any]:
    """The GET representation of ``key`` at ``now``."""
    out: dict[str, Any] = {
        "value": key.value,
        "createdAt": key.created_at,
        "acl": _ordered(key.acl, reorder),
    }
    if redact:
        out["description"] = "<redacted>"
    elif key.description:
        out["description"] = key.description
    if key.indexes:
        out["indexes"] = _ordered(key.indexes, reorder)
    if key.max_hits_per_query:
        out["maxHitsPerQuery"] = key.max_hits_per_query
    out["maxQueriesPerIPPerHour"] = key.max_queries_per_ip_per_hour
    if key.query_parameters:
        out["queryParameters"] = key.query_parameters
    if key.referers:
        out["referers"] = _ordered(key.referers, reorder)
    out["validity"] = key.remaining_validity(now)
    return out


def render_admin_key(admin_key: str, *, reorder: bool) -> dict[str, Any]:
    """The admin key as GET shows it: every ACL, no ``createdAt`` (legacy docs)."""
    return {
        "value": admin_key,
        "acl": _ordered(ACL_VALUES, reorder),
        "maxQueriesPerIPPerHour": 0,
        "validity": 0,
    }


def rfc3339(now: float) -> str:
    """``2023-07-04T12:49:15.123Z``."""
    stamp = datetime.fromtimestamp(now, UTC).isoformat(timespec="milliseconds")
    return stamp.replace("+00:00", "Z")


def json_response(payload: dict[str, Any], status: int = 200) -> EmuResponse:
    body = json.dumps(payload, separators=(",", ":")).encode()
    return EmuResponse(status, _JSON_HEADERS, body)


def error_response(status: int, message: str, retry_after: float | None = None) -> EmuResponse:
    """``{"message": ..., "status": ...}``, with ``Retry-After`` when given."""
    response = json_response({"message": message, "status": status}, status)
    if retry_after is None:
        return response
    headers = (*response.headers, ("retry-after", format_retry_after(retry_after)))
    return EmuResponse(status, headers, response.body)


def _ordered(values: tuple[str, ...], reorder: bool) -> list[str]:
    return list(reversed(values)) if reorder else list(values)


def _is_string_list(value: object) -> bool:
    return isinstance(value, list) and all(isinstance(v, str) for v in value)


def _is_count(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and 0 <= value <= _MAX_INT


def _reject_constant(name: str) -> object:
    raise ValueError(f"{name} is not JSON")
