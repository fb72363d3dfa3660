"""Reads the live accounts and makes the plan: one list call per account, all at once.

This is where configuration, providers and the diff meet. It holds the open provider
connections for the run (``Connections``), so that ``apply`` executes through the very
connections that read the state it planned against.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Final, TypeVar

from keystate import gcpause, grants
from keystate.config import Config
from keystate.contract import AccountConfig, Catalogue, ConnectOptions, Provider
from keystate.diff import diff_account
from keystate.errors import (
    ConfigError,
    KeystateError,
    PermissionDeniedError,
    PlanError,
    Problem,
    ProviderError,
    UsageError,
)
from keystate.lifecycle import LifecycleOptions
from keystate.model import Action, LiveKey
from keystate.plan import AccountDiff, Plan, new_plan
from keystate.providers import connect

T = TypeVar("T")


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
    """Connect to the named accounts (no request is sent yet). The first connection of
    a provider imports its client (httpx and the rest of the network stack): with the
    cyclic collector paused, as while loading and planning."""
    conns = Connections()
    with gcpause.paused():
        for name in names:
            conns.providers[name] = connect(accounts[name], options)
    return conns


@dataclass(frozen=True)
class _Read:
    """One account as read for a plan: its keys, its grant catalogue (None where the
    provider has none, or the credential may not read it), and warnings."""

    keys: list[LiveKey]
    catalogue: Catalogue | None
    warnings: tuple[str, ...] = ()


async def _keys_and_catalogue(provider: Provider) -> _Read:
    """An account's keys and grant catalogue.

    The catalogue is asked for at the same time, and awaited after the keys: when it has
    already arrived (it usually has), the keys go to planning without a pause in which
    other accounts' keys would pile up in memory too. A credential that may list the
    keys but not read the catalogue still plans: the check of declared grants against
    the catalogue is skipped, with one warning naming what the credential lacks.
    """
    catalogue = asyncio.ensure_future(provider.catalogue())
    try:
        keys = await provider.list_keys()
    except BaseException:
        catalogue.cancel()
        await asyncio.gather(catalogue, return_exceptions=True)
        raise
    try:
        return _Read(keys, await catalogue)
    except PermissionDeniedError as exc:
        needs = exc.needs or "a right the credential does not have"
        return _Read(
            keys,
            None,
            (
                f"{provider.account.name}: the declared grants were not checked against "
                f"what the account offers, because reading its catalogue needs {needs}; "
                "grant it to the credential to have plan catch an unassignable grant "
                "before apply",
            ),
        )


async def _every_account(work: Iterable[Awaitable[T]]) -> list[T]:
    """Run one read per account concurrently; report every account that failed at once."""
    results = await asyncio.gather(*work, return_exceptions=True)
    failures = [str(r) for r in results if isinstance(r, KeystateError)]
    for result in results:
        if isinstance(result, BaseException) and not isinstance(result, KeystateError):
            raise result
    if failures:
        raise ProviderError("cannot read the live keys:\n  " + "\n  ".join(failures))
    return [r for r in results if not isinstance(r, BaseException)]


async def read_live(conns: Connections) -> dict[str, list[LiveKey]]:
    """The live keys of every account, read concurrently."""
    names = list(conns.providers)
    keys = await _every_account(conns.providers[n].list_keys() for n in names)
    return dict(zip(names, keys, strict=True))


def plan_from_live(
    config: Config, live: dict[str, list[LiveKey]], options: LifecycleOptions | None = None
) -> Plan:
    diffs: list[AccountDiff] = []
    errors: list[str] = []
    for name in sorted(live):
        try:
            diffs.append(_diff_one(config, name, live[name], options))
        except PlanError as exc:
            errors.append(str(exc))
    if errors:
        raise PlanError("\n".join(errors))
    return new_plan(diffs, config.owner, [], config.secrets.default_sinks)


def _diff_one(
    config: Config, name: str, live: list[LiveKey], options: LifecycleOptions | None
) -> AccountDiff:
    return diff_account(
        config.accounts[name],
        config.schema(name),
        config.keys.get(name, {}),
        live,
        config.owner,
        options,
        config.forget.get(name, frozenset()),
    )


def check_replace(config: Config, accounts: Sequence[str], replace: Iterable[str]) -> None:
    """``--replace ADDR``: each names a declared key of a selected account."""
    selected = select_accounts(config, accounts)
    for address in replace:
        account, _, name = address.partition("/")
        if account not in selected or name not in config.keys.get(account, {}):
            raise UsageError(
                f"--replace {address}: not a declared key of the selected accounts "
                "(write ACCOUNT/NAME, e.g. algolia-prod/storefront-search)"
            )


# About how many keys' answers may be read at once. Each account's answer waits in
# memory until it is planned; at 100,000 keys, reading every account at once held some
# 40 MB of answers. Configurations up to this size still read every account at once.
KEYS_READ_AT_ONCE: Final = 20_000


def _reads_at_once(config: Config, names: Sequence[str]) -> int:
    """How many accounts to read at once: all of them, unless together they declare
    more than KEYS_READ_AT_ONCE keys."""
    declared = sum(len(config.keys.get(n, {})) for n in names)
    if declared <= KEYS_READ_AT_ONCE:
        return max(1, len(names))
    return max(1, len(names) * KEYS_READ_AT_ONCE // declared)


@dataclass
class _Planned:
    """One account, read and planned: its diff (or why it cannot be planned), and the
    declared grants its catalogue does not offer."""

    diff: AccountDiff | None
    plan_error: str | None
    grant_problems: list[Problem]
    warnings: tuple[str, ...] = ()


async def _read_and_diff(
    config: Config,
    name: str,
    provider: Provider,
    release_keys: bool,
    options: LifecycleOptions | None,
) -> _Planned:
    """Read one account and plan it at once, so that its live keys can go as soon as it
    is planned (a plan keeps only the changes) and the planning of early answers
    overlaps the wait for later ones."""
    read = await _keys_and_catalogue(provider)
    catalogue = read.catalogue
    problems = grants.check(name, config.keys.get(name, {}), catalogue) if catalogue else []
    try:
        diff = _diff_one(config, name, read.keys, options)
    except PlanError as exc:
        return _Planned(None, str(exc), problems, read.warnings)
    finally:
        if release_keys:
            config.release_keys(name)
    problems += await _check_creates(provider, diff)
    return _Planned(diff, None, problems, read.warnings)


async def _check_creates(provider: Provider, diff: AccountDiff) -> list[Problem]:
    """What the provider would refuse in the keys the plan creates, asked before any
    write (e.g. Coveo checks a template key's template, eligibility and lifetime)."""
    creating = [
        c.desired
        for c in diff.changes
        if c.action in (Action.CREATE, Action.REPLACE) and c.desired is not None
    ]
    return await provider.check_creates(creating) if creating else []


async def make_plan(
    config: Config,
    accounts: Sequence[str],
    options: ConnectOptions,
    release_keys: bool = False,
    lifecycle: LifecycleOptions | None = None,
) -> tuple[Plan, Connections]:
    """Connect, read every selected account, diff. The caller closes the connections.

    Failures are reported in the order a reader needs them: accounts that could not be
    read, then declared grants the accounts do not offer, then live states that cannot
    be planned. With ``release_keys``, each account's declared keys are released from
    ``config`` once it is planned (for a caller that needs only the plan after this).
    """
    names = select_accounts(config, accounts)
    blocked = [p for n in names for p in config.blocked.get(n, ())]
    if blocked:  # its declared keys are incomplete: planning it could remove a key
        raise ConfigError(blocked)
    conns = open_connections(config.accounts, names, options)
    try:
        with gcpause.paused():
            return await _plan_all(config, conns, release_keys, lifecycle), conns
    except BaseException:
        await conns.aclose()
        raise


async def _plan_all(
    config: Config,
    conns: Connections,
    release_keys: bool,
    lifecycle: LifecycleOptions | None,
) -> Plan:
    names = sorted(conns.providers)
    gate = asyncio.Semaphore(_reads_at_once(config, names))

    async def one(name: str) -> _Planned:
        async with gate:
            return await _read_and_diff(
                config, name, conns.providers[name], release_keys, lifecycle
            )

    planned = await _every_account(one(n) for n in names)
    problems = [p for one in planned for p in one.grant_problems]
    if problems:
        raise ConfigError(problems, after_reading=True)
    errors = [one.plan_error for one in planned if one.plan_error is not None]
    if errors:
        raise PlanError("\n".join(errors))
    warnings = [w for one in planned for w in one.warnings]
    diffs = [one.diff for one in planned if one.diff is not None]
    return new_plan(diffs, config.owner, warnings, config.secrets.default_sinks)
