"""End to end over real HTTP: keystate against a running Algolia emulator, checked with
Algolia's official client as an independent observer."""

from __future__ import annotations

import json
import os
import re
import stat
from collections.abc import Callable
from pathlib import Path
from typing import Any

from algoliasearch.search.models.api_key import ApiKey
from click.testing import Result
from conftest import Algolia, algolia_account, official_client

CONFIG = """\
version: 1
owner: search-team
accounts:
{account}keys:
  algolia-prod:
    storefront-search:
      description: Storefront search box
      acl: [search]
      indexes: ["products_*"]
      referers: ["https://shop.example.com/*"]
      max_hits_per_query: 50
      query_parameters: {{filters: "visibility:public"}}
      expires_at: 2031-06-30T00:00:00Z
    crawler:
      description: Nightly crawler
      acl: [addObject, deleteObject, browse]
      indexes: ["products_*"]
{extra}"""
ANALYTICS = """\
    analytics:
      acl: [analytics]
"""


def keys_by_description(client: Any) -> dict[str, Any]:
    """By description, with the marker's drift digest (``#<8 hex>``) left out."""
    keys = client.list_api_keys().keys
    for key in keys:
        if "keystate:" in (key.description or ""):
            assert re.search(r"keystate:\S+#[0-9a-f]{8}$", key.description), key.description
    return {re.sub(r"#[0-9a-f]{8}$", "", k.description or ""): k for k in keys}


def test_plan_apply_drift_repair_delete(
    algolia: Algolia, write: Callable[..., Path], run: Callable[..., Result], tmp_path: Path
) -> None:
    client: Any = official_client(algolia.url)
    legacy = client.add_api_key(ApiKey(acl=["search"], description="legacy frontend")).key
    partner = client.add_api_key(ApiKey(acl=["browse"], indexes=["feed"])).key
    unmanaged_before = {
        k.value: k.to_dict() for k in client.list_api_keys().keys if k.value in (legacy, partner)
    }

    config = write(CONFIG.format(account=algolia_account(algolia.url), extra=ANALYTICS))
    secrets = tmp_path / "new-keys.jsonl"

    result = run("plan", "-c", str(config), "--detailed-exitcode")
    assert result.exit_code == 2, result.output
    assert "Plan: 3 to create, 0 to update, 0 to adopt, 0 to replace, 0 to delete." in result.stdout
    assert "algolia-prod: 2 unmanaged keys" in result.stdout

    result = run("apply", "-c", str(config), "--auto-approve", "--secrets-out", str(secrets))
    assert result.exit_code == 0, result.output
    assert "Apply complete: 3 change(s) made" in result.stdout
    assert stat.S_IMODE(os.stat(secrets).st_mode) == 0o600
    delivered = [json.loads(line) for line in secrets.read_text().splitlines()]
    assert sorted(d["name"] for d in delivered) == ["analytics", "crawler", "storefront-search"]

    # The official client sees exactly the declared keys, with their markers and values.
    live = keys_by_description(client)
    assert set(live) == {
        "Storefront search box keystate:search-team/storefront-search",
        "Nightly crawler keystate:search-team/crawler",
        "keystate:search-team/analytics",
        "legacy frontend",
        "",
    }
    store = live["Storefront search box keystate:search-team/storefront-search"]
    assert store.acl == ["search"]
    assert store.indexes == ["products_*"]
    assert store.max_hits_per_query == 50
    assert store.query_parameters == "filters=visibility:public"
    assert store.validity > 0
    values = {d["name"]: d["value"] for d in delivered}
    assert values["storefront-search"] == store.value

    result = run("plan", "-c", str(config), "--detailed-exitcode")
    assert result.exit_code == 0, result.output
    assert "No changes. Live keys match the configuration." in result.stdout

    # A change behind keystate's back is drift: plan exits 2, apply repairs it.
    crawler = live["Nightly crawler keystate:search-team/crawler"]
    client.update_api_key(
        crawler.value,
        ApiKey(
            acl=["addObject", "deleteObject", "browse", "deleteIndex"],
            description=crawler.description,
        ),
    )
    result = run("plan", "-c", str(config), "--detailed-exitcode")
    assert result.exit_code == 2, result.output
    assert "# algolia-prod/crawler will be updated in-place" in result.stdout
    assert '- "deleteIndex"' in result.stdout
    assert '+ "products_*"' in result.stdout  # the out-of-band PUT also reset the indexes
    result = run("apply", "-c", str(config), "--auto-approve")
    assert result.exit_code == 0, result.output
    repaired = client.get_api_key(crawler.value)
    assert sorted(repaired.acl) == ["addObject", "browse", "deleteObject"]
    assert repaired.indexes == ["products_*"]
    assert run("plan", "-c", str(config), "--detailed-exitcode").exit_code == 0

    # Removing a key from the configuration deletes it (1 of 3 managed: under the ratio).
    write(CONFIG.format(account=algolia_account(algolia.url), extra=""))
    result = run("plan", "-c", str(config))
    assert "# algolia-prod/analytics will be deleted" in result.stdout
    result = run("apply", "-c", str(config), "--auto-approve")
    assert result.exit_code == 0, result.output
    assert "keystate:search-team/analytics" not in keys_by_description(client)
    assert run("plan", "-c", str(config), "--detailed-exitcode").exit_code == 0

    # Unmanaged keys were never touched.
    unmanaged_after = {
        k.value: k.to_dict() for k in client.list_api_keys().keys if k.value in (legacy, partner)
    }
    assert unmanaged_after == unmanaged_before
