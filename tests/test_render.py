"""Golden files pin the text and JSON plan formats. Regenerate with UPDATE_GOLDEN=1
after a deliberate format change, and review the diff."""

from __future__ import annotations

import json
import os
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from keystate.contract import AccountConfig, SecretSetting
from keystate.diff import diff_account
from keystate.model import KeySpec, LiveKey, Selector
from keystate.plan import Plan
from keystate.providers.algolia.schema import SCHEMA
from keystate.render import RenderOptions
from keystate.render import json as json_renderer
from keystate.render import text as text_renderer
from keystate.secrets import Secret, fingerprint

GOLDEN = Path(__file__).parent / "golden"
NOW = datetime(2030, 1, 1, tzinfo=UTC)
ACCOUNT = AccountConfig(
    name="algolia-prod",
    provider="algolia",
    settings={
        "application_id": "APP123",
        "api_key": SecretSetting(Secret("k" * 32), "${ALGOLIA_ADMIN_API_KEY}"),
    },
)


def key(name: str, **fields: object) -> KeySpec:
    values = SCHEMA.defaults()
    description = str(fields.pop("description", ""))
    adopt = fields.pop("adopt", None)
    protect = bool(fields.pop("protect", False))
    values.update(fields)  # type: ignore[arg-type]
    return KeySpec("algolia-prod", name, description, values, protect, adopt)  # type: ignore[arg-type]


def live(value: str, description: str, **fields: object) -> LiveKey:
    values = SCHEMA.defaults()
    values.update(fields)  # type: ignore[arg-type]
    secret = Secret(value)
    return LiveKey(
        f"fingerprint:{fingerprint(value)[:16]}",
        secret,
        description,
        values,
        value=secret,
        fingerprint=fingerprint(value),
    )


def sample_plan() -> Plan:
    desired = [
        key(
            "storefront",
            description="Storefront",
            acl=frozenset({"search"}),
            indexes=frozenset({"products_*"}),
            max_hits_per_query=50,
            query_parameters="filters=visibility:public",
            expires_at=NOW + timedelta(days=180),
            protect=True,
        ),
        key("crawler", acl=frozenset({"browse", "addObject"}), query_parameters="a=1&c=3"),
        key(
            "legacy",
            description="Legacy",
            acl=frozenset({"search"}),
            adopt=Selector("fingerprint", fingerprint("legacy-v")[:12]),
        ),
    ]
    keys = [
        live(
            "crawler-v",
            "keystate:team/crawler",
            acl=frozenset({"browse", "logs"}),
            query_parameters="a=2&b=1",
        ),
        live("legacy-v", "Legacy", acl=frozenset({"search"})),
        live(
            "old-v",
            "Old key keystate:team/old",
            acl=frozenset({"search"}),
            indexes=frozenset({"x"}),
        ),
        live("hand-v", "made by hand", acl=frozenset({"analytics"})),
    ]
    diff = diff_account(ACCOUNT, SCHEMA, {k.name: k for k in desired}, keys, "team")
    return Plan((diff,), "team", NOW)


def check(name: str, text: str) -> None:
    path = GOLDEN / name
    if os.environ.get("UPDATE_GOLDEN"):
        path.write_text(text)
    assert text == path.read_text(), f"{name} changed; rerun with UPDATE_GOLDEN=1 if intended"


def test_text_plan_golden() -> None:
    check("plan.txt", text_renderer.render(sample_plan(), RenderOptions(show_unmanaged=True)))


def test_json_plan_golden() -> None:
    check("plan.json", json_renderer.render(sample_plan(), RenderOptions()))


def test_json_plan_shape() -> None:
    doc = json.loads(json_renderer.render(sample_plan(), RenderOptions()))
    assert doc["format_version"] == "1"
    assert doc["accounts"][0]["settings"]["api_key"] == "${ALGOLIA_ADMIN_API_KEY}"
    assert doc["summary"] == {
        "create": 1,
        "adopt": 1,
        "update": 1,
        "replace": 0,
        "delete": 1,
        "disable": 0,
        "unchanged": 0,
        "unmanaged": 1,
    }
    actions = [(c["address"], c["action"]) for c in doc["changes"]]
    assert actions == [
        ("algolia-prod/storefront", "create"),
        ("algolia-prod/legacy", "adopt"),
        ("algolia-prod/crawler", "update"),
        ("algolia-prod/old", "delete"),
    ]
    update = doc["changes"][2]
    assert update["changed_fields"] == ["acl", "query_parameters"]
    assert update["before"]["acl"] == ["browse", "logs"]
    assert update["after"]["acl"] == ["addObject", "browse"]


def test_no_changes_footer() -> None:
    diff = diff_account(ACCOUNT, SCHEMA, {}, [], "team")
    text = text_renderer.render(Plan((diff,), "team", NOW), RenderOptions())
    assert text == "No changes. Live keys match the configuration.\n"


@pytest.mark.parametrize("color", [True, False])
def test_color_only_when_asked(color: bool) -> None:
    text = text_renderer.render(sample_plan(), RenderOptions(color=color))
    assert ("\x1b[" in text) is color
