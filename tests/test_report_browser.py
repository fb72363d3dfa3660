"""The HTML review in a real browser: Debian's Chromium, driven by Playwright (which
must not download a browser of its own: it is pointed at the system one).

It renders with no console error and no network request, the matrix and the charts
are there, the table filters and sorts. Where Chromium or Playwright is missing (a
laptop) the test skips saying why; CI installs both (.ci/run), and there it must run:
with ``CI`` set, a missing browser is a failure, not a skip.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from click.testing import Result
from report_world import EXPECTED, seed

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")


def _missing() -> str | None:
    if CHROMIUM is None:
        return "no chromium on PATH (apt-get install chromium)"
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        return "playwright is not installed (pip install -e '.[dev]')"
    return None


@pytest.fixture
def review(run: Callable[..., Result], tmp_path: Path) -> Path:
    """The HTML review of the test world (made before the browser starts: Playwright's
    sync API runs an event loop of its own, and the CLI runs one too)."""
    out = tmp_path / "review.html"
    result = run("report", "-c", str(seed(tmp_path)), "--out", str(out))
    assert result.exit_code == 0, result.output
    return out


@pytest.fixture
def page(review: Path) -> Iterator[Any]:
    reason = _missing()
    if reason:
        if os.environ.get("CI"):
            pytest.fail(f"the browser test must run on CI: {reason}")
        pytest.skip(reason)
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        try:
            yield browser.new_page(viewport={"width": 1300, "height": 1000})
        finally:
            browser.close()


def test_page_renders_offline_filters_and_sorts(page: Any, review: Path) -> None:
    errors: list[str] = []
    requests: list[str] = []
    page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
    page.on("pageerror", lambda e: errors.append(str(e)))
    page.on("request", lambda r: requests.append(r.url))
    url = review.as_uri()
    page.goto(url)
    page.wait_for_load_state("load")

    assert errors == []
    assert requests == [url]  # the page itself, nothing else
    assert page.locator("table.matrix").count() == 2
    assert page.locator("#charts svg rect").count() >= 10
    rows = page.locator("#key-table tbody tr")
    assert rows.count() == len(EXPECTED)
    assert page.locator("#shown").inner_text() == f"{len(EXPECTED)} of {len(EXPECTED)} keys shown"

    page.fill("#q", "leaked connector")
    assert page.locator("#key-table tbody tr:visible").count() == 1
    assert "Leaked connector" in page.locator("#key-table tbody tr:visible").inner_text()
    page.fill("#q", "")
    page.select_option("#manager", "unmanaged")
    assert page.locator("#key-table tbody tr:visible").count() == 3
    page.select_option("#manager", "")
    page.check("#flagged")
    flagged = sum(1 for e in EXPECTED if e.lint or e.drift or e.exposed or e.declared is False)
    assert page.locator("#key-table tbody tr:visible").count() >= flagged
    page.uncheck("#flagged")

    age = page.locator("#key-table thead th", has_text="age (d)")
    age.locator("button").click()
    assert age.get_attribute("aria-sort") == "ascending"
    ages = page.locator("#key-table tbody tr td:nth-child(8)").all_inner_texts()
    numbers = [int(a) for a in ages if a]
    assert numbers == sorted(numbers) and len(numbers) == len(EXPECTED)
    age.locator("button").click()
    ages = page.locator("#key-table tbody tr td:nth-child(8)").all_inner_texts()
    assert [int(a) for a in ages if a] == sorted(numbers, reverse=True)
    assert errors == []

    page.emulate_media(color_scheme="dark")
    background = page.evaluate("getComputedStyle(document.body).backgroundColor")
    assert background == "rgb(13, 17, 23)"
    page.emulate_media(media="print")
    assert page.locator("form.filters").is_hidden()
