"""Least-privilege lint: each rule fires with file:line and its id, lint_ignore silences
it, validate --strict makes it an error."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
from click.testing import Result

ALGOLIA = "version: 1\naccounts:\n  a:\n    provider: algolia\n    sandbox: s.json\nkeys:\n  a:\n"
COVEO = "version: 1\naccounts:\n  c:\n    provider: coveo\n    sandbox: c.json\nkeys:\n  c:\n"
SAFE = "      expires_at: 2099-01-01T00:00:00Z\n"


@pytest.mark.parametrize(
    ("head", "key", "rule", "line"),
    [
        (ALGOLIA, "    k:\n      acl: [addObject]\n" + SAFE, "algolia-write-without-indexes", 9),
        (ALGOLIA, "    k:\n      acl: [search]\n" + SAFE, "algolia-search-unrestricted", 9),
        (ALGOLIA, "    k:\n      acl: [browse]\n", "no-expiry", 8),
        (
            ALGOLIA,
            "    k:\n      acl: [browse]\n      indexes: ['pro*ducts']\n" + SAFE,
            "algolia-wildcard-inside",
            10,
        ),
        (ALGOLIA, "    k:\n      acl: [browse]\n      expires_at: {soon}\n", "expires-soon", 10),
        (
            COVEO,
            "    k:\n      privileges:\n        - {{owner: PLATFORM, target_domain: SOURCE, type: EDIT, target_id: '*'}}\n"
            + SAFE,
            "coveo-edit-all-targets",
            9,
        ),
        (
            COVEO,
            "    k:\n      template: AuthenticatedSearch\n" + SAFE,
            "coveo-impersonate-without-search-hub",
            8,
        ),
        (
            COVEO,
            "    k:\n      privileges:\n        - {{owner: NEW_PRODUCT, target_domain: THING}}\n"
            + SAFE,
            "coveo-unknown-owner",
            9,
        ),
    ],
)
def test_rule_fires_and_can_be_ignored(
    head: str,
    key: str,
    rule: str,
    line: int,
    write: Callable[..., Path],
    run: Callable[..., Result],
) -> None:
    from datetime import UTC, datetime, timedelta

    soon = (datetime.now(UTC) + timedelta(days=3)).strftime("%Y-%m-%dT%H:%M:%SZ")
    path = write(head + key.format(soon=soon))
    result = run("validate", "-c", str(path))
    assert result.exit_code == 0, result.stderr
    warnings = [w for w in result.stderr.splitlines() if f"[{rule}]" in w]
    assert len(warnings) == 1, result.stderr
    assert warnings[0].startswith(f"{path}:{line}:") and ": warning: " in warnings[0]
    assert run("validate", "-c", str(path), "--strict").exit_code == 1
    ignored = write(head + key.format(soon=soon) + f"      lint_ignore: [{rule}]\n")
    result = run("validate", "-c", str(ignored))
    assert f"[{rule}]" not in result.stderr


def test_unknown_lint_rule_is_an_error(
    write: Callable[..., Path], run: Callable[..., Result]
) -> None:
    path = write(ALGOLIA + "    k:\n      acl: [browse]\n      lint_ignore: [no-expiri]\n")
    result = run("validate", "-c", str(path))
    assert result.exit_code == 1
    assert "lint_ignore: unknown rule 'no-expiri'; did you mean 'no-expiry'?" in result.stderr


def test_plan_counts_lint_warnings_and_lists_them_with_v(
    write: Callable[..., Path], run: Callable[..., Result]
) -> None:
    path = write(ALGOLIA + "    k:\n      acl: [browse]\n")
    result = run("plan", "-c", str(path))
    assert result.exit_code == 0
    assert "[no-expiry]" not in result.stderr
    assert "1 configuration warning (`keystate validate` lists them" in result.stderr
    assert "[no-expiry]" in run("-v", "plan", "-c", str(path)).stderr
