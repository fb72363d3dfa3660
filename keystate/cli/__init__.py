"""The ``keystate`` command line (the face): click commands over the library, terminal
output, exit codes. No logic lives here that the library does not offer.

* :mod:`.app` — the group, global options, failures mapped to exit codes.
* :mod:`.commands` — validate, plan, apply, show, emulator.
* :mod:`.inspect` — import, report, privileges, schema, sinks.
* :mod:`.applyrun` — one ``keystate apply``, fresh or from a saved plan.
* :mod:`.emulator` — ``keystate emulator ...`` (imported only when it runs).
* :mod:`.completion` — ``keystate completion bash|zsh|fish``.
* :mod:`.ui` — terminal output and logging setup.
* :mod:`.leave` — the console script's exit, without the interpreter's teardown.
"""

from typing import NoReturn

from keystate import gcpause

# Loading the command line (click, the commands and what they import) builds tens of
# thousands of objects that form few cycles; the cyclic collector scanning them again and
# again as they pile up cost about 10 ms of every start.
with gcpause.paused():
    from keystate.cli import commands as _commands  # noqa: F401 - registers the commands
    from keystate.cli import completion as _completion  # noqa: F401 - registers `completion`
    from keystate.cli import inspect as _inspect  # noqa: F401 - registers the commands
    from keystate.cli.app import cli

__all__ = ["cli", "main"]


def main() -> NoReturn:
    """The console script: run the command, then end the process (see :mod:`.leave`)."""
    from keystate.cli.leave import leave

    try:
        cli.main()
    except SystemExit as stop:
        leave(stop)
