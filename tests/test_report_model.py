"""The review's renderers as pure functions of the model: size guard, escaping,
spreadsheet formulas, gates parsing."""

from __future__ import annotations

import csv
import io
from datetime import UTC, datetime, timedelta

import pytest

from keystate.errors import UsageError
from keystate.model import LiveKey
from keystate.providers.algolia.schema import SCHEMA
from keystate.render.markdown import GITHUB_LIMIT
from keystate.report import gates, render_csv, render_html, render_json, render_markdown
from keystate.report.model import AccountInput, Report, build

NOW = datetime(2026, 6, 1, tzinfo=UTC)


def key(i: int, description: str, acl: frozenset[str] = frozenset({"addObject"})) -> LiveKey:
    fields = dict(SCHEMA.defaults())
    fields["acl"] = acl
    return LiveKey(
        ref=f"fingerprint:{i:016x}",
        handle=f"h{i}",
        stored_description=description,
        fields=fields,
        fingerprint=f"{i:064x}",
        created_at=NOW - timedelta(days=400 + i),
    )


def review(keys: list[LiveKey]) -> Report:
    return build([AccountInput("algolia-prod", SCHEMA, {}, keys)], None, NOW)


def test_markdown_stays_under_githubs_limit() -> None:
    report = review([key(i, f"legacy key number {i} " + "x" * 40) for i in range(3000)])
    text = render_markdown.render(report)
    assert len(text) < GITHUB_LIMIT
    assert text.startswith("<!-- keystate-report -->")
    assert "Shortened to fit GitHub's 65,536-character limit" in text
    assert "| 0 | 3000 |" in text  # the summary is never cut


def test_small_markdown_is_not_shortened() -> None:
    text = render_markdown.render(review([key(1, "one")]))
    assert "Shortened" not in text and "<details>" in text


def test_html_escapes_everything_from_a_key() -> None:
    evil = "<script>alert(1)</script> \"quoted' & more"
    page = render_html.render(review([key(1, evil)]))
    assert "<script>alert(1)" not in page
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page
    assert page.count("<script>") == 1  # the page's own


def test_csv_neutralises_formulas_not_numbers() -> None:
    report = review([key(1, '=HYPERLINK("http://x")')])
    rows = list(csv.DictReader(io.StringIO(render_csv.render(report))))
    assert rows[0]["description"].startswith("'=")
    assert rows[0]["name"].startswith("'=")
    assert rows[0]["age_days"] == "401"


def test_json_breadth_and_lint_of_an_unmanaged_key() -> None:
    doc = render_json.document(review([key(1, "writer", frozenset({"deleteIndex", "search"}))]))
    row = doc["keys"][0]  # type: ignore[index]
    assert row["manager"] == "unmanaged" and row["breadth"] == "admin"
    assert {f["rule"] for f in row["lint"]} == {
        "algolia-write-without-indexes",
        "no-expiry",
        "algolia-search-unrestricted",
    }


@pytest.mark.parametrize("rule", ["unused:0d", "unused:-1d", "older-than:", "lint:", "exposed:1"])
def test_malformed_gates_are_usage_errors(rule: str) -> None:
    with pytest.raises(UsageError):
        gates.parse([rule], ["no-expiry"])


def test_all_bad_gates_reported_together() -> None:
    with pytest.raises(UsageError) as caught:
        gates.parse(["nope", "unused:x", "no-expiry"], ["no-expiry"])
    assert str(caught.value).count("--fail-on") == 2


def test_older_than_counts_whole_days() -> None:
    report = review([key(0, "a"), key(5, "b")])  # 400 and 405 days old
    (result,) = gates.evaluate(report, gates.parse(["older-than:400d"], []))
    assert result.keys == ("algolia-prod/fingerprint:0000000000000005",)


def test_rotation_due_and_retiring_keys() -> None:
    """A declared rotation shows when the key falls due; the old key of a rotation shows
    as retiring, without drift against the declaration its successor now answers."""
    from keystate.model import KeySpec, Marker, Rotation

    retire_at = NOW + timedelta(days=3)
    successor = key(1, Marker("web").stored_description("Web"))
    old = key(2, Marker("web", retire_at=retire_at).stored_description("Old web"))
    spec = KeySpec(
        "algolia-prod",
        "web",
        "Web",
        dict(successor.fields),
        rotate=Rotation(timedelta(days=90), timedelta(days=7)),
    )
    report = build(
        [AccountInput("algolia-prod", SCHEMA, {"web": spec}, [successor, old])], None, NOW
    )
    rows = {r.ref: r for r in report.rows}
    assert successor.created_at is not None
    assert rows[successor.ref].rotation_due == successor.created_at + timedelta(days=90)
    assert rows[successor.ref].drift == ()
    assert rows[old.ref].status == "RETIRING at " + retire_at.strftime("%Y-%m-%dT%H:%M:%SZ")
    assert rows[old.ref].rotation_due is None and rows[old.ref].drift == ()
