"""What keeps a 100,000-key plan small (issue 6) still says and does the same things:
packed field values and places, and declared keys released once an account is planned.
The memory itself is measured side by side by ``make bench``, never asserted here."""

from __future__ import annotations

import asyncio
from pathlib import Path

from keystate.config import load_config
from keystate.contract import ConnectOptions
from keystate.engine import make_plan
from keystate.model import FieldValues, KeySpec, Location
from keystate.plan import Plan

SANDBOX = """\
version: 1
owner: team
accounts:
  web:
    provider: algolia
    sandbox: web.json
keys:
  web:
    search-box:
      description: Storefront search box
      acl:
        - search
        - listIndexes
      referers: ["https://shop.example.com/*"]
      expires_at: 2099-01-01T00:00:00Z
    reports:
      acl: [analytics, usage]
      indexes: [products_*]
      max_queries_per_ip_per_hour: 100
      expires_at: 2099-01-01T00:00:00Z
"""


def plan_of(config_dir: Path, release_keys: bool) -> tuple[Plan, dict[str, int]]:
    config = load_config(config_dir / "keystate.yaml", env={})

    async def run() -> Plan:
        plan, conns = await make_plan(config, [], ConnectOptions(), release_keys=release_keys)
        await conns.aclose()
        return plan

    plan = asyncio.run(run())
    return plan, {name: len(keys) for name, keys in config.keys.items()}


def summary(plan: Plan) -> list[tuple[str, str, tuple[str, ...]]]:
    return [(c.address, c.action.value, c.changed_fields) for c in plan.changes]


def test_released_keys_leave_the_plan_unchanged_and_the_config_empty(tmp_path: Path) -> None:
    (tmp_path / "keystate.yaml").write_text(SANDBOX)
    kept, kept_counts = plan_of(tmp_path, release_keys=False)
    released, released_counts = plan_of(tmp_path, release_keys=True)
    assert (
        summary(kept)
        == summary(released)
        == [
            ("web/reports", "create", ()),
            ("web/search-box", "create", ()),
        ]
    )
    assert kept_counts == {"web": 2}
    assert released_counts == {"web": 0}
    # The plan keeps the declared keys it changes.
    assert {c.desired.name for c in released.changes if c.desired} == {"reports", "search-box"}


def test_places_name_fields_and_set_members_precisely(tmp_path: Path) -> None:
    path = tmp_path / "keystate.yaml"
    path.write_text(SANDBOX)
    spec = load_config(path, env={}).keys["web"]["search-box"]
    file = str(path)
    assert spec.location == Location(file, 9, 5)
    assert spec.where("acl") == Location(file, 11, 7)
    assert spec.where("acl", "listIndexes") == Location(file, 13, 11)
    assert spec.where("acl", "search") == Location(file, 12, 11)
    assert spec.where("acl", "browse") == Location(file, 11, 7)  # not a member: the field
    assert spec.where("referers", "https://shop.example.com/*") == Location(file, 14, 18)
    assert spec.where("indexes") == spec.location  # not written: the key


def test_field_values_behave_as_a_read_only_dict() -> None:
    values = FieldValues({"acl": 0, "max_hits_per_query": 1}, (frozenset({"search"}), 20))
    as_dict = {"acl": frozenset({"search"}), "max_hits_per_query": 20}
    assert values == as_dict and dict(values) == as_dict and list(values) == list(as_dict)
    assert values.get("max_hits_per_query") == 20 and values.get("nope", 7) == 7
    assert "acl" in values and "nope" not in values and len(values) == 2
    assert KeySpec("a", "k", fields=values) == KeySpec("a", "k", fields=as_dict)
