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
