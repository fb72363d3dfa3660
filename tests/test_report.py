"""`keystate report` on both providers: every live key once, with the right manager,
permissions and findings, in every format; gates and their exit codes; bad input."""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Callable
from pathlib import Path

import pytest
from click.testing import Result
from report_world import EXPECTED, SECRETS, seed

FORMATS = ("json", "csv", "markdown", "html")


@pytest.fixture
def config(tmp_path: Path) -> Path:
    return seed(tmp_path)


def report(run: Callable[..., Result], config: Path, *args: str) -> Result:
    result = run("report", "-c", str(config), *args)
    assert "Traceback" not in result.output
    return result


def test_json_has_every_key_once_with_manager_permissions_and_findings(
    run: Callable[..., Result], config: Path
) -> None:
    result = report(run, config, "--format", "json")
    assert result.exit_code == 0, result.output
    doc = json.loads(result.stdout)
    assert doc["format_version"] == "1"
    keys = doc["keys"]
    assert len(keys) == len(EXPECTED)
    by_name = {(k["account"], k["name"]): k for k in keys}
    assert len(by_name) == len(keys)
    for want in EXPECTED:
        got = by_name[(want.account, want.name)]
        assert got["manager"] == want.manager, want.name
        assert sorted({p["grant"] for p in got["permissions"]}) == sorted(want.grants), want.name
        assert sorted(f["rule"] for f in got["lint"]) == sorted(want.lint), want.name
        assert tuple(got["drift"]) == want.drift, want.name
        assert got["declared"] == want.declared, want.name
        assert got["exposed"] is want.exposed, want.name
        assert got["active"] is want.active, want.name
    summary = doc["summary"]
    assert (summary["managed"], summary["unmanaged"], summary["foreign"]) == (4, 3, 1)
    assert summary["credential"] == 1
    assert summary["exposed"] == 1


def test_json_carries_review_facts(run: Callable[..., Result], config: Path) -> None:
    keys = {
        k["name"]: k for k in json.loads(report(run, config, "--format", "json").stdout)["keys"]
    }
    leaked = keys["Leaked connector"]
    assert leaked["status"] == "DISABLED_EXPOSED"
    assert "severity HIGH" in leaked["exposure"] and "GITHUB" in leaked["exposure"]
    assert leaked["permissions"] == [
        {"grant": "PLATFORM/SOURCE/EDIT", "target": None, "breadth": "admin"}
    ]
    site = keys["site-search"]
    assert site["days_unused"] == 2 and site["last_used_at"] is not None
    assert site["scope"] == {"search_hub": "website"}
    assert keys["Old analytics"]["status"] == "DISABLED"
    assert keys["Old analytics"]["days_unused"] >= 399  # never used: counted from creation
    store = keys["storefront"]
    assert store["restrictions"] == {"referers": "https://shop.example.com/*"}
    assert store["days_unused"] is None  # Algolia does not report use
    assert store["fingerprint"] and store["ref"] == f"fingerprint:{store['fingerprint']}"
    crawler = keys["crawler"]
    assert {p["target"] for p in crawler["permissions"]} == {"products"}
    assert crawler["breadth"] == "write"
    assert keys["Bulk importer (dashboard)"]["breadth"] == "admin"
    assert store["rotation_due"] is None


def test_csv_one_row_per_key(run: Callable[..., Result], config: Path) -> None:
    result = report(run, config, "--format", "csv")
    rows = list(csv.DictReader(io.StringIO(result.stdout)))
    assert len(rows) == len(EXPECTED)
    by_name = {r["name"]: r for r in rows}
    for want in EXPECTED:
        row = by_name[want.name]
        assert row["manager"] == want.manager
        for grant in want.grants:
            assert grant in row["permissions"]
        for rule in want.lint:
            assert rule in row["lint"]
    assert by_name["Leaked connector"]["exposed"] == "true"


def test_markdown_lists_every_key_and_finding(run: Callable[..., Result], config: Path) -> None:
    text = report(run, config, "--format", "markdown").stdout
    assert text.startswith("<!-- keystate-report -->")
    for want in EXPECTED:
        assert f"`{want.name.replace('_', chr(92) + '_')}`" in text or want.name in text
        for rule in want.lint:
            assert f"[{rule}]" in text
    assert "exposed (severity HIGH" in text
    assert "drift: acl" in text
    assert "managed but no longer declared" in text


def test_html_has_every_section_and_key(
    run: Callable[..., Result], config: Path, tmp_path: Path
) -> None:
    out = tmp_path / "review.html"
    result = report(run, config, "--out", str(out))
    assert result.exit_code == 0
    page = out.read_text()
    for section in ("summary", "matrix", "charts", "keys"):
        assert f'<section id="{section}"' in page
    assert "<svg role='img'" in page
    assert "Content-Security-Policy" in page and "default-src 'none'" in page
    assert "http://" not in page.replace(
        "http://www.w3.org", ""
    ) and "https://" not in page.replace("https://shop.example.com/*", "")
    body = page.split("<tbody>", 2)
    assert len(body) == 3
    table = page.split("id='key-table'")[1]
    assert table.count("<tr class=") == len(EXPECTED)
    for want in EXPECTED:
        assert f"<strong>{want.name}</strong>" in table


@pytest.mark.parametrize("fmt", FORMATS)
def test_no_key_value_in_any_format(run: Callable[..., Result], config: Path, fmt: str) -> None:
    result = run("-vv", "report", "-c", str(config), "--format", fmt, "--fail-on", "unmanaged")
    for secret in SECRETS:
        assert secret not in result.stdout, fmt
        assert secret not in result.stderr, fmt


@pytest.mark.parametrize(
    ("rule", "tripped"),
    [
        ("unmanaged", {"algolia-prod/fingerprint:", "coveo-prod/id:leaked", "coveo-prod/id:old"}),
        ("no-expiry", {"algolia-prod/stale", "algolia-prod/fingerprint:", "coveo-prod/id:runner"}),
        ("unused:90d", set()),  # the only long-unused Coveo keys are disabled
        ("unused:1d", {"coveo-prod/site-search"}),
        ("exposed", {"coveo-prod/id:leaked"}),
        (
            "older-than:365d",
            {
                "algolia-prod/stale",
                "algolia-prod/other-team/feed",
                "algolia-prod/fingerprint:",
                "coveo-prod/id:runner",
            },
        ),
        ("older-than:1000d", set()),
        ("lint:algolia-write-without-indexes", {"algolia-prod/fingerprint:"}),
        ("lint:coveo-edit-all-targets", {"coveo-prod/id:leaked"}),
        ("lint:expires-soon", set()),
    ],
)
def test_gates(run: Callable[..., Result], config: Path, rule: str, tripped: set[str]) -> None:
    result = report(run, config, "--format", "json", "--fail-on", rule)
    gates = json.loads(result.stdout)["gates"]
    assert [g["rule"] for g in gates] == [rule]
    keys = gates[0]["keys"]
    assert {_prefix(k, tripped) for k in keys} == tripped
    assert len(keys) == len(tripped)
    if tripped:
        assert result.exit_code == 2
        assert f"Gate tripped: {rule}" in result.stderr
    else:
        assert result.exit_code == 0, result.stderr
        assert "Gate tripped" not in result.stderr


def _prefix(key: str, wanted: set[str]) -> str:
    """The expected entry a tripped key address starts with (refs end in random ids)."""
    return next((w for w in wanted if key.startswith(w)), key)


def test_several_gates_all_reported(run: Callable[..., Result], config: Path) -> None:
    result = report(
        run, config, "--format", "csv", "--fail-on", "exposed", "--fail-on", "unmanaged"
    )
    assert result.exit_code == 2
    assert "Gate tripped: exposed" in result.stderr and "Gate tripped: unmanaged" in result.stderr


@pytest.mark.parametrize(
    ("rule", "message"),
    [
        ("unused", "write unused:<n>d"),
        ("older-than:ten", "write older-than:<n>d"),
        ("lint:no-such-rule", "unknown lint rule 'no-such-rule'"),
        ("stale", "unknown rule"),
    ],
)
def test_bad_gate_is_one_clear_error_before_any_request(
    run: Callable[..., Result], config: Path, rule: str, message: str
) -> None:
    state = (config.parent / "coveo.json").read_text()
    result = report(run, config, "--fail-on", rule)
    assert result.exit_code == 1
    assert message in result.stderr
    assert result.stderr.count("Error:") == 1
    assert (config.parent / "coveo.json").read_text() == state


def test_account_filter_and_unknown_account(run: Callable[..., Result], config: Path) -> None:
    doc = json.loads(report(run, config, "--format", "json", "--account", "coveo-prod").stdout)
    assert {k["account"] for k in doc["keys"]} == {"coveo-prod"}
    result = report(run, config, "--account", "nope")
    assert result.exit_code == 1 and "unknown account(s) nope" in result.stderr


def test_out_to_a_directory_is_a_usage_error(
    run: Callable[..., Result], config: Path, tmp_path: Path
) -> None:
    result = report(run, config, "--out", str(tmp_path / "missing" / "r.html"))
    assert result.exit_code == 1 and "--out" in result.stderr
