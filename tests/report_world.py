"""A small world for access-review tests: one Algolia application and one Coveo
organization served by the sandbox (the real provider code, the emulators in-process),
seeded with managed, drifted, undeclared, foreign, unmanaged, disabled, exposed and
credential keys. ``EXPECTED`` says what the review must find for each."""

from __future__ import annotations

import calendar
import json
import time
from dataclasses import dataclass
from pathlib import Path

DAY = 86_400
OWNER = "search-team"
# Canary values: the review must never print any of them.
ALGOLIA_ADMIN = "a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1"
COVEO_TOKEN = "xx0c0c0c0c-0c0c-4c0c-8c0c-0c0c0c0c0c0c"
ALGOLIA_VALUES = {
    "storefront": "5e4a0b7c1d2e3f405162738495a6b7c8",
    "crawler": "6f5b1c8d2e3f40516273849506a7b8c9",
    "stale": "7a6c2d9e3f40516273849506a7b8c9d0",
    "foreign": "8b7d3e0f40516273849506a7b8c9d0e1",
    "writer": "9c8e4f1051627384950617a8b9c0d1e2",
}
COVEO_VALUES = {
    "site-search": "xxd1cb1d4c-bc64-4237-b11d-fa91daef8aad",
    "exposed": "xx2e2e2e2e-2e2e-4e2e-8e2e-2e2e2e2e2e2e",
    "disabled": "xx3f3f3f3f-3f3f-4f3f-8f3f-3f3f3f3f3f3f",
    "credential": COVEO_TOKEN,
}
SECRETS = {ALGOLIA_ADMIN, COVEO_TOKEN, *ALGOLIA_VALUES.values(), *COVEO_VALUES.values()}


@dataclass(frozen=True)
class Expected:
    account: str
    name: str  # the row's name
    manager: str
    grants: tuple[str, ...]
    lint: tuple[str, ...] = ()
    drift: tuple[str, ...] = ()
    declared: bool | None = None
    exposed: bool = False
    active: bool = True


EXPECTED = (
    Expected("algolia-prod", "storefront", "managed", ("search",), declared=True),
    Expected(
        "algolia-prod", "crawler", "managed", ("addObject", "browse"), drift=("acl",), declared=True
    ),
    Expected("algolia-prod", "stale", "managed", ("analytics",), ("no-expiry",), declared=False),
    Expected("algolia-prod", "other-team/feed", "foreign", ("listIndexes",)),
    Expected(
        "algolia-prod",
        "Bulk importer (dashboard)",
        "unmanaged",
        ("addObject", "deleteIndex"),
        ("algolia-write-without-indexes", "no-expiry"),
    ),
    Expected("coveo-prod", "site-search", "managed", ("SEARCH_API/EXECUTE_QUERY",), declared=True),
    Expected(
        "coveo-prod",
        "Leaked connector",
        "unmanaged",
        ("PLATFORM/SOURCE/EDIT",),
        ("coveo-edit-all-targets",),
        exposed=True,
        active=False,
    ),
    Expected(
        "coveo-prod", "Old analytics", "unmanaged", ("USAGE_ANALYTICS/REPORTS/VIEW",), active=False
    ),
    Expected(
        "coveo-prod", "keystate runner", "credential", ("PLATFORM/API_KEY/EDIT",), ("no-expiry",)
    ),
)


def _algolia_key(
    value: str, description: str, acl: list[str], created: int, **extra: object
) -> dict[str, object]:
    key: dict[str, object] = {
        "value": value,
        "createdAt": created,
        "acl": acl,
        "description": description,
        "indexes": [],
        "referers": [],
        "queryParameters": "",
        "maxHitsPerQuery": 0,
        "maxQueriesPerIPPerHour": 0,
        "expiresAt": None,
    }
    key.update(extra)
    return key


def _coveo_key(
    key_id: str,
    value: str,
    name: str,
    description: str,
    privileges: list[dict[str, str]],
    created_ms: int,
    **extra: object,
) -> dict[str, object]:
    key: dict[str, object] = {
        "id": key_id,
        "value": value,
        "display_name": name,
        "description": description,
        "privileges": privileges,
        "allowed_ips": [],
        "denied_ips": [],
        "additional_configuration": {},
        "groups_that_can_edit": [],
        "api_keys_that_can_edit": [],
        "enabled": True,
        "created_ms": created_ms,
        "expiration_ms": None,
        "activation_ms": None,
        "disabled_ms": None,
        "template_id": None,
        "privacy_level": "PRIVATE",
        "rotation_enabled": False,
    }
    key.update(extra)
    return key


CONFIG = f"""\
version: 1
owner: {OWNER}
accounts:
  algolia-prod:
    provider: algolia
    sandbox: algolia.json
  coveo-prod:
    provider: coveo
    sandbox: coveo.json
keys:
  algolia-prod:
    storefront:
      description: Storefront search
      acl: [search]
      referers: ["https://shop.example.com/*"]
      expires_at: 2099-01-01T00:00:00Z
    crawler:
      acl: [addObject, browse, deleteObject]
      indexes: [products]
      expires_at: 2099-01-01T00:00:00Z
  coveo-prod:
    site-search:
      description: Public site search
      privileges:
        - {{owner: SEARCH_API, target_domain: EXECUTE_QUERY}}
      search_hub: website
      expires_at: 2099-01-01T00:00:00Z
"""


def seed(directory: Path, now: float | None = None) -> Path:
    """Write the state files and the configuration; return the configuration's path."""
    now = now or time.time()
    year = int(now) - 400 * DAY
    far = calendar.timegm((2099, 1, 1, 0, 0, 0, 0, 0, 0))
    v = ALGOLIA_VALUES
    algolia = {
        "format": 1,
        "application_id": "REVIEWAPP",
        "admin_key": ALGOLIA_ADMIN,
        "keys": [
            _algolia_key(
                v["storefront"],
                f"Storefront search keystate:{OWNER}/storefront",
                ["search"],
                int(now) - 10 * DAY,
                referers=["https://shop.example.com/*"],
                expiresAt=far,
            ),
            _algolia_key(
                v["crawler"],
                f"keystate:{OWNER}/crawler",
                ["addObject", "browse"],
                int(now) - 30 * DAY,
                indexes=["products"],
                expiresAt=far,
            ),
            _algolia_key(v["stale"], f"keystate:{OWNER}/stale", ["analytics"], year),
            _algolia_key(
                v["foreign"],
                "Partner feed keystate:other-team/feed",
                ["listIndexes"],
                year,
                expiresAt=far,
            ),
            _algolia_key(
                v["writer"], "Bulk importer (dashboard)", ["addObject", "deleteIndex"], year
            ),
        ],
        "deleted": [],
        "pending": [],
    }
    ms = int(now * 1000)
    c = COVEO_VALUES
    coveo = {
        "format": 1,
        "organization_id": "revieworg",
        "token": COVEO_TOKEN,
        "region": "us",
        "keys": [
            _coveo_key(
                "sitesearch0000000000000001",
                c["site-search"],
                "site-search",
                f"Public site search keystate:{OWNER}/site-search",
                [{"owner": "SEARCH_API", "targetDomain": "EXECUTE_QUERY"}],
                ms - 20 * DAY * 1000,
                expiration_ms=far * 1000,
                last_used_ms=ms - 2 * DAY * 1000,
                additional_configuration={
                    "search": {"enforcedQueryPipelineConfiguration": {"searchHub": "website"}}
                },
            ),
            _coveo_key(
                "leaked00000000000000000002",
                c["exposed"],
                "Leaked connector",
                "Created in the admin console",
                [{"owner": "PLATFORM", "targetDomain": "SOURCE", "type": "EDIT", "targetId": "*"}],
                year * 1000,
                expiration_ms=far * 1000,
                enabled=False,
                exposure_report={
                    "severity": "HIGH",
                    "reasons": [{"id": "r1", "source": "GITHUB", "createdDate": ms}],
                    "deactivationDate": ms - DAY * 1000,
                },
            ),
            _coveo_key(
                "oldanalytics00000000000003",
                c["disabled"],
                "Old analytics",
                "",
                [{"owner": "USAGE_ANALYTICS", "targetDomain": "REPORTS", "type": "VIEW"}],
                year * 1000,
                expiration_ms=far * 1000,
                enabled=False,
            ),
            _coveo_key(
                "runner00000000000000000004",
                c["credential"],
                "keystate runner",
                "",
                [{"owner": "PLATFORM", "targetDomain": "API_KEY", "type": "EDIT"}],
                year * 1000,
                last_used_ms=ms,
            ),
        ],
    }
    (directory / "algolia.json").write_text(json.dumps(algolia), encoding="utf-8")
    (directory / "coveo.json").write_text(json.dumps(coveo), encoding="utf-8")
    config = directory / "keystate.yaml"
    config.write_text(CONFIG, encoding="utf-8")
    return config
