"""Least-privilege credentials: a Coveo API key that holds only the API-key privileges
can plan and apply (the catalogue check is skipped with one warning naming the missing
privilege), and every permission error names the privilege its route needs. The Coveo
emulator enforces each route's OAS ``x-required-privilege`` for API-key bearers."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from click.testing import Result

from keystate.emulators.coveo import REQUIRED_PRIVILEGE, CoveoEmulator
from keystate.emulators.http import RunningServer, start_in_thread
from keystate.providers.coveo.wire import required_privilege

ORG = "acmeleast"
ORG_TOKEN = "xorgtoken0000000000000000000000o"
# API keys used as the bearer (canaries: they must never show in any output).
CI_KEY = "xx11111111-2222-4333-8444-555555555555"
VIEW_ONLY_KEY = "xx66666666-7777-4888-9999-aaaaaaaaaaaa"
NOTHING_KEY = "xxbbbbbbbb-cccc-4ddd-8eee-ffffffffffff"
ORG_VIEW_KEY = "xx12121212-3434-4565-8787-989898989898"
KEY_PRIVILEGES = [
    {"owner": "PLATFORM", "targetDomain": "API_KEY", "type": kind, "targetId": "*"}
    for kind in ("VIEW", "CREATE", "EDIT")
]
SITE = """\
keys:
  coveo-prod:
    site-search:
      description: Public site search
      privileges:
        - {owner: SEARCH_API, target_domain: EXECUTE_QUERY}
      search_hub: %s
      expires_at: 2031-01-01T00:00:00Z
"""


def _seed(path: Path) -> None:
    """An organization whose state file holds the API keys keystate may run with."""
    CoveoEmulator(path, organization_id=ORG, token=ORG_TOKEN).persist()
    state = json.loads(path.read_text())
    view = [p for p in KEY_PRIVILEGES if p["type"] == "VIEW"]
    org_view = {"owner": "PLATFORM", "targetDomain": "ORGANIZATION", "type": "VIEW"}
    for ident, value, privileges in (
        ("cikey0000000000000000000001", CI_KEY, KEY_PRIVILEGES),
        ("viewkey00000000000000000002", VIEW_ONLY_KEY, view),
        ("nothing00000000000000000003", NOTHING_KEY, []),
        ("orgview00000000000000000004", ORG_VIEW_KEY, [*KEY_PRIVILEGES, org_view]),
    ):
        state["keys"].append(
            {"id": ident, "value": value, "display_name": ident, "privileges": privileges}
        )
    path.write_text(json.dumps(state))


@pytest.fixture
def coveo(tmp_path: Path) -> Iterator[RunningServer]:
    state = tmp_path / "coveo-state.json"
    _seed(state)
    app = CoveoEmulator(state, allow_api_key_bearer=True)
    with start_in_thread(app) as server:
        yield server


def _config(url: str, hub: str = "website") -> str:
    return (
        "version: 1\naccounts:\n  coveo-prod:\n    provider: coveo\n"
        f"    organization_id: {ORG}\n    token: ${{COVEO_ACCESS_TOKEN}}\n"
        f"    base_url: {url}\n" + SITE % hub
    )


def _no_secret(result: Result) -> None:
    text = result.output + result.stderr
    for secret in (CI_KEY, VIEW_ONLY_KEY, NOTHING_KEY, ORG_VIEW_KEY, ORG_TOKEN):
        assert secret not in text
    assert "Traceback" not in text


def test_an_api_key_only_token_plans_with_one_warning_and_applies(
    coveo: RunningServer, write: Callable[..., Path], run: Callable[..., Result], tmp_path: Path
) -> None:
    path = write(_config(coveo.url))
    env = {"COVEO_ACCESS_TOKEN": CI_KEY}

    text = run("plan", "-c", str(path), env=env)
    _no_secret(text)
    assert text.exit_code == 0, text.output + text.stderr
    warnings = [line for line in text.stdout.splitlines() if line.startswith("Warning: ")]
    assert len(warnings) == 1, text.stdout
    assert "coveo-prod" in warnings[0]
    assert f"PLATFORM/ORGANIZATION/VIEW in organization {ORG}" in warnings[0]
    assert "Plan: 1 to create" in text.stdout

    as_json = run("plan", "-c", str(path), "--format", "json", env=env)
    assert as_json.exit_code == 0, as_json.stderr
    document = json.loads(as_json.stdout)
    assert len(document["warnings"]) == 1
    assert "PLATFORM/ORGANIZATION/VIEW" in document["warnings"][0]

    markdown = run("plan", "-c", str(path), "--format", "markdown", env=env)
    assert markdown.exit_code == 0, markdown.stderr
    assert markdown.stdout.count("PLATFORM/ORGANIZATION/VIEW") == 1
    assert "> [!WARNING]" in markdown.stdout

    # The saved plan keeps the warning for `show`.
    saved = tmp_path / "plan.json"
    assert run("plan", "-c", str(path), "--out", str(saved), env=env).exit_code == 0
    shown = run("show", str(saved))
    assert shown.stdout.count("Warning: ") == 1

    sink = tmp_path / "new-keys.jsonl"
    applied = run("apply", "-c", str(path), "--auto-approve", "--secrets-out", str(sink), env=env)
    _no_secret(applied)
    assert applied.exit_code == 0, applied.output + applied.stderr
    assert len(sink.read_text().splitlines()) == 1
    # An update (PUT, EDIT on the key) goes through too; then nothing is left to do.
    path.write_text(_config(coveo.url, hub="portal"))
    updated = run("apply", "-c", str(path), "--auto-approve", env=env)
    assert updated.exit_code == 0, updated.output + updated.stderr
    again = run("plan", "-c", str(path), "--detailed-exitcode", env=env)
    assert again.exit_code == 0, again.stdout
    assert "No changes." in again.stdout


def test_a_token_with_the_catalogue_privilege_plans_without_a_warning(
    coveo: RunningServer, write: Callable[..., Path], run: Callable[..., Result]
) -> None:
    path = write(_config(coveo.url))
    result = run("plan", "-c", str(path), env={"COVEO_ACCESS_TOKEN": ORG_VIEW_KEY})
    assert result.exit_code == 0, result.output + result.stderr
    assert "Warning: " not in result.stdout
    result = run("plan", "-c", str(path), env={"COVEO_ACCESS_TOKEN": ORG_TOKEN})
    assert result.exit_code == 0, result.output + result.stderr
    assert "Warning: " not in result.stdout


def test_a_token_that_cannot_list_keys_names_the_privilege(
    coveo: RunningServer, write: Callable[..., Path], run: Callable[..., Result]
) -> None:
    path = write(_config(coveo.url))
    result = run("plan", "-c", str(path), env={"COVEO_ACCESS_TOKEN": NOTHING_KEY})
    _no_secret(result)
    assert result.exit_code == 1
    assert "Coveo answered 401" in result.stderr
    assert (
        f"list keys needs the privilege PLATFORM/API_KEY/VIEW in organization {ORG}"
        in result.stderr
    )
    assert "${COVEO_ACCESS_TOKEN}" in result.stderr  # where the token came from


def test_a_token_that_cannot_create_names_the_create_privilege(
    coveo: RunningServer, write: Callable[..., Path], run: Callable[..., Result], tmp_path: Path
) -> None:
    path = write(_config(coveo.url))
    sink = tmp_path / "new-keys.jsonl"
    env = {"COVEO_ACCESS_TOKEN": VIEW_ONLY_KEY}
    result = run("apply", "-c", str(path), "--auto-approve", "--secrets-out", str(sink), env=env)
    _no_secret(result)
    assert result.exit_code == 1
    assert "PLATFORM/API_KEY/CREATE in organization" in result.output + result.stderr
    assert not sink.exists() or sink.read_text() == ""


def test_privileges_command_names_the_catalogue_privilege(
    coveo: RunningServer, write: Callable[..., Path], run: Callable[..., Result]
) -> None:
    path = write(_config(coveo.url))
    result = run("privileges", "coveo-prod", "-c", str(path), env={"COVEO_ACCESS_TOKEN": CI_KEY})
    _no_secret(result)
    assert result.exit_code == 1
    assert "PLATFORM/ORGANIZATION/VIEW" in result.stderr


# -- the emulator's enforcement, route by route -------------------------------------------
def _client(server: RunningServer, token: str) -> httpx.Client:
    return httpx.Client(
        base_url=f"{server.url}/rest/organizations/{ORG}",
        headers={"authorization": f"Bearer {token}"},
    )


def _denied(response: httpx.Response, privilege: str) -> None:
    assert response.status_code == 401, response.text
    body: dict[str, Any] = response.json()
    assert body["errorCode"] == "ACCESS_DENIED"
    assert privilege in body["message"]


def test_emulator_enforces_edit_on_the_key_the_path_names(tmp_path: Path) -> None:
    state = tmp_path / "state.json"
    _seed(state)
    data = json.loads(state.read_text())
    one = "target000000000000000000005"
    editor_value = "xx01010101-0202-4303-8404-050505050505"
    data["keys"].append({"id": one, "value": "xx" + "0" * 36, "display_name": "t"})
    edit_one = {"owner": "PLATFORM", "targetDomain": "API_KEY", "type": "EDIT", "targetId": one}
    data["keys"].append(
        {"id": "editor", "value": editor_value, "display_name": "e", "privileges": [edit_one]}
    )
    state.write_text(json.dumps(data))
    app = CoveoEmulator(state, allow_api_key_bearer=True)
    with start_in_thread(app) as server, _client(server, editor_value) as c:
        assert c.put(f"/apikeys/{one}/disable").status_code == 204
        _denied(c.put("/apikeys/cikey0000000000000000000001/disable"), "PLATFORM/API_KEY/EDIT")
        _denied(c.get("/apikeys"), "PLATFORM/API_KEY/VIEW")
        _denied(c.post("/apikeys", json={"displayName": "x"}), "PLATFORM/API_KEY/CREATE")
        _denied(c.get("/templates/apikeys"), "PLATFORM/API_KEY/CREATE")
        _denied(c.get("/privileges/apikeys"), "PLATFORM/ORGANIZATION/VIEW")
        assert c.put("/apikeys/disable/bulk", json=[one]).status_code == 204
        _denied(
            c.put("/apikeys/disable/bulk", json=[one, "cikey0000000000000000000001"]),
            "PLATFORM/API_KEY/EDIT on cikey0000000000000000000001",
        )
    # Without allow_api_key_bearer no API key may use the API_KEY routes (the docs).
    strict = CoveoEmulator(state)
    with start_in_thread(strict) as server, _client(server, CI_KEY) as c:
        assert c.get("/apikeys").status_code == 401
    with start_in_thread(strict) as server, _client(server, ORG_VIEW_KEY) as c:
        assert c.get("/privileges/apikeys").status_code == 200


ROUTES = {
    "list": ("GET", "/apikeys"),
    "create": ("POST", "/apikeys"),
    "get": ("GET", "/apikeys/abc"),
    "update": ("PUT", "/apikeys/abc"),
    "delete": ("DELETE", "/apikeys/abc"),
    "activate": ("PUT", "/apikeys/abc/activate"),
    "disable": ("PUT", "/apikeys/abc/disable"),
    "extend": ("PUT", "/apikeys/abc/activation/extend"),
    "duplicate": ("PUT", "/apikeys/abc/duplicate"),
    "bulk-delete": ("POST", "/apikeys/delete/bulk"),
    "bulk-activate": ("PUT", "/apikeys/activate/bulk"),
    "bulk-disable": ("PUT", "/apikeys/disable/bulk"),
    "templates": ("GET", "/templates/apikeys"),
    "template": ("GET", "/templates/apikeys/AnonymousSearch"),
    "eligibility": ("GET", "/templates/apikeys/privileges/eligibility"),
    "privileges": ("GET", "/privileges/apikeys"),
}


def test_provider_and_emulator_name_the_same_privilege_for_every_route() -> None:
    """Two tables written apart from the same OAS: keystate's messages and the
    emulator's enforcement must agree on every route."""
    assert set(ROUTES) == set(REQUIRED_PRIVILEGE)
    for route, (method, path) in ROUTES.items():
        owner, domain, kind, _target = REQUIRED_PRIVILEGE[route]
        assert required_privilege(method, path).startswith(f"{owner}/{domain}/{kind}"), route


def test_privileges_json_entries_are_configuration_entries(
    coveo: RunningServer, write: Callable[..., Path], run: Callable[..., Result]
) -> None:
    path = write(_config(coveo.url))
    env = {"COVEO_ACCESS_TOKEN": ORG_VIEW_KEY}
    result = run("privileges", "coveo-prod", "-c", str(path), "--format", "json", env=env)
    assert result.exit_code == 0, result.stderr
    entries = json.loads(result.stdout)
    assert {
        "owner": "USAGE_ANALYTICS",
        "target_domain": "ANALYTICS_DATA",
        "type": "EDIT",
        "custom_keys": True,
    } in entries
    assert {"owner": "SEARCH_API", "target_domain": "EXECUTE_QUERY", "custom_keys": True} in (
        entries
    )
    assert {"owner": "SEARCH_API", "target_domain": "IMPERSONATE", "custom_keys": False} in (
        entries
    )
    # Every entry a custom key may hold, pasted into the configuration, plans cleanly.
    custom = [
        {k: v for k, v in e.items() if k != "custom_keys"} for e in entries if e["custom_keys"]
    ]
    keys = "".join(
        f"    k{i}:\n      privileges: [{json.dumps(e)}]\n      expires_at: 2031-01-01T00:00:00Z\n"
        for i, e in enumerate(custom)
    )
    path.write_text(_config(coveo.url).split("keys:\n")[0] + "keys:\n  coveo-prod:\n" + keys)
    planned = run("plan", "-c", str(path), env=env)
    assert planned.exit_code == 0, planned.stderr
    assert f"Plan: {len(custom)} to create" in planned.stdout
