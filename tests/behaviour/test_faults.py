"""Convergence under faults, for every provider: with the emulator failing 30% of
requests, re-running apply (at most 5 times) converges, with no duplicate key and no
lost value."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from pathlib import Path

import pytest
from click.testing import Result
from support import Servers

from keystate.model import parse_description

from .harness import Harness, Running, markers

MIXED = (
    "429=0.05,429-no-retry-after=0.04,500=0.04,503=0.04,timeout=0.04,reset=0.04,lost-response=0.05"
)
KINDS = ("429", "429-no-retry-after", "500", "503", "timeout", "reset", "lost-response")


def config_text(harness: Harness, url: str, names: list[str], variant: int = 0) -> str:
    keys = "".join(harness.key_yaml(n, variant) for n in names)
    return f"version: 1\nowner: ops\naccounts:\n{harness.account_yaml(url)}keys:\n  {harness.account}:\n{keys}"


def converge(run: Callable[..., Result], harness: Harness, config: Path, secrets: Path) -> None:
    for _ in range(5):
        result = run(
            "apply",
            "-c",
            str(config),
            "--auto-approve",
            "--secrets-out",
            str(secrets),
            env=harness.env,
        )
        assert "Traceback" not in result.output + result.stderr
        if result.exit_code == 0:
            return
    pytest.fail(f"did not converge in 5 runs:\n{result.output}\n{result.stderr}")


def check_state(harness: Harness, running: Running, secrets: Path, declared: list[str]) -> None:
    live = markers(harness, running)
    assert sorted(name for name, _ in live) == sorted(declared), live
    assert all(not pending and n == 1 for (_, pending), n in live.items()), (
        f"duplicates or pending: {live}"
    )
    delivered = {}
    for line in secrets.read_text().splitlines():
        item = json.loads(line)
        delivered[item["value"]] = item["name"]
    for key in harness.stored(running):
        marker = parse_description(str(key.get("description") or ""))[1]
        if marker is not None:  # every live managed key's value reached the sink
            assert delivered.get(harness.value_of(key)) == marker.name


def scenario(
    harness: Harness,
    running: Running,
    write: Callable[..., Path],
    run: Callable[..., Result],
    tmp_path: Path,
    settle_s: float = 0.0,
) -> None:
    secrets = tmp_path / "secrets.jsonl"
    first = [f"k{i:02d}" for i in range(12)]
    config = write(config_text(harness, running.url, first))
    converge(run, harness, config, secrets)
    check_state(harness, running, secrets, first)
    second = [*first[3:], "n1", "n2", "n3"]  # updates, creates, deletes (3 of 12: under 25%)
    write(config_text(harness, running.url, second, variant=1))
    converge(run, harness, config, secrets)
    check_state(harness, running, secrets, second)
    # A provider keystate treats as read-consistent (Coveo) gets no wait after a write:
    # with an emulated lag, a plan sees the last writes only once the lag has passed.
    time.sleep(settle_s)
    # The verifying plan goes through a fault-free server on the same emulator: it checks
    # the state apply left, not the luck of the fault draws (a plan through the faulty
    # server can meet 5 failures in a row on its listing and give up).
    with running.fault_free() as clean:
        verify = write(config_text(harness, clean.url, second, variant=1), "verify.yaml")
        result = run("plan", "-c", str(verify), "--detailed-exitcode", env=harness.env)
    assert result.exit_code == 0, result.output


def test_mixed_faults_30_percent_converge(
    harness: Harness,
    serve: Servers,
    write: Callable[..., Path],
    run: Callable[..., Result],
    tmp_path: Path,
) -> None:
    running = harness.start(serve, faults=MIXED, seed=7, retry_after=1.0)
    scenario(harness, running, write, run, tmp_path)
    assert sum(running.server.counters.faults.values()) > 10


@pytest.mark.parametrize("kind", KINDS)
def test_each_fault_kind_at_30_percent_converges(
    kind: str,
    harness: Harness,
    serve: Servers,
    write: Callable[..., Path],
    run: Callable[..., Result],
    tmp_path: Path,
) -> None:
    running = harness.start(serve, faults=f"{kind}=0.3", seed=3)
    scenario(harness, running, write, run, tmp_path)
    assert running.server.counters.faults.get(kind, 0) > 3


def test_faults_with_propagation_delay_converge(
    harness: Harness,
    serve: Servers,
    write: Callable[..., Path],
    run: Callable[..., Result],
    tmp_path: Path,
) -> None:
    running = harness.start(
        serve, faults="lost-response=0.15,500=0.15", seed=11, propagation_delay_ms=150
    )
    scenario(harness, running, write, run, tmp_path, settle_s=0.3)
