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
from datetime import UTC, datetime
from typing import Any, Final, TypeVar
from urllib.parse import urlsplit

from keystate.config.expand import Expansion, expand
from keystate.config.nodes import YMap, YNode, YScalar, YSeq
from keystate.errors import Problem, Severity
from keystate.model import FieldValue, Location


class Invalid:
    def __repr__(self) -> str:
        return "INVALID"


INVALID: Final = Invalid()
_CAMEL = re.compile(r"(?<=[a-z0-9])([A-Z])")
PRIVILEGE_FIELDS: Final = ("owner", "target_domain", "type", "target_id")
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

    def __init__(self, env: Mapping[str, str], now: datetime, offline: bool = False) -> None:
        self.env = env
        self.now = now
        # Offline (``validate``): connection settings are checked for well-formed
        # ``${VAR}`` references, but unset variables are not resolved (nor credential
        # files read); they are recorded in ``skipped`` instead.
        self.offline = offline
        self.skipped: dict[str, Location] = {}
        # Expiries already passed: not errors of the whole configuration, but of the
        # key's account, which cannot be planned until they are fixed (config.keys).
        self.expired: list[Problem] = []
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
    def deferred(self, node: YNode) -> bool:
        """Offline only: whether this setting refers to unset variables (and is otherwise
        well-formed), so that its checks wait for plan and apply. Records what it skipped."""
        if not self.offline or not isinstance(node, YScalar) or not node.is_str:
            return False
        if "$" not in node.raw:
            return False
        result = expand(str(node.value), self.env)
        if not result.unset or len(result.unset) != len(result.errors):
            return False
        for name in result.unset:
            self.skipped.setdefault(f"${{{name}}}", node.loc)
        return True

    def skip_file(self, node: YNode, what: str) -> bool:
        """Offline only: a credential file is not read (only plan and apply need it)."""
        if not self.offline or not isinstance(node, YScalar) or not node.is_str:
            return False
        self.skipped.setdefault(f"{what} {node.value}", node.loc)
        return True

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


def utc_now() -> datetime:
    return datetime.now(UTC)
