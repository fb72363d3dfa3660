"""Reads the accounts a review covers: one key listing per account, all at once.

No catalogue and no per-key request: a report never costs more requests than a plan.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime

from keystate.config import Config
from keystate.contract import ConnectOptions
from keystate.engine import open_connections, read_live, select_accounts
from keystate.report.model import UNUSED_DAYS, AccountInput, Report, build


async def read_report(
    config: Config,
    accounts: Sequence[str],
    options: ConnectOptions,
    now: datetime | None = None,
    unused_days: int = UNUSED_DAYS,
) -> Report:
    names = select_accounts(config, accounts)
    conns = open_connections(config.accounts, names, options)
    try:
        live = await read_live(conns)
    finally:
        await conns.aclose()
    inputs = [
        AccountInput(name, config.schema(name), config.keys.get(name, {}), live[name])
        for name in names
    ]
    return build(inputs, config.owner, now or datetime.now(UTC), unused_days)
