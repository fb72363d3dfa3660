"""Terminal output for the CLI: streams, colour, logging, and the last redaction pass.

Everything the CLI prints goes through :class:`Ui`, which scrubs every known secret
from the text before it reaches a stream (a second line of defence: nothing should
contain one in the first place). The one exception is the secrets sink.
"""

from __future__ import annotations

import logging
import os
import sys
from dataclasses import dataclass, field
from typing import IO

import click

from keystate.errors import Problem, Severity
from keystate.secrets import REDACTOR, RedactingFilter


def color_wanted(no_color: bool, stream: IO[str]) -> bool:
    if no_color or os.environ.get("NO_COLOR"):  # set and not empty (no-color.org)
        return False
    isatty = getattr(stream, "isatty", None)
    return bool(isatty and isatty())


@dataclass
class Ui:
    verbosity: int = 0
    quiet: bool = False
    no_color: bool = False
    # When new key values go to standard output, human output moves to stderr.
    stdout_reserved: bool = False
    _handler: logging.Handler | None = field(default=None, repr=False)

    @property
    def out_stream(self) -> IO[str]:
        return sys.stderr if self.stdout_reserved else sys.stdout

    @property
    def color(self) -> bool:
        return color_wanted(self.no_color, self.out_stream)

    def out(self, text: str, nl: bool = True) -> None:
        click.echo(REDACTOR.redact(text), file=self.out_stream, nl=nl, color=self.color)

    def info(self, text: str) -> None:
        """Progress and notes: stderr, silenced by -q."""
        if not self.quiet:
            click.echo(REDACTOR.redact(text), file=sys.stderr)

    def err(self, text: str) -> None:
        click.echo(REDACTOR.redact(text), file=sys.stderr)

    def problems(self, problems: tuple[Problem, ...] | list[Problem]) -> None:
        for problem in problems:
            if problem.severity is Severity.WARNING and self.quiet:
                continue
            self.err(str(problem))

    def progress(self, text: str) -> None:
        """Transient progress, only when stderr is a terminal."""
        if not self.quiet and sys.stderr.isatty():
            click.echo(REDACTOR.redact(text), file=sys.stderr)

    def setup_logging(self) -> None:
        level = logging.WARNING
        if self.verbosity == 1:
            level = logging.INFO
        elif self.verbosity >= 2:
            level = logging.DEBUG
        handler = logging.StreamHandler(sys.stderr)
        handler.addFilter(RedactingFilter())
        handler.setFormatter(logging.Formatter("%(levelname)s %(name)s: %(message)s"))
        root = logging.getLogger()
        if self._handler is not None:
            root.removeHandler(self._handler)
        root.addHandler(handler)
        root.setLevel(level)
        # httpx/httpcore log every request at DEBUG/INFO; keep them for -vv only.
        for name in ("httpx", "httpcore"):
            logging.getLogger(name).setLevel(
                logging.DEBUG if self.verbosity >= 3 else logging.WARNING
            )
        if self.verbosity >= 2:
            logging.getLogger("httpx").setLevel(logging.INFO)
        self._handler = handler

    def teardown_logging(self) -> None:
        if self._handler is not None:
            logging.getLogger().removeHandler(self._handler)
            self._handler = None
