"""gcpause: overlapping pauses (two tasks across an await) leave the collector as found."""

from __future__ import annotations

import asyncio
import gc

from keystate import gcpause


def test_nested_pauses_restore_the_collector() -> None:
    assert gc.isenabled()
    with gcpause.paused():
        with gcpause.paused():
            assert not gc.isenabled()
        assert not gc.isenabled()
    assert gc.isenabled()


def test_overlapping_pauses_across_an_await_restore_the_collector() -> None:
    """A enters, B enters, A leaves first, then B: the collector must be on again."""
    assert gc.isenabled()
    a_in, b_in, a_out = asyncio.Event(), asyncio.Event(), asyncio.Event()

    async def first() -> None:
        with gcpause.paused():
            a_in.set()
            await b_in.wait()
        a_out.set()

    async def second() -> None:
        await a_in.wait()
        with gcpause.paused():
            b_in.set()
            await a_out.wait()
            assert not gc.isenabled()  # B's pause is still open

    async def both() -> None:
        await asyncio.gather(first(), second())

    asyncio.run(both())
    assert gc.isenabled()


def test_a_pause_leaves_a_disabled_collector_disabled() -> None:
    gc.disable()
    try:
        with gcpause.paused():
            pass
        assert not gc.isenabled()
    finally:
        gc.enable()
