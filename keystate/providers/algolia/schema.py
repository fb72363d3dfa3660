"""Algolia key fields and connection settings (``shared/providers/algolia-api.md`` §3)."""

from __future__ import annotations

import functools
import re
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Final

from keystate.contract import (
    SANDBOX_SETTING,
    Breadth,
    FieldSpec,
    Kind,
    LintRule,
    ProviderSchema,
    Role,
    SettingKind,
    SettingSpec,
)
from keystate.model import FieldValue, KeySpec

# The ACL enum of the Search API, in the specification's order.
ACLS: Final = (
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

ACL_DOCS: Final = {
    "addObject": "add or update records",
    "analytics": "read analytics",
    "browse": "browse (export) all records",
    "deleteObject": "delete records",
    "deleteIndex": "delete indices",
    "editSettings": "change index settings",
    "inference": "use inference",
    "listIndexes": "list indices",
    "logs": "read logs",
    "personalization": "personalization",
    "recommendation": "recommendations",
    "search": "search",
    "seeUnretrievableAttributes": "see unretrievable attributes",
    "settings": "read index settings",
    "usage": "read usage data",
}

# Algolia allows a leading and/or trailing "*" in index and referer patterns.
PATTERN: Final = r"^\*?[^*]+\*?$"
_PATTERN_RE = re.compile(PATTERN)
_APP_ID = r"^[A-Za-z0-9]{1,32}$"


def _patterns(what: str) -> Callable[[FieldValue], list[str]]:
    def check(value: FieldValue) -> list[str]:
        problems = []
        if isinstance(value, frozenset):
            for item in sorted(str(v) for v in value):
                if not item.strip("* "):
                    problems.append(f"empty {what} pattern {item!r}")
        return problems

    return check


WRITE_ACLS: Final = ("addObject", "deleteObject", "deleteIndex", "editSettings")


def _acl(spec: KeySpec) -> frozenset[str]:
    value = spec.fields.get("acl")
    return _as_strings(value) if isinstance(value, frozenset) else frozenset()


@functools.lru_cache(maxsize=4096)  # sets are shared: thousands of keys have a few
def _as_strings(value: frozenset[object]) -> frozenset[str]:
    return frozenset(str(v) for v in value)


@functools.lru_cache(maxsize=4096)
def _odd_patterns(value: frozenset[object]) -> tuple[str, ...]:
    """The members with a '*' where Algolia does not document one."""
    return tuple(sorted(str(v) for v in value if not _PATTERN_RE.match(str(v))))


def _write_without_indexes(spec: KeySpec, now: datetime) -> tuple[str, str] | None:
    writes = sorted(_acl(spec) & set(WRITE_ACLS))
    if writes and not spec.fields.get("indexes"):
        return "acl", f"can {', '.join(writes)} on every index; restrict it with indexes:"
    return None


def _inner_wildcard(spec: KeySpec, now: datetime) -> tuple[str, str] | None:
    for name in ("indexes", "referers"):
        value = spec.fields.get(name)
        if isinstance(value, frozenset):
            odd = _odd_patterns(value)
            if odd:
                return name, (
                    f"has {name} {', '.join(odd)} with '*' inside; Algolia documents '*' "
                    "only at the start or end of a pattern"
                )
    return None


def _search_unrestricted(spec: KeySpec, now: datetime) -> tuple[str, str] | None:
    if "search" not in _acl(spec):
        return None
    if spec.fields.get("referers") or spec.fields.get("max_queries_per_ip_per_hour"):
        return None
    return "acl", (
        "is a search key with neither referers nor max_queries_per_ip_per_hour: "
        "anyone who copies it can query without limit"
    )


# For access reviews: writes change records; these change or destroy whole indices.
ADMIN_ACLS: Final = ("deleteIndex", "editSettings")


def _breadth(acl: object) -> Breadth:
    if acl in ADMIN_ACLS:
        return Breadth.ADMIN
    if acl in WRITE_ACLS or (isinstance(acl, str) and acl.startswith("nluWrite")):
        return Breadth.WRITE
    return Breadth.READ


SCHEMA: Final = ProviderSchema(
    name="algolia",
    title="Algolia",
    settings=(
        SettingSpec(
            "application_id",
            SettingKind.TEXT,
            "Algolia application ID",
            required_unless=("sandbox",),
            pattern=_APP_ID,
        ),
        SettingSpec(
            "api_key",
            SettingKind.SECRET,
            "Admin API key (use ${VAR} or api_key_file)",
            required_unless=("sandbox",),
        ),
        SettingSpec(
            "hosts",
            SettingKind.URLS,
            "Override the Algolia hosts, e.g. an emulator: [http://127.0.0.1:8100]",
            conflicts=("sandbox",),
        ),
        SANDBOX_SETTING,
    ),
    fields=(
        FieldSpec(
            "acl",
            Kind.STRING_SET,
            "ACLs granted to the key",
            default=frozenset(),
            required=True,
            non_empty=True,
            choices=ACLS,
            example="search",
            role=Role.PERMISSIONS,
        ),
        FieldSpec(
            "indexes",
            Kind.STRING_SET,
            "Index names or patterns with a leading/trailing '*' (empty: all)",
            default=frozenset(),
            check=_patterns("index"),
            example="products_*",
            role=Role.SCOPE,
        ),
        FieldSpec(
            "referers",
            Kind.STRING_SET,
            "Allowed HTTP referers, with '*' wildcards (empty: all)",
            default=frozenset(),
            check=_patterns("referer"),
            example="https://shop.example.com/*",
            role=Role.RESTRICTIONS,
        ),
        FieldSpec(
            "max_hits_per_query",
            Kind.INT,
            "Maximum hits per query (0: unlimited)",
            default=0,
            role=Role.RESTRICTIONS,
        ),
        FieldSpec(
            "max_queries_per_ip_per_hour",
            Kind.INT,
            "Maximum queries per IP per hour (0: unlimited)",
            default=0,
            role=Role.RESTRICTIONS,
        ),
        FieldSpec(
            "query_parameters",
            Kind.QUERY,
            "Search parameters forced on every query (mapping or query string)",
            default="",
            role=Role.RESTRICTIONS,
        ),
        FieldSpec(
            "expires_at",
            Kind.TIMESTAMP,
            "Expiry (RFC 3339); compared with the live remaining validity",
            default=None,
            tolerance=timedelta(seconds=60),
            role=Role.EXPIRY,
        ),
    ),
    selector_kinds=("fingerprint",),
    eventually_consistent=True,
    breadth=_breadth,
    # GET /1/keys returns every key with every field, in one response (no pagination).
    listing_confirms=True,
    lint_rules=(
        LintRule(
            "algolia-write-without-indexes",
            "Write ACLs (addObject, deleteObject, deleteIndex, editSettings) without indexes.",
            _write_without_indexes,
        ),
        LintRule(
            "algolia-wildcard-inside",
            "An index or referer pattern with '*' in the middle.",
            _inner_wildcard,
        ),
        LintRule(
            "algolia-search-unrestricted",
            "A search key without referers or a per-IP rate limit.",
            _search_unrestricted,
        ),
    ),
)
