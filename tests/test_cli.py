"""The command line as a person meets it: the confirmation prompt on a real terminal,
the emulator command, privileges, quiet and colour."""

from __future__ import annotations

import os
import pty
import re
import select
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import httpx
from click.testing import Result
from conftest import ADMIN_KEY, CREDENTIALS, Algolia, algolia_account

KEYSTATE = [sys.executable, "-m", "keystate"]


def config_for(algolia: Algolia) -> str:
    return f"version: 1\naccounts:\n{algolia_account(algolia.url)}keys:\n  algolia-prod:\n    a: {{acl: [search]}}\n"


def apply_on_a_terminal(config: Path, answer: str, tmp_path: Path) -> tuple[int, str]:
    """Run apply with stdin on a pseudo-terminal and type ``answer`` at the prompt."""
    master, slave = pty.openpty()
    env = {**os.environ, **CREDENTIALS}
    proc = subprocess.Popen(
        [*KEYSTATE, "apply", "-c", str(config), "--secrets-out", str(tmp_path / "s")],
        stdin=slave,
        stdout=subprocess.PIPE,
        stderr=slave,
        env=env,
    )
    os.close(slave)
    seen = b""
    deadline = time.monotonic() + 30
    while b"Enter a value" not in seen and time.monotonic() < deadline:
        ready, _, _ = select.select([master], [], [], 0.5)
        if ready:
            seen += os.read(master, 4096)
    os.write(master, answer.encode() + b"\n")
    out, _ = proc.communicate(timeout=30)
    while True:
        ready, _, _ = select.select([master], [], [], 0.2)
        if not ready:
            break
        try:
            chunk = os.read(master, 4096)
        except OSError:
            break
        if not chunk:
            break
        seen += chunk
    os.close(master)
    return proc.returncode, out.decode() + seen.decode(errors="replace")


def test_prompt_accepts_only_yes(
    algolia: Algolia, write: Callable[..., Path], tmp_path: Path
) -> None:
    config = write(config_for(algolia))
    code, output = apply_on_a_terminal(config, "y", tmp_path)
    assert code == 1, output
    assert "Only 'yes' will be accepted" in output
    assert "Apply cancelled; nothing was changed." in output
    assert algolia.emulator.snapshot() == []
    # Ctrl-D at the prompt: cancelled, and it says nothing was changed.
    code, output = apply_on_a_terminal(config, "\x04", tmp_path)
    assert code == 1, output
    assert "Apply cancelled; nothing was changed." in output
    assert "Aborted" not in output
    assert algolia.emulator.snapshot() == []
    code, output = apply_on_a_terminal(config, "yes", tmp_path)
    assert code == 0, output
    assert "Apply complete: 1 change(s) made" in output
    assert len(algolia.emulator.snapshot()) == 1


def test_emulator_command_serves_until_sigterm(tmp_path: Path) -> None:
    env = {**os.environ, "KEYSTATE_EMULATOR_ADMIN_KEY": ADMIN_KEY}
    proc = subprocess.Popen(
        [*KEYSTATE, "emulator", "algolia", "--port", "0", "--app-id", "EMUAPP0001"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=env,
        text=True,
    )
    try:
        line = proc.stdout.readline() if proc.stdout else ""
        match = re.search(r"listening on (http://127\.0\.0\.1:\d+)", line)
        assert match, line
        response = httpx.get(
            match.group(1) + "/1/keys",
            headers={"x-algolia-application-id": "EMUAPP0001", "x-algolia-api-key": ADMIN_KEY},
        )
        assert response.json() == {"keys": []}
    finally:
        proc.send_signal(signal.SIGTERM)
        _, err = proc.communicate(timeout=10)
    assert proc.returncode == 0
    assert ADMIN_KEY not in line + err


def test_emulator_command_needs_a_knowable_admin_key(run: Callable[..., Result]) -> None:
    result = run("emulator", "algolia", "--port", "0")
    assert result.exit_code == 1
    assert "KEYSTATE_EMULATOR_ADMIN_KEY" in result.stderr


def test_emulator_command_rejects_bad_faults(run: Callable[..., Result]) -> None:
    result = run(
        "emulator", "algolia", "--faults", "500=2", env={"KEYSTATE_EMULATOR_ADMIN_KEY": ADMIN_KEY}
    )
    assert result.exit_code == 1
    assert "--faults:" in result.stderr


def test_privileges_lists_algolia_acls(
    algolia: Algolia, write: Callable[..., Path], run: Callable[..., Result]
) -> None:
    config = write(config_for(algolia))
    result = run("privileges", "algolia-prod", "-c", str(config))
    assert result.exit_code == 0
    assert re.search(r"^search\s+search$", result.stdout, re.M)
    assert "editSettings" in result.stdout
    result = run("privileges", "algolia-prod", "-c", str(config), "--format", "json")
    assert {"name": "addObject", "doc": "add or update records"} in __import__("json").loads(
        result.stdout
    )
    assert run("privileges", "nope", "-c", str(config)).exit_code == 1
    assert algolia.requests() == 0  # Algolia's ACLs are known offline


def test_quiet_hides_warnings_but_not_errors(
    write: Callable[..., Path], run: Callable[..., Result]
) -> None:
    config = write(
        "version: 1\naccounts:\n  a:\n    provider: algolia\n    application_id: X\n    api_key: literalkey1234567\n"
    )
    loud = run("validate", "-c", str(config))
    assert "warning: api_key is written in the configuration file" in loud.stderr
    quiet = run("-q", "validate", "-c", str(config))
    assert quiet.exit_code == 0 and "warning" not in quiet.stderr
    strict = run("validate", "-c", str(config), "--strict")
    assert strict.exit_code == 1 and "error: api_key is written" in strict.stderr
    assert "literalkey1234567" not in loud.output + loud.stderr + strict.stderr


def test_version(run: Callable[..., Result]) -> None:
    result = run("--version")
    assert result.exit_code == 0 and "keystate, version" in result.stdout
