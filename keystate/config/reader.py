"""Typed reads from the YAML tree; every problem is recorded with its file:line:column.

The :class:`Reader` never raises for bad input: it records a :class:`Problem` and returns
``None`` (or :data:`INVALID` for field values, where ``None`` is a legal value), so that
one pass reports every problem of a file.
"""

from __future__ import annotations

import difflib
import ipaddress
import re
from collections.abc import Collection, Iterable, Mapping
from dataclasses import replace
from datetime import UTC, date, datetime
from typing import Any, Final, TypeVar
from urllib.parse import urlsplit

from keystate.config.expand import Expansion, expand
from keystate.config.yamltree import YMap, YNode, YScalar, YSeq
from keystate.errors import Problem, Severity
from keystate.kinds import canonical_query, encode_query, query_value, to_utc
from keystate.model import FieldValue, Location, Privilege, Record
from keystate.providers.base import FieldSpec, Kind


class Invalid:
    def __repr__(self) -> str:
        return "INVALID"


INVALID: Final = Invalid()
_CAMEL = re.compile(r"(?<=[a-z0-9])([A-Z])")
_PRIVILEGE_FIELDS: Final = ("owner", "target_domain", "type", "target_id")
_LOOPBACK_NAMES: Final = {"localhost"}
HIDDEN_MIN: Final = 8  # shorter values are shown: they would match ordinary words
_T = TypeVar("_T")


def did_you_mean(word: str, candidates: Iterable[str]) -> str:
    """``"; did you mean 'x'?"`` when a candidate is close, else ``""``."""
    options = list(candidates)
    snake = _CAMEL.sub(r"_\1", word).lower()
    if snake in options and snake != word:
        return f"; did you mean '{snake}'?"
    lowered = {o.lower(): o for o in options}
    if word.lower() in lowered and lowered[word.lower()] != word:
        return f"; did you mean '{lowered[word.lower()]}'?"
    close = difflib.get_close_matches(word, options, n=1, cutoff=0.6)
    return f"; did you mean '{close[0]}'?" if close else ""


def kind_name(node: YNode) -> str:
    if isinstance(node, YMap):
        return "a mapping"
    if isinstance(node, YSeq):
        return "a list"
    if node.value is None:
        return "null"
    return {
        "tag:yaml.org,2002:str": "a string",
        "tag:yaml.org,2002:int": "an integer",
        "tag:yaml.org,2002:float": "a number",
        "tag:yaml.org,2002:bool": "a boolean",
        "tag:yaml.org,2002:timestamp": "a timestamp",
    }.get(node.tag, "a scalar")


def is_loopback(host: str) -> bool:
    if host.lower() in _LOOPBACK_NAMES:
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


class Reader:
    """Reads typed values out of YAML nodes, collecting problems."""

    def __init__(self, env: Mapping[str, str], now: datetime) -> None:
        self.env = env
        self.now = now
        self.problems: list[Problem] = []
        # Values that ${VAR} references expanded to, by value: messages show the reference
        # instead (a variable may hold a credential put in the wrong field).
        self.env_values: dict[str, str] = {}
        # Where (line, column) each member of the set-valued field read last was written.
        self.members: dict[object, tuple[int, int]] = {}
        # One object per distinct set value: thousands of keys share a few ACL sets.
        self._sets: dict[frozenset[Any], frozenset[Any]] = {}
        # (field, set) pairs whose every member passed the field's check.
        self._passed: set[tuple[str, FieldValue]] = set()

    def shared(self, value: frozenset[_T]) -> frozenset[_T]:
        """The set already read with these members, if any (frozensets are immutable)."""
        return self._sets.setdefault(value, value)

    # -- reporting -------------------------------------------------------------------
    def error(self, where: YNode | Location | None, message: str) -> None:
        loc = where if isinstance(where, Location) or where is None else where.loc
        self.problems.append(Problem(message, loc))

    def hide_env(self, problem: Problem) -> Problem:
        """The problem with every expanded variable value shown as its ``${NAME}``."""
        message = problem.message
        for value in sorted(self.env_values, key=len, reverse=True):
            if value in message:
                message = message.replace(value, f"${{{self.env_values[value]}}}")
        return problem if message == problem.message else replace(problem, message=message)

    def warn(self, where: YNode | Location | None, message: str, rule: str | None = None) -> None:
        loc = where if isinstance(where, Location) or where is None else where.loc
        self.problems.append(Problem(message, loc, Severity.WARNING, rule))

    def expect(self, node: YNode, what: str, expected: str) -> None:
        self.error(node, f"{what} must be {expected}, not {kind_name(node)}")

    def unknown_fields(self, node: YMap, allowed: Collection[str], what: str) -> None:
        for key, _ in node.entries:
            if key.raw not in allowed:
                options = list(allowed)
                hint = did_you_mean(key.raw, options)
                if not hint:
                    hint = f" (allowed: {', '.join(options)})"
                self.error(key, f"unknown field '{key.raw}' in {what}{hint}")

    # -- scalars ---------------------------------------------------------------------
    def expanded(self, node: YNode, what: str) -> Expansion | None:
        if not isinstance(node, YScalar) or node.value is None:
            self.expect(node, what, "a string")
            return None
        if node.tag == "tag:yaml.org,2002:bool":
            self.expect(node, what, "a string (quote it)")
            return None
        text = node.raw if not node.is_str else str(node.value)
        result = expand(text, self.env)
        for name in result.variables:
            value = self.env.get(name)
            if value and len(value) >= HIDDEN_MIN:
                self.env_values[value] = name
        for message in result.errors:
            self.error(node, f"{what}: {message}")
        return None if result.errors else result

    def string(self, node: YNode, what: str) -> str | None:
        if isinstance(node, YScalar) and node.is_str and "$" not in node.raw:
            return str(node.value)  # nothing to expand (the common case, kept fast)
        result = self.expanded(node, what)
        return None if result is None else result.value

    def integer(self, node: YNode, what: str, maximum: int | None = None) -> int | None:
        value: object = node.value if isinstance(node, YScalar) else None
        if isinstance(node, YScalar) and node.is_str and "$" in node.raw:
            text = self.string(node, what)
            if text is None:
                return None
            digits = text.strip()
            value = int(digits) if digits.isascii() and digits.isdigit() else text
        if isinstance(value, bool) or not isinstance(value, int):
            shown = f" {node.raw!r}" if isinstance(node, YScalar) else ""
            self.error(node, f"{what} must be a non-negative integer, not {kind_name(node)}{shown}")
            return None
        if value < 0:
            self.error(node, f"{what} must be a non-negative integer, not {value}")
            return None
        if maximum is not None and value > maximum:
            self.error(node, f"{what} must be at most {maximum}, not {value}")
            return None
        return value

    def number(self, node: YNode, what: str, low: float, high: float) -> float | None:
        value = node.value if isinstance(node, YScalar) else None
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            self.expect(node, what, "a number")
            return None
        if not low <= value <= high:
            self.error(node, f"{what} must be between {low:g} and {high:g}, not {value}")
            return None
        return float(value)

    def boolean(self, node: YNode, what: str) -> bool | None:
        if isinstance(node, YScalar) and isinstance(node.value, bool):
            return node.value
        self.expect(node, what, "true or false")
        return None

    def mapping(self, node: YNode, what: str, allow_null: bool = False) -> YMap | None:
        if isinstance(node, YMap):
            return node
        if allow_null and isinstance(node, YScalar) and node.value is None:
            return YMap([], node.path, node.line, node.column)
        self.expect(node, what, "a mapping")
        return None

    def strings(self, node: YNode, what: str) -> list[tuple[str, YNode]] | None:
        if isinstance(node, YScalar) and node.value is None:
            return []
        if not isinstance(node, YSeq):
            self.expect(node, what, "a list")
            return None
        out: list[tuple[str, YNode]] = []
        ok = True
        for item in node.items:
            text = self.string(item, f"{what} item")
            if text is None:
                ok = False
            else:
                out.append((text, item))
        return out if ok else None

    def url(self, node: YNode, what: str) -> str | None:
        text = self.string(node, what)
        if text is None:
            return None
        try:
            parts = urlsplit(text)
            port, user = parts.port, parts.username or parts.password
        except ValueError:
            self.error(node, f"{what}: {text!r} is not a valid URL")
            return None
        if user:  # never echo it: the user part may hold a password or a key
            self.error(
                node,
                f"{what}: credentials in the URL are not allowed (they would show in plans "
                "and logs); give them with the account's api_key or token",
            )
            return None
        if parts.scheme not in ("http", "https") or not parts.hostname or port == 0:
            self.error(node, f"{what}: {text!r} is not an http(s) URL")
            return None
        if parts.scheme == "http" and not is_loopback(parts.hostname):
            self.error(
                node,
                f"{what}: plain http:// is only allowed for loopback hosts "
                f"(127.0.0.1, ::1, localhost); use https://{parts.netloc}",
            )
            return None
        if parts.path not in ("", "/") or parts.query or parts.fragment:
            self.error(node, f"{what}: give only scheme://host[:port], not a path ({text!r})")
            return None
        return text.rstrip("/")

    # -- provider fields -------------------------------------------------------------
    def field(self, spec: FieldSpec, node: YNode) -> FieldValue | Invalid:
        self.members = {}
        value = self._field(spec, node)
        if value is INVALID or spec.check is None:
            return value
        assert not isinstance(value, Invalid)
        if self.members and (spec.name, value) in self._passed:
            return value  # this very set passed the field's check already (checks are pure)
        if not self.members:
            problems = spec.check(value)
            for message in problems:
                self.error(node, f"{spec.name}: {message}")
            return INVALID if problems else value
        # A set: check each member alone, so that each problem names its own line.
        ok = True
        for member, (line, column) in self.members.items():
            one: FieldValue
            if isinstance(member, Privilege):  # noqa: SIM114 (mypy needs one type per set)
                one = frozenset([member])
            elif isinstance(member, Record):
                one = frozenset([member])
            else:
                one = frozenset([str(member)])
            for message in spec.check(one):
                self.error(Location(node.path, line, column), f"{spec.name}: {message}")
                ok = False
        if ok:
            self._passed.add((spec.name, value))
        return value if ok else INVALID

    def _field(self, spec: FieldSpec, node: YNode) -> FieldValue | Invalid:
        kind = spec.kind
        if isinstance(node, YScalar) and node.value is None and not spec.required:
            return spec.default
        if kind is Kind.TEXT:
            text = self.string(node, spec.name)
            if text is not None and spec.max_length is not None and len(text) > spec.max_length:
                self.error(
                    node, f"{spec.name} is {len(text)} characters; at most {spec.max_length}"
                )
                return INVALID
            if text is not None and spec.choices and text not in spec.choices:
                hint = did_you_mean(text, spec.choices) or f" (one of: {', '.join(spec.choices)})"
                self.error(node, f"{spec.name}: unknown value {text!r}{hint}")
                return INVALID
            return INVALID if text is None else text
        if kind is Kind.INT:
            number = self.integer(node, spec.name, spec.maximum)
            return INVALID if number is None else number
        if kind is Kind.BOOL:
            flag = self.boolean(node, spec.name)
            return INVALID if flag is None else flag
        if kind is Kind.STRING_SET:
            return self._string_set(spec, node)
        if kind is Kind.TIMESTAMP:
            return self.timestamp(node, spec.name)
        if kind is Kind.QUERY:
            return self._query(spec, node)
        if kind is Kind.RECORDS:
            return self._records(spec, node)
        return self._privileges(spec, node)

    def _records(self, spec: FieldSpec, node: YNode) -> FieldValue | Invalid:
        shape = spec.record
        assert shape is not None, f"{spec.name}: a RECORDS field needs a RecordShape"
        if isinstance(node, YScalar) and node.value is None:
            return frozenset()
        if not isinstance(node, YSeq):
            self.expect(node, spec.name, "a list of {" + ", ".join(shape.fields) + "}")
            return INVALID
        out: dict[Record, YNode] = {}
        ok = True
        for item in node.items:
            m = self.mapping(item, f"{spec.name} item")
            if m is None:
                ok = False
                continue
            self.unknown_fields(m, shape.fields, f"{spec.name} item")
            values: dict[str, str] = {}
            for key, value in m.entries:
                if key.raw not in shape.fields:
                    continue
                text = self.string(value, f"{spec.name}.{key.raw}")
                choices = shape.choices.get(key.raw, ())
                if text is not None and choices and text not in choices:
                    hint = did_you_mean(text, choices) or f" (one of: {', '.join(choices)})"
                    self.error(value, f"{spec.name}.{key.raw}: unknown value {text!r}{hint}")
                    text = None
                if text is None:
                    ok = False
                else:
                    values[key.raw] = text
            written = {key.raw for key, _ in m.entries}
            missing = [f for f in shape.required if f not in written]
            for name in missing:
                self.error(item, f"{spec.name} item is missing '{name}'")
            if missing:
                ok = False
                continue
            record = Record(shape.normalise(values))
            if record in out:
                self.warn(item, f"{spec.name}: {record} is listed twice")
            else:
                out[record] = item
        self.members = {r: (item.line, item.column) for r, item in out.items()}
        return self.shared(frozenset(out)) if ok else INVALID

    def _string_set(self, spec: FieldSpec, node: YNode) -> FieldValue | Invalid:
        items = self.strings(node, spec.name)
        if items is None:
            return INVALID
        seen: dict[str, YNode] = {}
        ok = True
        for text, item in items:
            if text in seen:
                self.warn(item, f"{spec.name}: {text!r} is listed twice")
            seen[text] = item
            if spec.choices and text not in spec.choices:
                hint = did_you_mean(text, spec.choices)
                if not hint:
                    hint = f" (valid: {', '.join(spec.choices)})"
                self.error(item, f"{spec.name}: unknown value {text!r}{hint}")
                ok = False
        if spec.non_empty and not seen and ok:
            self.error(node, f"{spec.name} must not be empty")
            return INVALID
        self.members = {text: (item.line, item.column) for text, item in seen.items()}
        return self.shared(frozenset(seen)) if ok else INVALID

    def timestamp(self, node: YNode, what: str) -> datetime | Invalid:
        example = "e.g. 2027-06-30T00:00:00Z"
        value: object = node.value if isinstance(node, YScalar) else None
        if isinstance(node, YScalar) and node.is_str:
            text = self.string(node, what)
            if text is None:
                return INVALID
            try:
                value = datetime.fromisoformat(text.strip())
            except ValueError:
                self.error(node, f"{what}: {text!r} is not an RFC 3339 timestamp ({example})")
                return INVALID
        if isinstance(value, datetime):
            if value.tzinfo is None:
                self.error(node, f"{what} needs a UTC offset: add 'Z' or '+hh:mm' ({example})")
                return INVALID
            try:
                moment = to_utc(value)
            except OverflowError:
                self.error(node, f"{what} is out of range once converted to UTC ({example})")
                return INVALID
            if moment <= self.now:
                self.error(
                    node,
                    f"{what} {moment.isoformat().replace('+00:00', 'Z')} is in the past; "
                    "the key would expire at once: extend it or remove the key",
                )
                return INVALID
            return moment
        if isinstance(value, date):
            self.error(node, f"{what} needs a time and offset ({value.isoformat()}T00:00:00Z)")
            return INVALID
        self.expect(node, what, f"an RFC 3339 timestamp ({example})")
        return INVALID

    def _query(self, spec: FieldSpec, node: YNode) -> FieldValue | Invalid:
        if isinstance(node, YMap):
            pairs: list[tuple[str, str]] = []
            for key, value in node.entries:
                plain = self._plain(value, f"{spec.name}.{key.raw}")
                if plain is INVALID:
                    return INVALID
                pairs.append((key.raw, query_value(plain)))
            return encode_query(pairs)
        text = self.string(node, spec.name)
        if text is None:
            return INVALID
        if text and "=" not in text:
            self.error(node, f"{spec.name}: {text!r} is not a query string (name=value&...)")
            return INVALID
        return canonical_query(text)

    def _plain(self, node: YNode, what: str) -> object:
        if isinstance(node, YScalar):
            if node.is_str:
                text = self.string(node, what)
                return INVALID if text is None else text
            if node.value is None or isinstance(node.value, (date, datetime)):
                return node.raw  # as written: a date is no JSON value (in a list, say)
            return node.value
        if isinstance(node, YSeq):
            items = [self._plain(i, what) for i in node.items]
            return INVALID if INVALID in items else items
        self.expect(node, what, "a string, number, boolean or list")
        return INVALID

    def _privileges(self, spec: FieldSpec, node: YNode) -> FieldValue | Invalid:
        if isinstance(node, YScalar) and node.value is None:
            return frozenset()
        if not isinstance(node, YSeq):
            self.expect(node, spec.name, "a list of {owner, target_domain, type?, target_id?}")
            return INVALID
        out: dict[Privilege, YNode] = {}
        ok = True
        for item in node.items:
            privilege = self._privilege(item, spec.name)
            if privilege is None:
                ok = False
            elif privilege in out:
                self.warn(item, f"{spec.name}: {privilege} is listed twice")
            else:
                out[privilege] = item
        if ok and spec.non_empty and not out:
            self.error(node, f"{spec.name} must not be empty")
            return INVALID
        self.members = {p: (item.line, item.column) for p, item in out.items()}
        return self.shared(frozenset(out)) if ok else INVALID

    def _privilege(self, item: YNode, what: str) -> Privilege | None:
        m = self.mapping(item, f"{what} item")
        if m is None:
            return None
        self.unknown_fields(m, _PRIVILEGE_FIELDS, f"{what} item")
        values: dict[str, str | None] = {}
        for key, value in m.entries:
            if key.raw in _PRIVILEGE_FIELDS:
                values[key.raw] = self.string(value, f"{what}.{key.raw}")
        missing = [f for f in ("owner", "target_domain") if f not in values]
        for name in missing:
            self.error(item, f"{what} item is missing '{name}'")
        owner, domain = values.get("owner"), values.get("target_domain")
        if missing or owner is None or domain is None:
            return None
        return Privilege(owner, domain, values.get("type"), values.get("target_id"))


def utc_now() -> datetime:
    return datetime.now(UTC)
