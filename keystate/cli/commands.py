"""The commands: parse options, call the library, render, return an exit code.

Heavy modules (httpx, deepdiff, the emulators) are imported inside the commands that
need them, so ``keystate --help`` and ``keystate validate`` start fast.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import click

from keystate.cli.app import (
    accounts_option,
    cli,
    config_option,
    current_ui,
    load,
    plannable,
    run_async,
    target_accounts,
    targets_option,
)
from keystate.cli.applyrun import ApplyRun, check_writable, connect_options, render_plan
from keystate.cli.lifecycle import Lifecycle, lifecycle_options
from keystate.cli.ui import Ui
from keystate.errors import EXIT_CHANGES, EXIT_ERROR, EXIT_OK, EXIT_REFUSED, ConfigError, UsageError

if TYPE_CHECKING:
    from keystate.config import Config
    from keystate.plan import Plan

FORMATS = ("text", "json")
PLAN_FORMATS = ("text", "json", "markdown")


# -- validate ---------------------------------------------------------------------------
@cli.command()
@config_option
@click.option("--strict", is_flag=True, help="Treat warnings as errors.")
@click.option(
    "--resolve-env",
    is_flag=True,
    help="Also require every ${VAR} of the accounts to be set and credential files readable.",
)
def validate(config_path: Path, strict: bool, resolve_env: bool) -> int:
    """Check the configuration offline: syntax, schema, provider rules, lint.

    Needs no credentials: an account setting that refers to an unset ${VAR} (or a
    credential file that cannot be read) is checked for its form only, and the output
    says which were skipped; plan and apply resolve them. --resolve-env checks them too.
    """
    ui = current_ui()
    config = load(ui, config_path, strict=strict, offline=not resolve_env, brief=False)
    if config.blocked:
        raise ConfigError([p for problems in config.blocked.values() for p in problems])
    n_keys = sum(len(k) for k in config.keys.values())
    warnings = len(config.warnings)
    note = f", {warnings} warning{'s' if warnings != 1 else ''}" if warnings else ""
    n_accounts = len(config.accounts)
    ui.out(
        f"Configuration is valid: {n_accounts} account{'s' if n_accounts != 1 else ''}, "
        f"{n_keys} key{'s' if n_keys != 1 else ''}{note}."
    )
    if config.skipped:
        ui.out(
            f"Not checked without credentials ({len(config.skipped)}; plan and apply resolve "
            "them): " + ", ".join(config.skipped)
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
@targets_option
@click.option(
    "--drift-only",
    is_flag=True,
    help="Only the drift: managed keys changed outside keystate (like terraform plan "
    "-refresh-only), for nightly jobs.",
)
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
    targets: tuple[str, ...],
    drift_only: bool,
    out_path: Path | None,
    replace: tuple[str, ...],
    overlap: str,
    only: str | None,
) -> int:
    """Read the live accounts and show what apply would change. Never changes anything.

    \b
    Exit codes: 0 success (with --detailed-exitcode: no changes); 1 error;
    2 changes pending (--detailed-exitcode; with --drift-only: drift found);
    3 apply would refuse this plan (a safety gate), nothing was changed.
    """
    ui = current_ui()
    if out_path is not None:
        check_writable(out_path, "--out")
    life = Lifecycle.parse(replace, overlap, only)
    config = load(ui, config_path)
    accounts = target_accounts(ui, config, accounts, targets)
    selected = plannable(ui, config, accounts, partial=True)
    the_plan = life.narrow(run_async(_plan_only(ui, config, selected, life)))
    if targets:
        the_plan = the_plan.only(set(targets))
    if drift_only:
        the_plan = the_plan.drift_only()
    render_plan(ui, the_plan, fmt, show_unmanaged)
    if out_path is not None:
        _save(ui, the_plan, out_path)
    if the_plan.refusals:
        return EXIT_REFUSED
    if any(a in config.blocked for a in accounts or config.accounts):
        return EXIT_ERROR  # an account was not planned (reported above)
    if detailed_exitcode and the_plan.has_changes:
        return EXIT_CHANGES
    return EXIT_OK


def _save(ui: Ui, the_plan: Plan, out_path: Path) -> None:
    from keystate import planfile
    from keystate.plan import CREATING

    try:
        planfile.save(the_plan, out_path)
    except OSError as exc:
        raise UsageError(f"--out {out_path}: {exc.strerror or exc}") from None
    if the_plan.refusals or not the_plan.has_changes:
        why = "keystate refuses it" if the_plan.refusals else "it has no changes"
        ui.info(f"Saved the plan to {out_path} ({why}: nothing to apply).")
        return
    creates = any(c.action in CREATING or c.delivers_value for c in the_plan.changes)
    sink = " --secrets-out new-keys.jsonl" if creates else ""
    ui.info(f"Saved the plan to {out_path}; apply it with: keystate apply {out_path}{sink}")


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
@targets_option
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
    targets: tuple[str, ...],
    replace: tuple[str, ...],
    overlap: str,
    only: str | None,
) -> int:
    """Change the live accounts to match the configuration (plan, show, confirm, execute).

    With PLANFILE (from `plan --out`), execute exactly that saved plan instead, after
    checking that nothing it touches changed since; the file is the approval, so there
    is no prompt.

    \b
    Exit codes: 0 applied (or nothing to do); 1 error or partial apply (run it again);
    3 refused by a safety gate (protected key, mass removal without --force, new key
    values without --secrets-out, stale saved plan): nothing was changed.
    """
    ui = current_ui()
    ui.stdout_reserved = secrets_out == "-"
    if report_path is not None:
        check_writable(report_path, "--report")
    life = Lifecycle.parse(replace, overlap, only)
    run = ApplyRun(
        ui=ui,
        force=force,
        max_delete_ratio=max_delete_ratio,
        secrets_out=secrets_out,
        parallelism=parallelism,
        report_path=report_path,
        show_unmanaged=show_unmanaged,
        targets=frozenset(targets),
        lifecycle=life,
    )
    if planfile is not None:
        if accounts or targets or life.used:
            raise UsageError(
                "--account, --target, --replace and --only cannot be combined with a saved "
                "plan (pass them to plan --out instead)"
            )
        explicit = ctx.get_parameter_source("config_path") is not click.core.ParameterSource.DEFAULT
        config = load(ui, config_path) if explicit else None
        return run_async(run.saved(planfile, config))
    config = load(ui, config_path)
    accounts = target_accounts(ui, config, accounts, targets)
    selected = plannable(ui, config, accounts, partial=False)
    return run_async(run.fresh(config, selected, auto_approve))


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
