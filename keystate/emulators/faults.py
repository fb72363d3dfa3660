"""Fault-injection knobs shared by every emulator server.

A :class:`Knobs` value configures one server: a fixed latency added before every
response, a :class:`FaultSpec` (the rate of each fault kind), the seed of the fault
draws and the parameters of the ``429`` and ``timeout`` faults.

Fault semantics (the server in :mod:`keystate.emulators.http` acts them out once the
whole request has been read, after the latency):

``429`` / ``429-no-retry-after``
    The request is **not processed**; the app's ``fault_response(429, …)`` is sent, with a
    ``Retry-After`` header for ``429`` and without one for ``429-no-retry-after``.
``500`` / ``503``
    Not processed; the app's ``fault_response(status, None)`` is sent.
``timeout``
    Not processed; nothing is sent and the connection is held open for
    ``Knobs.timeout_hold_s`` seconds (or until the client goes away), then closed.
``reset``
    Not processed; the connection is aborted with a TCP RST before any response byte.
``lost-response``
    **Processed** (the app commits the write), then the connection is aborted with a TCP
    RST before any response byte: the "did my create happen?" case.

Rate limit: with ``Knobs.rate_limit`` (requests per second) above 0, a request arriving
when the server's token bucket (refilled at that rate, holding at most one second's
worth) is empty is **not processed** and answered ``429`` with ``Retry-After`` (whole
seconds, at least 1, as HTTP says) after the latency; answered 429s take no token. It
is checked before the fault draw and counted as a ``rate-limited`` fault.

Targeting: with ``Knobs.fault_routes`` set, only requests whose route (the app's
``route_name``, e.g. ``"add"`` or ``"delete"``) is in it draw a fault; the others are
served untouched and make no draw. Tests use it to aim faults at one kind of write.

Draws: a :class:`FaultInjector` makes exactly one draw per eligible request from
``random.Random(seed)`` and maps it onto cumulative ranges laid out in the canonical order
of :data:`FAULT_KINDS` (not the order the spec was written in), so a seed gives the same
sequence of faults however the spec is spelled.
"""

from __future__ import annotations

import math
import random
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Literal

FaultKind = Literal["429", "429-no-retry-after", "500", "503", "timeout", "reset", "lost-response"]

FAULT_KINDS: tuple[FaultKind, ...] = (
    "429",
    "429-no-retry-after",
    "500",
    "503",
    "timeout",
    "reset",
    "lost-response",
)

_SUM_TOLERANCE = 1e-9


@dataclass(frozen=True)
class FaultSpec:
    """The probability of each fault kind per request; kinds absent have rate 0."""

    rates: tuple[tuple[FaultKind, float], ...] = ()

    def __post_init__(self) -> None:
        seen: set[str] = set()
        for kind, rate in self.rates:
            if kind not in FAULT_KINDS:
                raise ValueError(f"unknown fault kind {kind!r}; expected one of {_kinds_text()}")
            if kind in seen:
                raise ValueError(f"fault kind {kind!r} is given twice")
            seen.add(kind)
            if not (math.isfinite(rate) and 0.0 <= rate <= 1.0):
                raise ValueError(f"fault rate for {kind!r} must be between 0 and 1, got {rate}")
        total = sum(rate for _, rate in self.rates)
        if total > 1.0 + _SUM_TOLERANCE:
            raise ValueError(f"fault rates add up to {total:g}; their sum must be at most 1")

    @classmethod
    def parse(cls, text: str) -> FaultSpec:
        """Parse ``"429=0.1,500=0.05,timeout=0.02"``; an empty string means no faults.

        Raises ValueError with a message fit for a command-line error.
        """
        rates: list[tuple[FaultKind, float]] = []
        for raw_item in text.split(","):
            item = raw_item.strip()
            if not item:
                continue
            name, sep, value = item.partition("=")
            name, value = name.strip(), value.strip()
            if not sep or not name or not value:
                raise ValueError(f"bad fault {item!r}: expected KIND=RATE, e.g. 429=0.1")
            if name not in FAULT_KINDS:
                raise ValueError(f"unknown fault kind {name!r}; expected one of {_kinds_text()}")
            try:
                rate = float(value)
            except ValueError:
                raise ValueError(
                    f"bad fault rate {value!r} for {name!r}: expected a number between 0 and 1"
                ) from None
            rates.append((name, rate))
        return cls(tuple(rates))

    def rate(self, kind: FaultKind) -> float:
        """The rate of ``kind`` (0 when absent)."""
        return dict(self.rates).get(kind, 0.0)

    def pick(self, draw: float) -> FaultKind | None:
        """Map a uniform draw in [0, 1) onto a fault kind, or None for "no fault"."""
        upper = 0.0
        for kind in FAULT_KINDS:
            upper += self.rate(kind)
            if draw < upper:
                return kind
        return None

    def __bool__(self) -> bool:
        return any(rate > 0 for _, rate in self.rates)

    def __str__(self) -> str:
        return ",".join(f"{kind}={rate:g}" for kind, rate in self.rates)


@dataclass(frozen=True)
class Knobs:
    """Per-server behaviour knobs (all off by default)."""

    latency_ms: float = 0
    """Added before every response, and before a fault acts."""
    faults: FaultSpec = field(default_factory=FaultSpec)
    fault_seed: int | None = None
    """Seed of the fault draws; None draws from system entropy."""
    retry_after: float = 1.0
    """Seconds sent in ``Retry-After`` with fault kind ``429``."""
    timeout_hold_s: float = 30.0
    """How long a ``timeout`` fault holds the connection before closing it."""
    fault_routes: frozenset[str] = frozenset()
    """When non-empty, only requests to these routes (``app.route_name``) draw faults."""
    latency_routes: frozenset[str] = frozenset()
    """When non-empty, ``latency_ms`` is added only to requests to these routes (e.g. a
    slow ``add`` whose reads stay fast, to test a client's write timeout)."""

    def latency_for(self, route: str) -> float:
        """Seconds of latency before answering a request to ``route``."""
        if self.latency_routes and route not in self.latency_routes:
            return 0.0
        return self.latency_ms / 1000

    rate_limit: float = 0
    """Requests per second served; past it, 429 with Retry-After (0: no limit)."""

    def __post_init__(self) -> None:
        for name in ("latency_ms", "retry_after", "timeout_hold_s", "rate_limit"):
            value = getattr(self, name)
            if not (math.isfinite(value) and value >= 0):
                raise ValueError(f"{name} must be a non-negative number, got {value}")


class FaultInjector:
    """Draws the fault (if any) for each request of one server; thread-safe."""

    def __init__(self, knobs: Knobs) -> None:
        self._spec = knobs.faults
        self._routes = knobs.fault_routes
        self._random = random.Random(knobs.fault_seed)
        self._lock = threading.Lock()

    def draw(self, route: str = "") -> FaultKind | None:
        """Exactly one draw from the seeded generator per call for an eligible route
        (every route unless ``Knobs.fault_routes`` names some); None for the others."""
        if self._routes and route not in self._routes:
            return None
        with self._lock:
            value = self._random.random()
        return self._spec.pick(value)


def parse_rate(text: str) -> float:
    """Parse ``--rate-limit`` values: ``"100/s"``, ``"100"`` or ``"6000/min"``."""
    number, _, unit = text.strip().partition("/")
    per = {"": 1.0, "s": 1.0, "sec": 1.0, "min": 60.0}.get(unit.strip().lower())
    try:
        value = float(number)
    except ValueError:
        value = -1.0
    if per is None or not (math.isfinite(value) and value > 0):
        raise ValueError(f"bad rate {text!r}: expected requests per second, e.g. 100/s")
    return value / per


class RateLimiter:
    """A token bucket: ``rate`` requests per second, bursts of at most one second's
    worth. ``admit`` answers None (served) or the seconds until a token is free."""

    def __init__(self, rate: float, clock: Callable[[], float] = time.monotonic) -> None:
        self.rate = rate
        self.capacity = max(1.0, rate)
        self._tokens = self.capacity
        self._clock = clock
        self._last = clock()
        self._lock = threading.Lock()

    def admit(self) -> float | None:
        with self._lock:
            now = self._clock()
            self._tokens = min(self.capacity, self._tokens + (now - self._last) * self.rate)
            self._last = now
            if self._tokens >= 1:
                self._tokens -= 1
                return None
            return (1 - self._tokens) / self.rate


def format_retry_after(seconds: float) -> str:
    """Render a ``Retry-After`` value: whole seconds as an integer, else a decimal."""
    if float(seconds).is_integer():
        return str(int(seconds))
    return f"{seconds:.3f}".rstrip("0")


def _kinds_text() -> str:
    return ", ".join(FAULT_KINDS)
