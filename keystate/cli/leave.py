"""Ending the ``keystate`` process without the interpreter's teardown.

After the command has run, Python would free every module and every object one by one
before the process ends: some 40 ms for the modules a plan imports (measured, median of
15 starts), more after a large plan, and nothing anyone can observe, since the operating
system takes the memory back at once. :func:`leave` does what an orderly exit does that
can be observed, in the same order: it runs every ``atexit`` handler (logging's flush,
handlers a caller registered), flushes stdout and stderr, and ends the process with the
same status. Anything out of the ordinary takes Python's own exit, unchanged: a thread
still running (Python would wait for it), a status that is not a number (Python prints
it), a stream that cannot be flushed (Python reports it).

Only the console script (``keystate``, ``python -m keystate``) leaves this way; the click
group (``keystate.cli.cli``) that tests and embedders invoke returns or raises as before.
"""

from __future__ import annotations

import atexit
import os
import sys
import threading
from typing import NoReturn


def leave(stop: SystemExit) -> NoReturn:
    """End the process with ``stop``'s status, skipping only the interpreter's teardown."""
    code = 0 if stop.code is None else stop.code
    others = [t for t in threading.enumerate() if t is not threading.main_thread()]
    if not isinstance(code, int) or any(not t.daemon for t in others):
        raise stop
    atexit._run_exitfuncs()
    try:
        for stream in (sys.stdout, sys.stderr):
            if stream is not None:
                stream.flush()
    except (OSError, ValueError):
        raise stop from None  # Python's own exit reports the stream as it always has
    os._exit(code)
