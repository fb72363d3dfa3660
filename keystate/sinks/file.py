"""The ``file`` sink: a 0600 JSON-lines file (appended, flushed per key), or ``-`` for
standard output; the same writer as ``--secrets-out`` (:class:`keystate.secrets.SecretsSink`)."""

from __future__ import annotations

import os
from pathlib import Path

from keystate.secrets import SecretsSink
from keystate.sinks.base import Delivery, SinkFailed
from keystate.sinks.spec import FileSinkSpec


class FileSink:
    def __init__(self, name: str, spec: FileSinkSpec, opened: SecretsSink | None = None) -> None:
        self.name = name
        self.spec = spec
        # One writer per resolved path (a path may use placeholders).
        self._open: dict[str, SecretsSink] = {}
        if opened is not None:
            self._open[spec.path] = opened
        # Warnings for the CLI: files that were readable by others before being fixed.
        self.warnings: list[str] = []

    def _writer(self, path: str) -> SecretsSink:
        writer = self._open.get(path)
        if writer is None:
            writer = self._open[path] = SecretsSink.open(path)
            if writer.repaired_mode is not None:
                self.warnings.append(
                    f"{path} was readable by others (mode {writer.repaired_mode:04o}); it is "
                    "now 0600. Values written to it before may have been read."
                )
        return writer

    def deliver(self, delivery: Delivery) -> None:
        path = self.spec.resolve(delivery.values)
        try:
            self._writer(path).deliver(delivery.item)
        except OSError as exc:
            raise SinkFailed(f"sink '{self.name}': {path}: {exc.strerror or exc}") from None

    def check(self, live: bool) -> list[str]:
        if self.spec.path == "-" or "{" in self.spec.path:
            return []
        path = Path(self.spec.resolve_static())
        parent = path.parent
        if path.is_symlink():
            return [f"sink '{self.name}': {path} is a symbolic link; give the real path"]
        if live and not os.access(parent, os.W_OK):
            return [f"sink '{self.name}': cannot write in {parent}"]
        return []

    def close(self) -> None:
        for writer in self._open.values():
            writer.close()
        self._open.clear()

    @property
    def delivered(self) -> int:
        return sum(w.delivered for w in self._open.values())
