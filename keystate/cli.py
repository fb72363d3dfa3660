"""The ``keystate`` command line: parse, call the library, render, map errors to exit codes.

Exit codes (every command): 0 success; 1 error (bad usage, invalid configuration, API
failure, partial apply); 2 ``plan --detailed-exitcode`` with changes; 3 refused by a
safety gate, nothing changed. Usage errors exit 1, not click's 2, so that 2 always
means "changes pending".

Heavy modules (httpx, deepdiff, the emulators) are imported inside the commands that
need them, so ``keystate --help`` and ``keystate validate`` start fast.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable, Coroutine, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, NoReturn, TypeVar

import click

from keystate import __version__
from keystate.applyrun import ApplyRun, connect_options, render_plan
from keystate.errors import (
    EXIT_CHANGES,
    EXIT_ERROR,
    EXIT_OK,
    EXIT_REFUSED,
    ConfigError,
    KeystateError,
    SafetyError,
    Severity,
    UsageError,
)
from keystate.ui import Ui

if TYPE_CHECKING:
    from keystate.config import Config
    from keystate.plan import Plan

T = TypeVar("T")
FORMATS = ("text", "json")
PLAN_FORMATS = ("text", "json", "markdown")


class KeystateGroup(click.Group):
    """Maps every failure to keystate's exit codes, with one clear message, no traceback."""

    def main(
        self,
        args: Sequence[str] | None = None,
        prog_name: str | None = None,
        complete_var: str | None = None,
        standalone_mode: bool = True,
        **extra: Any,
    ) -> NoReturn:
        code = _run(
            lambda: super(KeystateGroup, self).main(
                args, prog_name or "keystate", complete_var, standalone_mode=False, **extra
            )
        )
        sys.exit(code)


def _run(invoke: Callable[[], object]) -> int:
    ui = Ui()
    try:
        result = invoke()
    except click.exceptions.Abort:
        ui.err("Aborted.")
        return EXIT_ERROR
    except click.ClickException as exc:
        ui.err(f"Error: {exc.format_message()}")
        return EXIT_ERROR
    except click.exceptions.Exit as exc:
        return exc.exit_code
    except ConfigError as exc:
        ui.problems(exc.problems)
        if exc.after_reading:
            ui.err(f"Error: {exc} (found before any change; nothing was changed)")
        else:
            ui.err(f"Error: {exc} (nothing was sent to any provider)")
        return EXIT_ERROR
    except SafetyError as exc:
        for reason in exc.reasons:
            ui.err(f"Refused: {reason}")
        ui.err("Nothing was changed.")
        return EXIT_REFUSED
    except KeystateError as exc:
        ui.err(f"Error: {exc}")
        return exc.exit_code
    except KeyboardInterrupt:
        ui.err("Interrupted. Run the command again to finish; apply picks up where it stopped.")
        return EXIT_ERROR
    except Exception as exc:  # the last line of defence: still no traceback, no secret
        ui.err(f"Internal error: {type(exc).__name__}: {exc}")
        ui.err("This is a bug in keystate; please report it with the command you ran.")
        return EXIT_ERROR
    return result if isinstance(result, int) else EXIT_OK


def _run_async(coroutine: Coroutine[Any, Any, T]) -> T:
    """asyncio.run, imported on first use (asyncio costs ~40 ms of start-up).

    The result is handed back through a holder, not as the main task's result: on
    Python 3.11, asyncio.run's SIGINT bookkeeping formats the main task with its result
    (``signal.getsignal`` builds an error message with the handler's repr), and the repr
    of a 100,000-key plan took 14 MB and a noticeable pause.
    """
    import asyncio

    holder: list[T] = []

    async def main() -> None:
        holder.append(await coroutine)

    asyncio.run(main())
    return holder[0]


def config_option(f: Callable[..., Any]) -> Callable[..., Any]:
    return click.option(
        "-c",
        "--config",
        "config_path",
        type=click.Path(path_type=Path),
        default=Path("keystate.yaml"),
        show_default=True,
        help="Configuration file, or a directory of *.yaml/*.yml files.",
    )(f)


def accounts_option(f: Callable[..., Any]) -> Callable[..., Any]:
    return click.option(
        "--account",
        "accounts",
        multiple=True,
        metavar="NAME",
        help="Only this account (repeatable). Default: all accounts.",
    )(f)


@click.group(cls=KeystateGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.option(
    "-v", "--verbose", count=True, help="Log to stderr: -v info, -vv debug (secrets redacted)."
)
@click.option("-q", "--quiet", is_flag=True, help="Only errors and the requested output.")
@click.option("--no-color", is_flag=True, help="No colours (also: NO_COLOR=1).")
@click.version_option(__version__, "--version", prog_name="keystate")
@click.pass_context
def cli(ctx: click.Context, verbose: int, quiet: bool, no_color: bool) -> None:
    """Declarative API-key permissions for Algolia and Coveo: plan, review, apply.

    \b
    Typical loop:
      keystate validate            # offline checks
      keystate plan                # what would change (never changes anything)
      keystate apply --secrets-out new-keys.jsonl
    """
    ui = Ui(verbosity=verbose, quiet=quiet, no_color=no_color)
    ui.setup_logging()
    ctx.call_on_close(ui.teardown_logging)
    ctx.obj = ui


def _ui() -> Ui:
    ui = click.get_current_context().obj
    assert isinstance(ui, Ui)
    return ui


def _load(ui: Ui, path: Path, *, strict: bool = False) -> Config:
    from keystate.config import load_config

    config = load_config(path)
    if strict and config.warnings:
        raise ConfigError(
            [type(w)(w.message, w.location, Severity.ERROR, w.rule) for w in config.warnings]
        )
    ui.problems(config.warnings)
    return config


# -- validate ---------------------------------------------------------------------------
@cli.command()
@config_option
@click.option("--strict", is_flag=True, help="Treat warnings as errors.")
def validate(config_path: Path, strict: bool) -> int:
    """Check the configuration offline: syntax, schema, provider rules, lint."""
    ui = _ui()
    config = _load(ui, config_path, strict=strict)
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
def plan(
    config_path: Path,
    accounts: tuple[str, ...],
    fmt: str,
    detailed_exitcode: bool,
    show_unmanaged: bool,
    out_path: Path | None,
) -> int:
    """Read the live accounts and show what apply would change. Never changes anything."""
    ui = _ui()
    config = _load(ui, config_path)
    the_plan = _run_async(_plan_only(ui, config, accounts))
    render_plan(ui, the_plan, fmt, show_unmanaged)
    if out_path is not None:
        from keystate import savedplan

        try:
            savedplan.save(the_plan, out_path)
        except OSError as exc:
            raise UsageError(f"--out {out_path}: {exc.strerror or exc}") from None
        ui.info(f"Saved the plan to {out_path}; apply it with: keystate apply {out_path}")
    if the_plan.refusals:
        return EXIT_REFUSED
    if detailed_exitcode and the_plan.has_changes:
        return EXIT_CHANGES
    return EXIT_OK


async def _plan_only(ui: Ui, config: Config, accounts: Sequence[str]) -> Plan:
    from keystate.engine import make_plan

    ui.progress(f"Reading {len(accounts) or len(config.accounts)} account(s)...")
    # Only the plan is needed afterwards: let it free the declared keys it leaves unchanged.
    the_plan, conns = await make_plan(config, accounts, connect_options(ui), release_keys=True)
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
) -> int:
    """Change the live accounts to match the configuration (plan, show, confirm, execute).

    With PLANFILE (from `plan --out`), execute exactly that saved plan instead, after
    checking that nothing it touches changed since; the file is the approval, so there
    is no prompt.
    """
    ui = _ui()
    ui.stdout_reserved = secrets_out == "-"
    run = ApplyRun(
        ui=ui,
        force=force,
        max_delete_ratio=max_delete_ratio,
        secrets_out=secrets_out,
        parallelism=parallelism,
        report_path=report_path,
        show_unmanaged=show_unmanaged,
    )
    if planfile is not None:
        if accounts:
            raise UsageError("--account cannot be combined with a saved plan")
        explicit = ctx.get_parameter_source("config_path") is not click.core.ParameterSource.DEFAULT
        config = _load(ui, config_path) if explicit else None
        return _run_async(run.saved(planfile, config))
    config = _load(ui, config_path)
    return _run_async(run.fresh(config, accounts, auto_approve))


# -- show -------------------------------------------------------------------------------
@cli.command()
@click.argument("planfile", type=click.Path(path_type=Path, dir_okay=False))
@click.option("--format", "fmt", type=click.Choice(PLAN_FORMATS), default="text", show_default=True)
@click.option("--show-unmanaged", is_flag=True, help="List the keys keystate does not manage.")
def show(planfile: Path, fmt: str, show_unmanaged: bool) -> int:
    """Render a saved plan (from `plan --out`) without contacting any provider."""
    from keystate import savedplan

    ui = _ui()
    document = savedplan.load(planfile)
    accounts = savedplan.accounts_from_document(document, {}, resolve_secrets=False)
    render_plan(ui, savedplan.to_plan(document, accounts), fmt, show_unmanaged)
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

    ui = _ui()
    config = _load(ui, config_path)
    if out_path is not None and out_path.exists():
        raise UsageError(
            f"--out {out_path} exists; choose a new file (keystate never overwrites it)"
        )
    live = _run_async(_live_keys(ui, config, account))
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

    _ui().out(json.dumps(configschema.build(), indent=2))
    return EXIT_OK


# -- privileges -------------------------------------------------------------------------
@cli.command()
@click.argument("account")
@config_option
@click.option("--format", "fmt", type=click.Choice(FORMATS), default="text", show_default=True)
def privileges(account: str, config_path: Path, fmt: str) -> int:
    """What can be granted to a key in ACCOUNT (Algolia ACLs; Coveo's live catalogue)."""
    ui = _ui()
    config = _load(ui, config_path)
    grants = _run_async(_grants(ui, config, account))
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


# -- emulator ---------------------------------------------------------------------------
class _EmulatorGroup(click.Group):
    """``keystate emulator ...``, defined in :mod:`keystate.emulator_commands` and
    imported only when it runs, so that the other commands start without it."""

    @staticmethod
    def _commands() -> click.Group:
        from keystate.emulator_commands import emulator

        return emulator

    def list_commands(self, ctx: click.Context) -> list[str]:
        return self._commands().list_commands(ctx)

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        return self._commands().get_command(ctx, cmd_name)


@cli.group(cls=_EmulatorGroup)
def emulator() -> None:
    """Run a local emulator of a provider's key API (for tests, demos and CI)."""


def main() -> NoReturn:
    cli.main()
