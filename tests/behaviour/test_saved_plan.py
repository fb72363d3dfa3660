"""Saved plans, for every provider: a change behind keystate's back between `plan --out`
and `apply PLANFILE` is refused (exit 3, nothing changed), an edited plan file is
refused, and an untouched one applies exactly and converges."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

from click.testing import Result
from support import Servers

from .harness import Harness


def test_stale_and_edited_plans_are_refused_untouched_ones_apply(
    harness: Harness,
    serve: Servers,
    write: Callable[..., Path],
    run: Callable[..., Result],
    tmp_path: Path,
) -> None:
    running = harness.start(serve)
    secrets = tmp_path / "s.jsonl"

    def config_for(names: list[str], variant: int = 0) -> Path:
        keys = "".join(harness.key_yaml(n, variant) for n in names)
        return write(
            f"version: 1\nowner: ops\naccounts:\n{harness.account_yaml(running.url)}"
            f"keys:\n  {harness.account}:\n{keys}"
        )

    config = config_for(["a", "b"])
    env = harness.env
    assert run("apply", "-c", str(config), "--auto-approve", "--secrets-out", str(secrets), env=env)
    config_for(["a", "b", "c"], variant=1)  # update a and b, create c
    planfile = tmp_path / "plan.json"
    assert run("plan", "-c", str(config), "--out", str(planfile), env=env).exit_code == 0

    # Someone edits key a in the console: the saved plan is stale.
    harness.drift(running, "a")
    before = harness.stored(running)
    result = run("apply", str(planfile), "--secrets-out", str(secrets), env=env)
    assert result.exit_code == 3, result.output
    assert f"plan is stale: {harness.account}/a changed since the plan was made" in result.stderr
    assert harness.stored(running) == before

    # A fresh plan, then edited by hand: refused by its checksum.
    assert run("plan", "-c", str(config), "--out", str(planfile), env=env).exit_code == 0
    document = json.loads(planfile.read_text())
    document["changes"][0]["action"] = "delete"
    edited = tmp_path / "edited.json"
    edited.write_text(json.dumps(document))
    result = run("apply", str(edited), "--secrets-out", str(secrets), env=env)
    assert result.exit_code == 3, result.output
    assert "checksum mismatch" in result.stderr
    assert harness.stored(running) == before

    # The untouched plan applies exactly what it says; the next plan is empty.
    result = run("apply", str(planfile), "--secrets-out", str(secrets), env=env)
    assert result.exit_code == 0, result.output
    assert "Apply complete: 3 change(s) made" in result.stdout
    assert run("plan", "-c", str(config), "--detailed-exitcode", env=env).exit_code == 0
