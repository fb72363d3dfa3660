"""The public Python API (``import keystate``): load, plan, render, apply, as a team's own
tooling would embed it — on sandbox accounts, with the real providers."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

import keystate
from keystate.apply import Outcome
from keystate.errors import ConfigError, SafetyError

CONFIG = """\
version: 1
accounts:
  web:
    provider: algolia
    sandbox: web.json
  support:
    provider: coveo
    sandbox: support.json
keys:
  web:
    storefront:
      description: Storefront search box
      acl: [search]
      referers: ["https://shop.example.com/*"]
      expires_at: 2099-01-01T00:00:00Z
  support:
    site-search:
      privileges:
        - {owner: SEARCH_API, target_domain: EXECUTE_QUERY}
      expires_at: 2099-01-01T00:00:00Z
"""


@pytest.fixture
def config_path(tmp_path: Path) -> Path:
    path = tmp_path / "keystate.yaml"
    path.write_text(CONFIG, encoding="utf-8")
    return path


def test_load_plan_render_apply_converge(config_path: Path, tmp_path: Path) -> None:
    config = keystate.load_config(config_path)
    assert sorted(config.accounts) == ["support", "web"]

    plan = keystate.make_plan(config)
    assert plan.counts()["create"] == 2 and plan.has_changes
    text = keystate.render_plan(plan, "text")
    assert 'key "web/storefront"' in text and "Plan: 2 to create" in text
    document = json.loads(keystate.render_plan(plan, "json"))
    assert {c["address"] for c in document["changes"]} == {"web/storefront", "support/site-search"}
    assert "<!-- keystate-plan -->" in keystate.render_plan(plan, "markdown")

    secrets = tmp_path / "new-keys.jsonl"
    results = keystate.apply_config(config, secrets_out=secrets)
    assert {r.address: r.outcome for r in results} == {
        "web/storefront": Outcome.DONE,
        "support/site-search": Outcome.DONE,
    }
    assert len(secrets.read_text(encoding="utf-8").splitlines()) == 2

    again = keystate.make_plan(keystate.load_config(config_path))
    assert not again.has_changes
    assert keystate.apply_config(keystate.load_config(config_path), secrets_out=secrets) == []


def test_apply_refuses_creates_without_a_sink_and_changes_nothing(config_path: Path) -> None:
    config = keystate.load_config(config_path)
    with pytest.raises(SafetyError, match="no --secrets-out"):
        keystate.apply_config(config)
    assert keystate.make_plan(config).counts()["create"] == 2


def test_plan_of_selected_accounts(config_path: Path) -> None:
    plan = keystate.make_plan(keystate.load_config(config_path), accounts=["web"])
    assert [a.account.name for a in plan.accounts] == ["web"]


def test_load_config_reports_every_problem_with_its_place(tmp_path: Path) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text(
        "version: 1\naccounts:\n  web: {provider: algolia, sandbox: w.json}\n"
        "keys:\n  web:\n    k: {acl: [serch]}\n    k2: {acll: [search]}\n",
        encoding="utf-8",
    )
    with pytest.raises(ConfigError) as caught:
        keystate.load_config(path)
    places = sorted(str(p.location) for p in caught.value.problems)
    assert places[0].startswith(f"{path}:6:") and any(p.startswith(f"{path}:7:") for p in places)


def test_load_config_takes_its_own_environment(tmp_path: Path) -> None:
    path = tmp_path / "env.yaml"
    path.write_text(
        "version: 1\naccounts:\n  web: {provider: algolia, application_id: APP1, "
        "api_key: '${K}'}\n",
        encoding="utf-8",
    )
    assert keystate.load_config(path, env={"K": "a-long-enough-key-value"}).accounts["web"]
    with pytest.raises(ConfigError) as caught:
        keystate.load_config(path, env={})
    assert [str(p.location) for p in caught.value.problems] == [f"{path}:3:59"]
    assert "environment variable K is not set" in caught.value.problems[0].message


def test_render_rejects_an_unknown_format(config_path: Path) -> None:
    plan = keystate.make_plan(keystate.load_config(config_path))
    with pytest.raises(ValueError, match="unknown plan format 'yaml'"):
        keystate.render_plan(plan, "yaml")


def test_importing_keystate_imports_no_network_stack() -> None:
    code = (
        "import sys, keystate; print(sorted(m for m in sys.modules if m in ('httpx', 'deepdiff')))"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "[]"
