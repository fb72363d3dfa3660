"""Issue 12 (Coveo): what keystate sends and plans where it and the emulator must agree
with the real service — date-based lifetimes, key statuses and exposure reports, the
display name and the security fields of additionalConfiguration, templates, and the
full-model PUT. Over real HTTP, against the Coveo emulator; key states are set through
the emulator's state file."""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from click.testing import Result

from keystate.emulators.coveo import CoveoEmulator
from keystate.emulators.http import EmuRequest, EmuResponse, RunningServer, start_in_thread
from keystate.model import parse_description

ORG = "acmeprod"
TOKEN = "xcoveotesttoken0000000000000000c"
ENV = {"COVEO_ACCESS_TOKEN": TOKEN}
CANARY_URL = "https://github.com/acme/leak/blob/main/xxCANARY-value-0000-0000-000000000000"


class Recorder:
    """The emulator, recording each request's route and body."""

    def __init__(self, app: CoveoEmulator) -> None:
        self.app = app
        self.requests: list[tuple[str, dict[str, Any] | list[Any] | None]] = []

    def route_name(self, request: EmuRequest) -> str:
        return self.app.route_name(request)

    def fault_response(self, status: int, retry_after: float | None) -> EmuResponse:
        return self.app.fault_response(status, retry_after)

    def handle(self, request: EmuRequest) -> EmuResponse:
        body = json.loads(request.body) if request.body else None
        self.requests.append((self.route_name(request), body))
        return self.app.handle(request)

    def routes(self) -> list[str]:
        return [route for route, _ in self.requests]

    def bodies(self, route: str) -> list[Any]:
        return [body for name, body in self.requests if name == route]


@pytest.fixture
def emu(tmp_path: Path) -> Iterator[tuple[Recorder, RunningServer, Path]]:
    state = tmp_path / "coveo-state.json"
    recorder = Recorder(CoveoEmulator(state, organization_id=ORG, token=TOKEN))
    with start_in_thread(recorder) as server:
        yield recorder, server, state


def config(url: str, keys: str) -> str:
    return (
        "version: 1\nowner: web\naccounts:\n  coveo-prod:\n    provider: coveo\n"
        f"    organization_id: {ORG}\n    token: ${{COVEO_ACCESS_TOKEN}}\n"
        f"    base_url: {url}\nkeys:\n  coveo-prod:\n{keys}"
    )


def edit_state(state: Path, change: Callable[[dict[str, Any]], None]) -> None:
    """Change the one managed key in the emulator's state file."""
    data = json.loads(state.read_text())
    (key,) = [k for k in data["keys"] if parse_description(k["description"])[1]]
    change(key)
    state.write_text(json.dumps(data))


def stored(state: Path) -> dict[str, Any]:
    data = json.loads(state.read_text())
    (key,) = [k for k in data["keys"] if parse_description(k["description"])[1]]
    return dict(key)


SEARCH = """\
    site-search:
      privileges:
        - {owner: SEARCH_API, target_domain: EXECUTE_QUERY}
      expires_at: %s
"""


def apply(run: Callable[..., Result], path: Path, tmp_path: Path) -> Result:
    secrets = tmp_path / "secrets.jsonl"
    return run("apply", "-c", str(path), "--auto-approve", "--secrets-out", str(secrets), env=ENV)


def test_lifetimes_are_sent_as_whole_days_and_compared_within_a_day(
    emu: tuple[Recorder, RunningServer, Path],
    write: Callable[..., Path],
    run: Callable[..., Result],
    tmp_path: Path,
) -> None:
    recorder, server, state = emu
    expiry = (datetime.now(UTC) + timedelta(days=400, hours=5)).replace(microsecond=0)
    path = write(config(server.url, SEARCH % expiry.isoformat()))
    result = apply(run, path, tmp_path)
    assert result.exit_code == 0, result.output
    (body,) = recorder.bodies("create")
    assert re.fullmatch(r"P\d+D", body["lifetimeDuration"]), body["lifetimeDuration"]
    assert body["lifetimeDuration"] == "P400D"  # 400 days 5 hours: the nearest whole day
    stored_at = datetime.fromtimestamp(stored(state)["expiration_ms"] / 1000, UTC)
    assert abs(stored_at - expiry) <= timedelta(hours=12)
    # Within the one-day tolerance: no change, and certainly no replacement.
    assert run("plan", "-c", str(path), "--detailed-exitcode", env=ENV).exit_code == 0
    # The form keystate used to send is refused, as a java.time.Period parser would.
    reply = recorder.app.handle(
        EmuRequest(
            "POST",
            f"/rest/organizations/{ORG}/apikeys",
            "",
            {"authorization": f"Bearer {TOKEN}"},
            json.dumps({"displayName": "x", "lifetimeDuration": "PT97465620S"}).encode(),
        )
    )
    assert reply.status == 400
    assert json.loads(reply.body)["errorCode"] == "INVALID_PARAMETER"


def _exposed(key: dict[str, Any], lifecycle: str | None) -> None:
    key["lifecycle"] = lifecycle
    key["exposure_report"] = {
        "apiKeyLoggerId": "logger",
        "severity": "HIGH",
        "creationType": "AUTOMATED",
        "createdDate": 1_790_000_000_000,
        "reasons": [{"id": "r1", "source": "GITHUB", "url": CANARY_URL, "createdDate": 0}],
    }


def test_an_exposed_key_is_never_reactivated_but_replaced_at_once(
    emu: tuple[Recorder, RunningServer, Path],
    write: Callable[..., Path],
    run: Callable[..., Result],
    tmp_path: Path,
) -> None:
    """A key Coveo reported exposed (DISABLED_EXPOSED) is never activated again: the plan
    shows the exposure and rotates the key with no overlap (a new key, its value
    delivered, then the leaked one removed); the next plan is empty."""
    recorder, server, state = emu
    path = write(config(server.url, SEARCH % "2031-01-01T00:00:00Z"))
    assert apply(run, path, tmp_path).exit_code == 0
    leaked = stored(state)["id"]
    edit_state(state, lambda k: _exposed(k, "DISABLED_EXPOSED"))
    recorder.requests.clear()

    result = run("plan", "-c", str(path), env=ENV)
    assert result.exit_code == 0, result.output
    out = result.stdout
    assert "+/- key" in out or "rotate" in out
    assert "exposed" in out and "severity HIGH" in out and "source GITHUB" in out
    assert CANARY_URL not in result.output and "CANARY" not in result.output
    plan = json.loads(run("plan", "-c", str(path), "--format", "json", env=ENV).stdout)
    (change,) = plan["changes"]
    assert (change["action"], change["reason"], change["overlap"]) == ("rotate", "exposed", "0")
    assert change["before"]["status"] == "DISABLED_EXPOSED"
    assert "severity HIGH" in change["before"]["exposure"]
    assert not plan["refusals"] and "CANARY" not in json.dumps(plan)

    result = apply(run, path, tmp_path)
    assert result.exit_code == 0, result.output
    routes = recorder.routes()
    assert not {"activate", "extend"} & set(routes)
    assert "create" in routes and "delete" in routes
    assert stored(state)["id"] != leaked  # the leaked key is gone, a new one manages the name
    assert run("plan", "-c", str(path), "--detailed-exitcode", env=ENV).exit_code == 0


@pytest.mark.parametrize("lifecycle", ["SOON_TO_BE_DISABLED", "DISABLED_FOR_INACTIVITY"])
def test_an_inactive_key_declared_enabled_is_extended_once(
    emu: tuple[Recorder, RunningServer, Path],
    write: Callable[..., Path],
    run: Callable[..., Result],
    tmp_path: Path,
    lifecycle: str,
) -> None:
    recorder, server, state = emu
    path = write(config(server.url, SEARCH % "2031-01-01T00:00:00Z"))
    assert apply(run, path, tmp_path).exit_code == 0
    edit_state(state, lambda k: k.update(lifecycle=lifecycle))
    recorder.requests.clear()

    result = run("plan", "-c", str(path), "--detailed-exitcode", env=ENV)
    assert result.exit_code == 2, result.output
    assert f'~ status = "{lifecycle}" -> "ENABLED"' in result.stdout
    assert "enabled" not in result.stdout.split("status =")[0].split("{")[-1]
    result = apply(run, path, tmp_path)
    assert result.exit_code == 0, result.output
    assert recorder.routes().count("extend") == 1
    assert "activate" not in recorder.routes()
    assert stored(state)["lifecycle"] is None
    assert run("plan", "-c", str(path), "--detailed-exitcode", env=ENV).exit_code == 0


FULL = """\
    portal:
      template: AuthenticatedSearch
      display_name: Portal search (prod)
      search_hub: portal
      impersonation_allowed_user_ids:
        - {name: alice@example.com, provider: Email Security Provider}
        - {name: staff, provider: Email Security Provider, type: Group}
      api_key_query_authentication:
        - {name: anonymous, provider: Email Security Provider}
      commerce_catalog_id: catalog-eu
      override_template_privileges:
        - {owner: SEARCH_API, target_domain: EXECUTE_QUERY, target_id: portal-pipeline}
      expires_at: 2031-01-01T00:00:00Z
"""


def test_display_name_and_security_fields_round_trip_and_drift_is_shown(
    emu: tuple[Recorder, RunningServer, Path],
    write: Callable[..., Path],
    run: Callable[..., Result],
    tmp_path: Path,
) -> None:
    recorder, server, state = emu
    path = write(config(server.url, FULL))
    result = apply(run, path, tmp_path)
    assert result.exit_code == 0, result.output
    key = stored(state)
    assert key["display_name"] == "Portal search (prod)"
    search = key["additional_configuration"]["search"]
    assert search["impersonationRestrictions"]["allowedUserIds"] == [
        {"name": "alice@example.com", "provider": "Email Security Provider", "type": "User"},
        {"name": "staff", "provider": "Email Security Provider", "type": "Group"},
    ]
    assert search["apiKeyQueryAuthentication"][0]["name"] == "anonymous"
    assert key["additional_configuration"]["commerce"] == {"catalogId": "catalog-eu"}
    assert {
        "owner": "SEARCH_API",
        "targetDomain": "EXECUTE_QUERY",
        "targetId": "portal-pipeline",
    } in key["privileges"]
    assert run("plan", "-c", str(path), "--detailed-exitcode", env=ENV).exit_code == 0

    # Drift made in the console, on each field: every one is shown, then put back.
    def drift(k: dict[str, Any]) -> None:
        k["display_name"] = "Renamed in the console"
        s = k["additional_configuration"]["search"]
        s["impersonationRestrictions"]["allowedUserIds"].pop()
        s["apiKeyQueryAuthentication"] = []
        k["additional_configuration"]["commerce"]["catalogId"] = "catalog-us"
        s.pop("enforcedQueryPipelineConfiguration")

    edit_state(state, drift)
    result = run("plan", "-c", str(path), "--detailed-exitcode", env=ENV)
    assert result.exit_code == 2, result.output
    out = result.stdout
    assert "~ display_name" in out and '"Renamed in the console" -> "Portal search (prod)"' in out
    assert "~ commerce_catalog_id" in out and '"catalog-us" -> "catalog-eu"' in out
    assert "~ impersonation_allowed_user_ids" in out and 'name = "staff"' in out
    assert "~ api_key_query_authentication" in out and 'name = "anonymous"' in out
    assert "~ search_hub" in out
    assert "forces replacement" not in out
    assert apply(run, path, tmp_path).exit_code == 0
    assert run("plan", "-c", str(path), "--detailed-exitcode", env=ENV).exit_code == 0

    # Removing fields clears them: the whole update model is sent (no stale search hub).
    write(
        config(
            server.url,
            FULL.split("      search_hub", maxsplit=1)[0] + FULL.split("catalog-eu\n")[1],
        )
    )
    assert apply(run, path, tmp_path).exit_code == 0
    (*_, last) = recorder.bodies("update")
    assert set(last) >= {
        "displayName",
        "description",
        "allowedIps",
        "deniedIps",
        "additionalConfiguration",
        "groupsThatCanEdit",
        "apiKeysThatCanEdit",
    }
    assert stored(state)["additional_configuration"] == {}
    assert stored(state)["display_name"] == "Portal search (prod)"
    assert run("plan", "-c", str(path), "--detailed-exitcode", env=ENV).exit_code == 0

    # import writes the new fields, and its output plans no change.
    imported = run("import", "coveo-prod", "--all", "-c", str(path), env=ENV)
    assert imported.exit_code == 0, imported.output
    assert "display_name: Portal search (prod)" in imported.stdout
    assert "override_template_privileges:" in imported.stdout
    write(config(server.url, imported.stdout.split("  coveo-prod:\n", 1)[1]))
    assert run("plan", "-c", str(path), "--detailed-exitcode", env=ENV).exit_code == 0


def test_an_adopt_that_renames_says_so(
    emu: tuple[Recorder, RunningServer, Path],
    write: Callable[..., Path],
    run: Callable[..., Result],
) -> None:
    recorder, server, _state = emu
    reply = recorder.app.handle(
        EmuRequest(
            "POST",
            f"/rest/organizations/{ORG}/apikeys",
            "",
            {"authorization": f"Bearer {TOKEN}"},
            json.dumps(
                {
                    "displayName": "Made in the console",
                    "privileges": [{"owner": "SEARCH_API", "targetDomain": "EXECUTE_QUERY"}],
                }
            ).encode(),
        )
    )
    key_id = json.loads(reply.body)["id"]
    keys = f"""\
    console-key:
      adopt: id:{key_id}
      privileges:
        - {{owner: SEARCH_API, target_domain: EXECUTE_QUERY}}
"""
    result = run("plan", "-c", str(write(config(server.url, keys))), env=ENV)
    assert result.exit_code == 0, result.output
    assert '~ display_name = "Made in the console" -> "console-key"' in result.stdout


def test_template_checks_happen_at_plan_time(
    emu: tuple[Recorder, RunningServer, Path],
    write: Callable[..., Path],
    run: Callable[..., Result],
) -> None:
    recorder, server, state = emu
    recorder.app.persist()
    data = json.loads(state.read_text())
    data["templates"]["AnonymousSearch"]["enforcedLifetimePeriod"] = "P90D"
    state.write_text(json.dumps(data))
    keys = """\
    typo:
      template: AuthenticatedSerch
    too-long:
      template: AnonymousSearch
      expires_at: 2031-01-01T00:00:00Z
"""
    path = write(config(server.url, keys))
    result = run("plan", "-c", str(path), env=ENV)
    assert result.exit_code == 1, result.output
    assert "Traceback" not in result.output
    assert f"{path}:12:" in result.stderr and "'AuthenticatedSerch' does not exist" in result.stderr
    assert "did you mean 'AuthenticatedSearch'?" in result.stderr
    assert f"{path}:15:" in result.stderr and "maximum lifetime P90D" in result.stderr
    assert "create" not in recorder.routes()


def test_private_addresses_are_refused_in_coveo_ip_lists(
    write: Callable[..., Path], run: Callable[..., Result]
) -> None:
    keys = """\
    k:
      privileges:
        - {owner: SEARCH_API, target_domain: EXECUTE_QUERY}
      allowed_ips: ["10.1.2.0/24", "203.0.113.7", "2001:db8::/32", "fd00::1"]
"""
    path = write(config("http://127.0.0.1:9", keys))
    result = run("validate", "-c", str(path), env=ENV)
    assert result.exit_code == 1, result.output
    assert "'10.1.2.0/24' is not a public address" in result.stderr
    assert "'fd00::1' is not a public address" in result.stderr
    assert "203.0.113.7" not in result.stderr and "2001:db8" not in result.stderr
