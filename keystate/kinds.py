"""What each field :class:`~keystate.contract.Kind` means: normal form, equality,
rendering as text and as JSON.

Everything that compares or shows a field value goes through here, so the plan, the
saved plan, the Markdown comment and the apply-time confirmation all agree.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from datetime import UTC, datetime
from typing import TypeAlias
from urllib.parse import parse_qsl, quote

from keystate.contract import FieldSpec, Kind
from keystate.model import FieldValue, Privilege, Record

JSONValue: TypeAlias = bool | int | float | str | list["JSONValue"] | dict[str, "JSONValue"] | None

# Characters left readable in a canonical query string; everything else is %-encoded,
# so that decoding is unambiguous ("&", "=", "%", "+", "#" and spaces always are).
_QUERY_SAFE = "/:,*@!$'()[]{};"


def canonical_query(text: str) -> str:
    """Canonical form of a URL query string: decoded pairs, sorted by name, re-encoded."""
    pairs = parse_qsl(text.lstrip("?"), keep_blank_values=True)
    return encode_query(pairs)


def encode_query(pairs: Iterable[tuple[str, str]]) -> str:
    ordered = sorted(pairs, key=lambda kv: kv[0])
    return "&".join(
        f"{quote(k, safe=_QUERY_SAFE)}={quote(v, safe=_QUERY_SAFE)}" for k, v in ordered
    )


def query_value(value: object) -> str:
    """How a YAML value becomes a query parameter value."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (list, tuple, dict)):
        return json.dumps(value, separators=(",", ":"))
    return str(value)


def to_utc(moment: datetime) -> datetime:
    return moment.astimezone(UTC)


def format_timestamp(moment: datetime) -> str:
    text = to_utc(moment).replace(microsecond=0).isoformat()
    return text.replace("+00:00", "Z")


def equal(spec: FieldSpec, desired: FieldValue, live: FieldValue) -> bool:
    """Whether a live value satisfies a desired one."""
    if desired is None and spec.any_when_unset:
        return True
    if spec.kind is Kind.TIMESTAMP:
        if isinstance(desired, datetime) and isinstance(live, datetime):
            return abs(desired - live) <= spec.tolerance
        return desired is None and live is None
    if spec.compare_as is not None:
        return spec.compare_as(desired) == spec.compare_as(live)
    return desired == live


def to_json(value: FieldValue) -> JSONValue:
    """JSON form of a normalised value (sets become sorted lists)."""
    if isinstance(value, datetime):
        return format_timestamp(value)
    if isinstance(value, frozenset):
        items = list(value)
        if items and isinstance(items[0], Privilege):
            privileges = sorted(
                (p for p in items if isinstance(p, Privilege)), key=Privilege.sort_key
            )
            return [_privilege_json(p) for p in privileges]
        if items and isinstance(items[0], Record):
            records = sorted((r for r in items if isinstance(r, Record)), key=str)
            return [dict(r.items) for r in records]
        return [str(i) for i in sorted(str(i) for i in items)]
    return value


def _privilege_json(privilege: Privilege) -> JSONValue:
    out: dict[str, JSONValue] = {
        "owner": privilege.owner,
        "target_domain": privilege.target_domain,
    }
    if privilege.type is not None:
        out["type"] = privilege.type
    if privilege.target_id is not None:
        out["target_id"] = privilege.target_id
    return out


def from_json(spec: FieldSpec, raw: JSONValue) -> FieldValue:
    """Inverse of :func:`to_json`, for saved plans."""
    if raw is None:
        return None
    kind = spec.kind
    if kind is Kind.TIMESTAMP and isinstance(raw, str):
        return to_utc(datetime.fromisoformat(raw))
    if kind is Kind.STRING_SET and isinstance(raw, list):
        return frozenset(str(i) for i in raw)
    if kind is Kind.PRIVILEGES and isinstance(raw, list):
        privileges: set[Privilege] = set()
        for item in raw:
            if not isinstance(item, dict):
                raise ValueError("privilege must be an object")
            privileges.add(
                Privilege(
                    owner=str(item["owner"]),
                    target_domain=str(item["target_domain"]),
                    type=_opt_str(item.get("type")),
                    target_id=_opt_str(item.get("target_id")),
                )
            )
        return frozenset(privileges)
    if kind is Kind.RECORDS and isinstance(raw, list) and spec.record is not None:
        records: set[Record] = set()
        for item in raw:
            if not isinstance(item, dict):
                raise ValueError(f"{spec.name}: a member must be an object")
            records.add(Record(spec.record.normalise({k: str(v) for k, v in item.items()})))
        return frozenset(records)
    if kind is Kind.INT and isinstance(raw, int) and not isinstance(raw, bool):
        return raw
    if kind is Kind.BOOL and isinstance(raw, bool):
        return raw
    if kind in (Kind.TEXT, Kind.QUERY) and isinstance(raw, str):
        return raw
    raise ValueError(f"{spec.name}: unexpected value in plan file")


def _opt_str(value: JSONValue) -> str | None:
    return None if value is None else str(value)


def to_text(value: FieldValue) -> str:
    """Terraform-like literal for plan text: strings quoted, sets as sorted lists."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, datetime):
        return json.dumps(format_timestamp(value))
    if isinstance(value, frozenset):
        shown = to_json(value)
        assert isinstance(shown, list)
        return "[" + ", ".join(_text_item(item) for item in shown) + "]"
    return json.dumps(value, ensure_ascii=False)


def member_text(item: JSONValue) -> str:
    """One member of a set as plan text shows it, in a whole value or a member diff alike
    (a privilege is ``{ owner = "SEARCH_API", target_domain = "EXECUTE_QUERY" }``)."""
    return _text_item(item)


def _text_item(item: JSONValue) -> str:
    if isinstance(item, dict):
        inner = ", ".join(f"{k} = {json.dumps(v)}" for k, v in item.items())
        return "{ " + inner + " }"
    return json.dumps(item, ensure_ascii=False)


def is_default(spec: FieldSpec, value: FieldValue) -> bool:
    """Whether a value is the field's default, i.e. may be left out when shown.

    Not ``equal(spec, spec.default, value)``: for a field whose unset desired value
    accepts anything (``any_when_unset``), every value would count as the default and a
    create or an import would silently drop, say, a key's permissions.
    """
    if spec.default is None:
        return value is None
    return equal(spec, spec.default, value)
