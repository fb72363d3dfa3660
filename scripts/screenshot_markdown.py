"""Render a keystate Markdown plan the way GitHub shows a comment, and screenshot it in
headless Chromium, to check by eye that tables, <details> and the diff read well.

    python scripts/screenshot_markdown.py OUT.png [PLAN.md] [--open]

Without PLAN.md, it makes one: the quickstart's plan on a fresh sandbox. ``--open``
expands the <details> blocks so the diffs are in the picture.

Prerequisites (not dependencies of keystate; install them where you run this):
    pip install markdown-it-py          # CommonMark + GFM tables, as GitHub renders them
    apt-get install chromium            # Debian's headless browser
Markdown-it does not know GitHub's alert boxes (> [!WARNING]) or diff colouring; this
script adds both with a few lines of CSS and post-processing, close to GitHub's look.
"""

from __future__ import annotations

import html
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
CSS = """
body { font: 14px/1.5 -apple-system, "Segoe UI", Helvetica, Arial, sans-serif; color: #1f2328;
       max-width: 1000px; margin: 24px auto; padding: 16px; border: 1px solid #d0d7de;
       border-radius: 6px; }
table { border-collapse: collapse; margin: 8px 0 16px; }
th, td { border: 1px solid #d0d7de; padding: 6px 13px; text-align: left; }
tr:nth-child(2n) { background: #f6f8fa; }
code { background: rgba(175,184,193,.2); padding: .2em .4em; border-radius: 6px; font-size: 85%; }
pre { background: #f6f8fa; padding: 16px; border-radius: 6px; overflow: auto; font-size: 85%; }
pre code { background: none; padding: 0; }
.d-add { color: #116329; background: #dafbe1; display: block; }
.d-del { color: #82071e; background: #ffebe9; display: block; }
.d-chg { color: #953800; background: #fff1e5; display: block; }
.d-ctx { display: block; }
blockquote { margin: 0; padding: 0 1em; border-left: .25em solid #d0d7de; color: #59636e; }
blockquote.alert-warning { border-color: #9a6700; }
blockquote.alert-caution { border-color: #d1242f; }
blockquote.alert-note { border-color: #0969da; }
summary { cursor: pointer; font-weight: 600; }
sub { color: #59636e; }
"""


def quickstart_plan() -> str:
    keystate = Path(sys.executable).parent / "keystate"
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        shutil.copy(ROOT / "examples/quickstart/keystate.yaml", work / "keystate.yaml")
        (work / ".keystate").mkdir()
        for seed in (ROOT / "examples/quickstart/seed").glob("*.json"):
            shutil.copy(seed, work / ".keystate" / seed.name)
        result = subprocess.run(
            [str(keystate), "plan", "--format", "markdown"],
            cwd=work,
            capture_output=True,
            text=True,
            check=True,
        )
        return result.stdout


def colour_diffs(page: str) -> str:
    def block(match: re.Match[str]) -> str:
        lines = []
        for line in match.group(1).split("\n"):
            cls = {"+": "d-add", "-": "d-del", "!": "d-chg"}.get(line[:1], "d-ctx")
            lines.append(f'<span class="{cls}">{line or " "}</span>')
        return '<pre><code class="language-diff">' + "".join(lines) + "</code></pre>"

    return re.sub(r'<pre><code class="language-diff">(.*?)</code></pre>', block, page, flags=re.S)


def alerts(page: str) -> str:
    def box(match: re.Match[str]) -> str:
        kind = match.group(1).lower()
        return f'<blockquote class="alert-{kind}">\n<p><strong>{kind.title()}</strong><br>'

    return re.sub(r"<blockquote>\n<p>\[!(WARNING|CAUTION|NOTE)\]\s*", box, page)


def to_html(markdown: str, expand: bool) -> str:
    from markdown_it import MarkdownIt

    md = MarkdownIt("gfm-like", {"html": True, "linkify": False})
    body = alerts(colour_diffs(md.render(markdown)))
    if expand:
        body = body.replace("<details>", "<details open>")
    return f"<!doctype html><meta charset=utf-8><style>{CSS}</style><body>{body}</body>"


def screenshot(page: Path, out: Path, height: int) -> None:
    browser = shutil.which("chromium") or shutil.which("chromium-browser")
    if browser is None:
        raise SystemExit("chromium not found: apt-get install chromium")
    with tempfile.TemporaryDirectory() as profile:
        subprocess.run(
            [
                browser,
                "--headless",
                "--no-sandbox",
                "--disable-gpu",
                "--disable-quic",
                "--no-first-run",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-sync",
                f"--user-data-dir={profile}",
                f"--screenshot={out}",
                f"--window-size=1100,{height}",
                "--hide-scrollbars",
                page.as_uri(),
            ],
            check=True,
            capture_output=True,
        )


def main() -> None:
    args = [a for a in sys.argv[1:] if not a.startswith("--")]
    if not args:
        raise SystemExit(__doc__)
    out = Path(args[0]).resolve()
    markdown = Path(args[1]).read_text() if len(args) > 1 else quickstart_plan()
    with tempfile.TemporaryDirectory() as tmp:
        page = Path(tmp) / "plan.html"
        page.write_text(to_html(markdown, "--open" in sys.argv))
        height = 700 + 18 * markdown.count("\n") if "--open" in sys.argv else 900
        screenshot(page, out, min(height, 6000))
    print(f"wrote {out} ({html.escape(str(len(markdown)))} characters of Markdown)")


if __name__ == "__main__":
    main()
