"""What the shared HTTP client follows: an account's timeouts and retries
(:class:`HttpPolicy`), the hosts it may use and which are down (:class:`HostPool`), and
how long a ``Retry-After`` asks it to wait. Pure: no request is sent here."""

from __future__ import annotations

import dataclasses
import email.utils
import random
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Final

import httpx

HOST_DOWN_SECONDS: Final = 300.0


@dataclass(frozen=True)
class HttpPolicy:
    """Timeouts and retries of one account.

    Reads and writes wait for their answer differently, as Algolia's official clients
    do: ``read_timeout`` bounds the wait for the answer to a read (GET), and
    ``write_timeout`` the wait for the answer to a write (POST, PUT, DELETE), which
    the service may take longer to commit. Each applies per attempt.
    """

    connect_timeout: float = 2.0
    read_timeout: float = 5.0
    write_timeout: float = 30.0
    max_attempts: int = 5
    backoff_base: float = 0.25
    backoff_cap: float = 8.0
    max_retry_after: float = 60.0
    # Fewer requests in flight after a 429, more again later (keystate.providers.ratelimit).
    adaptive: bool = True

    @property
    def deadline(self) -> float:
        """Seconds one attempt may take in all (each read may take read_timeout)."""
        return self.connect_timeout + self.write_timeout + 10 * self.read_timeout

    def answer_timeout(self, write: bool) -> float:
        """Seconds to wait for (each part of) the answer to a read or a write."""
        return self.write_timeout if write else self.read_timeout

    def backoff(self, attempt: int, rng: random.Random) -> float:
        """Full jitter: uniform in [0, min(cap, base * 2**attempt)]."""
        return rng.uniform(0, min(self.backoff_cap, self.backoff_base * (2**attempt)))

    def with_overrides(
        self,
        timeout: float | None,
        max_attempts: int | None,
        write_timeout: float | None = None,
    ) -> HttpPolicy:
        """The account's settings over the provider's defaults: ``timeout`` bounds every
        request (connect included), ``write_timeout`` then the answers to writes."""
        policy = self
        if timeout is not None:
            policy = dataclasses.replace(
                policy,
                connect_timeout=min(policy.connect_timeout, timeout),
                read_timeout=timeout,
                write_timeout=timeout,
            )
        if write_timeout is not None:
            policy = dataclasses.replace(policy, write_timeout=write_timeout)
        if max_attempts is not None:
            policy = dataclasses.replace(policy, max_attempts=max_attempts)
        return policy


@dataclass
class Host:
    url: str
    down_until: float = 0.0

    def is_up(self, now: float) -> bool:
        return now >= self.down_until


@dataclass
class HostPool:
    """Hosts for reads and for writes, each list in the order to try them."""

    read: Sequence[Host]
    write: Sequence[Host]
    clock: Callable[[], float] = field(default=time.monotonic)

    @classmethod
    def single(cls, url: str) -> HostPool:
        host = Host(url)
        return cls([host], [host])

    def candidates(self, for_write: bool) -> list[Host]:
        """Up hosts first, in order; then the down ones (better than giving up)."""
        hosts = list(self.write if for_write else self.read)
        now = self.clock()
        up = [h for h in hosts if h.is_up(now)]
        return up + [h for h in hosts if not h.is_up(now)]

    def mark_down(self, host: Host) -> None:
        host.down_until = self.clock() + HOST_DOWN_SECONDS


def retry_after(response: httpx.Response, cap: float) -> float | None:
    """Seconds from a Retry-After header (delta-seconds or HTTP date), capped."""
    raw = response.headers.get("retry-after")
    if raw is None:
        return None
    raw = raw.strip()
    try:
        seconds = float(raw)
    except ValueError:
        try:
            when = email.utils.parsedate_to_datetime(raw)
        except (TypeError, ValueError):
            return None
        seconds = when.timestamp() - time.time()
    return max(0.0, min(seconds, cap))
