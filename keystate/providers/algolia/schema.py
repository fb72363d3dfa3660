"""Algolia key fields and connection settings (``shared/providers/algolia-api.md`` §3)."""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import timedelta
from typing import Final

from keystate.model import FieldValue
from keystate.providers.base import FieldSpec, Kind, ProviderSchema, SettingKind, SettingSpec

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
_WILDCARD_INSIDE = re.compile(r".+\*.+")
_APP_ID = r"^[A-Za-z0-9]{1,32}$"


def _patterns(what: str) -> Callable[[FieldValue], list[str]]:
    def check(value: FieldValue) -> list[str]:
        problems = []
        if isinstance(value, frozenset):
            for item in sorted(str(v) for v in value):
                if not item.strip():
                    problems.append(f"empty {what} pattern")
                elif _WILDCARD_INSIDE.fullmatch(item.strip("*")):
                    problems.append(
                        f"{what} pattern {item!r}: '*' is only allowed at the start or end"
                    )
        return problems

    return check


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
        SettingSpec(
            "sandbox",
            SettingKind.PATH,
            "Serve this account from the embedded emulator, state kept in this file",
        ),
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
        ),
        FieldSpec(
            "indexes",
            Kind.STRING_SET,
            "Index names or patterns with a leading/trailing '*' (empty: all)",
            default=frozenset(),
            check=_patterns("index"),
            example="products_*",
        ),
        FieldSpec(
            "referers",
            Kind.STRING_SET,
            "Allowed HTTP referers, with '*' wildcards (empty: all)",
            default=frozenset(),
            check=_patterns("referer"),
            example="https://shop.example.com/*",
        ),
        FieldSpec(
            "max_hits_per_query",
            Kind.INT,
            "Maximum hits per query (0: unlimited)",
            default=0,
        ),
        FieldSpec(
            "max_queries_per_ip_per_hour",
            Kind.INT,
            "Maximum queries per IP per hour (0: unlimited)",
            default=0,
        ),
        FieldSpec(
            "query_parameters",
            Kind.QUERY,
            "Search parameters forced on every query (mapping or query string)",
            default="",
        ),
        FieldSpec(
            "expires_at",
            Kind.TIMESTAMP,
            "Expiry (RFC 3339); compared with the live remaining validity",
            default=None,
            tolerance=timedelta(seconds=60),
        ),
    ),
    selector_kinds=("fingerprint",),
    eventually_consistent=True,
    static_grants=ACLS,
)
