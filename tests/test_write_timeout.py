"""Writes wait longer for their answer than reads (Algolia's official split: reads 5 s,
writes 30 s per attempt), configurable per account with `timeout` / `write_timeout`."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from pathlib import Path

import httpx
from click.testing import Result
from conftest import ADMIN_KEY, APP_ID

from keystate.config import load_config
from keystate.contract import ConnectOptions
from keystate.emulators.algolia import AlgoliaEmulator
from keystate.emulators.faults import Knobs
from keystate.emulators.http import start_in_thread
from keystate.providers import connect
from keystate.providers.algolia.api import ALGOLIA_POLICY, parse_error
from keystate.providers.http import HttpClient
from keystate.providers.policy import Host, HostPool, HttpPolicy


def test_a_create_answered_after_7s_succeeds_without_an_ambiguity_retry(
    tmp_path: Path, write: Callable[..., Path], run: Callable[..., Result]
) -> None:
    """No `timeout` in the account: Algolia's defaults apply (reads 5 s, writes 30 s)."""
    emulator = AlgoliaEmulator(app_id=APP_ID, admin_key=ADMIN_KEY)
    knobs = Knobs(latency_ms=7000, latency_routes=frozenset({"add"}))
    with start_in_thread(emulator, knobs) as server:
        path = write(
            "version: 1\naccounts:\n  algolia-prod:\n    provider: algolia\n"
            "    application_id: ${ALGOLIA_APPLICATION_ID}\n"
            "    api_key: ${ALGOLIA_ADMIN_API_KEY}\n"
            f'    hosts: ["{server.url}"]\n'
            "keys:\n  algolia-prod:\n    slow:\n      acl: [search]\n"
        )
        sink = tmp_path / "new.jsonl"
        result = run("-v", "apply", "-c", str(path), "--auto-approve", "--secrets-out", str(sink))
        assert result.exit_code == 0, result.output + result.stderr
        # The ambiguity path would log it, and list the account again to look for the key.
        assert "looking for it before trying again" not in result.output + result.stderr
        assert server.counters.by_route[("POST", "add")] == 1  # one create, no retry
        # One list to plan, one to check for a concurrent run, one to confirm the key is
        # visible (apply confirms by listing on Algolia); none to look for the key.
        assert server.counters.by_route[("GET", "list")] == 3
        assert len(sink.read_text().splitlines()) == 1
        assert len(emulator.snapshot()) == 1


def _timeouts_seen(policy: HttpPolicy) -> dict[str, dict[str, float]]:
    seen: dict[str, dict[str, float]] = {}

    def handler(request: httpx.Request) -> httpx.Response:
        seen[request.method] = dict(request.extensions["timeout"])
        return httpx.Response(200, json={})

    async def go() -> None:
        http = HttpClient(
            account="a",
            service="Test",
            pool=HostPool([Host("https://h.example")], [Host("https://h.example")]),
            policy=policy,
            headers={},
            parse_error=parse_error,
            transport=httpx.MockTransport(handler),
        )
        try:
            await http.request("GET", "/1/keys", what="list")
            await http.request("POST", "/1/keys", what="create", write=True, idempotent=False)
        finally:
            await http.aclose()

    asyncio.run(go())
    return seen


def test_reads_and_writes_wait_their_own_timeout() -> None:
    seen = _timeouts_seen(ALGOLIA_POLICY)
    assert seen["GET"]["read"] == 5.0
    assert seen["POST"]["read"] == 30.0
    assert seen["GET"]["connect"] == seen["POST"]["connect"] == 2.0


def test_account_settings_override_the_split(tmp_path: Path) -> None:
    def policy(extra: str) -> HttpPolicy:
        path = tmp_path / "k.yaml"
        path.write_text(
            "version: 1\naccounts:\n  a:\n    provider: algolia\n    application_id: APP\n"
            f"    api_key_file: {tmp_path / 'key'}\n{extra}"
        )
        (tmp_path / "key").write_text(ADMIN_KEY)
        account = load_config(path).accounts["a"]
        provider = connect(account, ConnectOptions())
        http: HttpClient = provider.http  # type: ignore[attr-defined]
        asyncio.run(http.aclose())
        return http.policy

    both = policy("    timeout: 9\n")
    assert (both.read_timeout, both.write_timeout) == (9, 9)
    split = policy("    timeout: 9\n    write_timeout: 45\n")
    assert (split.read_timeout, split.write_timeout) == (9, 45)
    assert _timeouts_seen(split)["POST"]["read"] == 45
    writes = policy("    write_timeout: 60\n")
    assert (writes.read_timeout, writes.write_timeout) == (5, 60)


def test_write_timeout_is_validated_with_its_line(
    write: Callable[..., Path], run: Callable[..., Result]
) -> None:
    path = write(
        "version: 1\naccounts:\n  a:\n    provider: algolia\n    application_id: APP\n"
        "    api_key: ${ALGOLIA_ADMIN_API_KEY}\n    write_timeout: 0\n"
    )
    result = run("validate", "-c", str(path))
    assert result.exit_code == 1
    assert f"{path}:7:" in result.stderr and "write_timeout" in result.stderr
