"""The shared HTTP policy: retries, backoff, Retry-After, host fallback, ambiguity."""

from __future__ import annotations

import asyncio
import random
from collections.abc import Callable
from pathlib import Path

import httpx
import pytest
from click.testing import Result
from conftest import ADMIN_KEY, APP_ID, Algolia

from keystate.errors import AmbiguousWriteError, NotFoundError, ProviderError
from keystate.providers.algolia.api import default_hosts, parse_error
from keystate.providers.http import HttpClient
from keystate.providers.policy import Host, HostPool, HttpPolicy, retry_after

Handler = Callable[[httpx.Request], httpx.Response]


def client(
    handler: Handler, hosts: list[str] | None = None, attempts: int = 4
) -> tuple[HttpClient, list[float]]:
    sleeps: list[float] = []

    async def sleep(seconds: float) -> None:
        sleeps.append(seconds)

    urls = hosts or ["https://a.example", "https://b.example"]
    pool = HostPool([Host(u) for u in urls], [Host(u) for u in urls])
    http = HttpClient(
        account="acct",
        service="Test",
        pool=pool,
        policy=HttpPolicy(max_attempts=attempts),
        headers={"x-algolia-api-key": ADMIN_KEY},
        parse_error=parse_error,
        transport=httpx.MockTransport(handler),
        rng=random.Random(1),
        sleep=sleep,
    )
    return http, sleeps


def send(http: HttpClient, method: str = "GET", idempotent: bool = True) -> httpx.Response:
    async def go() -> httpx.Response:
        try:
            return await http.request(
                method, "/1/keys", what="op", write=method != "GET", idempotent=idempotent
            )
        finally:
            await http.aclose()

    return asyncio.run(go())


def test_429_is_retried_on_the_same_host_honouring_retry_after() -> None:
    seen: list[str] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request.url.host)
        if len(seen) < 3:
            return httpx.Response(429, headers={"Retry-After": "7"}, json={"message": "slow"})
        return httpx.Response(200, json={"keys": []})

    http, sleeps = client(handler)
    assert send(http).status_code == 200
    assert seen == ["a.example"] * 3
    assert sleeps == [7.0, 7.0]


def test_5xx_moves_to_the_next_host_with_jittered_backoff() -> None:
    seen: list[str] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request.url.host)
        return httpx.Response(
            503 if request.url.host == "a.example" else 200, json={"message": "x"}
        )

    http, sleeps = client(handler)
    assert send(http).status_code == 200
    assert seen == ["a.example", "b.example"]
    assert len(sleeps) == 1 and 0 <= sleeps[0] <= 0.25


def test_down_host_is_skipped_by_the_next_request() -> None:
    seen: list[str] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request.url.host)
        if request.url.host == "a.example":
            raise httpx.ConnectError("refused")
        return httpx.Response(200, json={})

    http, _ = client(handler)

    async def twice() -> None:
        await http.request("GET", "/1/keys", what="op")
        await http.request("GET", "/1/keys", what="op")
        await http.aclose()

    asyncio.run(twice())
    assert seen == ["a.example", "b.example", "b.example"]


def test_4xx_fails_at_once_with_the_api_message() -> None:
    calls = 0

    def handler(request: httpx.Request) -> httpx.Response:
        nonlocal calls
        calls += 1
        return httpx.Response(404, json={"message": "Key does not exist", "status": 404})

    http, _ = client(handler)
    with pytest.raises(NotFoundError, match="op: Test answered 404: Key does not exist"):
        send(http)
    assert calls == 1


def test_bounded_attempts_then_a_clear_error() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(500, text="<html>oops</html>", headers={"content-type": "text/html"})

    http, sleeps = client(handler, attempts=3)
    with pytest.raises(
        ProviderError, match=r"gave up after 3 attempts \(Test answered 500: non-JSON"
    ):
        send(http)
    assert len(sleeps) == 2


def test_non_idempotent_write_is_not_retried_after_an_ambiguous_failure() -> None:
    calls = 0

    def handler(request: httpx.Request) -> httpx.Response:
        nonlocal calls
        calls += 1
        raise httpx.ReadTimeout("slow")

    http, _ = client(handler)
    with pytest.raises(AmbiguousWriteError, match="may or may not have happened"):
        send(http, "POST", idempotent=False)
    assert calls == 1


def test_non_idempotent_write_is_retried_when_nothing_was_sent() -> None:
    calls = 0

    def handler(request: httpx.Request) -> httpx.Response:
        nonlocal calls
        calls += 1
        if calls == 1:
            raise httpx.ConnectError("refused")
        if calls == 2:
            return httpx.Response(429, json={"message": "slow"})
        return httpx.Response(200, json={"key": "k"})

    http, _ = client(handler)
    assert send(http, "POST", idempotent=False).status_code == 200
    assert calls == 3


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        ("3", 3.0),
        ("0", 0.0),
        ("1000", 60.0),
        ("soon", None),
        ("Wed, 21 Oct 2015 07:28:00 GMT", 0.0),
    ],
)
def test_retry_after_parsing(header: str, expected: float | None) -> None:
    response = httpx.Response(429, headers={"Retry-After": header})
    assert retry_after(response, 60.0) == expected


def test_algolia_hosts_follow_the_official_client() -> None:
    pool = default_hosts("APP1", random.Random(3))
    assert pool.read[0].url == "https://APP1-dsn.algolia.net"
    assert pool.write[0].url == "https://APP1.algolia.net"
    fallbacks = {h.url for h in pool.read[1:]}
    assert fallbacks == {f"https://APP1-{i}.algolianet.com" for i in (1, 2, 3)}
    assert [h.url for h in pool.read[1:]] == [h.url for h in pool.write[1:]]


def test_fallback_to_a_second_live_host(
    algolia: Algolia, write: Callable[..., Path], run: Callable[..., Result], tmp_path: Path
) -> None:
    dead = "http://127.0.0.1:9"  # discard port: connection refused
    config = write(
        "version: 1\naccounts:\n  algolia-prod:\n    provider: algolia\n"
        f"    application_id: {APP_ID}\n    api_key: ${{ALGOLIA_ADMIN_API_KEY}}\n"
        f'    hosts: ["{dead}", "{algolia.url}"]\n'
        "keys:\n  algolia-prod:\n    a: {acl: [search]}\n"
    )
    result = run("apply", "-c", str(config), "--auto-approve", "--secrets-out", str(tmp_path / "s"))
    assert result.exit_code == 0, result.output
    assert len(algolia.emulator.snapshot()) == 1


def test_write_not_visible_in_time_is_unconfirmed_not_a_hang(
    algolia_factory: Callable[..., Algolia],
    write: Callable[..., Path],
    run: Callable[..., Result],
    tmp_path: Path,
) -> None:
    algolia = algolia_factory(propagation_delay_ms=3000)
    config = write(
        "version: 1\naccounts:\n  algolia-prod:\n    provider: algolia\n"
        f"    application_id: {APP_ID}\n    api_key: ${{ALGOLIA_ADMIN_API_KEY}}\n"
        f'    hosts: ["{algolia.url}"]\n    wait_timeout: 0.5\n'
        "keys:\n  algolia-prod:\n    a: {acl: [search]}\n"
    )
    result = run("apply", "-c", str(config), "--auto-approve", "--secrets-out", str(tmp_path / "s"))
    assert result.exit_code == 0, result.output
    assert "algolia-prod/a: UNCONFIRMED" in result.stdout
    assert "not yet visible after 0.5s" in result.stdout
    assert "1 not yet visible; run plan later to confirm" in result.stdout
