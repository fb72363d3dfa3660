"""Creates are two-phase (born `;pending`, value delivered, marker finalised), so an
apply killed mid-create leaves a trace the next plan can act on: no lost value."""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from pathlib import Path

from algoliasearch.search.models.api_key import ApiKey
from click.testing import Result
from conftest import Algolia, algolia_account, official_client

HEAD = "version: 1\nowner: team\naccounts:\n{account}keys:\n  algolia-prod:\n"


def test_pending_key_is_finished_and_its_value_delivered(
    algolia: Algolia, write: Callable[..., Path], run: Callable[..., Result], tmp_path: Path
) -> None:
    client = official_client(algolia.url)
    # What a kill between the create and the delivery leaves behind:
    orphan = client.add_api_key(
        ApiKey(acl=["search"], description="Web keystate:team/web;pending")
    ).key  # type: ignore[attr-defined]
    config = write(
        HEAD.format(account=algolia_account(algolia.url))
        + "    web:\n      description: Web\n      acl: [search]\n"
    )
    result = run("plan", "-c", str(config))
    assert "# algolia-prod/web will be updated in-place" in result.stdout
    assert "finishes an interrupted create" in result.stdout
    assert run("apply", "-c", str(config), "--auto-approve").exit_code == 3  # needs a sink
    secrets = tmp_path / "s.jsonl"
    result = run("apply", "-c", str(config), "--auto-approve", "--secrets-out", str(secrets))
    assert result.exit_code == 0, result.output
    delivered = [json.loads(line) for line in secrets.read_text().splitlines()]
    assert [(d["name"], d["value"]) for d in delivered] == [("web", orphan)]
    assert re.fullmatch(
        r"Web keystate:team/web#[0-9a-f]{8}", client.get_api_key(orphan).description
    )  # type: ignore[attr-defined]
    assert run("plan", "-c", str(config), "--detailed-exitcode").exit_code == 0


def test_pending_leftovers_are_cleaned_up(
    algolia: Algolia, write: Callable[..., Path], run: Callable[..., Result], tmp_path: Path
) -> None:
    client = official_client(algolia.url)
    config = write(
        HEAD.format(account=algolia_account(algolia.url)) + "    web:\n      acl: [search]\n"
    )
    assert (
        run(
            "apply", "-c", str(config), "--auto-approve", "--secrets-out", str(tmp_path / "s")
        ).exit_code
        == 0
    )
    stray = client.add_api_key(ApiKey(acl=["search"], description="keystate:team/web;pending")).key  # type: ignore[attr-defined]
    gone = client.add_api_key(ApiKey(acl=["browse"], description="keystate:team/old;pending")).key  # type: ignore[attr-defined]
    result = run("plan", "-c", str(config))
    assert result.stdout.count("left over from an interrupted create") == 2
    assert run("apply", "-c", str(config), "--auto-approve").exit_code == 0
    values = {k.value for k in client.list_api_keys().keys}  # type: ignore[attr-defined]
    assert stray not in values and gone not in values and len(values) == 1
    assert run("plan", "-c", str(config), "--detailed-exitcode").exit_code == 0


def test_created_keys_end_up_final(
    algolia: Algolia, write: Callable[..., Path], run: Callable[..., Result], tmp_path: Path
) -> None:
    config = write(
        HEAD.format(account=algolia_account(algolia.url))
        + "    a:\n      acl: [search]\n      protect: true\n"
    )
    assert (
        run(
            "apply", "-c", str(config), "--auto-approve", "--secrets-out", str(tmp_path / "s")
        ).exit_code
        == 0
    )
    (key,) = algolia.emulator.snapshot()
    assert re.fullmatch(r"keystate:team/a#[0-9a-f]{8};protect", key["description"])
