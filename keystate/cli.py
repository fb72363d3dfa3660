"""The ``keystate`` command line: parse, call the library, render, map errors to exit codes.

Exit codes (every command): 0 success; 1 error (bad usage, invalid configuration, API
failure, partial apply); 2 ``plan --detailed-exitcode`` with changes; 3 refused by a
safety gate, nothing changed. Usage errors exit 1, not click's 2, so that 2 always
means "changes pending".

Heavy modules (httpx, deepdiff, the emulators) are imported inside the commands that
need them, so ``keystate --help`` and ``keystate validate`` start fast.
"""

from __future__ import annotations

import importlib
import json
import sys
from collections.abc import Callable, Coroutine, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, NoReturn, TypeVar

import click

from keystate import __version__
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
    from keystate.apply import Result
    from keystate.config import Config
    from keystate.plan import Plan
    from keystate.providers.base import ConnectOptions

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


def _connect_options(ui: Ui) -> ConnectOptions:
    from keystate.providers.base import ConnectOptions

    return ConnectOptions(verbose=ui.verbosity > 0, user_agent=f"keystate/{__version__}")


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
    _render(ui, the_plan, fmt, show_unmanaged)
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
    the_plan, conns = await make_plan(config, accounts, _connect_options(ui), release_keys=True)
    await conns.aclose()
    return the_plan


def _render(ui: Ui, the_plan: Plan, fmt: str, show_unmanaged: bool) -> None:
    from keystate.render import RenderOptions

    options = RenderOptions(color=ui.color and fmt == "text", show_unmanaged=show_unmanaged)
    module = importlib.import_module(f"keystate.render.{fmt}")
    ui.out(module.render(the_plan, options), nl=False)


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
    run = _Run(ui, force, max_delete_ratio, secrets_out, parallelism, report_path, show_unmanaged)
    if planfile is not None:
        if accounts:
            raise UsageError("--account cannot be combined with a saved plan")
        explicit = ctx.get_parameter_source("config_path") is not click.core.ParameterSource.DEFAULT
        config = _load(ui, config_path) if explicit else None
        return _run_async(run.saved(planfile, config))
    config = _load(ui, config_path)
    return _run_async(run.fresh(config, accounts, auto_approve))


class _Run:
    """One apply: from a fresh plan or a saved one, through the same gates and executor."""

    def __init__(
        self,
        ui: Ui,
        force: bool,
        max_delete_ratio: float,
        secrets_out: str | None,
        parallelism: int,
        report_path: Path | None,
        show_unmanaged: bool,
    ) -> None:
        self.ui = ui
        self.force = force
        self.max_delete_ratio = max_delete_ratio
        self.secrets_out = secrets_out
        self.parallelism = parallelism
        self.report_path = report_path
        self.show_unmanaged = show_unmanaged

    def gate(self, the_plan: Plan) -> None:
        reasons = the_plan.gate(
            force=self.force,
            max_delete_ratio=self.max_delete_ratio,
            secrets_sink=self.secrets_out is not None,
        )
        if reasons:
            raise SafetyError(reasons)

    async def fresh(self, config: Config, accounts: Sequence[str], auto_approve: bool) -> int:
        from keystate.engine import make_plan

        ui = self.ui
        ui.progress(f"Reading {len(accounts) or len(config.accounts)} account(s)...")
        the_plan, conns = await make_plan(config, accounts, _connect_options(ui), release_keys=True)
        try:
            _render(ui, the_plan, "text", self.show_unmanaged)
            self.gate(the_plan)
            if not the_plan.has_changes:
                return self.nothing_to_do()
            if not _confirm(ui, auto_approve):
                ui.err("Apply cancelled; nothing was changed.")
                return EXIT_ERROR
            return await self.execute(the_plan, conns)
        finally:
            await conns.aclose()

    async def saved(self, planfile: Path, config: Config | None) -> int:
        import os

        from keystate import savedplan
        from keystate.engine import open_connections, read_live

        ui = self.ui
        document = savedplan.load(planfile)
        if config is not None:
            accounts = dict(config.accounts)
        else:
            accounts = savedplan.accounts_from_document(document, os.environ)
        missing = [a["name"] for a in document["accounts"] if a["name"] not in accounts]
        if missing:
            raise UsageError(
                f"the configuration has no account(s) {', '.join(missing)} of the plan"
            )
        the_plan = savedplan.to_plan(document, accounts)
        _render(ui, the_plan, "text", self.show_unmanaged)
        self.gate(the_plan)
        if not the_plan.has_changes:
            return self.nothing_to_do()
        names = [a.account.name for a in the_plan.accounts if a.changes]
        conns = open_connections(accounts, names, _connect_options(ui))
        try:
            ui.progress("Checking that the plan is still current...")
            bound = savedplan.bind_live(the_plan, await read_live(conns))
            return await self.execute(bound, conns)
        finally:
            await conns.aclose()

    def nothing_to_do(self) -> int:
        """No changes: still write the (empty) report a CI step may be waiting for."""
        if self.report_path is not None:
            _write_report(self.report_path, [])
        return EXIT_OK

    async def execute(self, the_plan: Plan, conns: Any) -> int:
        from keystate.apply import ApplyOptions, apply_plan

        sink = _open_sink(self.secrets_out) if self.secrets_out else None
        try:
            results = await apply_plan(
                the_plan,
                conns.providers,
                ApplyOptions(parallelism=self.parallelism, sink=sink, on_result=_printer(self.ui)),
            )
        finally:
            if sink is not None:
                sink.close()
        if self.report_path is not None:
            _write_report(self.report_path, results)
        return _summarise(self.ui, results, sink.delivered if sink else 0, self.secrets_out)


def _open_sink(dest: str) -> Any:
    from keystate.secrets import SecretsSink

    try:
        sink = SecretsSink.open(dest)
    except OSError as exc:
        raise UsageError(f"--secrets-out {dest}: {exc.strerror or exc}") from None
    if sink.repaired_mode is not None:
        _ui().err(
            f"Warning: --secrets-out {dest} was readable by others (mode "
            f"{sink.repaired_mode:04o}); it is now 0600. Values written to it before may "
            "have been read."
        )
    return sink


def _confirm(ui: Ui, auto_approve: bool) -> bool:
    if auto_approve:
        return True
    if not sys.stdin.isatty():
        raise UsageError(
            "refusing to apply without confirmation: standard input is not a terminal; "
            "pass --auto-approve (or apply a saved plan)"
        )
    ui.err("\nDo you want to perform these actions?\n  Only 'yes' will be accepted to approve.")
    answer = click.prompt("  Enter a value", default="", show_default=False, err=True)
    return str(answer).strip() == "yes"


def _printer(ui: Ui) -> Callable[[Result], None]:
    def show(result: Result) -> None:
        ref = f" ({result.ref})" if result.ref else ""
        ui.out(f"{result.address}: {result.outcome.value.upper()}{ref}: {result.detail}")

    return show


def _write_report(path: Path, results: Sequence[Result]) -> None:
    from keystate.apply import Outcome

    document = {
        "format_version": "1",
        "keystate_version": __version__,
        "results": [r.to_dict() for r in results],
        "summary": {o.value: sum(1 for r in results if r.outcome is o) for o in Outcome},
    }
    path.write_text(json.dumps(document, indent=2) + "\n", encoding="utf-8")


def _summarise(ui: Ui, results: Sequence[Result], delivered: int, secrets_out: str | None) -> int:
    from keystate.apply import Outcome

    counts = {o: sum(1 for r in results if r.outcome is o) for o in Outcome}
    where = f"; {delivered} new key value(s) written to {secrets_out}" if delivered else ""
    if counts[Outcome.FAILED] or counts[Outcome.SKIPPED]:
        ui.out(
            f"\nApply finished with errors: {counts[Outcome.DONE]} done, "
            f"{counts[Outcome.UNCONFIRMED]} unconfirmed, {counts[Outcome.FAILED]} failed, "
            f"{counts[Outcome.SKIPPED]} skipped{where}. Run apply again to finish."
        )
        return EXIT_ERROR
    note = (
        f" ({counts[Outcome.UNCONFIRMED]} not yet visible; run plan later to confirm)"
        if counts[Outcome.UNCONFIRMED]
        else ""
    )
    ui.out(f"\nApply complete: {len(results)} change(s) made{note}{where}.")
    return EXIT_OK


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
    _render(ui, savedplan.to_plan(document, accounts), fmt, show_unmanaged)
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
    conns = open_connections(config.accounts, [account], _connect_options(ui))
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
        ui.out(json.dumps([{"name": g.name, "detail": g.detail} for g in grants], indent=2))
        return EXIT_OK
    width = max((len(g.name) for g in grants), default=0)
    for grant in grants:
        ui.out(f"{grant.name.ljust(width)}  {grant.detail}".rstrip())
    return EXIT_OK


async def _grants(ui: Ui, config: Config, account: str) -> list[Any]:
    from keystate.engine import open_connections, select_accounts

    select_accounts(config, [account])
    conns = open_connections(config.accounts, [account], _connect_options(ui))
    try:
        return await conns[account].grants()
    finally:
        await conns.aclose()


# -- emulator ---------------------------------------------------------------------------
@cli.group()
def emulator() -> None:
    """Run a local emulator of a provider's key API (for tests, demos and CI)."""


def _emulator_options(f: Callable[..., Any]) -> Callable[..., Any]:
    options = [
        click.option(
            "--port", type=click.IntRange(0, 65535), default=0, help="0 picks a free port."
        ),
        click.option("--state", type=click.Path(path_type=Path), help="Persist keys in this file."),
        click.option("--latency-ms", type=click.FloatRange(0), default=0.0),
        click.option("--propagation-delay-ms", type=click.FloatRange(0), default=0.0),
        click.option("--faults", default="", metavar="KIND=RATE,...", help="e.g. 429=0.1,500=0.05"),
        click.option("--fault-seed", type=int),
        click.option("--retry-after", type=click.FloatRange(0), default=1.0, show_default=True),
        click.option("--timeout-hold", type=click.FloatRange(0), default=30.0, show_default=True),
    ]
    for option in reversed(options):
        f = option(f)
    return f


@emulator.command("algolia")
@_emulator_options
@click.option("--app-id", envvar="KEYSTATE_EMULATOR_APP_ID", help="Application ID.")
@click.option(
    "--admin-key",
    envvar="KEYSTATE_EMULATOR_ADMIN_KEY",
    help="Admin API key (prefer the KEYSTATE_EMULATOR_ADMIN_KEY variable).",
)
@click.option("--list-admin-key", is_flag=True, help="GET /1/keys also lists the admin key.")
def emulator_algolia(
    port: int,
    state: Path | None,
    latency_ms: float,
    propagation_delay_ms: float,
    faults: str,
    fault_seed: int | None,
    retry_after: float,
    timeout_hold: float,
    app_id: str | None,
    admin_key: str | None,
    list_admin_key: bool,
) -> int:
    """Serve Algolia's /1/keys API on 127.0.0.1."""
    from keystate.emulators.algolia import AlgoliaEmulator

    if not admin_key and not (state and state.exists()):
        raise UsageError(
            "give the admin key with KEYSTATE_EMULATOR_ADMIN_KEY (or --admin-key), or a "
            "--state file that holds one: a generated key could not be shown to you"
        )
    app = AlgoliaEmulator(
        state,
        app_id=app_id,
        admin_key=admin_key,
        propagation_delay_ms=propagation_delay_ms,
        list_admin_key=list_admin_key,
    )
    return _serve(
        app,
        port,
        latency_ms,
        faults,
        fault_seed,
        retry_after,
        timeout_hold,
        f"Algolia emulator for application {app.app_id}",
    )


@emulator.command("coveo")
@_emulator_options
@click.option("--org", "organization_id", envvar="KEYSTATE_EMULATOR_ORG", help="Organization ID.")
@click.option(
    "--token",
    envvar="KEYSTATE_EMULATOR_TOKEN",
    help="Access token with every privilege (prefer the KEYSTATE_EMULATOR_TOKEN variable).",
)
@click.option("--region", type=click.Choice(["us", "eu", "au", "ca", "hipaa"]), default="us")
@click.option(
    "--allow-api-key-bearer",
    is_flag=True,
    help="Let API keys holding PLATFORM/API_KEY privileges manage keys (docs say they cannot).",
)
@click.option(
    "--missing-privilege-status",
    type=click.Choice(["401", "403"]),
    default="401",
    show_default=True,
)
@click.option(
    "--default-lifetime", metavar="DURATION", help="e.g. P90D, for keys made without one."
)
def emulator_coveo(
    port: int,
    state: Path | None,
    latency_ms: float,
    propagation_delay_ms: float,
    faults: str,
    fault_seed: int | None,
    retry_after: float,
    timeout_hold: float,
    organization_id: str | None,
    token: str | None,
    region: str,
    allow_api_key_bearer: bool,
    missing_privilege_status: str,
    default_lifetime: str | None,
) -> int:
    """Serve Coveo's API-key endpoints (/rest/organizations/ORG/apikeys...) on 127.0.0.1."""
    from keystate.emulators.coveo import CoveoEmulator

    if not token and not (state and state.exists()):
        raise UsageError(
            "give the token with KEYSTATE_EMULATOR_TOKEN (or --token), or a --state file "
            "that holds one: a generated token could not be shown to you"
        )
    try:
        app = CoveoEmulator(
            state,
            organization_id=organization_id,
            token=token,
            region=region,
            propagation_delay_ms=propagation_delay_ms,
            allow_api_key_bearer=allow_api_key_bearer,
            missing_privilege_status=int(missing_privilege_status),
            default_lifetime=default_lifetime,
        )
    except ValueError as exc:
        raise UsageError(str(exc)) from None
    return _serve(
        app,
        port,
        latency_ms,
        faults,
        fault_seed,
        retry_after,
        timeout_hold,
        f"Coveo emulator for organization {app.organization_id} ({region})",
    )


def _serve(
    app: Any,
    port: int,
    latency_ms: float,
    faults: str,
    fault_seed: int | None,
    retry_after: float,
    timeout_hold: float,
    title: str,
) -> int:
    from keystate.emulators.faults import FaultSpec, Knobs
    from keystate.emulators.http import serve_forever

    try:
        spec = FaultSpec.parse(faults)
    except ValueError as exc:
        raise UsageError(f"--faults: {exc}") from None
    knobs = Knobs(
        latency_ms=latency_ms,
        faults=spec,
        fault_seed=fault_seed,
        retry_after=retry_after,
        timeout_hold_s=timeout_hold,
    )
    ui = _ui()

    def ready(bound: int) -> None:
        ui.out(f"{title} listening on http://127.0.0.1:{bound}")
        sys.stdout.flush()

    serve_forever(app, knobs, "127.0.0.1", port, ready)
    return EXIT_OK


def main() -> NoReturn:
    cli.main()
