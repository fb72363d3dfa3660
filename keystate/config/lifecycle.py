"""Reading the lifecycle settings (DESIGN §11): ``rotate:``, ``lifetime:``,
``previously:`` on a key, ``defaults:`` (file and account level) and the top-level
``forget:`` list.

Durations are written ``<n>d`` (days) or ``<n>h`` (hours); ``0`` is allowed where a
duration may be zero (an overlap).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import timedelta
from typing import Final

from keystate.config.nodes import YNode, YScalar
from keystate.config.reader import Reader
from keystate.durations import format_duration
from keystate.model import NAME_RE, Location, Rotation

DURATION_RE: Final = re.compile(r"^(?P<n>[0-9]{1,5})(?P<unit>[dh])$")
DURATION_HELP: Final = "write <n>d (days) or <n>h (hours), e.g. 90d"
DEFAULTS_FIELDS: Final = ("rotate", "lifetime")
ROTATE_FIELDS: Final = ("every", "overlap")


@dataclass(frozen=True)
class Lifecycle:
    """Lifecycle settings as written in one place (a key, or a ``defaults:`` block)."""

    rotate: Rotation | None = None
    lifetime: timedelta | None = None
    where: Location | None = None

    def over(self, fallback: Lifecycle) -> Lifecycle:
        """These settings, each one falling back to ``fallback``'s."""
        return Lifecycle(
            self.rotate if self.rotate is not None else fallback.rotate,
            self.lifetime if self.lifetime is not None else fallback.lifetime,
            self.where or fallback.where,
        )


NONE: Final = Lifecycle()


def parse_duration(text: str, zero: bool = False) -> timedelta | None:
    """``90d`` / ``12h`` (or ``0`` when ``zero``) -> timedelta; None when malformed."""
    text = text.strip()
    if zero and text == "0":
        return timedelta(0)
    match = DURATION_RE.match(text)
    if match is None:
        return None
    n = int(match.group("n"))
    if n == 0 and not zero:
        return None
    return timedelta(days=n) if match.group("unit") == "d" else timedelta(hours=n)


def read_duration(reader: Reader, node: YNode, what: str, zero: bool = False) -> timedelta | None:
    raw = node.value if isinstance(node, YScalar) else None
    if isinstance(raw, int) and not isinstance(raw, bool):
        text: str | None = str(raw)
    else:
        text = reader.string(node, what)
    if text is None:
        return None
    value = parse_duration(text, zero)
    if value is None:
        least = "0 or " if zero else "at least 1, "
        reader.error(node, f"{what}: {text!r} is not a duration; {DURATION_HELP} ({least}n)")
    return value


def read_rotation(reader: Reader, node: YNode, what: str) -> Rotation | None:
    body = reader.mapping(node, what)
    if body is None:
        return None
    reader.unknown_fields(body, ROTATE_FIELDS, what)
    entries = {k.raw: v for k, v in body.entries}
    if "every" not in entries:
        reader.error(node, f"{what} is missing 'every' (e.g. rotate: {{every: 90d, overlap: 7d}})")
        return None
    every = read_duration(reader, entries["every"], f"{what}.every")
    overlap: timedelta | None = timedelta(0)
    if "overlap" in entries:
        overlap = read_duration(reader, entries["overlap"], f"{what}.overlap", zero=True)
    if every is None or overlap is None:
        return None
    if overlap >= every:
        reader.error(
            entries["overlap"],
            f"{what}.overlap ({format_duration(overlap)}) must be shorter than every "
            f"({format_duration(every)}): a key would be rotated again before its predecessor "
            "retired",
        )
        return None
    return Rotation(every, overlap)


def read_lifecycle(
    reader: Reader, entries: dict[str, YNode], what: str, where: Location
) -> Lifecycle | None:
    """``rotate:`` and ``lifetime:`` from a key or a ``defaults:`` block (None: invalid)."""
    rotate = lifetime = None
    ok = True
    if "rotate" in entries:
        rotate = read_rotation(reader, entries["rotate"], f"{what} rotate")
        ok = rotate is not None
    if "lifetime" in entries:
        lifetime = read_duration(reader, entries["lifetime"], f"{what} lifetime")
        ok = ok and lifetime is not None
    return Lifecycle(rotate, lifetime, where) if ok else None


def read_defaults(reader: Reader, node: YNode, what: str) -> Lifecycle:
    """A ``defaults:`` block; invalid parts are reported and left out."""
    body = reader.mapping(node, what, allow_null=True)
    if body is None:
        return NONE
    reader.unknown_fields(body, DEFAULTS_FIELDS, what)
    found = read_lifecycle(reader, {k.raw: v for k, v in body.entries}, what, node.loc)
    return found or NONE


def check_lifecycle(
    reader: Reader, found: Lifecycle, has_expiry: str | None, address: str, where: Location
) -> bool:
    """Rules across the resolved settings of one key: ``every`` < ``lifetime``."""
    rotate, lifetime = found.rotate, found.lifetime
    if rotate is not None and lifetime is not None and rotate.every >= lifetime:
        reader.error(
            found.where or where,
            f"key '{address}': rotate.every ({format_duration(rotate.every)}) must be shorter "
            f"than lifetime ({format_duration(lifetime)}), or the key expires before it is "
            "rotated",
        )
        return False
    if lifetime is not None and has_expiry is None:
        reader.error(where, f"key '{address}': lifetime: this provider's keys have no expiry")
        return False
    return True


def read_previously(reader: Reader, node: YNode, name: str) -> tuple[str, ...] | None:
    items = reader.strings(node, "previously")
    if items is None:
        return None
    out: list[str] = []
    for text, item in items:
        if not NAME_RE.match(text):
            reader.error(item, f"previously: {text!r} is not a key name")
            return None
        if text == name:
            reader.error(item, f"previously: {text!r} is the key's own name")
            return None
        out.append(text)
    return tuple(out)


def read_forget(reader: Reader, node: YNode) -> list[tuple[str, str, Location]]:
    """``forget: [ACCOUNT/NAME, ...]`` -> (account, name, where) per item."""
    items = reader.strings(node, "forget")
    out: list[tuple[str, str, Location]] = []
    for text, item in items or []:
        account, sep, name = text.partition("/")
        if not sep or not NAME_RE.match(account) or not NAME_RE.match(name):
            reader.error(item, f"forget: {text!r} is not ACCOUNT/NAME (e.g. algolia-prod/old-key)")
            continue
        out.append((account, name, item.loc))
    return out
