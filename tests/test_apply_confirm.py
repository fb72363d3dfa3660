"""Apply confirms writes by listing where the provider's listing confirms (Algolia):
requests are the writes plus a listing per wave, not a read per write. Counted by the
emulator; no timing."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

from click.testing import Result
from conftest import Algolia, algolia_account

KEYS = 100


def config(url: str, acl: str) -> str:
    keys = "".join(
        f"    key-{i:03d}:\n      acl: [{acl}]\n      referers: ['https://shop.example.com/*']\n"
        "      expires_at: 2031-01-01T00:00:00Z\n"
        for i in range(KEYS)
    )
    return (
        f"version: 1\nowner: perf\naccounts:\n{algolia_account(url)}keys:\n  algolia-prod:\n{keys}"
    )


def outcomes(report: Path) -> dict[tuple[str, str], int]:
    counted: dict[tuple[str, str], int] = {}
    for result in json.loads(report.read_text())["results"]:
        pair = (result["action"], result["outcome"])
        counted[pair] = counted.get(pair, 0) + 1
    return counted


def test_updates_are_confirmed_by_one_shared_listing(
    algolia_factory: Callable[..., Algolia],
    write: Callable[..., Path],
    run: Callable[..., Result],
    tmp_path: Path,
) -> None:
    algolia = algolia_factory()
    secrets, report = tmp_path / "new.jsonl", tmp_path / "report.json"
    created = run(
        "apply", "-c", str(write(config(algolia.url, "search"))), "--auto-approve",
        "--secrets-out", str(secrets), "--parallelism", "8",
    )  # fmt: skip
    assert created.exit_code == 0, created.output
    algolia.server.counters.reset()

    path = write(config(algolia.url, "browse"))
    result = run(
        "apply", "-c", str(path), "--auto-approve", "--parallelism", "8", "--report", str(report)
    )
    assert result.exit_code == 0, result.output
    assert outcomes(report) == {("update", "done"): KEYS}
    counters = algolia.server.counters
    # The plan's listing, the 100 writes, and one listing confirming all of them.
    assert counters.count("PUT", "update") == KEYS
    assert counters.count("GET", "get") == 0
    assert counters.count("GET", "list") == 2
    assert counters.total == KEYS + 2
    assert all(k["acl"] == ["browse"] for k in algolia.emulator.snapshot() if k["value"] != "")


def test_lagging_writes_wait_for_a_later_listing_and_deletes_are_confirmed_too(
    algolia_factory: Callable[..., Algolia],
    write: Callable[..., Path],
    run: Callable[..., Result],
    tmp_path: Path,
) -> None:
    """With propagation lag, the first listing misses writes: keys wait for the next
    listing, still shared, and all end confirmed with far fewer listings than keys."""
    algolia = algolia_factory(propagation_delay_ms=300)
    secrets, report = tmp_path / "new.jsonl", tmp_path / "report.json"
    created = run(
        "apply", "-c", str(write(config(algolia.url, "search"))), "--auto-approve",
        "--secrets-out", str(secrets), "--parallelism", "8", "--report", str(report),
    )  # fmt: skip
    assert created.exit_code == 0, created.output
    assert outcomes(report) == {("create", "done"): KEYS}
    algolia.server.counters.reset()

    empty = f"version: 1\nowner: perf\naccounts:\n{algolia_account(algolia.url)}keys: {{}}\n"
    result = run(
        "apply", "-c", str(write(empty)), "--auto-approve", "--force",
        "--parallelism", "8", "--report", str(report),
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    assert outcomes(report) == {("delete", "done"): KEYS}
    counters = algolia.server.counters
    assert counters.count("DELETE", "delete") == KEYS
    assert counters.count("GET", "get") == 0
    # The plan's listing, then at least one listing that still showed a deleted key.
    assert 3 <= counters.count("GET", "list") <= 20
