"""Secret values: a wrapper that never shows itself, redaction, and the secrets sink.

Three rules hold everywhere in keystate:

1. A key value or credential lives only inside a :class:`Secret`. Its ``repr``/``str``
   show a fingerprint; ``reveal()`` is called only where the value must cross the
   wire or reach the secrets sink.
2. Every ``Secret`` registers its value with the process-wide :data:`REDACTOR`, which
   scrubs log records and everything the CLI prints, as a second line of defence.
3. A new key's value reaches the user through the :class:`SecretsSink` only
   (``--secrets-out``), one JSON line per key, flushed as soon as it exists.
"""

from __future__ import annotations

import errno
import hashlib
import hmac
import json
import logging
import os
import re
import stat
import sys
import threading
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import IO, Final

REDACTED: Final = "[REDACTED]"
MIN_SECRET_LENGTH: Final = 8

# Runs of token-like characters; a registered secret made only of these characters is
# found by tokenising, which stays linear in the text however many secrets are known.
_TOKEN = re.compile(r"[A-Za-z0-9_\-]{8,}")
_TOKEN_CHARS = re.compile(r"[A-Za-z0-9_\-]+")
# Algolia addresses keys by value in URL paths: scrub any path segment after /keys/.
_KEY_PATH = re.compile(r"(/keys/)([^/?\s\"']+)")


def fingerprint(value: str) -> str:
    """SHA-256 hex digest of a key value: the public way to name an Algolia key."""
    return hashlib.sha256(value.encode()).hexdigest()


class Redactor:
    """Knows every secret seen in this process and removes them from text."""

    def __init__(self) -> None:
        self._simple: set[str] = set()
        self._complex: set[str] = set()
        self._lock = threading.Lock()

    def register(self, value: str) -> None:
        # Real key values and credentials are long; shorter strings would be found
        # inside ordinary words, so they are not registered (never shown either way).
        if len(value) < MIN_SECRET_LENGTH:
            return
        with self._lock:
            if _TOKEN_CHARS.fullmatch(value):
                self._simple.add(value)
            else:
                self._complex.add(value)

    def redact(self, text: str) -> str:
        if self._complex:
            for value in sorted(self._complex, key=len, reverse=True):
                if value in text:
                    text = text.replace(value, REDACTED)
        if self._simple:
            simple = self._simple
            text = _TOKEN.sub(lambda m: REDACTED if m.group(0) in simple else m.group(0), text)
        return text

    def redact_url_paths(self, text: str) -> str:
        """Also scrub ``/keys/<anything>`` (for log lines that carry URLs)."""
        return _KEY_PATH.sub(lambda m: m.group(1) + REDACTED, self.redact(text))


REDACTOR: Final = Redactor()


class Secret:
    """A secret string. Shows only a short fingerprint; compares by value."""

    __slots__ = ("_value",)

    def __init__(self, value: str) -> None:
        self._value = value
        REDACTOR.register(value)

    def reveal(self) -> str:
        return self._value

    @property
    def fingerprint(self) -> str:
        return fingerprint(self._value)

    def __repr__(self) -> str:
        return f"Secret(sha256:{self.fingerprint[:12]})"

    __str__ = __repr__

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Secret):
            return NotImplemented
        return hmac.compare_digest(self._value.encode(), other._value.encode())

    def __hash__(self) -> int:
        return hash(self.fingerprint)

    def __reduce__(self) -> str | tuple[object, ...]:
        raise TypeError("a Secret cannot be pickled")


class RedactingFilter(logging.Filter):
    """Logging filter that scrubs secrets and key paths from every record."""

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        record.msg = REDACTOR.redact_url_paths(message)
        record.args = None
        if record.exc_info:
            exc = record.exc_info[1]
            record.exc_info = None
            record.exc_text = None
            if exc is not None:
                record.msg += f" ({type(exc).__name__}: {REDACTOR.redact_url_paths(str(exc))})"
        return True


@dataclass(frozen=True)
class DeliveredSecret:
    """What the sink writes for one new key."""

    address: str
    account: str
    name: str
    provider: str
    id: str
    value: Secret
    created_at: datetime

    def to_json(self) -> str:
        return json.dumps(
            {
                "address": self.address,
                "account": self.account,
                "name": self.name,
                "provider": self.provider,
                "id": self.id,
                "value": self.value.reveal(),
                "created_at": self.created_at.isoformat().replace("+00:00", "Z"),
            },
            sort_keys=False,
        )


class SecretsSink:
    """Delivers new key values: a 0600 JSON-lines file (appended) or standard output.

    The file is created 0600 whatever the umask. An existing file that others could read
    is made 0600 before anything is written (``repaired_mode`` tells the CLI to warn); a
    symbolic link, a FIFO or anything else that is not a regular file is refused.

    Each value is written and flushed (and fsync'ed for files) the moment it exists, so
    a crash later in the run loses nothing. Under GitHub Actions, values written to
    standard output are first masked with ``::add-mask::``.
    """

    def __init__(self, stream: IO[str], *, is_file: bool, github_actions: bool) -> None:
        self._stream = stream
        self._is_file = is_file
        self._github = github_actions
        self._lock = threading.Lock()
        self.delivered = 0
        # The mode an existing file had when it was readable by others (now 0600).
        self.repaired_mode: int | None = None

    @classmethod
    def open(cls, dest: str) -> SecretsSink:
        github = os.environ.get("GITHUB_ACTIONS") == "true"
        if dest == "-":
            return cls(sys.stdout, is_file=False, github_actions=github)
        path = Path(dest)
        if path.is_symlink():  # e.g. planted in a shared directory to divert the values
            raise OSError(errno.EINVAL, "is a symbolic link; give the real path")
        # O_NOFOLLOW closes the race with the check above; O_NONBLOCK keeps a FIFO from
        # blocking the open (it is then refused as not a regular file).
        flags = os.O_WRONLY | os.O_APPEND | os.O_CREAT
        for name in ("O_NONBLOCK", "O_NOFOLLOW", "O_CLOEXEC"):  # POSIX; absent on Windows
            flags |= getattr(os, name, 0)
        fd = os.open(path, flags, 0o600)
        try:
            st = os.fstat(fd)
            if not stat.S_ISREG(st.st_mode):
                raise OSError(errno.EINVAL, "not a regular file")
            mode = st.st_mode & 0o777
            if mode & 0o077:  # created by someone else, or by hand: fix it before writing
                os.fchmod(fd, 0o600)
        except OSError:
            os.close(fd)
            raise
        sink = cls(os.fdopen(fd, "a", encoding="utf-8"), is_file=True, github_actions=False)
        sink.repaired_mode = mode if mode & 0o077 else None
        return sink

    def deliver(self, item: DeliveredSecret) -> None:
        with self._lock:
            if self._github:
                self._stream.write(f"::add-mask::{item.value.reveal()}\n")
            self._stream.write(item.to_json() + "\n")
            self._stream.flush()
            if self._is_file:
                os.fsync(self._stream.fileno())
            self.delivered += 1

    def close(self) -> None:
        if self._is_file:
            self._stream.close()
