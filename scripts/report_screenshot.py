"""Screenshot the HTML access review of the quickstart sandbox, for docs/report.md.

    python scripts/report_screenshot.py [OUT.png] [--dark]

Resets a copy of the quickstart sandbox from examples/quickstart/seed/, runs
``keystate report`` on it, opens the page in Debian's headless Chromium (driven by
Playwright, which the dev extras install; no browser is downloaded) and saves a
full-page screenshot, by default docs/report.png.

Prerequisites: ``make .venv/.installed`` and ``apt-get install chromium``.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
QUICKSTART = ROOT / "examples" / "quickstart"


def make_report(workdir: Path) -> Path:
    shutil.copy(QUICKSTART / "keystate.yaml", workdir / "keystate.yaml")
    state = workdir / ".keystate"
    state.mkdir()
    for seed in (QUICKSTART / "seed").glob("*.json"):
        shutil.copy(seed, state / seed.name)
    out = workdir / "access-review.html"
    keystate = Path(sys.executable).parent / "keystate"
    subprocess.run([str(keystate), "report", "--out", str(out)], cwd=workdir, check=True)
    return out


def screenshot(page_path: Path, out: Path, dark: bool) -> None:
    from playwright.sync_api import sync_playwright

    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    if chromium is None:
        sys.exit("chromium is not installed: apt-get install chromium")
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=chromium, args=["--no-sandbox"])
        page = browser.new_page(
            viewport={"width": 1100, "height": 1450}, color_scheme="dark" if dark else "light"
        )
        page.goto(page_path.as_uri())
        page.screenshot(path=str(out))  # the first screen: summary, matrix, charts
        browser.close()


def main(argv: list[str]) -> None:
    dark = "--dark" in argv
    args = [a for a in argv if a != "--dark"]
    out = Path(args[0]) if args else ROOT / "docs" / "report.png"
    with tempfile.TemporaryDirectory() as tmp:
        screenshot(make_report(Path(tmp)), out.resolve(), dark)
    print(f"wrote {out}")


if __name__ == "__main__":
    main(sys.argv[1:])
