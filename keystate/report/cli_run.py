"""What ``keystate report`` does between parsing and printing (kept out of the click
command so the command stays thin): check the gates, read, render, evaluate."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from keystate import lint
from keystate.config import Config
from keystate.contract import ConnectOptions
from keystate.errors import UsageError
from keystate.report import gates as gates_mod
from keystate.report import render_csv, render_html, render_json, render_markdown
from keystate.report.read import read_report

RENDERERS = {
    "html": render_html.render,
    "markdown": render_markdown.render,
    "json": render_json.render,
    "csv": render_csv.render,
}


async def run(
    config: Config,
    accounts: Sequence[str],
    fmt: str,
    fail_on: Sequence[str],
    options: ConnectOptions,
) -> tuple[str, list[str]]:
    """The rendered report, and one line per tripped gate. Bad gates fail before any
    request is sent."""
    schemas = {config.schema(name).name: config.schema(name) for name in config.accounts}
    gates = gates_mod.parse(fail_on, lint.all_rule_ids(schemas.values()))
    report = await read_report(config, accounts, options)
    results = gates_mod.evaluate(report, gates)
    tripped = [
        f"{g.rule}: {len(g.keys)} key(s): {', '.join(g.keys[:5])}"
        + (f" and {len(g.keys) - 5} more" if len(g.keys) > 5 else "")
        for g in results
        if g.tripped
    ]
    return RENDERERS[fmt](report, results), tripped


def write(path: Path, text: str) -> None:
    try:
        path.write_text(text, encoding="utf-8")
    except OSError as exc:
        raise UsageError(f"--out {path}: {exc.strerror or exc}") from None
