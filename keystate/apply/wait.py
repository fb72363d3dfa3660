"""Waiting for eventually consistent providers: bounded polls, never a hang.

After each write on a provider that declares ``eventually_consistent`` (Algolia), apply
waits until the change is visible; past the bound the change is reported unconfirmed.
Listings asked for at about the same time are shared (:class:`SharedListing`).

Where the provider declares ``listing_confirms`` (one listing shows every key as a read
would), the writes of a phase are confirmed in waves (:class:`Waves`): a change gives its
parallelism slot back as soon as its write is done, and once every write of the phase is
done one listing confirms every key waiting; keys not yet visible wait for the next
listing. Requests: the writes, plus a listing or a few per phase, instead of one read
(or more) per write.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
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


@dataclass(frozen=True)
class Pending:
    """A write waiting for a listing to show it: ``check`` tells from a listing (keys by
    ref) whether it shows the write; ``unconfirmed`` is the message past the bound."""

    check: Callable[[Mapping[str, LiveKey]], bool]
    unconfirmed: str
    # Says "still waiting for ACCOUNT/NAME to appear... [Ns elapsed]" while it waits.
    waiting: Waiting = field(default_factory=lambda: Waiting(None))


class Waves:
    """Confirms the writes of one account's phase with listings shared by every key
    waiting (one listing per wave). ``expect(n)`` announces a phase of ``n`` changes;
    each change then calls ``written`` once, with what to confirm or None."""

    def __init__(self, provider: Provider, timeout: float) -> None:
        self.provider = provider
        self.timeout = timeout
        self.listings = 0  # listings made to confirm writes (for tests and logs)
        self._outstanding = 0
        self._waiting: list[tuple[Pending, asyncio.Future[bool]]] = []
        self._wave: asyncio.Task[None] | None = None

    def expect(self, changes: int) -> None:
        self._outstanding += changes

    def written(self, pending: Pending | None) -> asyncio.Future[bool]:
        """One change of the phase is through its write; the future tells whether a
        listing showed it (done at once when there is nothing to confirm)."""
        future: asyncio.Future[bool] = asyncio.get_running_loop().create_future()
        if pending is None:
            future.set_result(True)
        else:
            self._waiting.append((pending, future))
        self._outstanding = max(0, self._outstanding - 1)
        if self._outstanding == 0 and self._waiting and self._wave is None:
            self._wave = asyncio.ensure_future(self._run())
        return future

    async def _run(self) -> None:
        deadline = time.monotonic() + self.timeout
        delay = 0.05
        try:
            while self._waiting:
                await self._list_once()
                for pending, _ in self._waiting:
                    pending.waiting.tick()
                left = deadline - time.monotonic()
                if not self._waiting or left <= 0:
                    break
                await asyncio.sleep(min(delay, left))
                delay = min(delay * 2, 1.0)
        finally:
            waiting, self._waiting, self._wave = self._waiting, [], None
            for _, future in waiting:
                if not future.done():
                    future.set_result(False)

    async def _list_once(self) -> None:
        self.listings += 1
        try:
            listing = {key.ref: key for key in await self.provider.list_keys()}
        except ProviderError as exc:
            log.info("while confirming writes: %s", exc)
            return
        still: list[tuple[Pending, asyncio.Future[bool]]] = []
        for pending, future in self._waiting:
            if future.done():
                continue
            if pending.check(listing):
                future.set_result(True)
            else:
                still.append((pending, future))
        self._waiting = still


class Visibility:
    """Confirms that writes to one account became visible (no-op when reads are
    consistent): by shared listings in waves where the provider's listing confirms
    (``after_write`` then returns what to confirm), else by reading each key."""

    def __init__(
        self, provider: Provider, schema: ProviderSchema, timeout: float, account: str = ""
    ) -> None:
        self.provider = provider
        self.schema = schema
        self.timeout = timeout
        self.account = account
        self.waves = Waves(provider, timeout)

    @property
    def by_listing(self) -> bool:
        return self.schema.eventually_consistent and self.schema.listing_confirms

    async def after_write(self, key: LiveKey, spec: KeySpec | None, verb: str) -> Pending | None:
        """After a write (``spec`` None: a delete): what a wave must confirm, or None
        once confirmed here (by reading the key) or when reads are consistent."""
        if not self.by_listing:
            if spec is None:
                await self.gone(key)
            else:
                await self.present(key, spec, verb)
            return None
        if spec is None:
            name = key.marker.name if key.marker else key.ref
            return Pending(
                lambda listing: key.ref not in listing,
                f"deleted, but still visible after {self.timeout:g}s; run plan later to confirm",
                Waiting(f"waiting for {self.account}/{name} to disappear"),
            )
        schema = self.schema

        def shows(listing: Mapping[str, LiveKey]) -> bool:
            current = listing.get(key.ref)
            return current is not None and not field_changes(schema, spec, current)

        return Pending(
            shows,
            f"{verb}, but not yet visible after {self.timeout:g}s; run plan later to confirm",
            Waiting(f"waiting for {spec.address} to appear"),
        )

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
