"""Progress of long waits, for whoever shows it (the CLI prints it on stderr).

Eventual-consistency waits, retry back-offs and the search after an ambiguous create can
take many seconds; like Terraform (``Still creating... [10s elapsed]``), keystate says so
every :data:`PROGRESS_EVERY` seconds instead of sitting silent. The reporter is a context
variable, so that library users get nothing unless they ask, and concurrent runs in one
process do not mix their lines. Imports nothing of keystate.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from contextvars import ContextVar, Token

PROGRESS_EVERY = 10.0  # seconds between two lines about the same wait
Reporter = Callable[[str], None]
_REPORTER: ContextVar[Reporter | None] = ContextVar("keystate_progress", default=None)


def set_reporter(reporter: Reporter | None) -> Token[Reporter | None]:
    """Send progress lines to ``reporter`` (in this context and the tasks it starts)."""
    return _REPORTER.set(reporter)


def note(text: str) -> None:
    """One progress line, now."""
    reporter = _REPORTER.get()
    if reporter is not None:
        reporter(text)


class Waiting:
    """A wait in progress: :meth:`tick` prints ``still <what>... [Ns elapsed]`` once
    every PROGRESS_EVERY seconds."""

    def __init__(self, what: str | None) -> None:
        self.what = what
        self.started = self.last = time.monotonic()

    def tick(self) -> None:
        if self.what is None:
            return
        now = time.monotonic()
        if now - self.last >= PROGRESS_EVERY:
            self.last = now
            note(f"still {self.what}... [{now - self.started:.0f}s elapsed]")
