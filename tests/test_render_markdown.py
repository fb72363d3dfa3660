"""The Markdown plan for pull-request comments: golden format, escaping, and the size
guard that keeps a huge plan under GitHub's 65,536-character limit."""

from __future__ import annotations

import os
from datetime import UTC, datetime
from pathlib import Path

from test_render import ACCOUNT, SCHEMA, sample_plan

from keystate.contract import AccountConfig
from keystate.diff import diff_account
from keystate.model import KeySpec, LiveKey
from keystate.plan import Plan
from keystate.render import RenderOptions
from keystate.render.markdown import GITHUB_LIMIT, MARKER, escape, fence_for, render

GOLDEN = Path(__file__).parent / "golden" / "plan.md"
NOW = datetime(2030, 1, 1, tzinfo=UTC)


def test_markdown_golden() -> None:
    text = render(sample_plan(), RenderOptions())
    if os.environ.get("UPDATE_GOLDEN"):
        GOLDEN.write_text(text)
    assert text == GOLDEN.read_text(), "plan.md changed; rerun with UPDATE_GOLDEN=1 if intended"


def big_plan(accounts: int, changes_per_account: int) -> Plan:
    diffs = []
    for a in range(accounts):
        account = AccountConfig(name=f"acct-{a}", provider="algolia", settings=ACCOUNT.settings)
        desired = {}
        live = []
        for k in range(changes_per_account):
            fields = SCHEMA.defaults() | {"acl": frozenset({"search", f"x{k % 5}"[:0] + "browse"})}
            name = f"key-{k:04d}"
            desired[name] = KeySpec(account.name, name, f"description of key {k}", fields)
            if k % 2:
                live.append(
                    LiveKey(
                        f"fingerprint:{k:016x}",
                        f"h{k}",
                        f"old keystate:team/{name}",
                        SCHEMA.defaults() | {"acl": frozenset({"search"})},
                    )
                )
        diffs.append(diff_account(account, SCHEMA, desired, live, "team"))
    return Plan(tuple(diffs), "team", NOW)


def test_500_changes_across_5_accounts_fit_and_say_what_was_folded() -> None:
    plan = big_plan(5, 100)
    assert sum(len(a.changes) for a in plan.accounts) == 500
    text = render(plan, RenderOptions())
    assert len(text) < GITHUB_LIMIT
    assert text.startswith(MARKER + "\n### keystate plan\n\n**Plan:** 250 to create, 250 to update")
    assert "This comment was shortened to fit GitHub's 65,536-character limit" in text
    assert "was left out to fit GitHub's comment limit: run `keystate plan --account acct-" in text


def test_a_tiny_budget_cuts_tables_but_keeps_marker_and_summary() -> None:
    text = render(big_plan(5, 100), RenderOptions(), budget=5_000)
    assert text.startswith(MARKER)
    assert "**Plan:** 250 to create" in text
    assert "more changes*" in text
    assert "table rows left out" in text


def test_a_plan_that_fits_is_not_folded() -> None:
    text = render(big_plan(2, 5), RenderOptions())
    assert "shortened" not in text
    assert text.count("<details>") == 2


def test_hostile_text_is_escaped() -> None:
    assert (
        escape("a|b <script> `x` *y* _z_\nnext")
        == "a\\|b &lt;script&gt; \\`x\\` \\*y\\* \\_z\\_ next"
    )
    assert fence_for("no ticks") == "```"
    assert fence_for("a ````` b") == "``````"
    hostile = "```\n</details><script>alert(1)</script> | pipe"
    account = AccountConfig(name="acct", provider="algolia", settings=ACCOUNT.settings)
    spec = KeySpec("acct", "k", hostile, SCHEMA.defaults() | {"acl": frozenset({"search"})})
    plan = Plan((diff_account(account, SCHEMA, {"k": spec}, [], "team"),), "team", NOW)
    text = render(plan, RenderOptions())
    # The content holds a ``` run, so the fence is longer and closes only the block.
    assert "\n````diff\n" in text and text.count("\n````\n") == 1
    assert "<script>" not in text.split("<details>")[0]


def test_no_changes() -> None:
    account = AccountConfig(name="acct", provider="algolia", settings=ACCOUNT.settings)
    plan = Plan((diff_account(account, SCHEMA, {}, [], "team"),), "team", NOW)
    text = render(plan, RenderOptions())
    assert text.startswith(MARKER)
    assert "**No changes.** Live keys match the configuration." in text
    assert "<details>" not in text
