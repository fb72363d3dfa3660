"""Coveo-specific behaviour over real HTTP against the Coveo emulator: the live
privileges check in plan, create-only fields planned as a replace whose new value is
delivered before the old key goes, the `removal: disable` policy, and templates."""

from __future__ import annotations

import dataclasses
import json
import os
import re
import signal
import stat
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest
from click.testing import Result
from support import Servers

from keystate.emulators.coveo import CoveoEmulator
from keystate.emulators.http import EmuRequest, EmuResponse, RunningServer
from keystate.model import parse_description

ORG = "acmeprod"
TOKEN = "xcoveotesttoken0000000000000000c"
ENV = {"COVEO_ACCESS_TOKEN": TOKEN}


@dataclass
class Recording:
    """The emulator, wrapped to record the order of write requests and, at each DELETE,
    what the secrets sink held at that moment."""

    app: CoveoEmulator
    sink: Path | None = None
    writes: list[str] = field(default_factory=list)
    sink_at_delete: list[str] = field(default_factory=list)
    lose_creates: int = 0  # commit this many creates, then answer 500 (ambiguous)
    lifetime_cap: str | None = None  # store creates with this lifetime (a server cap)

    def route_name(self, request: EmuRequest) -> str:
        return self.app.route_name(request)

    def fault_response(self, status: int, retry_after: float | None) -> EmuResponse:
        return self.app.fault_response(status, retry_after)

    def handle(self, request: EmuRequest) -> EmuResponse:
        if request.method != "GET":
            self.writes.append(f"{request.method} {self.route_name(request)}")
        if request.method == "DELETE" and self.sink is not None:
            self.sink_at_delete.append(self.sink.read_text() if self.sink.exists() else "")
        if self.lifetime_cap and self.route_name(request) == "create":
            body = json.loads(request.body)
            body["lifetimeDuration"] = self.lifetime_cap
            request = dataclasses.replace(request, body=json.dumps(body).encode())
        reply = self.app.handle(request)
        if self.route_name(request) == "create" and self.lose_creates > 0:
            self.lose_creates -= 1
            return self.app.fault_response(500, None)
        return reply


@pytest.fixture
def coveo(serve: Servers) -> tuple[Recording, RunningServer]:
    recording = Recording(CoveoEmulator(organization_id=ORG, token=TOKEN))
    return recording, serve(recording)


def config(url: str, keys: str, extra: str = "") -> str:
    return (
        "version: 1\nowner: web\naccounts:\n  coveo-prod:\n    provider: coveo\n"
        f"    organization_id: {ORG}\n    token: ${{COVEO_ACCESS_TOKEN}}\n"
        f"    base_url: {url}\n{extra}keys:\n  coveo-prod:\n{keys}"
    )


SITE = """\
    site-search:
      description: Public site search
      privileges:
        - {owner: SEARCH_API, target_domain: EXECUTE_QUERY}
        - {owner: USAGE_ANALYTICS, target_domain: ANALYTICS_DATA, type: EDIT}
      allowed_ips: ["203.0.113.0/24"]
      search_hub: website
      expires_at: %s
"""


def managed(app: CoveoEmulator) -> dict[str, dict[str, Any]]:
    out = {}
    for key in app.snapshot():
        marker = parse_description(str(key.get("description") or ""))[1]
        if marker is not None:
            out[key["id"]] = key
    return out


def test_a_misspelled_privilege_fails_plan_with_line_org_and_suggestion(
    coveo: tuple[Recording, RunningServer], write: Callable[..., Path], run: Callable[..., Result]
) -> None:
    recording, server = coveo
    keys = """\
    analytics-push:
      privileges:
        - {owner: USAGE_ANALYTICS, target_domain: ANALYTICS_DATA, type: EDIT}
        - {owner: USAGE_ANALYTICS, target_domain: ANALYTICS_DAT, type: EDIT}
      expires_at: 2031-01-01T00:00:00Z
"""
    path = write(config(server.url, keys))
    for command in (("plan",), ("apply", "--auto-approve")):
        result = run(*command, "-c", str(path), env=ENV)
        assert result.exit_code == 1, result.output
        assert "Traceback" not in result.output + result.stderr
        assert f"{path}:14:" in result.stderr  # the line of the misspelled privilege
        assert ORG in result.stderr
        assert "USAGE_ANALYTICS/ANALYTICS_DATA/EDIT" in result.stderr  # the suggestion
        assert "ANALYTICS_DAT/EDIT" in result.stderr
    assert recording.writes == []  # no write request was sent
    assert {route for _, route in server.counters.by_route} <= {"list", "privileges"}


def test_impersonate_on_a_custom_key_is_refused_in_plan(
    coveo: tuple[Recording, RunningServer], write: Callable[..., Path], run: Callable[..., Result]
) -> None:
    recording, server = coveo
    keys = """\
    impersonator:
      privileges:
        - {owner: SEARCH_API, target_domain: IMPERSONATE}
      search_hub: portal
      expires_at: 2031-01-01T00:00:00Z
"""
    result = run("plan", "-c", str(write(config(server.url, keys))), env=ENV)
    assert result.exit_code == 1, result.output
    assert "SEARCH_API/IMPERSONATE cannot be granted to custom keys" in result.stderr
    assert recording.writes == []


def test_changing_expires_at_replaces_the_key_new_value_first(
    coveo: tuple[Recording, RunningServer],
    write: Callable[..., Path],
    run: Callable[..., Result],
    tmp_path: Path,
) -> None:
    recording, server = coveo
    secrets = tmp_path / "secrets.jsonl"
    recording.sink = secrets
    path = write(config(server.url, SITE % "2031-01-01T00:00:00Z"))
    result = run("apply", "-c", str(path), "--auto-approve", "--secrets-out", str(secrets), env=ENV)
    assert result.exit_code == 0, result.output
    (old_id, old), *_ = managed(recording.app).items()
    first_value = json.loads(secrets.read_text())["value"]

    write(config(server.url, SITE % "2032-06-30T00:00:00Z"))
    result = run("plan", "-c", str(path), "--detailed-exitcode", env=ENV)
    assert result.exit_code == 2, result.output
    out = result.stdout
    assert "# coveo-prod/site-search must be replaced" in out
    assert "(the key value changes)" in out
    assert "# forces replacement" in out
    assert "Plan: 0 to create, 0 to update, 0 to adopt, 1 to replace, 0 to delete." in out
    plan_json = json.loads(run("plan", "-c", str(path), "--format", "json", env=ENV).stdout)
    (change,) = plan_json["changes"]
    assert change["action"] == "replace" and change["forces_replacement"] == ["expires_at"]

    # Without a secrets sink, a replace is refused before anything changes.
    recording.writes.clear()
    result = run("apply", "-c", str(path), "--auto-approve", env=ENV)
    assert result.exit_code == 3, result.output
    assert recording.writes == []

    result = run("apply", "-c", str(path), "--auto-approve", "--secrets-out", str(secrets), env=ENV)
    assert result.exit_code == 0, result.output
    (new_id, new), *rest = managed(recording.app).items()
    assert rest == [] and new_id != old_id
    delivered = [json.loads(line) for line in secrets.read_text().splitlines()]
    assert [d["value"] for d in delivered] == [first_value, new["value"]]
    # The old key was deleted only once the new value was in the sink.
    assert recording.writes.index("POST create") < recording.writes.index("DELETE delete")
    (at_delete,) = recording.sink_at_delete
    assert new["value"] in at_delete
    assert new["expiration_ms"] != old["expiration_ms"]
    assert run("plan", "-c", str(path), "--detailed-exitcode", env=ENV).exit_code == 0


def test_ambiguous_creates_with_lagging_reads_leave_no_duplicate(
    serve: Servers, write: Callable[..., Path], run: Callable[..., Result], tmp_path: Path
) -> None:
    # Two creates commit but answer 500, and reads lag writes by 300 ms: after deleting
    # the first orphan, a lagging list still shows it; taking it for the second try's
    # key would leave the second orphan behind next to the key finally created.
    app = CoveoEmulator(organization_id=ORG, token=TOKEN, propagation_delay_ms=300)
    recording = Recording(app, lose_creates=2)
    secrets = tmp_path / "s.jsonl"
    server = serve(recording)
    path = write(config(server.url, SITE % "2031-01-01T00:00:00Z"))
    result = run("apply", "-c", str(path), "--auto-approve", "--secrets-out", str(secrets), env=ENV)
    assert result.exit_code == 0, result.output
    assert recording.writes.count("POST create") == 3
    (key,) = managed(app).values()  # the primary: no orphan left behind
    assert [json.loads(line)["value"] for line in secrets.open()] == [key["value"]]


def test_a_lifetime_the_server_caps_is_reported_not_done(
    coveo: tuple[Recording, RunningServer],
    write: Callable[..., Path],
    run: Callable[..., Result],
    tmp_path: Path,
) -> None:
    # If Coveo stores a shorter lifetime than asked, the next plan would replace the key
    # (a new value) on every run: apply says so instead of reporting the create done.
    recording, server = coveo
    recording.lifetime_cap = "P30D"
    secrets = tmp_path / "s.jsonl"
    path = write(config(server.url, SITE % "2031-01-01T00:00:00Z"))
    result = run("apply", "-c", str(path), "--auto-approve", "--secrets-out", str(secrets), env=ENV)
    assert result.exit_code == 1, result.output
    assert "created and its value delivered, but Coveo stored expires_at = " in result.output
    assert 'instead of "2031-01-01T00:00:00Z"' in result.output
    (key,) = managed(recording.app).values()
    assert [json.loads(line)["value"] for line in secrets.open()] == [key["value"]]


def test_removal_disable_policy_disables_instead_of_deleting(
    coveo: tuple[Recording, RunningServer],
    write: Callable[..., Path],
    run: Callable[..., Result],
    tmp_path: Path,
) -> None:
    recording, server = coveo
    secrets = tmp_path / "s.jsonl"
    path = write(config(server.url, SITE % "2031-01-01T00:00:00Z", "    removal: disable\n"))
    assert run("apply", "-c", str(path), "--auto-approve", "--secrets-out", str(secrets), env=ENV)
    write(config(server.url, "    {}\n", "    removal: disable\n").replace("    {}\n", ""))
    result = run("plan", "-c", str(path), env=ENV)
    assert "# coveo-prod/site-search will be disabled" in result.stdout, result.output
    assert "0 to delete, 1 to disable." in result.stdout
    result = run("apply", "-c", str(path), "--auto-approve", env=ENV)
    assert result.exit_code == 0, result.output
    (key,) = managed(recording.app).values()
    assert key["enabled"] is False
    assert "PUT disable" in recording.writes and "DELETE delete" not in recording.writes
    # A disabled, undeclared key is already removed: nothing more to do.
    assert run("plan", "-c", str(path), "--detailed-exitcode", env=ENV).exit_code == 0


def test_a_key_made_from_a_template(
    coveo: tuple[Recording, RunningServer],
    write: Callable[..., Path],
    run: Callable[..., Result],
    tmp_path: Path,
) -> None:
    recording, server = coveo
    keys = """\
    portal:
      description: Authenticated portal search
      template: AuthenticatedSearch
      search_hub: portal
      expires_at: 2031-01-01T00:00:00Z
"""
    path = write(config(server.url, keys))
    secrets = tmp_path / "s.jsonl"
    result = run("apply", "-c", str(path), "--auto-approve", "--secrets-out", str(secrets), env=ENV)
    assert result.exit_code == 0, result.output
    (key,) = managed(recording.app).values()
    assert key["template_id"] == "AuthenticatedSearch"
    assert key["display_name"] == "portal"
    assert {p["targetDomain"] for p in key["privileges"]} >= {"IMPERSONATE"}
    assert run("plan", "-c", str(path), "--detailed-exitcode", env=ENV).exit_code == 0


def test_emulator_command_serves_coveo_until_sigterm(
    write: Callable[..., Path], run: Callable[..., Result], tmp_path: Path
) -> None:
    state = tmp_path / "coveo-state.json"
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "keystate",
            "emulator",
            "coveo",
            "--port",
            "0",
            "--org",
            ORG,
            "--region",
            "eu",
            "--state",
            str(state),
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env={**os.environ, "KEYSTATE_EMULATOR_TOKEN": TOKEN},
        text=True,
    )
    try:
        line = proc.stdout.readline() if proc.stdout else ""
        match = re.search(r"listening on (http://127\.0\.0\.1:\d+)", line)
        assert match, line
        url = match.group(1)
        path = write(
            config(url, SITE % "2031-01-01T00:00:00Z").replace(
                f"    organization_id: {ORG}\n", f"    organization_id: {ORG}\n    region: eu\n"
            )
        )
        secrets = tmp_path / "s.jsonl"
        result = run(
            "apply", "-c", str(path), "--auto-approve", "--secrets-out", str(secrets), env=ENV
        )
        assert result.exit_code == 0, result.output
        assert run("plan", "-c", str(path), "--detailed-exitcode", env=ENV).exit_code == 0
        # The platform host of another region is refused the way Coveo does it.
        wrong = httpx.get(
            f"{url}/rest/organizations/{ORG}/apikeys",
            headers={"authorization": f"Bearer {TOKEN}", "host": "platform.cloud.coveo.com"},
        )
        assert wrong.status_code == 400 and wrong.json()["errorCode"] == "INVALID_REQUEST"
        assert "eu-west-1" in wrong.json()["message"]
    finally:
        proc.send_signal(signal.SIGTERM)
        _, err = proc.communicate(timeout=10)
    assert proc.returncode == 0
    assert TOKEN not in line + err
    assert stat.S_IMODE(state.stat().st_mode) == 0o600
    assert len(json.loads(state.read_text())["keys"]) == 1
