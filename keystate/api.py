"""keystate as a library: load a configuration, plan, apply, render.

The command line is one user of these functions; a team's own tooling can be another
(the way octoDNS's ``Manager`` is embedded)::

    import keystate

    config = keystate.load_config("keystate.yaml")
    plan = keystate.make_plan(config)
    print(keystate.render_plan(plan, "text"))
    if plan.has_changes:
        results = keystate.apply_config(config, secrets_out="new-keys.jsonl")

Everything here is typed; errors are :class:`keystate.errors.KeystateError` subclasses
(``ConfigError`` with every problem and its ``file:line``, ``SafetyError`` when a gate
refuses, ``ProviderError`` when an account cannot be read or written). ``make_plan`` and
``apply_config`` run their own event loop; code already inside one awaits :func:`make_plan_async`
and :func:`apply_config_async`. Heavy modules are imported on first use, so ``import keystate``
stays cheap.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from keystate._version import __version__

if TYPE_CHECKING:
    from keystate.apply import Result
    from keystate.config import Config
    from keystate.plan import Plan

USER_AGENT = f"keystate/{__version__} (library)"


def load_config(path: str | Path, *, env: Mapping[str, str] | None = None) -> Config:
    """Load and check a configuration file or directory (no network). ``env`` replaces
    the process environment for ``${VAR}`` expansion. Raises ConfigError."""
    from keystate.config import load_config as load

    return load(Path(path), env=env)


async def make_plan_async(config: Config, *, accounts: Sequence[str] = ()) -> Plan:
    """Read the selected accounts (all by default) and plan them. Changes nothing."""
    from keystate.contract import ConnectOptions
    from keystate.engine import make_plan

    the_plan, conns = await make_plan(config, accounts, ConnectOptions(user_agent=USER_AGENT))
    await conns.aclose()
    return the_plan


def make_plan(config: Config, *, accounts: Sequence[str] = ()) -> Plan:
    """:func:`make_plan_async`, in an event loop of its own."""
    import asyncio  # ~40 ms: only when used

    return asyncio.run(make_plan_async(config, accounts=accounts))


async def apply_config_async(
    config: Config,
    *,
    accounts: Sequence[str] = (),
    secrets_out: str | Path | None = None,
    force: bool = False,
    max_delete_ratio: float | None = None,
    parallelism: int = 4,
) -> list[Result]:
    """Plan, check the safety gates, and execute: what ``keystate apply --auto-approve``
    does. New key values go to their configured sinks (``secrets:``, docs/secrets.md);
    ``secrets_out`` (a JSON-lines file, mode 0600) overrides the default sink. A value
    that does not reach every sink is kept in a rescue file and its change fails. Raises
    SafetyError (nothing changed) when a gate refuses; a change that fails is a
    ``Result`` with ``Outcome.FAILED``, not an exception. ``max_delete_ratio`` defaults
    to the command line's (0.25)."""
    from keystate.apply import ApplyOptions, apply_plan
    from keystate.contract import ConnectOptions
    from keystate.engine import make_plan
    from keystate.errors import SafetyError, UsageError
    from keystate.plan import DEFAULT_MAX_DELETE_RATIO
    from keystate.secrets import SecretsSink
    from keystate.sinks.delivery import Deliveries

    ratio = DEFAULT_MAX_DELETE_RATIO if max_delete_ratio is None else max_delete_ratio

    the_plan, conns = await make_plan(config, accounts, ConnectOptions(user_agent=USER_AGENT))
    try:
        reasons = the_plan.gate(
            force=force, max_delete_ratio=ratio, secrets_sink=secrets_out is not None
        )
        if reasons:
            raise SafetyError(reasons)
        if not the_plan.has_changes:
            return []
        out = (str(secrets_out), SecretsSink.open(str(secrets_out))) if secrets_out else None
        deliveries = Deliveries(config.secrets, the_plan.owner, out)
        try:
            used = [s for c in the_plan.changes if c.gives_value for s in the_plan.deliver_to(c)]
            problems = deliveries.preflight(used)
            if problems:
                raise UsageError("; ".join(problems))
            options = ApplyOptions(parallelism=parallelism, deliveries=deliveries)
            return await apply_plan(the_plan, conns.providers, options)
        finally:
            deliveries.close()
    finally:
        await conns.aclose()


def apply_config(
    config: Config,
    *,
    accounts: Sequence[str] = (),
    secrets_out: str | Path | None = None,
    force: bool = False,
    max_delete_ratio: float | None = None,
    parallelism: int = 4,
) -> list[Result]:
    """:func:`apply_config_async`, in an event loop of its own."""
    import asyncio

    return asyncio.run(
        apply_config_async(
            config,
            accounts=accounts,
            secrets_out=secrets_out,
            force=force,
            max_delete_ratio=max_delete_ratio,
            parallelism=parallelism,
        )
    )


def render_plan(
    plan: Plan, fmt: str = "text", *, color: bool = False, show_unmanaged: bool = False
) -> str:
    """A plan as ``text`` (Terraform-style), ``json`` (the versioned document) or
    ``markdown`` (a pull-request comment)."""
    from keystate.render import RenderOptions, renderer

    return renderer(fmt)(plan, RenderOptions(color=color, show_unmanaged=show_unmanaged))
