"""A JSON state file that several processes can share, like one service's database.

- Reads reload only when the file changed since this process last read or wrote it
  (compared by inode, ``mtime_ns`` and size of the file actually opened).
- Writes happen inside :meth:`JsonStateFile.exclusive`: an exclusive ``fcntl.flock`` on
  the sidecar ``PATH.lock`` (never deleted: deleting lock files races). The caller
  reloads if changed, applies its change and calls :meth:`save`, which writes a temporary
  file in the same directory (mode 0600) and ``os.replace``-s it over PATH, so readers
  never see a half-written file. No fsync: an emulator trades durability for speed.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import secrets
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Any, Generic, Protocol, TypeVar

_Signature = tuple[int, int, int]


class _State(Protocol):
    def to_json(self) -> dict[str, Any]: ...


S = TypeVar("S", bound=_State)
T = TypeVar("T")


class StateStore(Generic[S]):
    """An emulator's state, in memory or in a :class:`JsonStateFile` shared by several
    processes: reads reload a changed file, writes run under the file's lock.

    ``fresh()`` makes the state of a new service, ``parse(data, where)`` reads a file;
    ``overrides`` (attribute -> value, e.g. credentials given on the command line) win
    over what a file holds.
    """

    def __init__(
        self,
        path: Path | None,
        fresh: Callable[[], S],
        parse: Callable[[object, str], S],
        overrides: Mapping[str, object],
    ) -> None:
        self._file = JsonStateFile(path) if path is not None else None
        self._fresh = fresh
        self._parse = parse
        self._overrides = dict(overrides)
        self.state = fresh()
        if self._file is not None:
            self._reload(self._file)

    def read(self) -> S:
        """The current state, reloaded first if the file changed."""
        if self._file is not None and self._file.changed():
            self._reload(self._file)
        return self.state

    def write(self, change: Callable[[S], T]) -> T:
        """Apply ``change`` under the file lock and persist it (unless it raises)."""
        if self._file is None:
            return change(self.state)
        with self._file.exclusive():
            if self._file.changed():
                self._reload(self._file)
            try:
                result = change(self.state)
                self._file.save(self.state.to_json())
            except BaseException:
                self._reload(self._file)  # drop any unsaved in-memory change
                raise
        return result

    def _reload(self, file: JsonStateFile) -> None:
        data = file.load()
        state = self._fresh() if data is None else self._parse(data, str(file.path))
        for name, value in self._overrides.items():
            setattr(state, name, value)
        self.state = state


class JsonStateFile:
    """One JSON document on disk with change detection and locked, atomic writes."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.lock_path = path.with_name(path.name + ".lock")
        self._seen: _Signature | None = None

    def changed(self) -> bool:
        """Whether the file differs from what this object last loaded or saved."""
        try:
            current: _Signature | None = _signature(os.stat(self.path))
        except FileNotFoundError:
            current = None
        return current != self._seen

    def load(self) -> object | None:
        """Parse the file (None if it does not exist); ValueError if it is not JSON."""
        try:
            with open(self.path, "rb") as handle:
                signature = _signature(os.fstat(handle.fileno()))
                raw = handle.read()
        except FileNotFoundError:
            self._seen = None
            return None
        try:
            data: object = json.loads(raw)
        except (UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise ValueError(f"{self.path}: not a valid JSON state file ({exc})") from None
        self._seen = signature
        return data

    @contextlib.contextmanager
    def exclusive(self) -> Iterator[None]:
        """Hold the sidecar lock (creating parent directories and the lock file)."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.lock_path, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            yield
        finally:
            os.close(fd)  # releases the lock

    def save(self, data: object) -> None:
        """Write ``data`` atomically with mode 0600; call inside :meth:`exclusive`."""
        text = json.dumps(data, indent=2, sort_keys=False) + "\n"
        temp = self.path.with_name(f".{self.path.name}.{secrets.token_hex(4)}.tmp")
        fd = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as handle:
                handle.write(text)
            os.replace(temp, self.path)
        except BaseException:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(temp)
            raise
        self._seen = _signature(os.stat(self.path))


def _signature(stat: os.stat_result) -> _Signature:
    return (stat.st_ino, stat.st_mtime_ns, stat.st_size)
