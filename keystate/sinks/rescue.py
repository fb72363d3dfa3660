"""The rescue file: where a value goes when one of its sinks failed (DESIGN §12).

One new file per run, created on the first failure with mode 0600 and ``O_EXCL`` (an
existing file is never overwritten or appended to), in ``secrets.rescue_dir`` (default
``.keystate/rescue``). Each line is the JSON of the value, as the file sink writes it,
plus the sinks it did not reach. The CLI prints its path; nothing prints its content.
"""

from __future__ import annotations

import json
import os
import secrets as random
import threading
from datetime import UTC, datetime
from pathlib import Path
from typing import Final

from keystate.secrets import DeliveredSecret

DEFAULT_RESCUE_DIR: Final = Path(".keystate") / "rescue"


class RescueFile:
    def __init__(self, directory: Path | None) -> None:
        self.directory = directory or DEFAULT_RESCUE_DIR
        self.path: Path | None = None
        self.rescued = 0
        self._fd: int | None = None
        self._lock = threading.Lock()

    def _open(self) -> int:
        if self._fd is None:
            self.directory.mkdir(mode=0o700, parents=True, exist_ok=True)
            stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
            path = self.directory / f"rescue-{stamp}-{os.getpid()}-{random.token_hex(3)}.jsonl"
            flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_NOFOLLOW", 0)
            self._fd = os.open(path, flags, 0o600)
            self.path = path
        return self._fd

    def keep(self, item: DeliveredSecret, failed: list[str]) -> Path:
        """Write one value (raises OSError if even that fails)."""
        line = json.loads(item.to_json())
        line["failed_sinks"] = failed
        data = (json.dumps(line) + "\n").encode()
        with self._lock:
            fd = self._open()
            os.write(fd, data)
            os.fsync(fd)
            self.rescued += 1
            assert self.path is not None
            return self.path

    def close(self) -> None:
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None
