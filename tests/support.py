"""The one way tests start an emulator, and the one fake clock.

* :class:`Servers` serves emulator apps on 127.0.0.1 (``start_in_thread``, a free port
  each) and stops them all when it closes. The ``serve`` fixture (tests/conftest.py) is
  one per test; a helper with a lifetime of its own (a hypothesis example, a module, a
  second server in front of a running emulator) opens one: ``with Servers() as s``.
* :func:`knobs` builds a server's fault and latency knobs from their short spellings.
* :class:`FakeClock` is the clock injected into the emulators (Unix seconds).
"""

from __future__ import annotations

import time
from collections.abc import Iterable
from types import TracebackType

from keystate.emulators.faults import FaultSpec, Knobs
from keystate.emulators.http import EmulatorApp, RunningServer, start_in_thread


class Servers:
    """Emulator apps served on loopback; every server stops when the pool closes."""

    def __init__(self) -> None:
        self._running: list[RunningServer] = []

    def start(self, app: EmulatorApp, knobs: Knobs | None = None) -> RunningServer:
        """Serve ``app`` (several servers may share one app) and return once listening."""
        server = start_in_thread(app, knobs)
        self._running.append(server)
        return server

    __call__ = start

    def close(self) -> None:
        while self._running:
            self._running.pop().stop()

    def __enter__(self) -> Servers:
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        trace: TracebackType | None,
    ) -> None:
        self.close()


def knobs(
    faults: str = "",
    seed: int | None = 1,
    *,
    latency_ms: float = 0,
    retry_after: float = 0.0,
    timeout_hold_s: float = 1.0,
    routes: Iterable[str] = (),
    rate_limit: float = 0,
) -> Knobs:
    """``knobs("500=0.3,timeout=0.1", seed=7)``: seeded faults (on ``routes`` only, when
    given), an added latency, the ``Retry-After`` of 429s, the hold of timeouts and a
    rate limit (requests per second; 0: none)."""
    return Knobs(
        rate_limit=rate_limit,
        latency_ms=latency_ms,
        faults=FaultSpec.parse(faults),
        fault_seed=seed,
        retry_after=retry_after,
        timeout_hold_s=timeout_hold_s,
        fault_routes=frozenset(routes),
    )


class FakeClock:
    """An injectable clock (Unix seconds) for the emulators.

    Frozen by default: it moves only when a test calls :meth:`advance`, so expiry and
    propagation are driven without sleeping. ``FakeClock(real=True)`` follows the real
    clock, shifted by the advances: for emulators that keystate waits on in real time
    while a test still moves time (e.g. back, to seed a key that has already expired).
    """

    def __init__(self, start: float = 1_750_000_000.25, *, real: bool = False) -> None:
        self.real = real
        self.offset = 0.0 if real else start

    def __call__(self) -> float:
        return (time.time() if self.real else 0.0) + self.offset

    @property
    def now(self) -> float:
        return self()

    def advance(self, seconds: float) -> None:
        self.offset += seconds
