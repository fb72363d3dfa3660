"""The commands that read accounts without planning them: import, report, privileges,
schema, sinks. Parse options, call the library, print, return an exit code.

Heavy modules (httpx, deepdiff, the emulators) are imported inside the commands that
need them, so ``keystate --help`` and ``keystate validate`` start fast.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from keystate.cli.app import (
    accounts_option,
    cli,
    complete_accounts,
    config_option,
    current_ui,
    load,
    run_async,
)
from keystate.cli.applyrun import connect_options
from keystate.cli.ui import Ui
from keystate.errors import EXIT_CHANGES, EXIT_OK, UsageError

if TYPE_CHECKING:
    from keystate.config import Config

FORMATS = ("text", "json")
REPORT_FORMATS = ("html", "markdown", "json", "csv")


# -- import -----------------------------------------------------------------------------
@cli.command("import")
@click.argument("account", shell_complete=complete_accounts)
@config_option
@click.option(
    "--out",
    "out_path",
    type=click.Path(path_type=Path, dir_okay=False),
    help="Write the YAML to this new file instead of standard output.",
)
@click.option(
    "--all",
    "every_key",
    is_flag=True,
    help="Every live key, also those the configuration already declares.",
)
def import_(account: str, config_path: Path, out_path: Path | None, every_key: bool) -> int:
    """Write YAML for the live keys of ACCOUNT that the configuration does not declare
    yet (unmanaged keys get `adopt:` selectors), to put beside it."""
    from keystate import importer

    ui = current_ui()
    config = load(ui, config_path)
    if out_path is not None and out_path.exists():
        raise UsageError(
            f"--out {out_path} exists; choose a new file (keystate never overwrites it)"
        )
    live = run_async(_live_keys(ui, config, account))
    declared = None if every_key else config.keys.get(account, {})
    text = importer.render(account, config.schema(account), live, config.owner, declared)
    if out_path is None:
        ui.out(text, nl=False)
    else:
        try:
            with out_path.open("x", encoding="utf-8") as handle:
                handle.write(text)
        except OSError as exc:
            raise UsageError(f"--out {out_path}: {exc.strerror or exc}") from None
        ui.info(f"Wrote {out_path}; put it beside your configuration and run keystate plan.")
    return EXIT_OK


async def _live_keys(ui: Ui, config: Config, account: str) -> list[Any]:
    from keystate.engine import open_connections, read_live, select_accounts

    select_accounts(config, [account])
    conns = open_connections(config.accounts, [account], connect_options(ui))
    try:
        return (await read_live(conns))[account]
    finally:
        await conns.aclose()


# -- report -----------------------------------------------------------------------------
FAIL_ON = "Exit 2 if a key trips RULE: unmanaged, no-expiry, unused:<n>d, exposed, older-than:<n>d, lint:<rule-id>."  # noqa: E501


@cli.command()
@config_option
@accounts_option
@click.option(
    "--format", "fmt", type=click.Choice(REPORT_FORMATS), default="html", show_default=True
)
@click.option(
    "--out", "out", type=click.Path(path_type=Path, dir_okay=False), help="Write to FILE."
)
@click.option("--fail-on", "fail_on", multiple=True, metavar="RULE", help=FAIL_ON)
def report(
    config_path: Path,
    accounts: tuple[str, ...],
    fmt: str,
    out: Path | None,
    fail_on: tuple[str, ...],
) -> int:
    """Access review: every live key, who manages it, what it may do, age, expiry, findings."""
    from keystate.report import cli_run

    ui = current_ui()
    run = cli_run.run(load(ui, config_path), accounts, fmt, fail_on, connect_options(ui))
    text, tripped = run_async(run)
    if out is None:
        ui.out(text, nl=False)
    else:
        cli_run.write(out, text)
        ui.info(f"Wrote the {fmt} report to {out}.")
    for line in tripped:
        ui.err(f"Gate tripped: {line}")
    return EXIT_CHANGES if tripped else EXIT_OK


# -- schema -----------------------------------------------------------------------------
@cli.command()
def schema() -> int:
    """Print the JSON Schema (draft 2020-12) of the configuration, for editors and CI."""
    from keystate import configschema

    current_ui().out(json.dumps(configschema.build(), indent=2))
    return EXIT_OK


# -- privileges -------------------------------------------------------------------------
@cli.command()
@click.argument("account", shell_complete=complete_accounts)
@config_option
@click.option("--format", "fmt", type=click.Choice(FORMATS), default="text", show_default=True)
def privileges(account: str, config_path: Path, fmt: str) -> int:
    """What can be granted to a key in ACCOUNT (Algolia ACLs; Coveo's live catalogue)."""
    ui = current_ui()
    config = load(ui, config_path)
    grants = run_async(_grants(ui, config, account))
    if fmt == "json":
        ui.out(json.dumps([dict(g.entry) for g in grants], indent=2))
        return EXIT_OK
    width = max((len(g.name) for g in grants), default=0)
    for grant in grants:
        ui.out(f"{grant.name.ljust(width)}  {grant.detail}".rstrip())
    return EXIT_OK


async def _grants(ui: Ui, config: Config, account: str) -> list[Any]:
    from keystate.engine import open_connections, select_accounts

    select_accounts(config, [account])
    conns = open_connections(config.accounts, [account], connect_options(ui))
    try:
        return await conns[account].grants()
    finally:
        await conns.aclose()


# -- sinks ------------------------------------------------------------------------------
@cli.group()
def sinks() -> None:
    """The secret sinks new key values are delivered to (docs/secrets.md)."""


@sinks.command("check")
@config_option
@click.option(
    "--live",
    is_flag=True,
    help="Also check each sink can be reached (commands exist, AWS credentials and "
    "permissions) without delivering anything.",
)
def sinks_check(config_path: Path, live: bool) -> int:
    """Check every configured sink is well-formed (offline), or usable (--live)."""
    from keystate.sinks.delivery import Deliveries

    ui = current_ui()
    config = load(ui, config_path)
    deliveries = Deliveries(config.secrets, config.owner)
    try:
        problems = deliveries.check(live)
    finally:
        deliveries.close()
    for spec in sorted(config.secrets.sinks.values(), key=lambda s: s.name):
        mine = [p for p in problems if p.startswith(f"sink '{spec.name}'")]
        default = " (default)" if spec.name == config.secrets.default else ""
        ui.out(f"{spec.name}{default}: {spec.kind}: {'; '.join(mine) if mine else 'ok'}")
    if not config.secrets.sinks:
        ui.out("No sinks configured: new values go to --secrets-out.")
    if problems:
        raise UsageError(f"{len(problems)} sink problem(s); see docs/secrets.md")
    return EXIT_OK
