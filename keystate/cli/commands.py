"""The commands: parse options, call the library, render, return an exit code.

Heavy modules (httpx, deepdiff, the emulators) are imported inside the commands that
need them, so ``keystate --help`` and ``keystate validate`` start fast.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from keystate.cli.app import (
    accounts_option,
    cli,
    config_option,
    current_ui,
    load,
    run_async,
)
from keystate.cli.applyrun import ApplyRun, connect_options, render_plan
from keystate.cli.lifecycle import Lifecycle, lifecycle_options
from keystate.cli.ui import Ui
from keystate.errors import EXIT_CHANGES, EXIT_OK, EXIT_REFUSED, UsageError

if TYPE_CHECKING:
    from keystate.config import Config
    from keystate.plan import Plan

FORMATS = ("text", "json")
PLAN_FORMATS = ("text", "json", "markdown")


# -- validate ---------------------------------------------------------------------------
@cli.command()
@config_option
@click.option("--strict", is_flag=True, help="Treat warnings as errors.")
def validate(config_path: Path, strict: bool) -> int:
    """Check the configuration offline: syntax, schema, provider rules, lint."""
    ui = current_ui()
    config = load(ui, config_path, strict=strict)
    n_keys = sum(len(k) for k in config.keys.values())
    warnings = len(config.warnings)
    note = f", {warnings} warning{'s' if warnings != 1 else ''}" if warnings else ""
    n_accounts = len(config.accounts)
    ui.out(
        f"Configuration is valid: {n_accounts} account{'s' if n_accounts != 1 else ''}, "
        f"{n_keys} key{'s' if n_keys != 1 else ''}{note}."
    )
    return EXIT_OK


# -- plan -------------------------------------------------------------------------------
@cli.command()
@config_option
@accounts_option
@click.option("--format", "fmt", type=click.Choice(PLAN_FORMATS), default="text", show_default=True)
@click.option(
    "--detailed-exitcode",
    is_flag=True,
    help="Exit 0 when there are no changes, 2 when there are, 1 on error.",
)
@click.option("--show-unmanaged", is_flag=True, help="List the keys keystate does not manage.")
@click.option(
    "--out",
    "out_path",
    type=click.Path(path_type=Path, dir_okay=False),
    help="Also save the plan here, for `keystate apply PLANFILE` (holds no secret).",
)
@lifecycle_options
def plan(
    config_path: Path,
    accounts: tuple[str, ...],
    fmt: str,
    detailed_exitcode: bool,
    show_unmanaged: bool,
    out_path: Path | None,
    replace: tuple[str, ...],
    overlap: str,
    only: str | None,
) -> int:
    """Read the live accounts and show what apply would change. Never changes anything."""
    ui = current_ui()
    life = Lifecycle.parse(replace, overlap, only)
    config = load(ui, config_path)
    the_plan = life.narrow(run_async(_plan_only(ui, config, accounts, life)))
    render_plan(ui, the_plan, fmt, show_unmanaged)
    if out_path is not None:
        from keystate import planfile

        try:
            planfile.save(the_plan, out_path)
        except OSError as exc:
            raise UsageError(f"--out {out_path}: {exc.strerror or exc}") from None
        ui.info(f"Saved the plan to {out_path}; apply it with: keystate apply {out_path}")
    if the_plan.refusals:
        return EXIT_REFUSED
    if detailed_exitcode and the_plan.has_changes:
        return EXIT_CHANGES
    return EXIT_OK


async def _plan_only(ui: Ui, config: Config, accounts: Sequence[str], life: Lifecycle) -> Plan:
    from keystate.engine import make_plan

    options = life.options(config, accounts)
    ui.progress(f"Reading {len(accounts) or len(config.accounts)} account(s)...")
    # Only the plan is needed afterwards: let it free the declared keys it leaves unchanged.
    the_plan, conns = await make_plan(
        config, accounts, connect_options(ui), release_keys=True, lifecycle=options
    )
    await conns.aclose()
    return the_plan


# -- apply ------------------------------------------------------------------------------
@cli.command()
@click.argument("planfile", required=False, type=click.Path(path_type=Path, dir_okay=False))
@config_option
@accounts_option
@click.option("--auto-approve", is_flag=True, help="Do not ask for confirmation.")
@click.option(
    "--force", is_flag=True, help="Allow removing more than --max-delete-ratio of the keys."
)
@click.option(
    "--max-delete-ratio",
    type=click.FloatRange(0, 1),
    default=0.25,
    show_default=True,
    help="Refuse to remove a larger share of an account's managed keys without --force.",
)
@click.option(
    "--secrets-out",
    metavar="DEST",
    help="Where new key values go: a file (JSON lines, mode 0600, appended) or - for stdout.",
)
@click.option("--parallelism", type=click.IntRange(1, 64), default=4, show_default=True)
@click.option(
    "--report", "report_path", type=click.Path(path_type=Path), help="Write results as JSON."
)
@click.option("--show-unmanaged", is_flag=True, help="List the keys keystate does not manage.")
@lifecycle_options
@click.pass_context
def apply(
    ctx: click.Context,
    planfile: Path | None,
    config_path: Path,
    accounts: tuple[str, ...],
    auto_approve: bool,
    force: bool,
    max_delete_ratio: float,
    secrets_out: str | None,
    parallelism: int,
    report_path: Path | None,
    show_unmanaged: bool,
    replace: tuple[str, ...],
    overlap: str,
    only: str | None,
) -> int:
    """Change the live accounts to match the configuration (plan, show, confirm, execute).

    With PLANFILE (from `plan --out`), execute exactly that saved plan instead, after
    checking that nothing it touches changed since; the file is the approval, so there
    is no prompt.
    """
    ui = current_ui()
    ui.stdout_reserved = secrets_out == "-"
    life = Lifecycle.parse(replace, overlap, only)
    run = ApplyRun(
        ui=ui,
        force=force,
        max_delete_ratio=max_delete_ratio,
        secrets_out=secrets_out,
        parallelism=parallelism,
        report_path=report_path,
        show_unmanaged=show_unmanaged,
        lifecycle=life,
    )
    if planfile is not None:
        if accounts or life.used:
            raise UsageError(
                "--account, --replace and --only cannot be combined with a saved plan "
                "(pass them to plan --out instead)"
            )
        explicit = ctx.get_parameter_source("config_path") is not click.core.ParameterSource.DEFAULT
        config = load(ui, config_path) if explicit else None
        return run_async(run.saved(planfile, config))
    config = load(ui, config_path)
    return run_async(run.fresh(config, accounts, auto_approve))


# -- show -------------------------------------------------------------------------------
@cli.command()
@click.argument("planfile", type=click.Path(path_type=Path, dir_okay=False))
@click.option("--format", "fmt", type=click.Choice(PLAN_FORMATS), default="text", show_default=True)
@click.option("--show-unmanaged", is_flag=True, help="List the keys keystate does not manage.")
def show(planfile: Path, fmt: str, show_unmanaged: bool) -> int:
    """Render a saved plan (from `plan --out`) without contacting any provider."""
    from keystate import planfile as files
    from keystate.providers import schema_for

    ui = current_ui()
    document = files.load(planfile)
    accounts = files.accounts_from_document(document, {}, schema_for, resolve_secrets=False)
    render_plan(ui, files.to_plan(document, accounts, schema_for), fmt, show_unmanaged)
    return EXIT_OK


# -- import -----------------------------------------------------------------------------
@cli.command("import")
@click.argument("account")
@config_option
@click.option(
    "--out",
    "out_path",
    type=click.Path(path_type=Path, dir_okay=False),
    help="Write the YAML to this new file instead of standard output.",
)
def import_(account: str, config_path: Path, out_path: Path | None) -> int:
    """Write YAML for the live keys of ACCOUNT; unmanaged keys get `adopt:` selectors."""
    from keystate import importer

    ui = current_ui()
    config = load(ui, config_path)
    if out_path is not None and out_path.exists():
        raise UsageError(
            f"--out {out_path} exists; choose a new file (keystate never overwrites it)"
        )
    live = run_async(_live_keys(ui, config, account))
    text = importer.render(account, config.schema(account), live, config.owner)
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


# -- schema -----------------------------------------------------------------------------
@cli.command()
def schema() -> int:
    """Print the JSON Schema (draft 2020-12) of the configuration, for editors and CI."""
    from keystate import configschema

    current_ui().out(json.dumps(configschema.build(), indent=2))
    return EXIT_OK


# -- privileges -------------------------------------------------------------------------
@cli.command()
@click.argument("account")
@config_option
@click.option("--format", "fmt", type=click.Choice(FORMATS), default="text", show_default=True)
def privileges(account: str, config_path: Path, fmt: str) -> int:
    """What can be granted to a key in ACCOUNT (Algolia ACLs; Coveo's live catalogue)."""
    ui = current_ui()
    config = load(ui, config_path)
    grants = run_async(_grants(ui, config, account))
    if fmt == "json":
        ui.out(json.dumps([{"name": g.name, "detail": g.detail} for g in grants], indent=2))
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


# -- emulator ---------------------------------------------------------------------------
class _EmulatorGroup(click.Group):
    """``keystate emulator ...``, defined in :mod:`keystate.cli.emulator` and
    imported only when it runs, so that the other commands start without it."""

    @staticmethod
    def _commands() -> click.Group:
        from keystate.cli.emulator import emulator

        return emulator

    def list_commands(self, ctx: click.Context) -> list[str]:
        return self._commands().list_commands(ctx)

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        return self._commands().get_command(ctx, cmd_name)


@cli.group(cls=_EmulatorGroup)
def emulator() -> None:
    """Run a local emulator of a provider's key API (for tests, demos and CI)."""
