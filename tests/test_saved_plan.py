"""Saved plans: plan --out, show, apply PLANFILE with stale and tamper checks."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

from algoliasearch.search.models.api_key import ApiKey
from click.testing import Result
from conftest import ADMIN_KEY, Algolia, algolia_account, official_client

HEAD = "version: 1\nowner: team\naccounts:\n{account}keys:\n  algolia-prod:\n"


def keys_yaml(spec: dict[str, str]) -> str:
    return "".join(f"    {n}:\n      acl: [{acl}]\n" for n, acl in spec.items())


def snapshot(algolia: Algolia) -> list[dict[str, object]]:
    return sorted(algolia.emulator.snapshot(), key=lambda k: str(k["value"]))


def start(
    algolia: Algolia, write: Callable[..., Path], run: Callable[..., Result], tmp_path: Path
) -> Path:
    config = write(
        HEAD.format(account=algolia_account(algolia.url))
        + keys_yaml({"a": "search", "b": "search"})
    )
    assert (
        run(
            "apply", "-c", str(config), "--auto-approve", "--secrets-out", str(tmp_path / "s")
        ).exit_code
        == 0
    )
    write(
        HEAD.format(account=algolia_account(algolia.url))
        + keys_yaml({"a": "browse", "b": "search", "c": "search"})
    )
    return config


def test_saved_plan_applies_exactly_and_converges(
    algolia: Algolia, write: Callable[..., Path], run: Callable[..., Result], tmp_path: Path
) -> None:
    config = start(algolia, write, run, tmp_path)
    planfile = tmp_path / "plan.json"
    result = run("plan", "-c", str(config), "--out", str(planfile))
    assert result.exit_code == 0
    assert "apply it with: keystate apply" in result.stderr
    assert ADMIN_KEY not in planfile.read_text()
    document = json.loads(planfile.read_text())
    assert document["accounts"][0]["settings"]["api_key"] == "${ALGOLIA_ADMIN_API_KEY}"

    shown = run("show", str(planfile))
    assert shown.exit_code == 0
    assert "Plan: 1 to create, 1 to update, 0 to adopt, 0 to replace, 0 to delete." in shown.stdout

    # The configuration changes after the plan: the saved plan still applies what was saved.
    write(
        HEAD.format(account=algolia_account(algolia.url))
        + keys_yaml({"a": "browse", "b": "search"})
    )
    result = run("apply", str(planfile), "--secrets-out", str(tmp_path / "s"))
    assert result.exit_code == 0, result.output
    assert "Apply complete: 2 change(s) made" in result.stdout
    restored = write(
        HEAD.format(account=algolia_account(algolia.url))
        + keys_yaml({"a": "browse", "b": "search", "c": "search"})
    )
    assert run("plan", "-c", str(restored), "--detailed-exitcode").exit_code == 0


def test_change_behind_our_back_makes_the_saved_plan_stale(
    algolia: Algolia, write: Callable[..., Path], run: Callable[..., Result], tmp_path: Path
) -> None:
    config = start(algolia, write, run, tmp_path)
    planfile = tmp_path / "plan.json"
    assert run("plan", "-c", str(config), "--out", str(planfile)).exit_code == 0
    client = official_client(algolia.url)
    a = next(k for k in client.list_api_keys().keys if k.description.startswith("keystate:team/a#"))  # type: ignore[attr-defined]
    client.update_api_key(a.value, ApiKey(acl=["logs"], description=a.description))  # type: ignore[attr-defined]
    before = snapshot(algolia)
    result = run("apply", str(planfile), "--secrets-out", str(tmp_path / "s"))
    assert result.exit_code == 3, result.output
    assert (
        "plan is stale: algolia-prod/a changed since the plan was made; run plan again"
        in result.stderr
    )
    assert snapshot(algolia) == before


def test_key_created_meanwhile_makes_a_create_stale(
    algolia: Algolia, write: Callable[..., Path], run: Callable[..., Result], tmp_path: Path
) -> None:
    config = start(algolia, write, run, tmp_path)
    planfile = tmp_path / "plan.json"
    assert run("plan", "-c", str(config), "--out", str(planfile)).exit_code == 0
    assert (
        run(
            "apply", "-c", str(config), "--auto-approve", "--secrets-out", str(tmp_path / "s")
        ).exit_code
        == 0
    )
    before = snapshot(algolia)
    result = run("apply", str(planfile), "--secrets-out", str(tmp_path / "s"))
    assert result.exit_code == 3
    assert "algolia-prod/c was created since the plan was made" in result.stderr
    assert "algolia-prod/a changed since" in result.stderr
    assert snapshot(algolia) == before


def test_edited_plan_file_is_refused(
    algolia: Algolia, write: Callable[..., Path], run: Callable[..., Result], tmp_path: Path
) -> None:
    config = start(algolia, write, run, tmp_path)
    planfile = tmp_path / "plan.json"
    assert run("plan", "-c", str(config), "--out", str(planfile)).exit_code == 0
    document = json.loads(planfile.read_text())
    document["changes"][0]["after"]["acl"] = ["addObject", "deleteIndex"]
    planfile.write_text(json.dumps(document))
    before = snapshot(algolia)
    result = run("apply", str(planfile), "--secrets-out", str(tmp_path / "s"))
    assert result.exit_code == 3
    assert "was edited after it was made (checksum mismatch)" in result.stderr
    assert snapshot(algolia) == before
    assert run("show", str(planfile)).exit_code == 3


def test_saved_plan_gates_still_apply(
    algolia: Algolia, write: Callable[..., Path], run: Callable[..., Result], tmp_path: Path
) -> None:
    config = start(algolia, write, run, tmp_path)
    planfile = tmp_path / "plan.json"
    assert run("plan", "-c", str(config), "--out", str(planfile)).exit_code == 0
    result = run("apply", str(planfile))
    assert result.exit_code == 3
    assert "no --secrets-out was given" in result.stderr


def test_not_a_plan_file(tmp_path: Path, run: Callable[..., Result]) -> None:
    bogus = tmp_path / "x.json"
    bogus.write_text("{}")
    result = run("apply", str(bogus))
    assert result.exit_code == 1
    assert "not a keystate plan file" in result.stderr
    bogus.write_text("garbage")
    assert run("show", str(bogus)).exit_code == 1
    result = run("apply", str(tmp_path / "missing.json"))
    assert result.exit_code == 1 and "cannot read the plan file" in result.stderr


def test_saved_plan_needs_the_credentials_from_the_environment(
    algolia: Algolia, write: Callable[..., Path], run: Callable[..., Result], tmp_path: Path
) -> None:
    config = start(algolia, write, run, tmp_path)
    planfile = tmp_path / "plan.json"
    assert run("plan", "-c", str(config), "--out", str(planfile)).exit_code == 0
    result = run(
        "apply",
        str(planfile),
        "--secrets-out",
        str(tmp_path / "s"),
        env={"ALGOLIA_ADMIN_API_KEY": ""},
    )
    assert result.exit_code == 1
    assert "comes from ${ALGOLIA_ADMIN_API_KEY}, which is not set" in result.stderr
