"""Conformance: Algolia's official Python client (algoliasearch 4.x) works unchanged.

The client is pointed at the emulator through a custom host list, exactly as an
application would point it at Algolia; it exercises paths, percent-encoding, headers,
body shapes, response parsing (its pydantic models reject unknown ACLs and need
``createdAt``), retry on 429/5xx with host fallback, and ``wait_for_api_key``.
"""

from __future__ import annotations

import random
import time
from datetime import datetime

import pytest
from algoliasearch.http.exceptions import RequestException
from algoliasearch.http.hosts import Host, HostsCollection
from algoliasearch.search.client import SearchClientSync
from algoliasearch.search.config import SearchConfig
from algoliasearch.search.models.acl import Acl
from algoliasearch.search.models.api_key import ApiKey
from support import Servers

from keystate.emulators.algolia import ACL_VALUES, AlgoliaEmulator
from keystate.emulators.faults import FaultSpec, Knobs
from keystate.emulators.http import RunningServer

from .emu_helpers import ADMIN_KEY, APP_ID

DELAY_MS = 300


def official(*servers: RunningServer, api_key: str = ADMIN_KEY) -> SearchClientSync:
    """The official client, talking plain HTTP to ``servers`` in the given order."""
    config = SearchConfig(APP_ID, api_key)
    config.hosts = HostsCollection(
        [Host("127.0.0.1", scheme="http", port=server.port) for server in servers]
    )
    config.proxies = {}
    return SearchClientSync.create_with_config(config)


def new_emulator(**kwargs: object) -> AlgoliaEmulator:
    return AlgoliaEmulator(app_id=APP_ID, admin_key=ADMIN_KEY, **kwargs)  # type: ignore[arg-type]


def test_acl_enum_matches_the_official_client() -> None:
    assert list(ACL_VALUES) == [acl.value for acl in Acl]


def test_key_lifecycle(serve: Servers) -> None:
    server = serve(new_emulator())
    client = official(server)
    sent = ApiKey(
        acl=[Acl.SEARCH, Acl.BROWSE],
        description="storefront",
        indexes=["products_*"],
        referers=["https://shop.example.com/*"],
        query_parameters="filters=visibility%3Apublic",
        max_hits_per_query=50,
        max_queries_per_ip_per_hour=2000,
        validity=3600,
    )
    added = client.add_api_key(sent)
    assert len(added.key) == 32
    assert datetime.fromisoformat(added.created_at).timestamp() == pytest.approx(time.time(), abs=5)

    got = client.get_api_key(added.key)
    assert got.value == added.key
    assert got.created_at == pytest.approx(time.time(), abs=5)  # seconds, not milliseconds
    assert got.acl == ["search", "browse"]
    assert (got.description, got.indexes, got.referers) == (
        "storefront",
        ["products_*"],
        ["https://shop.example.com/*"],
    )
    assert (got.max_hits_per_query, got.max_queries_per_ip_per_hour) == (50, 2000)
    assert got.query_parameters == "filters=visibility%3Apublic"
    assert 3595 <= (got.validity or 0) <= 3600

    listed = client.list_api_keys()
    assert [k.value for k in listed.keys] == [added.key]

    updated = client.update_api_key(added.key, ApiKey(acl=[Acl.BROWSE]))
    assert updated.key == added.key
    datetime.fromisoformat(updated.updated_at)
    got = client.get_api_key(added.key)
    assert (got.acl, got.description, got.indexes, got.validity) == (["browse"], None, None, 0)

    deleted = client.delete_api_key(added.key)
    datetime.fromisoformat(deleted.deleted_at)
    with pytest.raises(RequestException) as missing:
        client.get_api_key(added.key)
    assert (missing.value.status_code, missing.value.message) == (404, "Key does not exist")

    restored = client.restore_api_key(added.key)
    assert restored.key == added.key
    assert client.get_api_key(added.key).acl == ["browse"]


def test_key_with_slash_is_percent_encoded_by_the_client(
    serve: Servers,
) -> None:
    server = serve(new_emulator())
    with pytest.raises(RequestException) as missing:
        official(server).get_api_key("a/b c")
    assert (missing.value.status_code, missing.value.message) == (404, "Key does not exist")
    assert server.counters.by_route == {("GET", "get"): 1}


def test_non_admin_key_gets_itself_redacted(serve: Servers) -> None:
    server = serve(new_emulator())
    value = official(server).add_api_key(ApiKey(acl=[Acl.SEARCH], description="x")).key
    got = official(server, api_key=value).get_api_key(value)
    assert (got.value, got.description) == (value, "<redacted>")
    with pytest.raises(RequestException) as denied:
        official(server, api_key=value).list_api_keys()
    assert (denied.value.status_code, denied.value.message) == (
        403,
        "Method not allowed with this API key",
    )


def test_waits_really_wait_for_propagation(serve: Servers) -> None:
    server = serve(new_emulator(propagation_delay_ms=DELAY_MS))
    client = official(server)

    start = time.monotonic()
    value = client.add_api_key(ApiKey(acl=[Acl.SEARCH], description="before")).key
    with pytest.raises(RequestException) as not_yet:
        client.get_api_key(value)
    assert not_yet.value.status_code == 404
    server.counters.reset()
    assert client.wait_for_api_key(value, "add") is not None
    assert time.monotonic() - start >= DELAY_MS / 1000
    assert server.counters.count("GET", "get") >= 2

    start = time.monotonic()
    after = ApiKey(acl=[Acl.SEARCH, Acl.BROWSE], description="after", max_queries_per_ip_per_hour=7)
    client.update_api_key(value, after)
    assert client.get_api_key(value).description == "before"
    server.counters.reset()
    got = client.wait_for_api_key(value, "update", api_key=after)
    assert got is not None and got.description == "after"
    assert time.monotonic() - start >= DELAY_MS / 1000
    assert server.counters.count("GET", "get") >= 2

    start = time.monotonic()
    client.delete_api_key(value)
    with pytest.raises(RequestException) as exists:
        client.restore_api_key(value)  # the deletion has not propagated yet
    assert (exists.value.status_code, exists.value.message) == (404, "Key already exists")
    server.counters.reset()
    assert client.wait_for_api_key(value, "delete") is None
    assert time.monotonic() - start >= DELAY_MS / 1000
    assert server.counters.count("GET", "get") >= 2
    assert client.restore_api_key(value).key == value


def test_update_wait_raises_key_error_on_fields_the_api_omits(
    serve: Servers,
) -> None:
    """The documented pitfall: the API omits empty fields; the official wait indexes them."""
    server = serve(new_emulator())
    client = official(server)
    value = client.add_api_key(ApiKey(acl=[Acl.SEARCH])).key
    sent = ApiKey(acl=[Acl.SEARCH], description="")
    client.update_api_key(value, sent)
    with pytest.raises(KeyError):
        client.wait_for_api_key(value, "update", api_key=sent)


def test_reordered_lists_defeat_the_order_sensitive_update_wait(
    serve: Servers,
) -> None:
    server = serve(new_emulator(reorder_lists=True))
    client = official(server)
    sent = ApiKey(acl=[Acl.SEARCH, Acl.BROWSE])
    value = client.add_api_key(sent).key
    client.update_api_key(value, sent)
    with pytest.raises(Exception, match="Stopped waiting"):
        client.wait_for_api_key(value, "update", api_key=sent, max_retries=2)
    assert sorted(client.get_api_key(value).acl) == ["browse", "search"]


def test_client_falls_back_to_the_next_host_on_503(
    serve: Servers,
) -> None:
    emulator = new_emulator()
    failing = serve(emulator, Knobs(faults=FaultSpec.parse("503=1")))
    healthy = serve(emulator)
    value = official(failing, healthy).add_api_key(ApiKey(acl=[Acl.SEARCH])).key
    assert failing.counters.by_route == {("POST", "add"): 1}
    assert failing.counters.faults == {"503": 1}
    assert healthy.counters.by_route == {("POST", "add"): 1}
    assert [k["value"] for k in emulator.snapshot()] == [value]  # the 503 was not processed


def _seed_with_fault_then_success(rate: float) -> int:
    """A seed whose first draw is a fault and second is not, for ``429=rate``."""
    for seed in range(1000):
        draws = random.Random(seed)
        if draws.random() < rate <= draws.random():
            return seed
    raise AssertionError("no such seed")


def test_client_honours_retry_after_on_429(serve: Servers) -> None:
    knobs = Knobs(
        faults=FaultSpec.parse("429=0.5"),
        fault_seed=_seed_with_fault_then_success(0.5),
        retry_after=1,
    )
    server = serve(new_emulator(), knobs)
    start = time.monotonic()
    assert official(server).list_api_keys().keys == []
    assert time.monotonic() - start >= 1.0
    assert server.counters.by_route == {("GET", "list"): 2}
    assert server.counters.faults == {"429": 1}
