"""Reading configuration and credential files safely.

A path in ``-c DIR`` or ``api_key_file:`` may name anything: a FIFO (``open`` would wait
for a writer forever), ``/dev/zero`` (``read`` would never end), a directory, a symlink
loop. Only regular files are read, opened without blocking, and never past a limit.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path

_KINDS = (
    (stat.S_ISDIR, "a directory"),
    (stat.S_ISFIFO, "a named pipe"),
    (stat.S_ISCHR, "a character device"),
    (stat.S_ISBLK, "a block device"),
    (stat.S_ISSOCK, "a socket"),
)


class FileRefused(Exception):
    """The path is readable but is not something keystate reads; the message says why."""


class FileTooLarge(FileRefused):
    def __init__(self, size: int, limit: int) -> None:
        self.size = size
        self.limit = limit
        super().__init__(f"{size} bytes, more than {limit}")


def _kind(mode: int) -> str:
    return next((name for test, name in _KINDS if test(mode)), "not a file")


def read_regular(path: Path, limit: int) -> bytes:
    """The bytes of the regular file at ``path``, at most ``limit`` of them.

    Raises OSError when it cannot be opened, :class:`FileRefused` when it is not a
    regular file, :class:`FileTooLarge` when it holds more than ``limit`` bytes.
    """
    fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | getattr(os, "O_CLOEXEC", 0))
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            raise FileRefused(f"not a regular file ({_kind(st.st_mode)})")
        if st.st_size > limit:
            raise FileTooLarge(st.st_size, limit)
        chunks: list[bytes] = []
        total = 0
        while True:
            chunk = os.read(fd, min(1 << 20, limit + 1 - total))
            if not chunk:
                return b"".join(chunks)
            chunks.append(chunk)
            total += len(chunk)
            if total > limit:  # the file grew while we read it
                raise FileTooLarge(total, limit)
    finally:
        os.close(fd)
