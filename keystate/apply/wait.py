"""Waiting for eventually consistent providers: bounded polls, never a hang.

After each write on a provider that declares ``eventually_consistent`` (Algolia), apply
waits until the change is visible; past the bound the change is reported unconfirmed.
Listings asked for at about the same time are shared (:class:`SharedListing`).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable
from typing import Final, TypeVar

from keystate.apply.outcome import Unconfirmed
from keystate.compare import field_changes
from keystate.contract import Provider, ProviderSchema
from keystate.errors import ProviderError
from keystate.model import KeySpec, LiveKey
from keystate.progress import Waiting

log = logging.getLogger("keystate.apply")

# How long a provider documented as read-consistent is still given to show a key.
CONSISTENT_LOOKUP_SECONDS: Final = 2.0
T = TypeVar("T")


async def poll(
    check: Callable[[], Awaitable[T | None]], timeout: float, what: str | None = None
) -> T | None:
    """Call ``check`` until it returns something, for at most ``timeout`` seconds; a long
    wait reports ``still <what>... [Ns elapsed]`` (:mod:`keystate.progress`)."""
    deadline = time.monotonic() + timeout
    delay = 0.05
    waiting = Waiting(what)
    while True:
        waiting.tick()
        try:
            found = await check()
        except ProviderError as exc:
            log.info("while waiting: %s", exc)
            found = None
        if found is not None:
            return found
        left = deadline - time.monotonic()
        if left <= 0:
            return None
        await asyncio.sleep(min(delay, left))
        delay = min(delay * 2, 1.0)


class Visibility:
    """Confirms that writes to one account became visible (no-op when reads are
    consistent)."""

    def __init__(
        self, provider: Provider, schema: ProviderSchema, timeout: float, account: str = ""
    ) -> None:
        self.provider = provider
        self.schema = schema
        self.timeout = timeout
        self.account = account

    def lookup_bound(self) -> float:
        """How long to look for a key that should exist. Even a provider documented as
        read-consistent gets a short window: missing a committed key could mean creating
        it a second time."""
        if self.schema.eventually_consistent:
            return self.timeout
        return min(self.timeout, CONSISTENT_LOOKUP_SECONDS)

    async def present(self, key: LiveKey, spec: KeySpec, verb: str) -> None:
        if not self.schema.eventually_consistent:
            return
        schema = self.schema

        async def visible() -> bool | None:
            current = await self.provider.read_key(key)
            return (
                True if current is not None and not field_changes(schema, spec, current) else None
            )

        what = f"waiting for {spec.address} to appear"
        if await poll(visible, self.timeout, what) is None:
            raise Unconfirmed(
                f"{verb}, but not yet visible after {self.timeout:g}s; run plan later to confirm"
            )

    async def gone(self, key: LiveKey, strict: bool = True) -> None:
        if not self.schema.eventually_consistent:
            return

        async def absent() -> bool | None:
            return True if await self.provider.read_key(key) is None else None

        name = key.marker.name if key.marker else key.ref
        what = f"waiting for {self.account}/{name} to disappear"
        if await poll(absent, self.timeout, what) is None and strict:
            raise Unconfirmed(
                f"deleted, but still visible after {self.timeout:g}s; run plan later to confirm"
            )


class SharedListing:
    """One account listing shared by the creates that ask for one at about the same
    time: each caller gets a listing that started after it asked."""

    def __init__(self, provider: Provider) -> None:
        self.provider = provider
        self._task: asyncio.Future[list[LiveKey]] | None = None
        self._started = 0.0

    async def after(self, moment: float) -> list[LiveKey]:
        while True:
            task = self._task
            if task is not None and self._started >= moment:
                return await asyncio.shield(task)
            if task is not None and not task.done():
                with contextlib.suppress(Exception):
                    await asyncio.shield(task)
                continue
            self._started = time.monotonic()
            self._task = asyncio.ensure_future(self.provider.list_keys())
