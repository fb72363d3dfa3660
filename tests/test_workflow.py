"""Issue 15: a Terraform user's day without surprises (credential-free validate, one
expired key blocking only its account, import beside a configuration, checks before
changes, user mistakes that are no internal errors, honest plans, CLI habits)."""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path

import pytest
from click.testing import CliRunner, Result
from conftest import ADMIN_KEY, Algolia, algolia_account

from keystate.cli import cli

ROOT = Path(__file__).parent.parent


def readme_config() -> str:
    text = (ROOT / "README.md").read_text()
    match = re.search(r"```yaml\n(# keystate.yaml\n.*?)```", text, re.S)
    assert match
    return match.group(1)


# -- 1. validate needs no credentials ----------------------------------------------------
def test_validate_of_the_readme_example_needs_no_credentials(
    write: Callable[..., Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    path = write(readme_config())
    for name in ("ALGOLIA_APPLICATION_ID", "ALGOLIA_ADMIN_API_KEY", "COVEO_ACCESS_TOKEN"):
        monkeypatch.delenv(name, raising=False)
    result = CliRunner().invoke(cli, ["validate", "--strict", "-c", str(path)])
    assert result.exit_code == 0, result.output
    assert "Configuration is valid: 2 accounts, 2 keys." in result.stdout
    assert "Not checked without credentials (3;" in result.stdout
    for name in ("ALGOLIA_APPLICATION_ID", "ALGOLIA_ADMIN_API_KEY", "COVEO_ACCESS_TOKEN"):
        assert f"${{{name}}}" in result.stdout
    # --resolve-env asks for them, as plan would.
    result = CliRunner().invoke(cli, ["validate", "--resolve-env", "-c", str(path)])
    assert result.exit_code == 1
    assert "environment variable COVEO_ACCESS_TOKEN is not set" in result.stderr


def test_validate_still_checks_that_references_are_well_formed(
    run: Callable[..., Result], write: Callable[..., Path]
) -> None:
    path = write(readme_config().replace("${COVEO_ACCESS_TOKEN}", "${COVEO ACCESS}"))
    result = run("validate", "-c", str(path))
    assert result.exit_code == 1
    assert f"{path}:12:" in result.stderr
    assert "invalid variable reference" in result.stderr


def test_validate_does_not_read_missing_credential_files(
    run: Callable[..., Result], write: Callable[..., Path]
) -> None:
    path = write(
        readme_config().replace("token: ${COVEO_ACCESS_TOKEN}", "token_file: secrets/coveo-token")
    )
    result = run("validate", "-c", str(path))
    assert result.exit_code == 0, result.output
    assert "token_file secrets/coveo-token" in result.stdout
    result = run("plan", "-c", str(path), "--account", "coveo-prod")
    assert result.exit_code == 1
    assert "token_file: cannot read secrets/coveo-token" in result.stderr


# -- 2. one expired key blocks only its account ------------------------------------------
def two_accounts(algolia: Algolia, expires: str) -> str:
    return (
        "version: 1\naccounts:\n"
        + algolia_account(algolia.url)
        + algolia_account(algolia.url, "other")
        + "keys:\n  algolia-prod:\n    old:\n      acl: [search]\n"
        + f"      expires_at: {expires}\n"
        + "  other:\n    fresh: {acl: [search]}\n"
    )


def test_an_expired_key_blocks_only_its_own_account(
    algolia: Algolia, run: Callable[..., Result], write: Callable[..., Path]
) -> None:
    path = write(two_accounts(algolia, "2001-01-01T00:00:00Z"))
    where = f"{path}:21:"
    # The other account plans as if nothing happened.
    result = run("plan", "-c", str(path), "--account", "other")
    assert result.exit_code == 0, result.output
    assert 'key "other/fresh" will be created' in result.stdout or "other/fresh" in result.stdout
    assert "in the past" not in result.stderr
    # All accounts: the expired key is reported for its account, the others planned, exit 1.
    result = run("plan", "-c", str(path))
    assert result.exit_code == 1
    assert "other/fresh" in result.stdout
    assert "algolia-prod/" not in result.stdout
    assert any(where in ln and "is in the past" in ln for ln in result.stderr.splitlines()), (
        result.stderr
    )
    assert "account(s) algolia-prod not planned" in result.stderr
    # Its own account: an error, nothing read or planned for it.
    before = algolia.requests()
    result = run("plan", "-c", str(path), "--account", "algolia-prod")
    assert result.exit_code == 1
    assert where in result.stderr
    assert algolia.requests() == before
    # apply changes nothing while a selected account is blocked, and says how to go on.
    result = run("apply", "-c", str(path), "--auto-approve", "--secrets-out", "-")
    assert result.exit_code == 1
    assert "--account other" in result.stderr
    assert algolia.emulator.snapshot() == [] or all(
        "keystate:" not in k.get("description", "") for k in algolia.emulator.snapshot()
    )
    result = run(
        "apply", "-c", str(path), "--account", "other", "--auto-approve", "--secrets-out", "-"
    )
    assert result.exit_code == 0, result.output
    # validate reports it as an error of the configuration.
    result = run("validate", "-c", str(path))
    assert result.exit_code == 1
    assert where in result.stderr


def test_the_library_never_plans_an_account_with_an_expired_key(
    algolia: Algolia, write: Callable[..., Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    import keystate
    from keystate.errors import ConfigError

    monkeypatch.setenv("ALGOLIA_APPLICATION_ID", "KSTESTAPP1")
    monkeypatch.setenv("ALGOLIA_ADMIN_API_KEY", ADMIN_KEY)
    config = keystate.load_config(write(two_accounts(algolia, "2001-01-01T00:00:00Z")))
    assert list(config.blocked) == ["algolia-prod"]
    assert "old" not in config.keys["algolia-prod"]
    with pytest.raises(ConfigError):
        keystate.make_plan(config, accounts=["algolia-prod"])
    with pytest.raises(ConfigError):
        keystate.make_plan(config)
    assert keystate.make_plan(config, accounts=["other"]).has_changes
