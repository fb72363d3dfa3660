"""Every error keystate raises on purpose, and the exit code each one means.

::

    KeystateError                 exit 1   base class; message says what, where, what to do
     ├── ConfigError              exit 1   invalid configuration: one Problem per line
     ├── UsageError               exit 1   bad command-line usage
     ├── PlanError                exit 1   live state that cannot be planned against
     │                                     (duplicate markers, bad adopt selectors)
     ├── DeliveryError            exit 1   a new value did not reach every sink of its key
     │                                     (it is in the rescue file)
     ├── ProviderError            exit 1   an API or transport failure, naming the account
     │    ├── NotFoundError                the key is gone (404)
     │    ├── PermissionDeniedError        the credential lacks a right (401/403); names it
     │    └── AmbiguousWriteError          a write that may or may not have happened
     └── SafetyError              exit 3   a safety gate refused; nothing was changed
          └── StalePlanError      exit 3   a saved plan no longer matches the live state

Messages never contain a key value or a credential: they name keys by address
(``account/name``), fingerprint or id.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from enum import Enum
from pathlib import Path
from typing import Final

from keystate.model import Location

EXIT_OK = 0
EXIT_ERROR = 1
EXIT_CHANGES = 2
EXIT_REFUSED = 3
QUOTE_MAX: Final = 120


# A quoted piece of the user's input longer than this is shortened in messages.
_LONG_QUOTE = re.compile(rf"'[^'\n]{{{QUOTE_MAX},}}'|\"[^\"\n]{{{QUOTE_MAX},}}\"")
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")


def one_line(message: str) -> str:
    """A message as one printable line: control characters escaped (no terminal escape
    sequence or line break from the input reaches the terminal), long quoted input cut."""
    message = _CONTROL.sub(lambda m: m.group(0).encode("unicode_escape").decode("ascii"), message)

    def cut(m: re.Match[str]) -> str:
        text = m.group(0)
        return f"{text[:40]}...({len(text) - 52} more characters)...{text[-12:]}"

    return _LONG_QUOTE.sub(cut, message)


class Severity(Enum):
    ERROR = "error"
    WARNING = "warning"


@dataclass(frozen=True)
class Problem:
    """One finding about the configuration, tied to a place in a file when known."""

    message: str
    location: Location | None = None
    severity: Severity = Severity.ERROR
    rule: str | None = None

    def __str__(self) -> str:
        where = f"{self.location}: " if self.location else ""
        rule = f" [{self.rule}]" if self.rule else ""
        return f"{where}{self.severity.value}: {one_line(self.message)}{rule}"

    def sort_key(self) -> tuple[str, int, int, str]:
        loc = self.location
        return (loc.path, loc.line, loc.column, self.message) if loc else ("", 0, 0, self.message)


class KeystateError(Exception):
    """Base of every deliberate keystate failure."""

    exit_code = EXIT_ERROR


class UsageError(KeystateError):
    """The command line asks for something impossible."""


class ConfigError(KeystateError):
    """The configuration is invalid; carries every problem found, sorted by place."""

    def __init__(self, problems: Iterable[Problem], *, after_reading: bool = False) -> None:
        self.problems: tuple[Problem, ...] = tuple(sorted(problems, key=Problem.sort_key))
        # False: found offline, before any request; True: found against live data.
        self.after_reading = after_reading
        n = len(self.problems)
        super().__init__(f"{n} configuration error{'s' if n != 1 else ''}")


class PlanError(KeystateError):
    """The live state cannot be planned against safely (e.g. two keys claim one name)."""


class DeliveryError(KeystateError):
    """A new key value did not reach every sink of its key. ``rescued`` is the rescue
    file that holds it (None: writing that failed too)."""

    def __init__(self, message: str, *, rescued: Path | None) -> None:
        self.rescued = rescued
        if rescued is not None:
            where = f"the value is in the rescue file {rescued} (mode 0600)"
        else:
            where = "writing the rescue file failed too"
        super().__init__(
            f"{message}; {where}; the key keeps its pending marker: fix the sink and run "
            "apply again (docs/secrets.md)"
        )


class ProviderError(KeystateError):
    """A provider API or transport failure."""

    def __init__(
        self,
        message: str,
        *,
        account: str | None = None,
        status: int | None = None,
        request_id: str | None = None,
        retryable: bool = False,
    ) -> None:
        self.account = account
        self.status = status
        self.request_id = request_id
        self.retryable = retryable
        prefix = f"{account}: " if account else ""
        suffix = f" (request id {request_id})" if request_id else ""
        super().__init__(f"{prefix}{message}{suffix}")


class NotFoundError(ProviderError):
    """The addressed key does not exist (any more)."""


class PermissionDeniedError(ProviderError):
    """The credential may not do this (401/403). ``needs`` names what the operation
    needs, in the provider's words (e.g. "the privilege PLATFORM/API_KEY/VIEW in
    organization acme", "the admin API key"), or is empty when unknown."""

    def __init__(
        self,
        message: str,
        *,
        needs: str = "",
        account: str | None = None,
        status: int | None = None,
        request_id: str | None = None,
    ) -> None:
        self.needs = needs
        super().__init__(message, account=account, status=status, request_id=request_id)


class AmbiguousWriteError(ProviderError):
    """A write failed in a way that does not tell whether it was applied."""


class SafetyError(KeystateError):
    """A safety gate refused the run; nothing was changed."""

    exit_code = EXIT_REFUSED

    def __init__(self, reasons: Sequence[str]) -> None:
        self.reasons = tuple(reasons)
        super().__init__("; ".join(self.reasons))


class StalePlanError(SafetyError):
    """A saved plan no longer matches the live state, or its file was edited."""
