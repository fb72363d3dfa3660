"""The ``keystate`` group: global options, and every failure mapped to an exit code.

Exit codes (every command): 0 success; 1 error (bad usage, invalid configuration, API
failure, partial apply); 2 ``plan --detailed-exitcode`` with changes; 3 refused by a
safety gate, nothing changed. Usage errors exit 1, not click's 2, so that 2 always
means "changes pending".

Heavy modules (httpx, deepdiff, the emulators) are imported inside the commands that
need them, so ``keystate --help`` and ``keystate validate`` start fast.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Coroutine, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final, NoReturn, TypeVar

import click

from keystate._version import __version__
from keystate.cli.ui import Ui
from keystate.errors import (
    EXIT_ERROR,
    EXIT_OK,
    EXIT_REFUSED,
    ConfigError,
    KeystateError,
    SafetyError,
    Severity,
)

if TYPE_CHECKING:
    from click.shell_completion import CompletionItem

    from keystate.config import Config

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
        argv = list(sys.argv[1:] if args is None else args)
        if not argv:  # `keystate` alone: the help, exit 0
            argv = ["--help"]
        code = _run(
            lambda: super(KeystateGroup, self).main(
                _habits(self, argv), prog_name or "keystate", complete_var, False, **extra
            )
        )
        sys.exit(code)


# Terraform's single-dash spellings, and what keystate calls them.
_TERRAFORM_FLAGS: Final = ("out", "auto-approve", "detailed-exitcode", "target", "replace")


def _habits(group: click.Group, argv: list[str]) -> list[str]:
    """Terraform muscle memory: ``-out`` gets "did you mean --out?", and ``--no-color``
    is accepted after the subcommand too (it is moved in front of it)."""
    before = argv[: argv.index("--")] if "--" in argv else argv
    for arg in before:
        name = arg[1:].split("=", 1)[0]
        single_dash = arg.startswith("-") and not arg.startswith("--") and len(name) > 1
        if single_dash and (name in _TERRAFORM_FLAGS or name in _long_options(group)):
            raise click.UsageError(f"no such option {arg.split('=', 1)[0]}; did you mean --{name}?")
    if "--no-color" in before[1:]:
        argv = [
            "--no-color",
            *(a for i, a in enumerate(argv) if a != "--no-color" or i >= len(before)),
        ]
    return argv


def _long_options(group: click.Group) -> set[str]:
    names: set[str] = set()
    for command in group.commands.values():
        for param in command.params:
            names.update(o[2:] for o in getattr(param, "opts", ()) if o.startswith("--"))
    return names


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


def run_async(coroutine: Coroutine[Any, Any, T]) -> T:
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


def complete_accounts(
    ctx: click.Context, _param: click.Parameter, incomplete: str
) -> list[CompletionItem]:
    """Shell completion: the account names of the configuration (-c, or keystate.yaml)."""
    from click.shell_completion import CompletionItem

    from keystate.config import load_config

    path = ctx.params.get("config_path") or Path("keystate.yaml")
    try:
        names = sorted(load_config(Path(path), offline=True).accounts)
    except Exception:  # completion must never fail loudly
        return []
    return [CompletionItem(n) for n in names if n.startswith(incomplete)]


def accounts_option(f: Callable[..., Any]) -> Callable[..., Any]:
    return click.option(
        "--account",
        "accounts",
        multiple=True,
        metavar="NAME",
        shell_complete=complete_accounts,
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
    from keystate import progress

    ui = Ui(verbosity=verbose, quiet=quiet, no_color=no_color)
    ui.setup_logging()
    progress.set_reporter(ui.info)  # long waits say so: "still waiting for ... [10s elapsed]"
    ctx.call_on_close(ui.teardown_logging)
    ctx.obj = ui


def current_ui() -> Ui:
    ui = click.get_current_context().obj
    assert isinstance(ui, Ui)
    return ui


def load(
    ui: Ui, path: Path, *, strict: bool = False, offline: bool = False, brief: bool = True
) -> Config:
    """Load the configuration. Its warnings are listed by ``validate`` (``brief=False``)
    and with -v; other commands count them in one line, so that a CI job running
    validate, plan and apply shows them once."""
    from keystate.config import load_config

    config = load_config(path, offline=offline)
    if strict and config.warnings:
        raise ConfigError(
            [type(w)(w.message, w.location, Severity.ERROR, w.rule) for w in config.warnings]
        )
    n = len(config.warnings)
    if not brief or ui.verbosity > 0 or not n:
        ui.problems(config.warnings)
    elif not ui.quiet:
        ui.err(
            f"{n} configuration warning{'s' if n != 1 else ''} (`keystate validate` lists "
            "them; -v shows them here)."
        )
    return config


def plannable(ui: Ui, config: Config, accounts: Sequence[str], *, partial: bool) -> list[str]:
    """The selected accounts that can be planned. An account with a key whose expiry has
    passed cannot be (``Config.blocked``): with ``partial`` (plan) its problems are
    reported and the others planned; otherwise (apply) nothing is done."""
    from keystate.engine import select_accounts

    selected = select_accounts(config, accounts)
    blocked = [a for a in selected if a in config.blocked]
    if not blocked:
        return selected
    problems = [p for a in blocked for p in config.blocked[a]]
    rest = [a for a in selected if a not in config.blocked]
    if not partial or not rest:
        if rest:
            others = " ".join(f"--account {a}" for a in rest)
            ui.err(f"Note: the other accounts can be applied on their own: {others}")
        raise ConfigError(problems)
    ui.problems(problems)
    ui.err(
        f"Error: account(s) {', '.join(blocked)} not planned until the problem(s) above are "
        f"fixed; planning {', '.join(rest)}."
    )
    return rest


def targets_option(f: Callable[..., Any]) -> Callable[..., Any]:
    return click.option(
        "--target",
        "targets",
        multiple=True,
        metavar="ACCOUNT/NAME",
        help="Only this key (repeatable), like terraform -target: for exceptional cases.",
    )(f)


TARGET_WARNING: Final = """
Warning: Resource targeting is in effect

You are creating a plan with --target, which means that the result of this plan may not
represent all of the changes requested by the current configuration.

The --target option is not for routine use, and is provided only for exceptional
situations such as recovering from errors or mistakes, or when keystate specifically
suggests to use it as part of an error message.
"""


def target_accounts(
    ui: Ui, config: Config, accounts: Sequence[str], targets: Sequence[str]
) -> tuple[str, ...]:
    """Check ``--target`` addresses and return the accounts to read (those named by the
    targets, within --account when given). Prints Terraform's targeting warning."""
    if not targets:
        return tuple(accounts)
    for address in targets:
        account, sep, name = address.partition("/")
        if not sep or not account or not name:
            raise click.UsageError(f"--target {address}: use ACCOUNT/NAME, e.g. algolia-prod/web")
        if account not in config.accounts:
            known = ", ".join(sorted(config.accounts)) or "none"
            raise click.UsageError(
                f"--target {address}: no account {account!r} (configured: {known})"
            )
        if accounts and account not in accounts:
            raise click.UsageError(f"--target {address}: account {account} is not among --account")
    ui.err(TARGET_WARNING)
    return tuple(sorted({t.partition("/")[0] for t in targets}))
