"""End to end, for every provider, over real HTTP against the provider's emulator:
plan -> apply -> plan is empty; drift is found and repaired; a removed key is deleted;
unmanaged keys are never touched. The emulator's stored state is the observer."""

from __future__ import annotations

import json
import os
import re
import stat
from collections.abc import Callable
from pathlib import Path
from typing import Any

from click.testing import Result
from support import Servers

from keystate.model import parse_description

from .harness import Harness, Running, markers


def config_text(harness: Harness, url: str, names: list[str]) -> str:
    keys = "".join(harness.key_yaml(n) for n in names)
    return (
        f"version: 1\nowner: search-team\naccounts:\n{harness.account_yaml(url)}"
        f"keys:\n  {harness.account}:\n{keys}"
    )


def unmanaged(harness: Harness, running: Running) -> dict[str, dict[str, Any]]:
    return {
        harness.value_of(k): k
        for k in harness.stored(running)
        if parse_description(str(k.get("description") or ""))[1] is None
    }


def test_plan_apply_drift_repair_delete(
    harness: Harness,
    serve: Servers,
    write: Callable[..., Path],
    run: Callable[..., Result],
    tmp_path: Path,
) -> None:
    running = harness.start(serve)
    harness.add_unmanaged(running, "legacy frontend")
    harness.add_unmanaged(running, "partner feed")
    before = unmanaged(harness, running)
    assert len(before) == 2

    names = ["storefront", "crawler", "analytics"]
    config = write(config_text(harness, running.url, names))
    secrets = tmp_path / "new-keys.jsonl"
    account = harness.account

    result = run("plan", "-c", str(config), "--detailed-exitcode", env=harness.env)
    assert result.exit_code == 2, result.output
    assert "Plan: 3 to create, 0 to update, 0 to adopt, 0 to replace, 0 to delete." in result.stdout
    assert f"{account}: 2 unmanaged keys" in result.stdout

    result = run(
        "apply", "-c", str(config), "--auto-approve", "--secrets-out", str(secrets), env=harness.env
    )
    assert result.exit_code == 0, result.output
    assert "Apply complete: 3 change(s) made" in result.stdout
    assert stat.S_IMODE(os.stat(secrets).st_mode) == 0o600
    delivered = {d["name"]: d["value"] for d in map(json.loads, secrets.read_text().splitlines())}
    assert sorted(delivered) == sorted(names)
    live = {
        parse_description(str(k["description"]))[1].name: k  # type: ignore[union-attr]
        for k in harness.stored(running)
        if parse_description(str(k.get("description") or ""))[1] is not None
    }
    assert sorted(live) == sorted(names)
    assert all(delivered[n] == harness.value_of(live[n]) for n in names)
    assert all(
        re.fullmatch(
            rf"key {n} keystate:search-team/{n}#[0-9a-f]{{8}}", str(live[n]["description"])
        )
        for n in names
    )

    result = run("plan", "-c", str(config), "--detailed-exitcode", env=harness.env)
    assert result.exit_code == 0, result.output
    assert "No changes. Live keys match the configuration." in result.stdout

    # A change behind keystate's back is drift: plan exits 2, apply repairs it in place.
    harness.drift(running, "crawler")
    result = run("plan", "-c", str(config), "--detailed-exitcode", env=harness.env)
    assert result.exit_code == 2, result.output
    assert f"# {account}/crawler will be updated in-place" in result.stdout
    assert "Plan: 0 to create, 1 to update" in result.stdout
    result = run("apply", "-c", str(config), "--auto-approve", env=harness.env)
    assert result.exit_code == 0, result.output
    assert run("plan", "-c", str(config), "--detailed-exitcode", env=harness.env).exit_code == 0
    # Repaired in place: same key, same value.
    repaired = [k for k in harness.stored(running) if "/crawler" in str(k.get("description"))]
    assert [harness.value_of(k) for k in repaired] == [delivered["crawler"]]

    # Removing a key from the configuration deletes it (1 of 3 managed: under the ratio).
    write(config_text(harness, running.url, names[:2]))
    result = run("plan", "-c", str(config), env=harness.env)
    assert f"# {account}/analytics will be deleted" in result.stdout
    result = run("apply", "-c", str(config), "--auto-approve", env=harness.env)
    assert result.exit_code == 0, result.output
    assert sorted(n for n, _ in markers(harness, running)) == sorted(names[:2])
    assert run("plan", "-c", str(config), "--detailed-exitcode", env=harness.env).exit_code == 0

    # Unmanaged keys were never touched, byte for byte.
    assert unmanaged(harness, running) == before
