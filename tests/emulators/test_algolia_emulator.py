"""The Algolia emulator over raw HTTP: routes, shapes, auth, validation, time, propagation."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from datetime import datetime
from typing import Any

import httpx
import pytest
from support import FakeClock, Servers

from keystate.emulators.algolia import ACL_VALUES, AlgoliaEmulator
from keystate.emulators.http import EmuRequest

from .emu_helpers import ADMIN_KEY, APP_ID, add_key, http_client, key_headers

FULL: dict[str, Any] = {
    "acl": ["search", "browse"],
    "description": "storefront",
    "indexes": ["products_*", "blog"],
    "referers": ["https://shop.example.com/*"],
    "queryParameters": "filters=visibility%3Apublic",
    "maxHitsPerQuery": 50,
    "maxQueriesPerIPPerHour": 2000,
    "validity": 3600,
}
GET_ORDER = [
    "value",
    "createdAt",
    "acl",
    "description",
    "indexes",
    "maxHitsPerQuery",
    "maxQueriesPerIPPerHour",
    "queryParameters",
    "referers",
    "validity",
]
MINIMAL_GET_FIELDS = ["value", "createdAt", "acl", "maxQueriesPerIPPerHour", "validity"]


def error(response: httpx.Response) -> tuple[int, str]:
    body = response.json()
    assert body == {"message": body["message"], "status": response.status_code}
    assert response.headers["content-type"] == "application/json; charset=utf-8"
    return response.status_code, body["message"]


def parse_rfc3339(text: str) -> float:
    assert text.endswith("Z"), text
    return datetime.fromisoformat(text).timestamp()


# --- shapes -------------------------------------------------------------------------------


def test_add_answers_key_and_rfc3339_created_at(client: httpx.Client, clock: FakeClock) -> None:
    response = client.post("/1/keys", json={"acl": ["search"]})
    assert response.status_code == 200
    assert response.headers["content-type"] == "application/json; charset=utf-8"
    body = response.json()
    assert list(body) == ["key", "createdAt"]
    assert re.fullmatch(r"[0-9a-f]{32}", body["key"])
    assert parse_rfc3339(body["createdAt"]) == pytest.approx(clock.now, abs=0.001)


def test_new_key_values_differ(client: httpx.Client) -> None:
    assert len({add_key(client) for _ in range(5)}) == 5


def test_get_omits_empty_fields_and_counts_created_at_in_seconds(
    client: httpx.Client, clock: FakeClock
) -> None:
    value = add_key(client, acl=["search"])
    body = client.get(f"/1/keys/{value}").json()
    assert list(body) == MINIMAL_GET_FIELDS
    assert body == {
        "value": value,
        "createdAt": int(clock.now),
        "acl": ["search"],
        "maxQueriesPerIPPerHour": 0,
        "validity": 0,
    }


def test_get_full_object_in_spec_order(client: httpx.Client) -> None:
    value = add_key(client, **FULL)
    body = client.get(f"/1/keys/{value}").json()
    assert list(body) == GET_ORDER
    assert {k: body[k] for k in FULL} == FULL


def test_list_returns_every_key_unpaginated(client: httpx.Client, clock: FakeClock) -> None:
    values = []
    for i in range(3):
        values.append(add_key(client, acl=["search"], description=f"k{i}"))
        clock.advance(1)
    response = client.get("/1/keys")
    assert response.status_code == 200
    body = response.json()
    assert list(body) == ["keys"]
    assert [k["value"] for k in body["keys"]] == values
    assert [k["description"] for k in body["keys"]] == ["k0", "k1", "k2"]
    assert all(list(k) == [f for f in GET_ORDER if f in k] for k in body["keys"])


def test_update_replaces_the_whole_object(client: httpx.Client, clock: FakeClock) -> None:
    value = add_key(client, **FULL)
    created = client.get(f"/1/keys/{value}").json()["createdAt"]
    clock.advance(10)
    response = client.put(f"/1/keys/{value}", json={"acl": ["browse"]})
    assert response.status_code == 200
    assert list(response.json()) == ["key", "updatedAt"]
    assert response.json()["key"] == value
    assert parse_rfc3339(response.json()["updatedAt"]) == pytest.approx(clock.now, abs=0.001)
    assert client.get(f"/1/keys/{value}").json() == {
        "value": value,
        "createdAt": created,
        "acl": ["browse"],
        "maxQueriesPerIPPerHour": 0,
        "validity": 0,
    }


def test_missing_acl_is_accepted_as_empty(client: httpx.Client) -> None:
    value = add_key(client)
    assert client.get(f"/1/keys/{value}").json()["acl"] == []
    client.put(f"/1/keys/{value}", json={"acl": ["search"]})
    assert client.put(f"/1/keys/{value}", json={"description": "d"}).status_code == 200
    assert client.get(f"/1/keys/{value}").json()["acl"] == []


def test_delete_answers_deleted_at_then_key_is_gone(client: httpx.Client, clock: FakeClock) -> None:
    value = add_key(client, acl=["search"])
    response = client.delete(f"/1/keys/{value}")
    assert response.status_code == 200
    assert list(response.json()) == ["deletedAt"]
    assert parse_rfc3339(response.json()["deletedAt"]) == pytest.approx(clock.now, abs=0.001)
    assert error(client.get(f"/1/keys/{value}")) == (404, "Key does not exist")
    assert client.get("/1/keys").json() == {"keys": []}


@pytest.mark.parametrize("method", ["GET", "PUT", "DELETE"])
def test_unknown_key_is_404(client: httpx.Client, method: str) -> None:
    response = client.request(method, "/1/keys/" + "f" * 32, json={"acl": []})
    assert error(response) == (404, "Key does not exist")


def test_restore_brings_back_fields_and_resets_validity(
    client: httpx.Client, clock: FakeClock
) -> None:
    value = add_key(client, **FULL)
    before = client.get(f"/1/keys/{value}").json()
    client.delete(f"/1/keys/{value}")
    clock.advance(5)
    response = client.post(f"/1/keys/{value}/restore")
    assert response.status_code == 200
    assert list(response.json()) == ["key", "createdAt"]
    assert response.json()["key"] == value
    assert parse_rfc3339(response.json()["createdAt"]) == pytest.approx(clock.now, abs=0.001)
    after = client.get(f"/1/keys/{value}").json()
    assert after == {**before, "validity": 0}
    assert before["validity"] == 3600


def test_restore_of_existing_or_unknown_key_is_404(client: httpx.Client) -> None:
    value = add_key(client)
    assert error(client.post(f"/1/keys/{value}/restore")) == (404, "Key already exists")
    unknown = client.post("/1/keys/" + "e" * 32 + "/restore")
    assert error(unknown) == (404, "Key does not exist")
    client.delete(f"/1/keys/{value}")
    assert client.post(f"/1/keys/{value}/restore").status_code == 200
    assert error(client.post(f"/1/keys/{value}/restore")) == (404, "Key already exists")


def test_deleted_store_keeps_the_last_thousand(emulator: AlgoliaEmulator) -> None:
    headers = [("x-algolia-application-id", APP_ID), ("x-algolia-api-key", ADMIN_KEY)]

    def call(method: str, target: str) -> dict[str, Any]:
        response = emulator.handle(EmuRequest.build(method, target, headers, b"{}"))
        return {"status": response.status, **json.loads(response.body)}

    values = [call("POST", "/1/keys")["key"] for _ in range(1001)]
    for value in values:
        assert call("DELETE", f"/1/keys/{value}")["status"] == 200
    assert call("POST", f"/1/keys/{values[0]}/restore") == {
        "status": 404,
        "message": "Key does not exist",
    }
    assert call("POST", f"/1/keys/{values[1]}/restore")["status"] == 200
    assert call("POST", f"/1/keys/{values[-1]}/restore")["status"] == 200


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("GET", "/1/indexes"),
        ("GET", "/1/indexes/products/keys"),
        ("PATCH", "/1/keys"),
        ("DELETE", "/1/keys"),
        ("GET", "/1/keys/"),
        ("POST", "/1/keys/abc"),
        ("GET", "/1/keys/abc/restore"),
        ("POST", "/1/keys/abc/restore/again"),
        ("GET", "/2/keys"),
    ],
)
def test_unknown_routes_are_json_404(anon: httpx.Client, method: str, path: str) -> None:
    assert error(anon.request(method, path)) == (404, "Not Found")


def test_key_path_segment_is_percent_decoded(client: httpx.Client) -> None:
    value = add_key(client, acl=["search"])
    encoded = "".join(f"%{ord(c):02X}" for c in value)
    assert client.get(f"/1/keys/{encoded}").json()["value"] == value
    # %2F stays inside the key segment: a known route, an unknown key.
    assert error(client.get("/1/keys/a%2Fb")) == (404, "Key does not exist")
    assert client.delete(f"/1/keys/{encoded}").status_code == 200


# --- auth ---------------------------------------------------------------------------------

ROUTES = [
    ("GET", "/1/keys"),
    ("POST", "/1/keys"),
    ("GET", "/1/keys/{v}"),
    ("PUT", "/1/keys/{v}"),
    ("DELETE", "/1/keys/{v}"),
    ("POST", "/1/keys/{v}/restore"),
]
ADMIN_ROUTES = [r for r in ROUTES if r != ("GET", "/1/keys/{v}")]


@pytest.mark.parametrize(("method", "path"), ROUTES)
@pytest.mark.parametrize(
    "headers",
    [
        {},
        {"x-algolia-application-id": APP_ID},
        {"x-algolia-api-key": ADMIN_KEY},
        key_headers(ADMIN_KEY, app_id="OTHERAPP00"),
        key_headers("f" * 32),
        key_headers(""),
    ],
    ids=["none", "no-key", "no-app", "wrong-app", "unknown-key", "empty-key"],
)
def test_bad_credentials_are_403(
    client: httpx.Client, anon: httpx.Client, method: str, path: str, headers: dict[str, str]
) -> None:
    value = add_key(client)
    response = anon.request(method, path.format(v=value), headers=headers, json={})
    assert error(response) == (403, "Invalid Application-ID or API key")


def test_credentials_may_be_query_parameters(anon: httpx.Client) -> None:
    params = {"x-algolia-application-id": APP_ID, "x-algolia-api-key": ADMIN_KEY}
    assert anon.get("/1/keys", params=params).json() == {"keys": []}


@pytest.mark.parametrize(("method", "path"), ADMIN_ROUTES)
def test_non_admin_key_may_not_manage_keys(
    client: httpx.Client, anon: httpx.Client, method: str, path: str
) -> None:
    own = add_key(client, acl=["search", "browse", "addObject"])
    other = add_key(client)
    response = anon.request(method, path.format(v=other), headers=key_headers(own), json={})
    assert error(response) == (403, "Method not allowed with this API key")


def test_non_admin_key_reads_itself_redacted(client: httpx.Client, anon: httpx.Client) -> None:
    own = add_key(client, **FULL)
    body = anon.get(f"/1/keys/{own}", headers=key_headers(own)).json()
    assert body["description"] == "<redacted>"
    assert {k: v for k, v in body.items() if k != "description"} == {
        k: v for k, v in client.get(f"/1/keys/{own}").json().items() if k != "description"
    }


def test_non_admin_key_may_not_read_other_keys(client: httpx.Client, anon: httpx.Client) -> None:
    own, other = add_key(client, acl=["search"]), add_key(client)
    for target in (other, "f" * 32, ADMIN_KEY):
        response = anon.get(f"/1/keys/{target}", headers=key_headers(own))
        assert error(response) == (403, "Method not allowed with this API key")


def test_admin_key_reads_itself_without_created_at(client: httpx.Client) -> None:
    body = client.get(f"/1/keys/{ADMIN_KEY}").json()
    assert body == {
        "value": ADMIN_KEY,
        "acl": list(ACL_VALUES),
        "maxQueriesPerIPPerHour": 0,
        "validity": 0,
    }


def test_admin_key_cannot_be_changed(client: httpx.Client) -> None:
    for method in ("PUT", "DELETE"):
        response = client.request(method, f"/1/keys/{ADMIN_KEY}", json={})
        assert error(response) == (403, "Method not allowed with this API key")
    assert error(client.post(f"/1/keys/{ADMIN_KEY}/restore"))[0] == 404


@pytest.mark.parametrize("listed", [False, True])
def test_list_admin_key_knob(serve: Servers, clock: FakeClock, listed: bool) -> None:
    emulator = AlgoliaEmulator(
        app_id=APP_ID, admin_key=ADMIN_KEY, clock=clock, list_admin_key=listed
    )
    server = serve(emulator)
    with http_client(server.url, key_headers(ADMIN_KEY)) as client:
        value = add_key(client)
        keys = [k["value"] for k in client.get("/1/keys").json()["keys"]]
    assert keys == ([ADMIN_KEY, value] if listed else [value])


def test_reorder_lists_knob_returns_lists_in_another_order(
    serve: Servers, clock: FakeClock
) -> None:
    emulator = AlgoliaEmulator(app_id=APP_ID, admin_key=ADMIN_KEY, clock=clock, reorder_lists=True)
    server = serve(emulator)
    with http_client(server.url, key_headers(ADMIN_KEY)) as client:
        value = add_key(client, **FULL)
        body = client.get(f"/1/keys/{value}").json()
        listed = client.get("/1/keys").json()["keys"][0]
    for name in ("acl", "indexes"):
        assert body[name] != FULL[name]
        assert sorted(body[name]) == sorted(FULL[name])
        assert listed[name] == body[name]
    assert emulator.snapshot()[0]["acl"] == FULL["acl"]  # stored as sent


# --- strict validation --------------------------------------------------------------------

BAD_BODIES: list[tuple[bytes | dict[str, Any], str]] = [
    (b"not json", "Invalid JSON in request body"),
    (b"", "Invalid JSON in request body"),
    (b'{"validity": NaN}', "Invalid JSON in request body"),
    (b"[]", "Request body must be a JSON object"),
    ({"acl": ["search", "bogusRight"]}, "Invalid ACL 'bogusRight'"),
    ({"acl": ["admin"]}, "Invalid ACL 'admin'"),
    ({"acl": "search"}, "'acl' must be an array of strings"),
    ({"acl": [1]}, "'acl' must be an array of strings"),
    ({"acl": None}, "'acl' must be an array of strings"),
    ({"indexes": "products"}, "'indexes' must be an array of strings"),
    ({"referers": [None]}, "'referers' must be an array of strings"),
    ({"description": 5}, "'description' must be a string"),
    ({"queryParameters": {"filters": "x"}}, "'queryParameters' must be a string"),
    ({"maxHitsPerQuery": -1}, "'maxHitsPerQuery' must be a non-negative integer"),
    ({"maxHitsPerQuery": 1.5}, "'maxHitsPerQuery' must be a non-negative integer"),
    ({"maxQueriesPerIPPerHour": True}, "'maxQueriesPerIPPerHour' must be a non-negative integer"),
    ({"maxQueriesPerIPPerHour": "10"}, "'maxQueriesPerIPPerHour' must be a non-negative integer"),
    ({"validity": -5}, "'validity' must be a non-negative integer"),
    ({"restrictSources": "192.168.1.0/24"}, "Unknown field 'restrictSources' in API key object"),
    ({"value": "x", "acl": []}, "Unknown field 'value' in API key object"),
]


@pytest.mark.parametrize(("body", "message"), BAD_BODIES)
def test_bad_bodies_are_400_and_change_nothing(
    client: httpx.Client, emulator: AlgoliaEmulator, body: bytes | dict[str, Any], message: str
) -> None:
    value = add_key(client, acl=["search"])
    before = emulator.snapshot()
    kwargs: dict[str, Any] = {"content": body} if isinstance(body, bytes) else {"json": body}
    assert error(client.post("/1/keys", **kwargs)) == (400, message)
    assert error(client.put(f"/1/keys/{value}", **kwargs)) == (400, message)
    assert emulator.snapshot() == before


def test_body_is_ignored_on_restore(client: httpx.Client) -> None:
    value = add_key(client)
    client.delete(f"/1/keys/{value}")
    assert client.post(f"/1/keys/{value}/restore", content=b"garbage").status_code == 200


# --- validity and expiry ------------------------------------------------------------------


def test_validity_reads_as_remaining_seconds_then_key_vanishes(
    client: httpx.Client, clock: FakeClock, emulator: AlgoliaEmulator
) -> None:
    value = add_key(client, acl=["search"], validity=100)
    keep = add_key(client, acl=["search"])
    assert client.get(f"/1/keys/{value}").json()["validity"] == 100
    clock.advance(30)
    assert client.get(f"/1/keys/{value}").json()["validity"] == 70
    clock.advance(69.5)
    assert client.get(f"/1/keys/{value}").json()["validity"] == 1  # rounded up, never 0
    clock.advance(0.5)
    assert error(client.get(f"/1/keys/{value}")) == (404, "Key does not exist")
    assert [k["value"] for k in client.get("/1/keys").json()["keys"]] == [keep]
    assert [k["value"] for k in emulator.snapshot()] == [keep]
    assert error(client.put(f"/1/keys/{value}", json={}))[0] == 404
    assert error(client.post(f"/1/keys/{value}/restore")) == (404, "Key does not exist")


def test_validity_on_update_is_a_new_lifetime_from_now(
    client: httpx.Client, clock: FakeClock
) -> None:
    value = add_key(client, validity=100)
    clock.advance(60)
    client.put(f"/1/keys/{value}", json={"validity": 100})
    assert client.get(f"/1/keys/{value}").json()["validity"] == 100
    client.put(f"/1/keys/{value}", json={"acl": ["search"]})
    clock.advance(10_000)
    assert client.get(f"/1/keys/{value}").json()["validity"] == 0


def test_expired_key_cannot_authenticate(
    client: httpx.Client, anon: httpx.Client, clock: FakeClock
) -> None:
    own = add_key(client, acl=["search"], validity=10)
    assert anon.get(f"/1/keys/{own}", headers=key_headers(own)).status_code == 200
    clock.advance(10)
    response = anon.get(f"/1/keys/{own}", headers=key_headers(own))
    assert error(response) == (403, "Invalid Application-ID or API key")


# --- eventual consistency -----------------------------------------------------------------


@pytest.fixture
def lag_emulator(clock: FakeClock) -> AlgoliaEmulator:
    """An emulator whose writes take 500 ms to become visible."""
    return AlgoliaEmulator(
        app_id=APP_ID, admin_key=ADMIN_KEY, clock=clock, propagation_delay_ms=500
    )


@pytest.fixture
def lagging(lag_emulator: AlgoliaEmulator, serve: Servers) -> Iterator[httpx.Client]:
    """An admin client of ``lag_emulator``."""
    server = serve(lag_emulator)
    with http_client(server.url, key_headers(ADMIN_KEY)) as c:
        yield c


def test_added_key_is_invisible_until_propagated(lagging: httpx.Client, clock: FakeClock) -> None:
    value = add_key(lagging, acl=["search"])
    assert error(lagging.get(f"/1/keys/{value}")) == (404, "Key does not exist")
    assert lagging.get("/1/keys").json() == {"keys": []}
    auth = lagging.get(f"/1/keys/{value}", headers=key_headers(value))
    assert error(auth) == (403, "Invalid Application-ID or API key")
    clock.advance(0.499)
    assert lagging.get(f"/1/keys/{value}").status_code == 404
    clock.advance(0.001)
    assert lagging.get(f"/1/keys/{value}").json()["acl"] == ["search"]
    assert len(lagging.get("/1/keys").json()["keys"]) == 1


def test_a_put_is_served_like_a_read_deletes_by_the_primary(
    lagging: httpx.Client, clock: FakeClock
) -> None:
    value = add_key(lagging, acl=["search"])
    # Write after write: the new key has not propagated, so a PUT does not find it.
    put = lagging.put(f"/1/keys/{value}", json={"acl": ["browse"]})
    assert error(put) == (404, "Key does not exist")
    clock.advance(1)
    assert lagging.put(f"/1/keys/{value}", json={"acl": ["browse"]}).status_code == 200
    # A PUT on a key whose update has not propagated yet finds it (the old version).
    assert lagging.put(f"/1/keys/{value}", json={"acl": ["usage"]}).status_code == 200
    clock.advance(1)
    assert lagging.get(f"/1/keys/{value}").json()["acl"] == ["usage"]
    fresh = add_key(lagging, acl=["search"])
    assert lagging.delete(f"/1/keys/{fresh}").status_code == 200  # deletes: the primary
    assert error(lagging.delete(f"/1/keys/{fresh}")) == (404, "Key does not exist")
    assert lagging.delete(f"/1/keys/{value}").status_code == 200
    assert error(lagging.put(f"/1/keys/{value}", json={"acl": ["search"]}))[0] == 404


def test_updated_key_reads_old_until_propagated(lagging: httpx.Client, clock: FakeClock) -> None:
    value = add_key(lagging, acl=["search"], description="old")
    clock.advance(1)
    lagging.put(f"/1/keys/{value}", json={"acl": ["browse"], "description": "new"})
    assert lagging.get(f"/1/keys/{value}").json()["description"] == "old"
    assert lagging.get("/1/keys").json()["keys"][0]["acl"] == ["search"]
    clock.advance(0.5)
    assert lagging.get(f"/1/keys/{value}").json()["description"] == "new"


def test_deleted_key_reads_present_and_cannot_be_restored_until_propagated(
    lagging: httpx.Client, clock: FakeClock
) -> None:
    value = add_key(lagging, acl=["search"])
    clock.advance(1)
    assert lagging.delete(f"/1/keys/{value}").status_code == 200
    assert lagging.get(f"/1/keys/{value}").status_code == 200
    assert len(lagging.get("/1/keys").json()["keys"]) == 1
    assert error(lagging.post(f"/1/keys/{value}/restore")) == (404, "Key already exists")
    clock.advance(0.5)
    assert error(lagging.get(f"/1/keys/{value}")) == (404, "Key does not exist")
    assert lagging.post(f"/1/keys/{value}/restore").status_code == 200
    assert lagging.get(f"/1/keys/{value}").status_code == 404  # the restore propagates too
    clock.advance(0.5)
    assert lagging.get(f"/1/keys/{value}").status_code == 200


def test_snapshot_shows_the_primary_before_propagation(
    lagging: httpx.Client, lag_emulator: AlgoliaEmulator
) -> None:
    value = add_key(lagging, acl=["search"])
    assert lagging.get("/1/keys").json() == {"keys": []}
    assert [k["value"] for k in lag_emulator.snapshot()] == [value]


def test_snapshot_contents_and_isolation(
    client: httpx.Client, emulator: AlgoliaEmulator, clock: FakeClock
) -> None:
    value = add_key(client, acl=["search"], validity=60)
    snap = emulator.snapshot()
    assert snap == [
        {
            "value": value,
            "createdAt": int(clock.now),
            "acl": ["search"],
            "description": "",
            "indexes": [],
            "referers": [],
            "queryParameters": "",
            "maxHitsPerQuery": 0,
            "maxQueriesPerIPPerHour": 0,
            "expiresAt": clock.now + 60,
        }
    ]
    snap[0]["acl"].append("browse")
    assert emulator.snapshot()[0]["acl"] == ["search"]
