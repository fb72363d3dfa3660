"""Pausing Python's cyclic garbage collector while keystate builds large structures.

Loading a configuration and planning against live accounts allocate hundreds of
thousands of small objects (YAML nodes, key specs, live keys) that form no reference
cycles. The cyclic collector still scans them, again and again as they pile up: at
12,000 keys that was half of the load time. Reference counting frees everything these
phases drop, so the collector can wait until they are over.

Pauses may overlap in any order (two asyncio tasks each holding one across an
``await``): the collector stays off while any pause is open and is restored, to the
state it had before the first one, when the last one closes.
"""

from __future__ import annotations

import gc
from collections.abc import Iterator
from contextlib import contextmanager

_open = 0
_was_enabled = False


@contextmanager
def paused() -> Iterator[None]:
    """Run the block with the cyclic collector off (overlapping pauses are fine)."""
    global _open, _was_enabled  # noqa: PLW0603 - the collector's state is the process's
    if _open == 0:
        _was_enabled = gc.isenabled()
    _open += 1
    gc.disable()
    try:
        yield
    finally:
        _open -= 1
        if _open == 0 and _was_enabled:
            gc.enable()
