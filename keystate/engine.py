"""Reads the live accounts and makes the plan: one list call per account, all at once.

This is where configuration, providers and the diff meet. It holds the open provider
connections for the run (``Connections``), so that ``apply`` executes through the very
connections that read the state it planned against.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field

from keystate import gcpause, grants
from keystate.config import Config
from keystate.diff import AccountDiff, diff_account
from keystate.errors import (
    ConfigError,
    KeystateError,
    PlanError,
    Problem,
    ProviderError,
    UsageError,
)
from keystate.model import LiveKey
from keystate.plan import Plan, new_plan
from keystate.providers.base import AccountConfig, Catalogue, ConnectOptions, Provider, connect


@dataclass
class Connections:
    """Open provider connections, by account name."""

    providers: dict[str, Provider] = field(default_factory=dict)

    async def aclose(self) -> None:
        await asyncio.gather(*(p.aclose() for p in self.providers.values()), return_exceptions=True)

    def __getitem__(self, account: str) -> Provider:
        return self.providers[account]


def select_accounts(config: Config, names: Sequence[str]) -> list[str]:
    """The accounts a run covers: all, or those named with --account (checked)."""
    if not names:
        return sorted(config.accounts)
    unknown = [n for n in names if n not in config.accounts]
    if unknown:
        known = ", ".join(sorted(config.accounts)) or "none"
        raise UsageError(f"unknown account(s) {', '.join(unknown)} (configured: {known})")
    return sorted(set(names))


def open_connections(
    accounts: Mapping[str, AccountConfig], names: Iterable[str], options: ConnectOptions
) -> Connections:
    """Connect to the named accounts (no request is sent yet)."""
    conns = Connections()
    for name in names:
        conns.providers[name] = connect(accounts[name], options)
    return conns


@dataclass(frozen=True)
class LiveState:
    """What one read of the accounts found: keys, and grant catalogues where offered."""

    keys: dict[str, list[LiveKey]]
    catalogues: dict[str, Catalogue]


async def _read_one(
    provider: Provider, with_catalogue: bool
) -> tuple[list[LiveKey], Catalogue | None]:
    if not with_catalogue:
        return await provider.list_keys(), None
    keys, catalogue = await asyncio.gather(provider.list_keys(), provider.catalogue())
    return keys, catalogue


async def read_state(conns: Connections, with_catalogues: bool = True) -> LiveState:
    """Read every account concurrently (keys and catalogue issued together); report every
    account that failed."""
    names = list(conns.providers)
    results = await asyncio.gather(
        *(_read_one(conns.providers[n], with_catalogues) for n in names), return_exceptions=True
    )
    state = LiveState({}, {})
    failures: list[str] = []
    for name, result in zip(names, results, strict=True):
        if isinstance(result, KeystateError):
            failures.append(str(result))
        elif isinstance(result, BaseException):
            raise result
        else:
            state.keys[name] = result[0]
            if result[1] is not None:
                state.catalogues[name] = result[1]
    if failures:
        raise ProviderError("cannot read the live keys:\n  " + "\n  ".join(failures))
    return state


async def read_live(conns: Connections) -> dict[str, list[LiveKey]]:
    """Just the live keys of every account."""
    return (await read_state(conns, with_catalogues=False)).keys


def check_grants(config: Config, state: LiveState) -> None:
    problems: list[Problem] = []
    for name, catalogue in sorted(state.catalogues.items()):
        problems += grants.check(name, config.keys.get(name, {}), catalogue)
    if problems:
        raise ConfigError(problems, after_reading=True)


def plan_from_live(config: Config, live: dict[str, list[LiveKey]]) -> Plan:
    diffs: list[AccountDiff] = []
    errors: list[str] = []
    for name in sorted(live):
        try:
            diffs.append(
                diff_account(
                    config.accounts[name],
                    config.schema(name),
                    config.keys.get(name, {}),
                    live[name],
                    config.owner,
                )
            )
        except PlanError as exc:
            errors.append(str(exc))
    if errors:
        raise PlanError("\n".join(errors))
    return new_plan(diffs, config.owner, [])


async def make_plan(
    config: Config, accounts: Sequence[str], options: ConnectOptions
) -> tuple[Plan, Connections]:
    """Connect, read every selected account, diff. The caller closes the connections."""
    conns = open_connections(config.accounts, select_accounts(config, accounts), options)
    try:
        with gcpause.paused():
            state = await read_state(conns)
            check_grants(config, state)
            return plan_from_live(config, state.keys), conns
    except BaseException:
        await conns.aclose()
        raise
