"""The Algolia emulator's state file: format, persistence, sharing between instances."""

from __future__ import annotations

import json
import re
import stat
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import pytest
from support import FakeClock

from keystate.emulators.algolia import AlgoliaEmulator
from keystate.emulators.http import EmuRequest

from .emu_helpers import ADMIN_KEY, APP_ID

HEADERS = [("x-algolia-application-id", APP_ID), ("x-algolia-api-key", ADMIN_KEY)]


def call(emulator: AlgoliaEmulator, method: str, target: str, body: Any = None) -> tuple[int, Any]:
    """One in-process request with the admin key; (status, parsed body)."""
    raw = b"" if body is None else json.dumps(body).encode()
    response = emulator.handle(EmuRequest.build(method, target, HEADERS, raw))
    return response.status, json.loads(response.body)


def instance(path: Path, clock: FakeClock, **kwargs: Any) -> AlgoliaEmulator:
    return AlgoliaEmulator(path, app_id=APP_ID, admin_key=ADMIN_KEY, clock=clock, **kwargs)


def test_file_is_written_on_first_write_only(tmp_path: Path, clock: FakeClock) -> None:
    path = tmp_path / "nested" / "dir" / "algolia.json"
    emulator = instance(path, clock)
    assert call(emulator, "GET", "/1/keys") == (200, {"keys": []})
    assert not path.exists()
    status, body = call(emulator, "POST", "/1/keys", {"acl": ["search"], "validity": 60})
    assert status == 200
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert stat.S_IMODE(path.with_name("algolia.json.lock").stat().st_mode) == 0o600
    assert json.loads(path.read_text()) == {
        "format": 1,
        "application_id": APP_ID,
        "admin_key": ADMIN_KEY,
        "keys": [
            {
                "value": body["key"],
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
        ],
        "deleted": [],
        "pending": [],
    }
    assert [p.name for p in path.parent.iterdir() if p.name.endswith(".tmp")] == []


def test_two_instances_share_one_file(tmp_path: Path, clock: FakeClock) -> None:
    path = tmp_path / "state.json"
    one, two = instance(path, clock), instance(path, clock)
    _, added = call(one, "POST", "/1/keys", {"acl": ["search"], "description": "shared"})
    value = added["key"]
    assert call(two, "GET", f"/1/keys/{value}")[1]["description"] == "shared"
    assert call(two, "DELETE", f"/1/keys/{value}")[0] == 200
    assert call(one, "GET", f"/1/keys/{value}")[0] == 404
    assert call(one, "POST", f"/1/keys/{value}/restore")[0] == 200  # deleted store persisted
    assert call(two, "GET", f"/1/keys/{value}")[1]["description"] == "shared"


def test_interleaved_writes_do_not_clobber_each_other(tmp_path: Path, clock: FakeClock) -> None:
    path = tmp_path / "state.json"
    one, two = instance(path, clock), instance(path, clock)
    values = {
        call(one, "POST", "/1/keys", {})[1]["key"],
        call(two, "POST", "/1/keys", {})[1]["key"],
        call(one, "POST", "/1/keys", {})[1]["key"],
    }
    for emulator in (one, two, instance(path, clock)):
        assert {k["value"] for k in call(emulator, "GET", "/1/keys")[1]["keys"]} == values


WRITER = textwrap.dedent(
    """
    import json, sys
    from pathlib import Path
    from keystate.emulators.algolia import AlgoliaEmulator
    from keystate.emulators.http import EmuRequest
    emulator = AlgoliaEmulator(Path(sys.argv[1]), app_id={app!r}, admin_key={key!r})
    headers = [("x-algolia-application-id", {app!r}), ("x-algolia-api-key", {key!r})]
    for _ in range(int(sys.argv[2])):
        response = emulator.handle(EmuRequest.build("POST", "/1/keys", headers, b"{{}}"))
        assert response.status == 200, response.body
    """
).format(app=APP_ID, key=ADMIN_KEY)


def test_concurrent_processes_lose_no_write(tmp_path: Path) -> None:
    path = tmp_path / "state.json"
    writers = [
        subprocess.Popen([sys.executable, "-c", WRITER, str(path), "60"], stderr=subprocess.PIPE)
        for _ in range(3)
    ]
    for writer in writers:
        _, err = writer.communicate(timeout=60)
        assert writer.returncode == 0, err
    assert len(json.loads(path.read_text())["keys"]) == 180


def test_expiry_and_propagation_are_absolute_and_shared(tmp_path: Path, clock: FakeClock) -> None:
    path = tmp_path / "state.json"
    lagging = instance(path, clock, propagation_delay_ms=1000)
    value = call(lagging, "POST", "/1/keys", {"validity": 100})[1]["key"]
    reader = instance(path, clock)
    assert call(reader, "GET", f"/1/keys/{value}")[0] == 404  # not propagated yet
    clock.advance(40)
    assert call(reader, "GET", f"/1/keys/{value}")[1]["validity"] == 60


def test_explicit_credentials_override_the_file(tmp_path: Path, clock: FakeClock) -> None:
    path = tmp_path / "state.json"
    call(instance(path, clock), "POST", "/1/keys", {})
    other = AlgoliaEmulator(path, app_id="OTHERAPP01", clock=clock)
    assert (other.app_id, other.admin_key) == ("OTHERAPP01", ADMIN_KEY)
    assert call(other, "GET", "/1/keys")[0] == 403  # HEADERS carry the file's app id


def test_default_credentials_are_random_and_persisted(tmp_path: Path) -> None:
    path = tmp_path / "state.json"
    first = AlgoliaEmulator(path)
    assert re.fullmatch(r"[A-Z0-9]{10}", first.app_id)
    assert re.fullmatch(r"[0-9a-f]{32}", first.admin_key)
    assert AlgoliaEmulator().admin_key != first.admin_key
    headers = [
        ("x-algolia-application-id", first.app_id),
        ("x-algolia-api-key", first.admin_key),
    ]
    assert first.handle(EmuRequest.build("POST", "/1/keys", headers, b"{}")).status == 200
    second = AlgoliaEmulator(path)
    assert (second.app_id, second.admin_key) == (first.app_id, first.admin_key)
    assert ADMIN_KEY not in repr(first) and first.admin_key not in repr(first)


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("{not json", "not a valid JSON state file"),
        ("[]", "expected a JSON object"),
        ('{"format": 2, "application_id": "A", "admin_key": "k"}', "unsupported or missing format"),
        ('{"format": 1, "admin_key": "k"}', "missing 'application_id'"),
        ('{"format": 1, "application_id": "A", "admin_key": "k", "extra": 1}', "unknown field"),
        (
            '{"format": 1, "application_id": "A", "admin_key": "k", "keys": [{"value": "v"}]}',
            "keys[0]: missing 'createdAt'",
        ),
        (
            '{"format": 1, "application_id": "A", "admin_key": "k",'
            ' "keys": [{"value": "v", "createdAt": 1, "acl": "search"}]}',
            "keys[0].acl: expected an array",
        ),
    ],
)
def test_malformed_state_file_is_a_clear_error(tmp_path: Path, content: str, message: str) -> None:
    path = tmp_path / "state.json"
    path.write_text(content)
    with pytest.raises(ValueError, match=re.escape(message)) as raised:
        AlgoliaEmulator(path)
    assert str(path) in str(raised.value)


def test_minimal_seed_file_is_accepted(tmp_path: Path, clock: FakeClock) -> None:
    path = tmp_path / "seed.json"
    seed = {
        "format": 1,
        "application_id": APP_ID,
        "admin_key": ADMIN_KEY,
        "keys": [{"value": "a" * 32, "createdAt": 1700000000, "acl": ["search"]}],
    }
    path.write_text(json.dumps(seed))
    assert call(AlgoliaEmulator(path, clock=clock), "GET", "/1/keys") == (
        200,
        {
            "keys": [
                {
                    "value": "a" * 32,
                    "createdAt": 1700000000,
                    "acl": ["search"],
                    "maxQueriesPerIPPerHour": 0,
                    "validity": 0,
                }
            ]
        },
    )
