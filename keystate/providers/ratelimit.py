"""Adaptive concurrency for one account's requests: additive increase, multiplicative
decrease (AIMD), the way TCP shares a link.

Neither Algolia nor Coveo documents a rate limit for key management
(shared/providers/), so keystate cannot pace itself to a number; it learns the limit
from the provider's 429s instead. Every attempt holds a slot of the account's
:class:`AdaptiveLimit`. A 429 halves the slots — to half of what was in flight, so a
limit far above the real concurrency still bites at once — at most once per round of
requests (a 429 for a request sent before the last cut does not cut again). Each
second without one gives a slot back, up to the ceiling. The request that met the 429
waits as the policy says (``Retry-After``, capped, or backoff), then queues for a slot
again. The ceiling is the client's connection limit; apply's ``--parallelism`` bounds
the requests in flight below it, and the limit never grows past what was asked.
"""

from __future__ import annotations

import asyncio
import math
import time
from collections import deque
from collections.abc import Callable
from typing import Final

DECREASE: Final = 0.5
INCREASE_EVERY_SECONDS: Final = 1.0


class AdaptiveLimit:
    """The slots of one account's requests (see the module docstring)."""

    def __init__(self, ceiling: int, clock: Callable[[], float] = time.monotonic) -> None:
        self.ceiling = ceiling
        self.limit = float(ceiling)
        self.in_flight = 0
        self.rate_limited = 0  # 429s seen (for logs and tests)
        self.lowest = float(ceiling)  # the lowest limit reached
        self._clock = clock
        self._epoch = 0  # bumped by each cut
        self._changed = clock()
        self._waiters: deque[asyncio.Future[None]] = deque()

    async def acquire(self) -> int:
        """Wait for a slot; returns a ticket for :meth:`release`."""
        while self.in_flight >= max(1, math.floor(self.limit)):
            waiter = asyncio.get_running_loop().create_future()
            self._waiters.append(waiter)
            try:
                await waiter
            except asyncio.CancelledError:
                if waiter in self._waiters:
                    self._waiters.remove(waiter)
                self._wake()
                raise
        self.in_flight += 1
        return self._epoch

    def release(self, ticket: int, rate_limited: bool) -> None:
        """Give the slot back, telling whether the provider answered 429."""
        in_flight = self.in_flight
        self.in_flight = max(0, in_flight - 1)
        now = self._clock()
        if rate_limited:
            self.rate_limited += 1
            if ticket == self._epoch:  # sent after the last cut: cut again
                self.limit = max(1.0, min(self.limit, in_flight) * DECREASE)
                self.lowest = min(self.lowest, self.limit)
                self._epoch += 1
                self._changed = now
        elif now - self._changed >= INCREASE_EVERY_SECONDS and self.limit < self.ceiling:
            self.limit = min(float(self.ceiling), math.floor(self.limit) + 1.0)
            self._changed = now
        self._wake()

    def _wake(self) -> None:
        free = max(1, math.floor(self.limit)) - self.in_flight
        while free > 0 and self._waiters:
            waiter = self._waiters.popleft()
            if not waiter.done():
                waiter.set_result(None)
                free -= 1
