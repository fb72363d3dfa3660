"""What an apply reports: one :class:`Result` per change, and the options of a run."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from enum import Enum
from typing import TYPE_CHECKING, Final

from keystate.model import Action

if TYPE_CHECKING:
    from keystate.sinks.delivery import Deliveries

DEFAULT_PARALLELISM: Final = 4
DEFAULT_WAIT_TIMEOUT: Final = 30.0


class Outcome(Enum):
    DONE = "done"
    UNCONFIRMED = "unconfirmed"
    FAILED = "failed"
    SKIPPED = "skipped"


@dataclass(frozen=True)
class Result:
    address: str
    action: Action
    outcome: Outcome
    detail: str = ""
    ref: str | None = None

    def to_dict(self) -> dict[str, str | None]:
        return {
            "address": self.address,
            "action": self.action.value,
            "outcome": self.outcome.value,
            "detail": self.detail,
            "ref": self.ref,
        }


@dataclass(frozen=True)
class ApplyOptions:
    parallelism: int = DEFAULT_PARALLELISM
    wait_timeout: float | None = None
    # Where new values go (the configured sinks, --secrets-out, the rescue file).
    deliveries: Deliveries | None = None
    on_result: Callable[[Result], None] | None = None


class Unconfirmed(Exception):
    """A write the provider accepted that did not become visible within the bound."""
