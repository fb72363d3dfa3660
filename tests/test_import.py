"""import -> plan shows only adoptions; applying them rotates nothing."""

from __future__ import annotations

import random
from collections.abc import Callable
from pathlib import Path
from typing import Any

from algoliasearch.search.models.api_key import ApiKey
from click.testing import Result
from conftest import Algolia, algolia_account, official_client

ACLS = ["search", "browse", "analytics", "listIndexes", "usage", "addObject"]


def seed_unmanaged(client: Any, n: int) -> dict[str, dict[str, Any]]:
    rng = random.Random(5)
    for i in range(n):
        acl = rng.sample(ACLS, rng.randint(1, 3))
        extra: dict[str, Any] = {}
        if i % 3 == 0:
            extra["indexes"] = [f"idx_{i}", "products_*"]
        if i % 4 == 0:
            extra["referers"] = ["https://*.example.com/*"]
            extra["max_queries_per_ip_per_hour"] = 100 + i
        if i % 5 == 0:
            extra["validity"] = 86400 * (30 + i)
            extra["query_parameters"] = f"filters=tenant%3At{i}&hitsPerPage=5"
        description = "" if i % 7 == 0 else f"Legacy key #{i % 6}"  # duplicates and blanks
        client.add_api_key(ApiKey(acl=acl, description=description, **extra))
    return {k.value: k.to_dict() for k in client.list_api_keys().keys}


def test_import_then_plan_shows_only_adoptions(
    algolia: Algolia, tmp_path: Path, run: Callable[..., Result]
) -> None:
    client = official_client(algolia.url)
    before = seed_unmanaged(client, 20)
    (tmp_path / "main.yaml").write_text("version: 1\naccounts:\n" + algolia_account(algolia.url))
    imported = tmp_path / "imported.yaml"
    result = run(
        "import", "algolia-prod", "-c", str(tmp_path / "main.yaml"), "--out", str(imported)
    )
    assert result.exit_code == 0, result.stderr
    text = imported.read_text()
    assert text.count("adopt: fingerprint:") == 20
    # Deterministic: a second import is identical.
    again = run("import", "algolia-prod", "-c", str(tmp_path / "main.yaml"))
    assert again.stdout == text

    result = run("plan", "-c", str(tmp_path), "--detailed-exitcode")
    assert result.exit_code == 2, result.output + result.stderr
    assert (
        "Plan: 0 to create, 0 to update, 20 to adopt, 0 to replace, 0 to delete." in result.stdout
    )

    result = run("apply", "-c", str(tmp_path), "--auto-approve")
    assert result.exit_code == 0, result.output
    after = {k.value: k for k in client.list_api_keys().keys}
    assert set(after) == set(before)  # same values: nothing was rotated
    for value, key in after.items():
        assert key.description.endswith("keystate:" + key.description.rsplit("keystate:", 1)[1])
        assert sorted(key.acl) == sorted(before[value]["acl"])
    assert run("plan", "-c", str(tmp_path), "--detailed-exitcode").exit_code == 0


def test_import_refuses_to_overwrite(
    algolia: Algolia, write: Callable[..., Path], run: Callable[..., Result]
) -> None:
    config = write("version: 1\naccounts:\n" + algolia_account(algolia.url))
    result = run("import", "algolia-prod", "-c", str(config), "--out", str(config))
    assert result.exit_code == 1
    assert "exists" in result.stderr


def test_import_of_unknown_account(
    algolia: Algolia, write: Callable[..., Path], run: Callable[..., Result]
) -> None:
    config = write("version: 1\naccounts:\n" + algolia_account(algolia.url))
    result = run("import", "nope", "-c", str(config))
    assert result.exit_code == 1 and "unknown account" in result.stderr
