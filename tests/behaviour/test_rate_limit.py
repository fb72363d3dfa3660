"""Under a provider's rate limit, apply adapts: with the emulator answering 429 (and
Retry-After) past N requests per second, every key is updated, with fewer 429s than
the same apply at a fixed concurrency. Counted by the emulator, not timed."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pytest
from click.testing import Result
from support import Servers

from keystate.providers import ratelimit

from .harness import Harness, Running

KEYS = 200
RATE = 40  # requests per second; at 50 ms a request, 2 in flight is the limit


def config_text(harness: Harness, url: str, variant: int) -> str:
    keys = "".join(harness.key_yaml(f"k{i:03d}", variant) for i in range(KEYS))
    return f"version: 1\nowner: ops\naccounts:\n{harness.account_yaml(url)}keys:\n  {harness.account}:\n{keys}"


def apply(
    harness: Harness, running: Running, variant: int, write: Callable[..., Path],
    run: Callable[..., Result], tmp_path: Path,
) -> tuple[int, dict[str, int]]:  # fmt: skip
    """Update every key through the rate-limited server: (429s answered, outcomes)."""
    report = tmp_path / f"report-{variant}.json"
    config = write(config_text(harness, running.url, variant), f"v{variant}.yaml")
    running.server.counters.reset()
    result = run(
        "apply", "-c", str(config), "--auto-approve", "--parallelism", "8",
        "--report", str(report), env=harness.env,
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    outcomes: dict[str, int] = {}
    for item in json.loads(report.read_text())["results"]:
        label = f"{item['action']} {item['outcome']}"
        outcomes[label] = outcomes.get(label, 0) + 1
    return running.server.counters.faults.get("rate-limited", 0), outcomes


def test_apply_under_a_rate_limit_updates_every_key_with_fewer_429s_than_fixed_concurrency(
    harness: Harness,
    serve: Servers,
    write: Callable[..., Path],
    run: Callable[..., Result],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    running = harness.start(serve, latency_ms=50, rate_limit=RATE)
    with running.fault_free() as clean:  # the keys exist before the measured applies
        seeded = write(config_text(harness, clean.url, 0), "seed.yaml")
        result = run(
            "apply", "-c", str(seeded), "--auto-approve",
            "--secrets-out", str(tmp_path / "new.jsonl"), env=harness.env,
        )  # fmt: skip
        assert result.exit_code == 0, result.output

    adaptive, outcomes = apply(harness, running, 1, write, run, tmp_path)
    assert outcomes == {"update done": KEYS}

    monkeypatch.setattr(ratelimit, "DECREASE", 1.0)  # a 429 no longer cuts concurrency
    fixed, outcomes = apply(harness, running, 2, write, run, tmp_path)
    assert outcomes == {"update done": KEYS}

    assert fixed > 0, "the fixed-concurrency run must meet the limit"
    assert adaptive < fixed, (adaptive, fixed)
