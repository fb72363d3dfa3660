"""Pausing Python's cyclic garbage collector while keystate builds large structures.

Loading a configuration and planning against live accounts allocate hundreds of
thousands of small objects (YAML nodes, key specs, live keys) that form no reference
cycles. The cyclic collector still scans them, again and again as they pile up: at
12,000 keys that was half of the load time. Reference counting frees everything these
phases drop, so the collector can wait until they are over.
"""

from __future__ import annotations

import gc
from collections.abc import Iterator
from contextlib import contextmanager

_depth = 0


@contextmanager
def paused() -> Iterator[None]:
    """Run the block with the cyclic collector off (nestable; restores its state)."""
    global _depth  # noqa: PLW0603 - the nesting depth is the process's, like gc's own state
    was_enabled = gc.isenabled() if _depth == 0 else False
    _depth += 1
    gc.disable()
    try:
        yield
    finally:
        _depth -= 1
        if _depth == 0 and was_enabled:
            gc.enable()
