"""The nodes of a parsed configuration file, each remembering where it was written, and
the bytes -> text step before parsing."""

from __future__ import annotations

import codecs
from typing import Final

from keystate.errors import Problem
from keystate.model import Location

STR_TAG: Final = "tag:yaml.org,2002:str"


class YScalar:
    """A scalar: its value as YAML resolved it, its text as written, its tag, its place."""

    __slots__ = ("column", "line", "path", "raw", "tag", "value")

    def __init__(
        self, value: object, raw: str, tag: str, path: str, line: int, column: int
    ) -> None:
        self.value = value
        self.raw = raw
        self.tag = tag
        self.path = path
        self.line = line
        self.column = column

    @property
    def loc(self) -> Location:
        return Location(self.path, self.line, self.column)

    @property
    def is_str(self) -> bool:
        return self.tag == STR_TAG


class YSeq:
    __slots__ = ("column", "items", "line", "path")

    def __init__(self, items: list[YNode], path: str, line: int, column: int) -> None:
        self.items = items
        self.path = path
        self.line = line
        self.column = column

    @property
    def loc(self) -> Location:
        return Location(self.path, self.line, self.column)


class YMap:
    __slots__ = ("column", "entries", "line", "path")

    def __init__(
        self, entries: list[tuple[YScalar, YNode]], path: str, line: int, column: int
    ) -> None:
        self.entries = entries
        self.path = path
        self.line = line
        self.column = column

    @property
    def loc(self) -> Location:
        return Location(self.path, self.line, self.column)

    def keys(self) -> list[str]:
        return [k.raw for k, _ in self.entries]


YNode = YScalar | YSeq | YMap


def decode(data: bytes, path: str) -> tuple[str | None, list[Problem]]:
    """Bytes -> text, refusing binary and non-UTF-8 files with a precise position."""
    if data.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        return None, [
            Problem("UTF-16 text; save the file as UTF-8", Location(path, 1, 1)),
        ]
    if b"\x00" in data:
        offset = data.index(b"\x00")
        line = data.count(b"\n", 0, offset) + 1
        return None, [
            Problem("binary file (contains NUL bytes); expected YAML text", Location(path, line, 1))
        ]
    try:
        return data.decode("utf-8-sig"), []
    except UnicodeDecodeError as exc:
        line = data.count(b"\n", 0, exc.start) + 1
        column = exc.start - (data.rfind(b"\n", 0, exc.start) + 1) + 1
        byte = data[exc.start]
        return None, [
            Problem(
                f"not UTF-8 text (byte 0x{byte:02x}); save the file as UTF-8",
                Location(path, line, column),
            )
        ]
