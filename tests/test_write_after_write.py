"""Algolia's write-after-write lag: a PUT on a key whose creation has not propagated yet
answers 404, as a read would. The update that finalises a new key's marker then waits
(bounded) until the key is readable and is sent again; nothing is duplicated."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

from click.testing import Result
from conftest import Algolia

from keystate.model import parse_description


def _config(url: str) -> str:
    return (
        "version: 1\naccounts:\n  algolia-prod:\n    provider: algolia\n"
        "    application_id: ${ALGOLIA_APPLICATION_ID}\n"
        "    api_key: ${ALGOLIA_ADMIN_API_KEY}\n"
        f'    hosts: ["{url}"]\n    timeout: 2\n    wait_timeout: 1\n'
        "keys:\n  algolia-prod:\n    lagging:\n      acl: [search]\n"
        "      expires_at: 2031-01-01T00:00:00Z\n"
    )


def test_finalising_a_new_key_waits_for_it_to_propagate(
    algolia_factory: Callable[..., Algolia],
    write: Callable[..., Path],
    run: Callable[..., Result],
    tmp_path: Path,
) -> None:
    # Longer than wait_timeout: the check for a concurrent run gives up before the new
    # key is listed, so the finalising PUT meets the lag.
    algolia = algolia_factory(propagation_delay_ms=1500)
    path = write(_config(algolia.url))
    sink = tmp_path / "new.jsonl"
    result = run("apply", "-c", str(path), "--auto-approve", "--secrets-out", str(sink))
    assert result.exit_code == 0, result.output + result.stderr
    assert "failed" not in result.output.replace("0 failed", "")
    by_route = algolia.server.counters.by_route
    assert by_route[("POST", "add")] == 1
    assert by_route[("PUT", "update")] == 2  # 404 (not propagated), then done
    keys = algolia.emulator.snapshot()
    assert len(keys) == 1 and len(sink.read_text().splitlines()) == 1
    marker = parse_description(keys[0]["description"])[1]
    assert marker is not None and marker.name == "lagging" and not marker.pending
    time.sleep(1.6)  # let the last write propagate
    again = run("plan", "-c", str(path), "--detailed-exitcode")
    assert again.exit_code == 0, again.stdout


def test_past_the_bound_the_create_is_unconfirmed_and_the_next_apply_finishes_it(
    algolia_factory: Callable[..., Algolia],
    write: Callable[..., Path],
    run: Callable[..., Result],
    tmp_path: Path,
) -> None:
    algolia = algolia_factory(propagation_delay_ms=2000)
    path = write(_config(algolia.url).replace("wait_timeout: 1", "wait_timeout: 0.3"))
    sink = tmp_path / "new.jsonl"
    result = run("apply", "-c", str(path), "--auto-approve", "--secrets-out", str(sink))
    assert result.exit_code == 0, result.output + result.stderr
    assert "algolia-prod/lagging: UNCONFIRMED" in result.stdout
    assert "final marker is not written yet" in result.stdout
    keys = algolia.emulator.snapshot()
    assert len(keys) == 1
    marker = parse_description(keys[0]["description"])[1]
    assert marker is not None and marker.pending
    time.sleep(2.1)
    finished = run("apply", "-c", str(path), "--auto-approve", "--secrets-out", str(sink))
    assert finished.exit_code == 0, finished.output + finished.stderr
    time.sleep(2.1)
    assert run("plan", "-c", str(path), "--detailed-exitcode").exit_code == 0
    keys = algolia.emulator.snapshot()
    assert len(keys) == 1  # no duplicate
    marker = parse_description(keys[0]["description"])[1]
    assert marker is not None and not marker.pending
    values = {line for line in sink.read_text().splitlines()}
    assert all(keys[0]["value"] in line for line in values)  # only this key's value
