"""AdaptiveLimit: AIMD on a fake clock (no timing)."""

from __future__ import annotations

import asyncio

from keystate.providers.ratelimit import AdaptiveLimit


def test_a_429_halves_what_was_in_flight_once_per_round_and_quiet_seconds_add_one() -> None:
    async def scenario() -> None:
        now = [0.0]
        gate = AdaptiveLimit(64, clock=lambda: now[0])
        tickets = [await gate.acquire() for _ in range(8)]
        assert gate.in_flight == 8
        gate.release(tickets[0], rate_limited=True)  # 8 in flight: cut to 4
        assert gate.limit == 4
        gate.release(tickets[1], rate_limited=True)  # sent before the cut: no second cut
        assert gate.limit == 4 and gate.rate_limited == 2
        for ticket in tickets[2:]:
            gate.release(ticket, rate_limited=False)
        assert gate.limit == 4  # less than a second since the cut
        held = [await gate.acquire() for _ in range(4)]
        waiting = asyncio.ensure_future(gate.acquire())
        await asyncio.sleep(0)
        assert not waiting.done()  # a fifth request waits for a slot
        now[0] = 1.5
        gate.release(held[0], rate_limited=False)  # a quiet second: one slot more
        assert gate.limit == 5
        await asyncio.sleep(0)
        assert waiting.done()
        fresh = waiting.result()
        gate.release(fresh, rate_limited=True)  # sent after the cut: 4 in flight, cut to 2
        assert gate.limit == 2 and gate.lowest == 2

    asyncio.run(scenario())


def test_the_limit_never_goes_below_one_nor_above_its_ceiling() -> None:
    async def scenario() -> None:
        now = [0.0]
        gate = AdaptiveLimit(3, clock=lambda: now[0])
        for _ in range(5):
            gate.release(await gate.acquire(), rate_limited=True)
        assert gate.limit == 1
        for step in range(10):
            now[0] = 2.0 * (step + 1)
            gate.release(await gate.acquire(), rate_limited=False)
        assert gate.limit == 3

    asyncio.run(scenario())
