"""The Coveo emulator's data: one organization's API keys, privilege catalogue,
templates, and the propagation log.

Times are epoch **milliseconds** (Coveo's wire format) and always passed in, so tests
drive expiry and propagation with an injected clock. Propagation follows the Algolia
emulator's model: writes land in the primary at once; with a delay, an undo entry keeps
what readers still see until the write becomes visible.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, field
from typing import Any

SOON_MS = 7 * 24 * 3600 * 1000  # SOON_TO_BE_EXPIRED this close to expiry (assumed)
LIFECYCLES = (None, "SOON_TO_BE_DISABLED", "DISABLED_FOR_INACTIVITY", "DISABLED_EXPOSED")
ACTIVE = ("ENABLED", "SOON_TO_BE_EXPIRED", "SOON_TO_BE_DISABLED")

# (owner, targetDomain, types or () for yes/no privileges, allowed on custom keys)
_CATALOGUE: tuple[tuple[str, str, tuple[str, ...], bool], ...] = (
    ("USAGE_ANALYTICS", "ADMINISTRATE", (), True),
    ("USAGE_ANALYTICS", "ANALYTICS_DATA", ("VIEW", "EDIT"), True),
    ("USAGE_ANALYTICS", "CUSTOM_DIMENSIONS", ("CREATE", "VIEW", "EDIT"), True),
    ("USAGE_ANALYTICS", "DELETE_USER_ANALYTICS_DATA", (), True),
    ("USAGE_ANALYTICS", "EXPORTS", ("CREATE", "VIEW", "EDIT"), True),
    ("USAGE_ANALYTICS", "IMPERSONATE", (), False),
    ("USAGE_ANALYTICS", "INCOHERENT_EVENTS", ("VIEW",), True),
    ("USAGE_ANALYTICS", "METRIC_ALERTS", ("VIEW", "EDIT"), True),
    ("USAGE_ANALYTICS", "NAMED_FILTERS", ("CREATE", "VIEW", "EDIT"), True),
    ("USAGE_ANALYTICS", "PERMISSION_FILTERS", ("CREATE", "VIEW", "EDIT"), True),
    ("USAGE_ANALYTICS", "REPORTS", ("VIEW", "EDIT"), True),
    ("COVEO_ML", "MODELS", ("VIEW", "EDIT"), True),
    ("PLATFORM", "ACTIVITIES", ("VIEW",), True),
    ("PLATFORM", "FIELD", ("CREATE", "VIEW", "EDIT"), True),
    ("PLATFORM", "GROUP", ("VIEW", "EDIT"), True),
    ("PLATFORM", "INDEXING_PIPELINE_EXTENSION", ("VIEW", "EDIT"), True),
    ("PLATFORM", "LINK", ("CREATE", "VIEW", "EDIT"), True),
    ("PLATFORM", "ON_PREMISE_ADMINISTRATION", ("VIEW", "EDIT"), True),
    ("PLATFORM", "ORGANIZATION", ("VIEW", "EDIT"), True),
    ("PLATFORM", "SAML_IDENTITY_PROVIDER", ("VIEW", "EDIT"), True),
    ("PLATFORM", "SECURITY_CACHE", ("VIEW", "EDIT"), True),
    ("PLATFORM", "SECURITY_PROVIDER", ("VIEW", "EDIT"), True),
    ("PLATFORM", "SNAPSHOTS", ("CREATE", "VIEW", "EDIT"), True),
    ("PLATFORM", "SOURCE", ("CREATE", "VIEW", "EDIT"), True),
    ("PLATFORM", "SUBSCRIPTION", ("VIEW", "EDIT"), True),
    ("PLATFORM", "TEMPORARY_ACCESS", ("VIEW",), True),
    ("SEARCH_API", "AUTHENTICATION_EDITOR", (), True),
    ("SEARCH_API", "EXECUTE_QUERY", (), True),
    ("SEARCH_API", "IMPERSONATE", (), False),
    ("SEARCH_API", "QUERY_PIPELINE", ("VIEW", "EDIT"), True),
    ("SEARCH_API", "SALESFORCE_AUTHENTICATION", ("VIEW", "EDIT"), True),
    ("SEARCH_API", "SEARCH_PAGES", ("CREATE", "VIEW", "EDIT"), True),
    ("SEARCH_API", "SEARCH_USAGE_METRICS", ("VIEW",), True),
    ("SEARCH_API", "VIEW_ALL_CONTENT", (), True),
)


def default_catalogue() -> list[dict[str, Any]]:
    """The assignable privileges of a new organization (coveo-api.md §6; the live list is
    per organization and longer). ``custom`` says whether a custom key may have it."""
    out: list[dict[str, Any]] = []
    for owner, domain, types, custom in _CATALOGUE:
        for kind in types or (None,):
            item: dict[str, Any] = {"owner": owner, "targetDomain": domain, "custom": custom}
            if kind:
                item["type"] = kind
            out.append(item)
    return out


def default_templates() -> dict[str, dict[str, Any]]:
    execute = {"owner": "SEARCH_API", "targetDomain": "EXECUTE_QUERY", "targetId": "*"}
    impersonate = {"owner": "SEARCH_API", "targetDomain": "IMPERSONATE", "targetId": "*"}
    analytics = {
        "owner": "USAGE_ANALYTICS",
        "targetDomain": "ANALYTICS_DATA",
        "type": "EDIT",
        "targetId": "*",
    }
    return {
        "AuthenticatedSearch": {
            "displayName": "Authenticated search",
            "privacyLevel": "PRIVATE",
            "privileges": [execute, impersonate],
        },
        "AnonymousSearch": {
            "displayName": "Anonymous search",
            "privacyLevel": "PUBLIC",
            "privileges": [execute],
        },
        "UsageAnalytics": {
            "displayName": "Usage analytics",
            "privacyLevel": "PUBLIC",
            "privileges": [analytics],
        },
    }


@dataclass
class StoredApiKey:
    """One API key as stored; the JSON it is written as is close to Coveo's model."""

    id: str
    value: str
    display_name: str
    description: str = ""
    privileges: list[dict[str, Any]] = field(default_factory=list)
    allowed_ips: list[str] = field(default_factory=list)
    denied_ips: list[str] = field(default_factory=list)
    additional_configuration: dict[str, Any] = field(default_factory=dict)
    groups_that_can_edit: list[Any] = field(default_factory=list)
    api_keys_that_can_edit: list[Any] = field(default_factory=list)
    enabled: bool = True
    created_ms: int = 0
    expiration_ms: int | None = None
    activation_ms: int | None = None
    disabled_ms: int | None = None
    template_id: str | None = None
    privacy_level: str = "PRIVATE"
    rotation_enabled: bool = False
    # Coveo's approximate last use (epoch ms), as served.
    last_used_ms: int | None = None
    # What Coveo did to the key on its own (set through the state file): None, or
    # SOON_TO_BE_DISABLED / DISABLED_FOR_INACTIVITY (inactivity) or DISABLED_EXPOSED.
    lifecycle: str | None = None
    # An ExposureReport (coveo-api.md §4.4) when the key was reported leaked.
    exposure_report: dict[str, Any] | None = None

    def __post_init__(self) -> None:
        if self.lifecycle not in LIFECYCLES:
            raise TypeError(f"lifecycle must be one of {', '.join(map(str, LIFECYCLES))}")
        if self.lifecycle == "DISABLED_EXPOSED" and self.exposure_report is None:
            raise TypeError("a DISABLED_EXPOSED key needs an exposure_report")

    def expired(self, now_ms: int) -> bool:
        return self.expiration_ms is not None and self.expiration_ms <= now_ms

    def status(self, now_ms: int) -> str:
        if self.expired(now_ms):
            return "EXPIRED"
        if self.lifecycle in ("DISABLED_EXPOSED", "DISABLED_FOR_INACTIVITY"):
            return self.lifecycle
        if not self.enabled:
            return "DISABLED_EXPOSED" if self.exposure_report is not None else "DISABLED"
        if self.lifecycle == "SOON_TO_BE_DISABLED":
            return self.lifecycle
        if self.expiration_ms is not None and self.expiration_ms - now_ms <= SOON_MS:
            return "SOON_TO_BE_EXPIRED"
        return "ENABLED"

    def usable(self, now_ms: int) -> bool:
        return self.status(now_ms) in ACTIVE

    def to_json(self) -> dict[str, Any]:
        return copy.deepcopy(self.__dict__)

    @classmethod
    def from_json(cls, data: object, where: str) -> StoredApiKey:
        if not isinstance(data, dict):
            raise ValueError(f"{where}: a key is not an object")
        try:
            return cls(**copy.deepcopy(data))
        except TypeError as exc:
            raise ValueError(f"{where}: malformed key ({exc})") from None


@dataclass(frozen=True)
class _Pending:
    key_id: str
    before: StoredApiKey | None
    visible_at: int


@dataclass
class OrgState:
    """One organization: keys (insertion order), catalogue, templates, propagation."""

    organization_id: str
    token: str
    region: str = "us"
    keys: dict[str, StoredApiKey] = field(default_factory=dict)
    catalogue: list[dict[str, Any]] = field(default_factory=default_catalogue)
    templates: dict[str, dict[str, Any]] = field(default_factory=default_templates)
    pending: list[_Pending] = field(default_factory=list)

    # -- propagation ------------------------------------------------------------------
    def settle(self, now_ms: int) -> None:
        self.pending = [p for p in self.pending if p.visible_at > now_ms]

    def record(self, key_id: str, before: StoredApiKey | None, now_ms: int, delay_ms: int) -> None:
        if delay_ms > 0:
            self.pending.append(_Pending(key_id, copy.deepcopy(before), now_ms + delay_ms))

    def visible(self, key_id: str, now_ms: int) -> StoredApiKey | None:
        for entry in self.pending:
            if entry.key_id == key_id and entry.visible_at > now_ms:
                return entry.before
        return self.keys.get(key_id)

    def visible_all(self, now_ms: int) -> list[StoredApiKey]:
        ids = list(self.keys) + [p.key_id for p in self.pending if p.key_id not in self.keys]
        out = []
        for key_id in dict.fromkeys(ids):
            key = self.visible(key_id, now_ms)
            if key is not None:
                out.append(key)
        return out

    # -- persistence ------------------------------------------------------------------
    def to_json(self) -> dict[str, Any]:
        return {
            "format": 1,
            "organization_id": self.organization_id,
            "token": self.token,
            "region": self.region,
            "keys": [k.to_json() for k in self.keys.values()],
            "catalogue": copy.deepcopy(self.catalogue),
            "templates": copy.deepcopy(self.templates),
            "pending": [
                {
                    "key_id": p.key_id,
                    "before": p.before.to_json() if p.before else None,
                    "visible_at": p.visible_at,
                }
                for p in self.pending
            ],
        }

    @classmethod
    def from_json(cls, data: object, where: str) -> OrgState:
        if not isinstance(data, dict) or data.get("format") != 1:
            raise ValueError(f"{where}: not a Coveo emulator state file (format 1)")
        keys = [StoredApiKey.from_json(k, where) for k in data.get("keys", [])]
        pending = [
            _Pending(
                str(p["key_id"]),
                StoredApiKey.from_json(p["before"], where) if p.get("before") else None,
                int(p["visible_at"]),
            )
            for p in data.get("pending", [])
        ]
        return cls(
            organization_id=str(data["organization_id"]),
            token=str(data["token"]),
            region=str(data.get("region", "us")),
            keys={k.id: k for k in keys},
            catalogue=list(data.get("catalogue") or default_catalogue()),
            templates=dict(data.get("templates") or default_templates()),
            pending=pending,
        )
