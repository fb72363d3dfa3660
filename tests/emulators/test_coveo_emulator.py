"""The Coveo emulator over raw HTTP: routes, status codes, error bodies, masking, auth,
regions, the privilege catalogue, templates, lifetimes, update semantics, persistence."""

from __future__ import annotations

import json
import os
import stat
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from support import FakeClock, Servers

from keystate.emulators.coveo import CoveoEmulator
from keystate.emulators.http import EmuRequest, RunningServer

ORG = "acmetest"
TOKEN = "xadmintoken000000000000000000000"
PREFIX = f"/rest/organizations/{ORG}"
EXECUTE = {"owner": "SEARCH_API", "targetDomain": "EXECUTE_QUERY"}


@pytest.fixture
def app(clock: FakeClock) -> CoveoEmulator:
    return CoveoEmulator(organization_id=ORG, token=TOKEN, clock=clock)


@pytest.fixture
def server(app: CoveoEmulator, serve: Servers) -> RunningServer:
    return serve(app)


@pytest.fixture
def client(server: RunningServer) -> Iterator[httpx.Client]:
    with httpx.Client(
        base_url=server.url + PREFIX, headers={"authorization": f"Bearer {TOKEN}"}
    ) as c:
        yield c


def create(client: httpx.Client, **body: Any) -> dict[str, Any]:
    payload = {"displayName": "k", "privileges": [EXECUTE], **body}
    response = client.post("/apikeys", json=payload)
    assert response.status_code == 201, response.text
    data: dict[str, Any] = response.json()
    return data


def assert_error(response: httpx.Response, status: int, code: str) -> None:
    assert response.status_code == status, response.text
    body = response.json()
    assert body["errorCode"] == code
    assert body["requestID"] == response.headers["x-request-id"]
    assert isinstance(body["message"], str) and body["message"]


def test_create_get_list_mask_the_value(client: httpx.Client) -> None:
    created = create(client, description="d", allowedIps=["203.0.113.0/24"])
    assert created["value"].startswith("xx") and len(created["value"]) == 38
    assert len(created["id"]) == 26 and created["id"].isalnum() and created["id"].islower()
    got = client.get(f"/apikeys/{created['id']}").json()
    assert got["value"] == "xx*****" + created["value"][-4:]
    assert got["resourceId"] == got["tokenId"] == created["id"]
    assert got["privileges"] == [EXECUTE]
    assert got["allowedIps"] == ["203.0.113.0/24"] and got["status"] == "ENABLED"
    assert isinstance(got["createdDate"], int) and got["createdDate"] > 10**12
    listed = client.get("/apikeys").json()
    assert [k["value"] for k in listed] == [got["value"]]
    assert all("x-request-id" in r.headers for r in (client.get("/apikeys"),))


def test_writes_answer_204_with_no_body(client: httpx.Client) -> None:
    key = create(client)
    for method, path in (
        ("PUT", f"/apikeys/{key['id']}/disable"),
        ("PUT", f"/apikeys/{key['id']}/activate"),
        ("PUT", f"/apikeys/{key['id']}/activation/extend"),
        ("DELETE", f"/apikeys/{key['id']}"),
    ):
        response = client.request(method, path)
        assert (response.status_code, response.content) == (204, b""), path
        assert response.headers["x-request-id"]


def test_update_takes_the_update_model_and_ignores_privileges(client: httpx.Client) -> None:
    key = create(client)
    model = client.get(f"/apikeys/{key['id']}").json()
    model.update(
        description="new",
        deniedIps=["198.51.100.7"],
        privileges=[{"owner": "PLATFORM", "targetDomain": "SOURCE", "type": "EDIT"}],
        enabled=False,
        additionalConfiguration={
            "search": {"enforcedQueryPipelineConfiguration": {"searchHub": "web"}}
        },
    )
    assert client.put(f"/apikeys/{key['id']}", json=model).status_code == 204
    after = client.get(f"/apikeys/{key['id']}").json()
    assert after["description"] == "new" and after["deniedIps"] == ["198.51.100.7"]
    assert after["privileges"] == [EXECUTE] and after["enabled"] is True
    assert after["additionalConfiguration"]["search"]["enforcedQueryPipelineConfiguration"] == {
        "searchHub": "web"
    }


def test_disable_activate_and_status_filters(client: httpx.Client) -> None:
    a, b = create(client), create(client)
    client.put(f"/apikeys/{a['id']}/disable")
    got = client.get(f"/apikeys/{a['id']}").json()
    assert got["enabled"] is False and got["status"] == "DISABLED" and "disabledDate" in got
    assert [k["id"] for k in client.get("/apikeys", params={"status": "ACTIVE"}).json()] == [
        b["id"]
    ]
    assert [k["id"] for k in client.get("/apikeys", params={"status": "DEACTIVATED"}).json()] == [
        a["id"]
    ]
    assert_error(client.get("/apikeys", params={"status": "NOPE"}), 400, "INVALID_PARAMETER")


def test_lifetimes_expiry_and_activation_of_expired_keys(
    client: httpx.Client, clock: FakeClock
) -> None:
    key = create(client, lifetimeDuration="P10D")
    got = client.get(f"/apikeys/{key['id']}").json()
    assert got["expirationDate"] - got["createdDate"] == 10 * 86400 * 1000
    clock.advance(4 * 86400)
    assert client.get(f"/apikeys/{key['id']}").json()["status"] == "SOON_TO_BE_EXPIRED"
    clock.advance(7 * 86400)
    assert client.get(f"/apikeys/{key['id']}").json()["status"] == "EXPIRED"
    assert [k["status"] for k in client.get("/apikeys").json()] == ["EXPIRED"]  # still listed
    assert_error(client.put(f"/apikeys/{key['id']}/activate"), 412, "PRECONDITION_FAILED")
    # Coveo lifetimes are java.time.Period values: date-based, whole numbers, positive.
    for bad in ("30 days", "P", "PT", "P1X", "PT3600S", "PT97465620S", "P1DT1H", "P1.5D", "P0D"):
        response = client.post("/apikeys", json={"displayName": "x", "lifetimeDuration": bad})
        assert_error(response, 400, "INVALID_PARAMETER")
        assert "cannot be parsed to a Period" in response.json()["message"]
    day = 86400 * 1000
    start = datetime.fromtimestamp(clock.now, UTC)
    for period, end in (
        ("P14D", start + timedelta(days=14)),
        ("P2W", start + timedelta(days=14)),
        ("P1M", start.replace(month=start.month % 12 + 1, year=start.year + start.month // 12)),
        (
            "P1Y3M14D",
            start.replace(year=start.year + 1, month=start.month + 3) + timedelta(days=14),
        ),
    ):
        got = create(client, lifetimeDuration=period)["expirationDate"] - clock.now * 1000
        assert got == pytest.approx((end - start).total_seconds() * 1000, abs=1000), period
        assert got % day < 1000 or day - got % day < 1000


def test_privilege_catalogue_and_the_custom_subset(client: httpx.Client) -> None:
    every = client.get("/privileges/apikeys").json()
    custom = client.get("/privileges/apikeys", params={"filter": "CUSTOM"}).json()
    impersonate = {
        "owner": "SEARCH_API",
        "targetDomain": "IMPERSONATE",
        "targetId": "*",
        "level": "GLOBAL",
    }
    assert impersonate in every and impersonate not in custom
    assert all(p["targetId"] == "*" and p["level"] == "GLOBAL" for p in every)
    response = client.post("/apikeys", json={"displayName": "x", "privileges": [{**impersonate}]})
    assert_error(response, 412, "PRECONDITION_FAILED")
    typo = {"owner": "SEARCH_API", "targetDomain": "EXECUTE_QUERRY"}
    assert_error(
        client.post("/apikeys", json={"displayName": "x", "privileges": [typo]}),
        400,
        "INVALID_PRIVILEGE",
    )


def test_both_privilege_shapes_are_accepted_and_targetid_is_emitted(client: httpx.Client) -> None:
    old = {
        "owner": "PLATFORM",
        "targetDomain": "SOURCE",
        "type": "VIEW",
        "targetIds": ["s1", "s2"],
        "global": False,
    }
    glob = {
        "owner": "PLATFORM",
        "targetDomain": "FIELD",
        "type": "VIEW",
        "targetIds": [],
        "global": True,
    }
    key = create(client, privileges=[old, glob])
    assert key["privileges"] == [
        {"owner": "PLATFORM", "targetDomain": "SOURCE", "type": "VIEW", "targetId": "s1"},
        {"owner": "PLATFORM", "targetDomain": "SOURCE", "type": "VIEW", "targetId": "s2"},
        {"owner": "PLATFORM", "targetDomain": "FIELD", "type": "VIEW", "targetId": "*"},
    ]


def test_templates(client: httpx.Client) -> None:
    ids = {t["id"] for t in client.get("/templates/apikeys").json()}
    assert {"AuthenticatedSearch", "AnonymousSearch"} <= ids
    assert client.get("/templates/apikeys/AnonymousSearch").json()["privacyLevel"] == "PUBLIC"
    assert all(
        e["canGenerate"] for e in client.get("/templates/apikeys/privileges/eligibility").json()
    )
    key = client.post(
        "/apikeys", params={"apiKeyTemplateId": "AuthenticatedSearch"}, json={"description": "t"}
    ).json()
    assert {p["targetDomain"] for p in key["privileges"]} == {"EXECUTE_QUERY", "IMPERSONATE"}
    assert key["apiKeyTemplateId"] == "AuthenticatedSearch"
    assert_error(
        client.post("/apikeys", params={"apiKeyTemplateId": "Nope"}, json={}),
        400,
        "INVALID_PARAMETER",
    )
    assert_error(client.get("/templates/apikeys/Nope"), 400, "INVALID_PARAMETER")


def test_validation(client: httpx.Client) -> None:
    assert_error(
        client.post("/apikeys", json={"privileges": [EXECUTE]}), 400, "INVALID_PARAMETER"
    )  # displayName
    assert_error(client.post("/apikeys", json={"displayName": "x" * 126}), 400, "INVALID_PARAMETER")
    assert_error(
        client.post("/apikeys", json={"displayName": "x", "description": "d" * 1001}),
        400,
        "INVALID_PARAMETER",
    )
    assert_error(
        client.post("/apikeys", json={"displayName": "x", "allowedIps": ["10.0.0.300"]}),
        400,
        "INVALID_PARAMETER",
    )
    assert_error(
        client.post("/apikeys", content=b"{nope", headers={"content-type": "application/json"}),
        400,
        "MALFORMED_JSON",
    )
    assert_error(client.post("/apikeys", json=[1, 2]), 400, "INVALID_PARAMETER")
    # Read-only and unknown fields are ignored, as the official client sends whole models.
    create(client, id="ignored", status="EXPIRED", somethingNew=True)


def test_unknown_key_and_unknown_route(client: httpx.Client) -> None:
    assert_error(client.get("/apikeys/nope"), 404, "API_KEY_NOT_FOUND")
    assert_error(client.put("/apikeys/nope", json={}), 404, "API_KEY_NOT_FOUND")
    assert_error(client.delete("/apikeys/nope"), 404, "API_KEY_NOT_FOUND")
    assert_error(client.get("/nothing/here"), 404, "INVALID_URI")
    assert_error(client.patch("/apikeys"), 404, "INVALID_URI")


def test_bulk_operations(client: httpx.Client) -> None:
    a, b = create(client), create(client)
    assert client.put("/apikeys/disable/bulk", json=[a["id"], b["id"]]).status_code == 204
    assert all(not k["enabled"] for k in client.get("/apikeys").json())
    assert client.put("/apikeys/activate/bulk", json=[a["id"], b["id"]]).status_code == 204
    assert_error(
        client.post("/apikeys/delete/bulk", json=[a["id"], "nope"]), 412, "PRECONDITION_FAILED"
    )
    assert_error(
        client.post("/apikeys/delete/bulk", json=[a["id"], a["id"]]), 400, "INVALID_PARAMETER"
    )
    assert client.post("/apikeys/delete/bulk", json=[a["id"], b["id"]]).status_code == 204
    assert client.get("/apikeys").json() == []


def test_duplicate(client: httpx.Client) -> None:
    key = create(client, allowedIps=["203.0.113.1"])
    copy = client.put(
        f"/apikeys/{key['id']}/duplicate", json={"displayName": "copy", "lifetimeDuration": "P1D"}
    )
    assert copy.status_code == 201
    body = copy.json()
    assert (
        body["id"] != key["id"] and body["value"] != key["value"] and body["value"].startswith("xx")
    )
    assert body["privileges"] == key["privileges"] and body["allowedIps"] == ["203.0.113.1"]


def test_authentication_and_privileges(server: RunningServer, client: httpx.Client) -> None:
    url = server.url + PREFIX + "/apikeys"
    assert_error(httpx.get(url), 401, "INVALID_TOKEN")
    assert_error(httpx.get(url, headers={"authorization": "Bearer wrong"}), 401, "INVALID_TOKEN")
    other = server.url + "/rest/organizations/other/apikeys"
    assert_error(
        httpx.get(other, headers={"authorization": f"Bearer {TOKEN}"}), 403, "ACCESS_DENIED"
    )
    key = create(client, privileges=[EXECUTE])
    assert_error(
        httpx.get(url, headers={"authorization": f"Bearer {key['value']}"}), 401, "ACCESS_DENIED"
    )


def test_api_key_bearer_when_allowed(clock: FakeClock, serve: Servers) -> None:
    app = CoveoEmulator(
        organization_id=ORG,
        token=TOKEN,
        clock=clock,
        allow_api_key_bearer=True,
        missing_privilege_status=403,
    )
    server = serve(app)
    with httpx.Client(base_url=server.url + PREFIX) as c:
        admin = {"authorization": f"Bearer {TOKEN}"}
        viewer = c.post(
            "/apikeys",
            headers=admin,
            json={
                "displayName": "v",
                "privileges": [{"owner": "PLATFORM", "targetDomain": "API_KEY", "type": "VIEW"}],
            },
        )
        # PLATFORM/API_KEY is not in the default catalogue: keys cannot hold it there.
        assert viewer.status_code == 400
        data = json.loads(
            app.handle(
                EmuRequest(
                    "GET", f"{PREFIX}/privileges/apikeys", "", {"authorization": f"Bearer {TOKEN}"}
                )
            ).body
        )
        assert {
            "owner": "PLATFORM",
            "targetDomain": "ORGANIZATION",
            "type": "VIEW",
            "targetId": "*",
            "level": "GLOBAL",
        } in data
        reader = c.post(
            "/apikeys",
            headers=admin,
            json={
                "displayName": "r",
                "privileges": [
                    {"owner": "PLATFORM", "targetDomain": "ORGANIZATION", "type": "VIEW"}
                ],
            },
        ).json()
        bearer = {"authorization": f"Bearer {reader['value']}"}
        assert c.get("/privileges/apikeys", headers=bearer).status_code == 200
        assert_error(c.get("/apikeys", headers=bearer), 403, "ACCESS_DENIED")


def test_wrong_region_host(client: httpx.Client, app: CoveoEmulator) -> None:
    response = client.get("/apikeys", headers={"host": "platform-eu.cloud.coveo.com"})
    assert_error(response, 400, "INVALID_REQUEST")
    assert response.json()["message"] == (
        f"Organization: '{ORG}' does not accept requests in current region 'eu-west-1'. "
        "Allowed region(s): '[us-east-1]'."
    )
    assert client.get("/apikeys", headers={"host": "platform.cloud.coveo.com"}).status_code == 200


def test_propagation_delay(clock: FakeClock, serve: Servers) -> None:
    app = CoveoEmulator(organization_id=ORG, token=TOKEN, clock=clock, propagation_delay_ms=500)
    server = serve(app)
    with httpx.Client(
        base_url=server.url + PREFIX, headers={"authorization": f"Bearer {TOKEN}"}
    ) as c:
        key = create(c)
        assert c.get(f"/apikeys/{key['id']}").status_code == 404
        clock.advance(1)
        assert c.get(f"/apikeys/{key['id']}").status_code == 200


def test_faults_use_coveo_error_bodies(app: CoveoEmulator) -> None:
    response = app.fault_response(429, 2.0)
    body = json.loads(response.body)
    assert response.status == 429 and body["errorCode"] == "TOO_MANY_REQUESTS"
    assert (
        response.header("retry-after") == "2"
        and response.header("x-request-id") == body["requestID"]
    )
    assert app.fault_response(429, None).header("retry-after") is None
    assert json.loads(app.fault_response(503, None).body)["errorCode"] == "SERVICE_UNAVAILABLE"


def test_state_file_is_shared_and_private(tmp_path: Path, clock: FakeClock) -> None:
    path = tmp_path / "coveo.json"
    first = CoveoEmulator(path, organization_id=ORG, token=TOKEN, clock=clock)
    first.persist()
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    second = CoveoEmulator(path, clock=clock)
    assert (second.organization_id, second.token) == (ORG, TOKEN)
    headers = {"authorization": f"Bearer {TOKEN}", "content-type": "application/json"}
    body = json.dumps({"displayName": "shared", "privileges": [EXECUTE]}).encode()
    reply = first.handle(EmuRequest("POST", f"{PREFIX}/apikeys", "", headers, body))
    assert reply.status == 201
    assert [k["display_name"] for k in second.snapshot()] == ["shared"]
    assert TOKEN not in repr(first) and "token" not in repr(first)


def test_route_names(app: CoveoEmulator) -> None:
    def name(method: str, path: str) -> str:
        return app.route_name(EmuRequest(method, PREFIX + path, "", {}))

    assert name("GET", "/apikeys") == "list"
    assert name("POST", "/apikeys/delete/bulk") == "bulk-delete"
    assert name("PUT", "/apikeys/abc/activation/extend") == "extend"
    assert name("GET", "/templates/apikeys/privileges/eligibility") == "eligibility"
    assert name("GET", "/templates/apikeys/AnonymousSearch") == "template"
    assert name("GET", "/privileges/apikeys") == "privileges"
    assert name("GET", "/elsewhere") == "unknown"
