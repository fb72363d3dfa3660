"""What every sink kind shares: the item delivered, the failure, the protocol."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from keystate.secrets import REDACTOR, DeliveredSecret
from keystate.sinks.spec import Placeholders

# How much of a failing command's standard error is shown (its end, redacted).
STDERR_SHOWN = 400


class SinkFailed(Exception):
    """A sink could not take a value. The message names the sink and never the value."""


@dataclass(frozen=True)
class Delivery:
    """One value on its way to one sink: the item, its placeholders and the action that
    made it (create, replace, ...)."""

    item: DeliveredSecret
    values: Placeholders
    action: str


class Sink(Protocol):
    """One configured sink, opened for a run."""

    name: str

    def deliver(self, delivery: Delivery) -> None:
        """Deliver one value, or raise SinkFailed."""

    def check(self, live: bool) -> list[str]:
        """Problems that would stop a delivery (``live``: also try the destination,
        without delivering anything)."""

    def close(self) -> None: ...


def scrub(text: str) -> str:
    """Text from outside (a command's stderr, an AWS error) made safe to show: every
    known secret redacted, one line, its end kept."""
    text = " ".join(REDACTOR.redact(text).split())
    return text if len(text) <= STDERR_SHOWN else "..." + text[-STDERR_SHOWN:]
