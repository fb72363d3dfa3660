"""One ``keystate apply``: from a fresh plan or a saved one, through the same safety
gates, confirmation and executor; then the report and the summary.

Also the two helpers every plan-reading command shares: how a plan is rendered to the
terminal and the options provider connections are opened with. Heavy modules are
imported where they are used, so that importing this module costs nothing.
"""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from keystate._version import __version__
from keystate.cli.ui import Ui
from keystate.errors import EXIT_ERROR, EXIT_OK, SafetyError, UsageError

if TYPE_CHECKING:
    from keystate.apply import Result
    from keystate.cli.lifecycle import Lifecycle
    from keystate.config import Config
    from keystate.contract import ConnectOptions
    from keystate.plan import Plan


def connect_options(ui: Ui) -> ConnectOptions:
    from keystate.contract import ConnectOptions

    return ConnectOptions(verbose=ui.verbosity > 0, user_agent=f"keystate/{__version__}")


def render_plan(ui: Ui, the_plan: Plan, fmt: str, show_unmanaged: bool) -> None:
    from keystate.render import RenderOptions, renderer

    options = RenderOptions(color=ui.color and fmt == "text", show_unmanaged=show_unmanaged)
    ui.out(renderer(fmt)(the_plan, options), nl=False)


@dataclass(frozen=True)
class ApplyRun:
    """One apply: from a fresh plan or a saved one, through the same gates and executor.
    The fields are the options of ``keystate apply``."""

    ui: Ui
    force: bool
    max_delete_ratio: float
    secrets_out: str | None
    parallelism: int
    report_path: Path | None
    show_unmanaged: bool
    lifecycle: Lifecycle | None = None

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
        life = self.lifecycle
        options = life.options(config, accounts) if life is not None else None
        ui.progress(f"Reading {len(accounts) or len(config.accounts)} account(s)...")
        the_plan, conns = await make_plan(
            config, accounts, connect_options(ui), release_keys=True, lifecycle=options
        )
        if life is not None:
            the_plan = life.narrow(the_plan)
        try:
            render_plan(ui, the_plan, "text", self.show_unmanaged)
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

        from keystate import planfile as files
        from keystate.apply import bind_live
        from keystate.engine import open_connections, read_live
        from keystate.providers import schema_for

        ui = self.ui
        document = files.load(planfile)
        if config is not None:
            accounts = dict(config.accounts)
        else:
            accounts = files.accounts_from_document(document, os.environ, schema_for)
        missing = [a["name"] for a in document["accounts"] if a["name"] not in accounts]
        if missing:
            raise UsageError(
                f"the configuration has no account(s) {', '.join(missing)} of the plan"
            )
        the_plan = files.to_plan(document, accounts, schema_for)
        render_plan(ui, the_plan, "text", self.show_unmanaged)
        self.gate(the_plan)
        if not the_plan.has_changes:
            return self.nothing_to_do()
        names = [a.account.name for a in the_plan.accounts if a.changes]
        conns = open_connections(accounts, names, connect_options(ui))
        try:
            ui.progress("Checking that the plan is still current...")
            bound = bind_live(the_plan, await read_live(conns))
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

        sink = _open_sink(self.ui, self.secrets_out) if self.secrets_out else None
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


def _open_sink(ui: Ui, dest: str) -> Any:
    from keystate.secrets import SecretsSink

    try:
        sink = SecretsSink.open(dest)
    except OSError as exc:
        raise UsageError(f"--secrets-out {dest}: {exc.strerror or exc}") from None
    if sink.repaired_mode is not None:
        ui.err(
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
