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
    from keystate.sinks import SecretsConfig
    from keystate.sinks.delivery import Deliveries


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
    targets: frozenset[str] = frozenset()
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
        if self.targets:
            the_plan = the_plan.only(self.targets)
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
            return await self.execute(the_plan, conns, config.secrets)
        finally:
            await conns.aclose()

    async def saved(self, planfile: Path, config: Config | None) -> int:

        from keystate import planfile as files
        from keystate.apply import bind_live
        from keystate.engine import open_connections, read_live
        from keystate.providers import schema_for
        from keystate.sinks import SecretsConfig

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
            secrets = config.secrets if config is not None else SecretsConfig()
            return await self.execute(bound, conns, secrets)
        finally:
            await conns.aclose()

    def nothing_to_do(self) -> int:
        """No changes: still write the (empty) report a CI step may be waiting for."""
        if self.report_path is not None:
            _write_report(self.report_path, [])
        return EXIT_OK

    async def execute(self, the_plan: Plan, conns: Any, secrets: SecretsConfig) -> int:
        from keystate.apply import ApplyOptions, apply_plan

        deliveries = open_deliveries(self.ui, the_plan, secrets, self.secrets_out)
        try:
            results = await apply_plan(
                the_plan,
                conns.providers,
                ApplyOptions(
                    parallelism=self.parallelism,
                    deliveries=deliveries,
                    on_result=_printer(self.ui, deliveries),
                ),
            )
        finally:
            deliveries.close()
        if self.report_path is not None:
            _write_report(self.report_path, results)
        return _summarise(self.ui, results, deliveries)


def open_deliveries(
    ui: Ui, the_plan: Plan, secrets: SecretsConfig, secrets_out: str | None
) -> Deliveries:
    """The sinks of this run, checked before anything changes: every sink the plan
    names exists and is usable (UsageError otherwise)."""
    from keystate.secrets import SecretsSink
    from keystate.sinks.delivery import Deliveries

    opened = None
    if secrets_out is not None:
        try:
            opened = (secrets_out, SecretsSink.open(secrets_out))
        except OSError as exc:
            raise UsageError(f"--secrets-out {secrets_out}: {exc.strerror or exc}") from None
        if opened[1].repaired_mode is not None:
            ui.err(
                f"Warning: --secrets-out {secrets_out} was readable by others (mode "
                f"{opened[1].repaired_mode:04o}); it is now 0600. Values written to it before "
                "may have been read."
            )
    deliveries = Deliveries(secrets, the_plan.owner, opened)
    problems = deliveries.preflight(
        [
            sink
            for c in the_plan.changes
            if c.gives_value
            for sink in deliveries.targets(the_plan.deliver_to(c))
        ]
    )
    if problems:
        deliveries.close()
        raise UsageError("; ".join(problems))
    return deliveries


def _confirm(ui: Ui, auto_approve: bool) -> bool:
    if auto_approve:
        return True
    if not sys.stdin.isatty():
        raise UsageError(
            "refusing to apply without confirmation: standard input is not a terminal; "
            "pass --auto-approve (or apply a saved plan)"
        )
    ui.err("\nDo you want to perform these actions?\n  Only 'yes' will be accepted to approve.")
    try:
        answer = click.prompt("  Enter a value", default="", show_default=False, err=True)
    except click.exceptions.Abort:  # Ctrl-C or Ctrl-D at the prompt
        ui.err("")
        return False
    return str(answer).strip() == "yes"


def _printer(ui: Ui, deliveries: Deliveries) -> Callable[[Result], None]:
    def show(result: Result) -> None:
        ref = f" ({result.ref})" if result.ref else ""
        ui.out(f"{result.address}: {result.outcome.value.upper()}{ref}: {result.detail}")
        for warning in deliveries.warnings():
            ui.err(f"Warning: {warning}")

    return show


def check_writable(path: Path, option: str) -> None:
    """Fail before anything changes when ``path`` cannot be written (and leave no file)."""
    existed = path.exists()
    try:
        with path.open("a", encoding="utf-8"):
            pass
    except OSError as exc:
        raise UsageError(f"{option} {path}: {exc.strerror or exc}") from None
    if not existed:
        path.unlink(missing_ok=True)


def _write_report(path: Path, results: Sequence[Result]) -> None:
    from keystate.apply import Outcome

    document = {
        "format_version": "1",
        "keystate_version": __version__,
        "results": [r.to_dict() for r in results],
        "summary": {o.value: sum(1 for r in results if r.outcome is o) for o in Outcome},
    }
    try:
        path.write_text(json.dumps(document, indent=2) + "\n", encoding="utf-8")
    except OSError as exc:
        reason = exc.strerror or exc
        raise UsageError(f"--report {path}: {reason} (the report was not written)") from None


def _summarise(ui: Ui, results: Sequence[Result], deliveries: Deliveries) -> int:
    from keystate.apply import Outcome

    counts = {o: sum(1 for r in results if r.outcome is o) for o in Outcome}
    where = ""
    if deliveries.delivered:
        sinks = ", ".join(sorted(deliveries.reached))
        where = f"; {deliveries.delivered} new key value(s) delivered to {sinks}"
    rescue = deliveries.rescue
    if rescue.path is not None:
        ui.err(
            f"Warning: {rescue.rescued} new key value(s) did not reach all their sinks; they "
            f"are in {rescue.path} (mode 0600). Fix the sinks and run apply again, or deliver "
            "them by hand, then delete the file."
        )
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
