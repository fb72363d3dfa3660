"""Safety gates: refuse with exit 3 and change nothing; confirmation; protected keys;
the credential is never touched; unmanaged and foreign keys are left alone."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

from algoliasearch.search.models.api_key import ApiKey
from click.testing import Result
from conftest import Algolia, algolia_account, official_client

HEAD = "version: 1\nowner: team\naccounts:\n{account}keys:\n  algolia-prod:\n"


def keys_yaml(names: list[str], protect: str = "") -> str:
    out = ""
    for n in names:
        out += f"    {n}:\n      acl: [search]\n"
        if n == protect:
            out += "      protect: true\n"
    return out


def setup(
    algolia: Algolia,
    write: Callable[..., Path],
    run: Callable[..., Result],
    tmp_path: Path,
    names: list[str],
    protect: str = "",
) -> Path:
    config = write(HEAD.format(account=algolia_account(algolia.url)) + keys_yaml(names, protect))
    result = run(
        "apply", "-c", str(config), "--auto-approve", "--secrets-out", str(tmp_path / "s.jsonl")
    )
    assert result.exit_code == 0, result.output
    return config


def snapshot(algolia: Algolia) -> list[dict[str, object]]:
    return sorted(algolia.emulator.snapshot(), key=lambda k: str(k["value"]))


def test_mass_deletion_is_refused_without_force(
    algolia: Algolia, write: Callable[..., Path], run: Callable[..., Result], tmp_path: Path
) -> None:
    config = setup(algolia, write, run, tmp_path, ["a", "b", "c", "d"])
    write(HEAD.format(account=algolia_account(algolia.url)) + keys_yaml(["a", "b"]))
    before = snapshot(algolia)
    writes = algolia.server.counters.count("DELETE", "delete")
    result = run("apply", "-c", str(config), "--auto-approve")
    assert result.exit_code == 3, result.output
    assert "removes 2 of 4 managed keys (50%)" in result.stderr
    assert "Nothing was changed." in result.stderr
    assert snapshot(algolia) == before
    assert algolia.server.counters.count("DELETE", "delete") == writes
    # --force allows it; a higher ratio too.
    result = run("apply", "-c", str(config), "--auto-approve", "--max-delete-ratio", "0.5")
    assert result.exit_code == 0, result.output
    assert len(snapshot(algolia)) == 2


def test_force_allows_mass_deletion(
    algolia: Algolia, write: Callable[..., Path], run: Callable[..., Result], tmp_path: Path
) -> None:
    config = setup(algolia, write, run, tmp_path, ["a", "b", "c", "d"])
    write(HEAD.format(account=algolia_account(algolia.url)) + keys_yaml([]))
    assert run("apply", "-c", str(config), "--auto-approve").exit_code == 3
    result = run("apply", "-c", str(config), "--auto-approve", "--force")
    assert result.exit_code == 0, result.output
    assert snapshot(algolia) == []


def test_ratio_gate_needs_four_managed_keys(
    algolia: Algolia, write: Callable[..., Path], run: Callable[..., Result], tmp_path: Path
) -> None:
    config = setup(algolia, write, run, tmp_path, ["a", "b", "c"])
    write(HEAD.format(account=algolia_account(algolia.url)) + keys_yaml([]))
    result = run("apply", "-c", str(config), "--auto-approve")
    assert result.exit_code == 0, result.output


def test_creating_without_a_secrets_sink_is_refused(
    algolia: Algolia, write: Callable[..., Path], run: Callable[..., Result]
) -> None:
    config = write(HEAD.format(account=algolia_account(algolia.url)) + keys_yaml(["a"]))
    result = run("apply", "-c", str(config), "--auto-approve")
    assert result.exit_code == 3
    assert "no --secrets-out was given" in result.stderr
    assert snapshot(algolia) == []
    assert algolia.server.counters.count("POST", "add") == 0


def test_protected_key_is_never_deleted(
    algolia: Algolia, write: Callable[..., Path], run: Callable[..., Result], tmp_path: Path
) -> None:
    config = setup(algolia, write, run, tmp_path, ["a", "b"], protect="a")
    write(HEAD.format(account=algolia_account(algolia.url)) + keys_yaml(["b"]))
    before = snapshot(algolia)
    result = run("plan", "-c", str(config))
    assert result.exit_code == 3
    assert (
        "algolia-prod/a" in result.stdout and "is protected and no longer declared" in result.stdout
    )
    result = run("apply", "-c", str(config), "--auto-approve", "--force")
    assert result.exit_code == 3
    assert snapshot(algolia) == before
    # Unprotect first (an update of the marker), then it can go.
    write(HEAD.format(account=algolia_account(algolia.url)) + keys_yaml(["a", "b"]))
    assert run("apply", "-c", str(config), "--auto-approve").exit_code == 0
    write(HEAD.format(account=algolia_account(algolia.url)) + keys_yaml(["b"]))
    assert run("apply", "-c", str(config), "--auto-approve").exit_code == 0
    assert len(snapshot(algolia)) == 1


def test_non_interactive_apply_without_auto_approve_is_refused(
    algolia: Algolia, write: Callable[..., Path], run: Callable[..., Result], tmp_path: Path
) -> None:
    config = write(HEAD.format(account=algolia_account(algolia.url)) + keys_yaml(["a"]))
    result = run("apply", "-c", str(config), "--secrets-out", str(tmp_path / "s"), input="yes\n")
    assert result.exit_code == 1
    assert "standard input is not a terminal" in result.stderr
    assert snapshot(algolia) == []


def test_credential_key_is_never_touched_even_if_listed(
    algolia_factory: Callable[..., Algolia],
    write: Callable[..., Path],
    run: Callable[..., Result],
    tmp_path: Path,
) -> None:
    algolia = algolia_factory(list_admin_key=True)
    config = setup(algolia, write, run, tmp_path, ["a"])
    result = run("plan", "-c", str(config), "--show-unmanaged")
    assert result.exit_code == 0
    assert "No changes" in result.stdout
    assert "unmanaged" not in result.stdout  # the admin key is neither managed nor unmanaged


def test_foreign_marker_collision_is_refused(
    algolia: Algolia, write: Callable[..., Path], run: Callable[..., Result], tmp_path: Path
) -> None:
    client = official_client(algolia.url)
    client.add_api_key(ApiKey(acl=["search"], description="keystate:other-team/a"))  # type: ignore[attr-defined]
    config = write(HEAD.format(account=algolia_account(algolia.url)) + keys_yaml(["a"]))
    result = run("apply", "-c", str(config), "--auto-approve", "--secrets-out", str(tmp_path / "s"))
    assert result.exit_code == 3
    assert "carries another owner's marker 'keystate:other-team/a'" in result.stderr
    assert len(snapshot(algolia)) == 1


def test_duplicate_markers_are_an_error_naming_both(
    algolia: Algolia, write: Callable[..., Path], run: Callable[..., Result]
) -> None:
    client = official_client(algolia.url)
    for _ in range(2):
        client.add_api_key(ApiKey(acl=["search"], description="keystate:team/a"))  # type: ignore[attr-defined]
    config = write(HEAD.format(account=algolia_account(algolia.url)) + keys_yaml(["a"]))
    result = run("plan", "-c", str(config))
    assert result.exit_code == 1
    assert "2 live keys carry the same marker (fingerprint:" in result.stderr


def test_report_file_lists_every_result(
    algolia: Algolia, write: Callable[..., Path], run: Callable[..., Result], tmp_path: Path
) -> None:
    config = write(HEAD.format(account=algolia_account(algolia.url)) + keys_yaml(["a", "b"]))
    report = tmp_path / "report.json"
    result = run(
        "apply",
        "-c",
        str(config),
        "--auto-approve",
        "--secrets-out",
        str(tmp_path / "s"),
        "--report",
        str(report),
    )
    assert result.exit_code == 0
    document = json.loads(report.read_text())
    assert document["summary"]["done"] == 2
    assert {r["address"] for r in document["results"]} == {"algolia-prod/a", "algolia-prod/b"}
    assert all(r["outcome"] == "done" and r["action"] == "create" for r in document["results"])
