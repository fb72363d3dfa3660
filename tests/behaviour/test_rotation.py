"""The key lifecycle end to end, for every provider, over real HTTP against its
emulator (DESIGN §11): a scheduled rotation with an overlap, a break-glass replace,
rename and forget. The emulator's stored state is the observer; its clock makes a key
old (created while the clock is set back) and lets the overlap pass."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from click.testing import Result
from support import Servers

import keystate.cli.lifecycle
from keystate.model import Marker, parse_description

from .harness import Harness, Running

DAY = 86400.0


class Clock:
    """The emulator's clock: real time plus an offset the test moves."""

    def __init__(self) -> None:
        self.offset = 0.0

    def __call__(self) -> float:
        return time.time() + self.offset


def config(harness: Harness, url: str, keys: str, top: str = "") -> str:
    return (
        f"version: 1\nowner: search-team\n{top}accounts:\n{harness.account_yaml(url)}"
        f"keys:\n  {harness.account}:\n{keys}"
    )


def managed(harness: Harness, running: Running) -> list[tuple[Marker, dict[str, Any]]]:
    out = []
    for key in harness.stored(running):
        marker = parse_description(str(key.get("description") or ""))[1]
        if marker is not None:
            out.append((marker, key))
    return out


def delivered(path: Path) -> list[dict[str, Any]]:
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text().splitlines()]


def old_key(
    harness: Harness,
    serve: Servers,
    write: Callable[..., Path],
    run: Any,
    rotate: str,
    lifetime: str = "",
) -> tuple[Running, Clock, Path, str]:
    """An account with one managed key created 100 days ago (by the emulator's clock, as
    a state file with an old creation time would have it); its config; its value."""
    clock = Clock()
    running = harness.start(serve, clock=clock)
    path = write(config(harness, running.url, harness.lifecycle_key_yaml("search")))
    clock.offset = -100 * DAY
    first = path.parent / "first.jsonl"
    result = run("apply", "-c", str(path), "--auto-approve", "--secrets-out", str(first))
    assert result.exit_code == 0, result.output
    clock.offset = 0
    (value,) = [d["value"] for d in delivered(first)]
    path.write_text(
        config(harness, running.url, harness.lifecycle_key_yaml("search", rotate, lifetime))
    )
    return running, clock, path, value


def test_scheduled_rotation_with_overlap(
    harness: Harness,
    serve: Servers,
    write: Callable[..., Path],
    run: Callable[..., Result],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    env = harness.env
    running, clock, path, old = old_key(
        harness,
        serve,
        write,
        lambda *a: run(*a, env=env),
        "{every: 90d, overlap: 1h}",
        lifetime="180d",
    )
    address = f"{harness.account}/search"
    result = run("plan", "-c", str(path), "--detailed-exitcode", env=env)
    assert result.exit_code == 2, result.output
    assert f"# {address} will be rotated" in result.stdout
    assert "age 100d >= every 90d" in result.stdout
    assert "keeps working for 1h after the new value is delivered" in result.stdout
    assert "1 to rotate." in result.stdout

    secrets = path.parent / "new.jsonl"
    result = run("apply", "-c", str(path), "--auto-approve", "--secrets-out", str(secrets), env=env)
    assert result.exit_code == 0, result.output
    (new,) = [d["value"] for d in delivered(secrets)]
    keys = managed(harness, running)
    assert len(keys) == 2
    retiring = [m for m, k in keys if m.retire_at is not None]
    assert [harness.value_of(k) for m, k in keys if m.retire_at is not None] == [old]
    assert [harness.value_of(k) for m, k in keys if m.retire_at is None] == [new]
    assert not any(m.pending for m, _ in keys)
    # During the overlap both keys work, and the plan is empty but says when it ends.
    assert harness.authenticates(running, old) and harness.authenticates(running, new)
    result = run("plan", "-c", str(path), "--detailed-exitcode", env=env)
    assert result.exit_code == 0, result.output
    assert f"{address} (" in result.stdout and "retires in" in result.stdout
    # import --all lists the key once: the retiring one is on its way out.
    result = run("import", harness.account, "--all", "-c", str(path), env=env)
    assert result.exit_code == 0, result.output
    assert result.stdout.count("    search:\n") == 1

    # After the overlap: Algolia has expired the key by its own validity; on Coveo the
    # next run retires it.
    later = datetime.now(UTC) + timedelta(hours=2)
    clock.offset = 2 * 3600
    monkeypatch.setattr(keystate.cli.lifecycle, "now", lambda: later)
    assert retiring[0].retire_at is not None and retiring[0].retire_at < later
    if harness.provider == "algolia":
        assert not harness.authenticates(running, old)
        result = run("plan", "-c", str(path), "--detailed-exitcode", env=env)
        assert result.exit_code == 0, result.output
    else:
        assert harness.authenticates(running, old)
        result = run("plan", "-c", str(path), "--detailed-exitcode", env=env)
        assert result.exit_code == 2, result.output
        assert f"# {address} will be retired" in result.stdout
        assert "1 to retire." in result.stdout
        result = run("apply", "-c", str(path), "--auto-approve", env=env)
        assert result.exit_code == 0, result.output
        assert not harness.authenticates(running, old)
    assert harness.authenticates(running, new)
    assert [harness.value_of(k) for _, k in managed(harness, running)] == [new]
    result = run("plan", "-c", str(path), "--detailed-exitcode", env=env)
    assert result.exit_code == 0, result.output
    assert "retires in" not in result.stdout


def test_replace_without_overlap(
    harness: Harness,
    serve: Servers,
    write: Callable[..., Path],
    run: Callable[..., Result],
) -> None:
    env = harness.env
    running, _, path, old = old_key(harness, serve, write, lambda *a: run(*a, env=env), "")
    address = f"{harness.account}/search"
    assert run("plan", "-c", str(path), "--detailed-exitcode", env=env).exit_code == 0
    result = run("plan", "-c", str(path), "--replace", address, env=env)
    assert result.exit_code == 0, result.output
    assert f"# {address} will be rotated" in result.stdout
    assert "retired as soon as the new value is delivered" in result.stdout
    # No sink: refused, nothing changed.
    result = run("apply", "-c", str(path), "--auto-approve", "--replace", address, env=env)
    assert result.exit_code == 3, result.output
    assert [harness.value_of(k) for _, k in managed(harness, running)] == [old]

    secrets = path.parent / "new.jsonl"
    result = run(
        "apply",
        "-c",
        str(path),
        "--auto-approve",
        "--replace",
        address,
        "--secrets-out",
        str(secrets),
        env=env,
    )
    assert result.exit_code == 0, result.output
    (new,) = [d["value"] for d in delivered(secrets)]
    assert [harness.value_of(k) for _, k in managed(harness, running)] == [new]
    assert not harness.authenticates(running, old)
    assert harness.authenticates(running, new)
    assert run("plan", "-c", str(path), "--detailed-exitcode", env=env).exit_code == 0


def test_replace_names_an_unknown_key(
    harness: Harness,
    serve: Servers,
    write: Callable[..., Path],
    run: Callable[..., Result],
) -> None:
    running = harness.start(serve)
    path = write(config(harness, running.url, harness.lifecycle_key_yaml("search")))
    result = run("plan", "-c", str(path), "--replace", f"{harness.account}/nope", env=harness.env)
    assert result.exit_code == 1
    assert "--replace" in result.output and "Traceback" not in result.output
    result = run("plan", "-c", str(path), "--overlap", "7x", env=harness.env)
    assert result.exit_code == 1 and "--overlap" in result.output


def test_rename_keeps_the_value_and_forget_leaves_the_key_live(
    harness: Harness,
    serve: Servers,
    write: Callable[..., Path],
    run: Callable[..., Result],
) -> None:
    env = harness.env
    running = harness.start(serve)
    path = write(config(harness, running.url, harness.lifecycle_key_yaml("search")))
    secrets = path.parent / "new.jsonl"
    result = run("apply", "-c", str(path), "--auto-approve", "--secrets-out", str(secrets), env=env)
    assert result.exit_code == 0, result.output
    ((marker, key),) = managed(harness, running)
    value = harness.value_of(key)

    renamed = harness.lifecycle_key_yaml("site-search") + "      previously: [search]\n"
    path.write_text(config(harness, running.url, renamed))
    result = run("plan", "-c", str(path), "--detailed-exitcode", env=env)
    assert result.exit_code == 2, result.output
    assert f"# {harness.account}/site-search will be renamed" in result.stdout
    assert "renamed from search" in result.stdout and "1 to rename." in result.stdout
    result = run("apply", "-c", str(path), "--auto-approve", env=env)
    assert result.exit_code == 0, result.output
    ((marker, key),) = managed(harness, running)
    assert marker.name == "site-search" and harness.value_of(key) == value
    result = run("plan", "-c", str(path), "--detailed-exitcode", env=env)
    assert result.exit_code == 0, result.output
    assert "previously: search matches no managed key" in result.output  # a warning

    forget = f"forget: [{harness.account}/site-search]\n"
    path.write_text(config(harness, running.url, "", top=forget))
    result = run("plan", "-c", str(path), "--detailed-exitcode", env=env)
    assert result.exit_code == 2, result.output
    assert f"# {harness.account}/site-search will be forgotten" in result.stdout
    assert "1 to forget." in result.stdout
    result = run("apply", "-c", str(path), "--auto-approve", env=env)
    assert result.exit_code == 0, result.output
    assert managed(harness, running) == []
    (key,) = harness.stored(running)
    assert harness.value_of(key) == value and key["description"] == "key site-search"
    assert harness.authenticates(running, value)
    result = run("plan", "-c", str(path), "--detailed-exitcode", env=env)
    assert result.exit_code == 0, result.output
    assert f"{harness.account}: 1 unmanaged key" in result.stdout
    assert delivered(secrets) and len(delivered(secrets)) == 1  # nothing delivered again
