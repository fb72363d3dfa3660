"""Convergence under faults: with the emulator failing 30% of requests, re-running apply
(at most 5 times) converges, with no duplicate key and no lost value."""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Callable
from pathlib import Path

import pytest
from click.testing import Result
from conftest import Algolia, algolia_account

from keystate.model import parse_description

MIXED = (
    "429=0.05,429-no-retry-after=0.04,500=0.04,503=0.04,timeout=0.04,reset=0.04,lost-response=0.05"
)
KINDS = ("429", "429-no-retry-after", "500", "503", "timeout", "reset", "lost-response")


def config_text(url: str, names: list[str], acl: str = "search") -> str:
    keys = "".join(
        f"    {name}:\n      description: key {name}\n      acl: [{acl}]\n"
        f"      expires_at: 2031-01-01T00:00:00Z\n"
        for name in names
    )
    account = algolia_account(url, extra="    timeout: 0.5\n").replace("    timeout: 2\n", "")
    return f"version: 1\nowner: ops\naccounts:\n{account}keys:\n  algolia-prod:\n{keys}"


def converge(run: Callable[..., Result], config: Path, secrets: Path, *extra: str) -> int:
    for attempt in range(1, 6):
        result = run(
            "apply", "-c", str(config), "--auto-approve", "--secrets-out", str(secrets), *extra
        )
        assert "Traceback" not in result.output
        if result.exit_code == 0:
            return attempt
    pytest.fail(f"did not converge in 5 runs:\n{result.output}\n{result.stderr}")


def managed(algolia: Algolia) -> Counter[str]:
    names: Counter[str] = Counter()
    for key in algolia.emulator.snapshot():
        marker = parse_description(key.get("description", ""))[1]
        if marker is not None:
            names[marker.name] += 1
    return names


def check_state(algolia: Algolia, secrets: Path, declared: list[str]) -> None:
    live = managed(algolia)
    assert sorted(live) == sorted(declared)
    assert all(n == 1 for n in live.values()), f"duplicates: {live}"
    delivered = {}
    for line in secrets.read_text().splitlines():
        item = json.loads(line)
        delivered[item["value"]] = item["name"]
    for key in algolia.emulator.snapshot():
        marker = parse_description(key.get("description", ""))[1]
        if marker is not None:  # every live managed key's value reached the sink
            assert delivered.get(key["value"]) == marker.name


def scenario(
    algolia: Algolia, write: Callable[..., Path], run: Callable[..., Result], tmp_path: Path
) -> None:
    secrets = tmp_path / "secrets.jsonl"
    first = [f"k{i:02d}" for i in range(12)]
    config = write(config_text(algolia.url, first))
    converge(run, config, secrets)
    check_state(algolia, secrets, first)
    # Updates, creates and deletes together (3 of 12 removed: under the 25% ratio).
    second = [*first[3:], "n1", "n2", "n3"]
    write(config_text(algolia.url, second, acl="browse"))
    converge(run, config, secrets)
    check_state(algolia, secrets, second)
    for key in algolia.emulator.snapshot():
        if parse_description(key.get("description", ""))[1] is not None:
            assert key["acl"] == ["browse"]
    result = run("plan", "-c", str(config), "--detailed-exitcode")
    assert result.exit_code == 0, result.output


def test_mixed_faults_30_percent_converge(
    algolia_factory: Callable[..., Algolia],
    write: Callable[..., Path],
    run: Callable[..., Result],
    tmp_path: Path,
) -> None:
    algolia = algolia_factory(faults=MIXED, seed=7, retry_after=1.0, timeout_hold_s=1.0)
    scenario(algolia, write, run, tmp_path)
    assert sum(algolia.server.counters.faults.values()) > 10


@pytest.mark.parametrize("kind", KINDS)
def test_each_fault_kind_at_30_percent_converges(
    kind: str,
    algolia_factory: Callable[..., Algolia],
    write: Callable[..., Path],
    run: Callable[..., Result],
    tmp_path: Path,
) -> None:
    algolia = algolia_factory(faults=f"{kind}=0.3", seed=3, retry_after=0.0, timeout_hold_s=1.0)
    scenario(algolia, write, run, tmp_path)
    assert algolia.server.counters.faults.get(kind, 0) > 3


def test_faults_with_propagation_delay_converge(
    algolia_factory: Callable[..., Algolia],
    write: Callable[..., Path],
    run: Callable[..., Result],
    tmp_path: Path,
) -> None:
    algolia = algolia_factory(
        faults="lost-response=0.15,500=0.15", seed=11, propagation_delay_ms=150
    )
    scenario(algolia, write, run, tmp_path)
