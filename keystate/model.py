"""The vocabulary every part of keystate shares: pure, frozen, no I/O.

* :class:`KeySpec` — a key as declared in the configuration (the desired state).
* :class:`LiveKey` — a key as read from a provider (the live state).
* :class:`Marker` — the ownership marker keystate writes at the end of a description.

Provider-specific attributes live in ``fields``: a mapping from snake_case field name to
a normalised :data:`FieldValue`. Normalised means comparable with ``==`` (sets are
frozensets, timestamps are aware UTC datetimes, query strings are canonical), except for
timestamps, which the diff compares with a tolerance. Each provider describes its fields
with :class:`keystate.contract.FieldSpec`.
"""

from __future__ import annotations

import re
import struct
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from enum import Enum
from typing import Final, Literal

from keystate.secrets import Secret

NAME_PATTERN: Final = r"[a-z0-9][a-z0-9._-]{0,62}"
NAME_RE: Final = re.compile(rf"^{NAME_PATTERN}$")
MARKER_PREFIX: Final = "keystate:"
PROTECT_SUFFIX: Final = ";protect"
PENDING_SUFFIX: Final = ";pending"
RETIRE_PREFIX: Final = "@retire="
_RETIRE_FORMAT: Final = "%Y-%m-%dT%H:%M:%SZ"
# keystate:[<owner>/]<name>[#<digest>][@retire=<YYYY-MM-DDTHH:MM:SSZ>][;protect][;pending]
_MARKER_RE: Final = re.compile(
    rf"(?:^|(?<= ))keystate:(?:(?P<owner>{NAME_PATTERN})/)?(?P<name>{NAME_PATTERN})"
    r"(?:#(?P<digest>[0-9a-f]{8}))?"
    r"(?:@retire=(?P<retire>\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}Z))?"
    r"(?P<protect>;protect)?(?P<pending>;pending)?$"
)


@dataclass(frozen=True, slots=True)
class Location:
    """A place in a configuration file (1-based line and column)."""

    path: str
    line: int
    column: int

    def __str__(self) -> str:
        return f"{self.path}:{self.line}:{self.column}"


@dataclass(frozen=True, slots=True)
class Privilege:
    """A Coveo-style privilege: owner, target domain, optional type and target id."""

    owner: str
    target_domain: str
    type: str | None = None
    target_id: str | None = None

    def sort_key(self) -> tuple[str, str, str, str]:
        return (self.owner, self.target_domain, self.type or "", self.target_id or "")

    def __str__(self) -> str:
        parts = [self.owner, self.target_domain]
        if self.type:
            parts.append(self.type)
        text = "/".join(parts)
        return f"{text}[{self.target_id}]" if self.target_id else text


@dataclass(frozen=True, slots=True)
class Record:
    """One member of a set of small objects (``Kind.RECORDS``): named strings, in the
    order of the field's :class:`~keystate.providers.base.RecordShape`, every optional
    attribute filled with its default so that equal records compare equal."""

    items: tuple[tuple[str, str], ...]

    def get(self, name: str) -> str | None:
        return next((v for k, v in self.items if k == name), None)

    def __str__(self) -> str:
        return "{" + ", ".join(f"{k}: {v}" for k, v in self.items) + "}"


FieldValue = (
    None | bool | int | str | datetime | frozenset[str] | frozenset[Privilege] | frozenset[Record]
)
Fields = Mapping[str, FieldValue]


class Action(Enum):
    """What a plan does to one key, in execution order."""

    CREATE = "create"
    ADOPT = "adopt"
    RENAME = "rename"
    UPDATE = "update"
    ROTATE = "rotate"
    REPLACE = "replace"
    RETIRE = "retire"
    DELETE = "delete"
    DISABLE = "disable"
    FORGET = "forget"

    @property
    def symbol(self) -> str:
        return _SYMBOLS[self]

    @property
    def order(self) -> int:
        return _ORDER[self]


_SYMBOLS: Final = {
    Action.CREATE: "+",
    Action.ADOPT: "~",
    Action.RENAME: "~",
    Action.UPDATE: "~",
    Action.ROTATE: "+/-",
    Action.REPLACE: "+/-",
    Action.RETIRE: "-",
    Action.DELETE: "-",
    Action.DISABLE: "-",
    Action.FORGET: "-/",
}
# The lifecycle actions (DESIGN §11): counted in summaries only when a plan has them.
LIFECYCLE: Final = frozenset({Action.RENAME, Action.ROTATE, Action.RETIRE, Action.FORGET})
_ORDER: Final = {a: i for i, a in enumerate(Action)}


@dataclass(frozen=True, slots=True)
class Selector:
    """``adopt:`` selector: ``id:<provider id>`` or ``fingerprint:<sha-256 hex prefix>``."""

    kind: Literal["id", "fingerprint"]
    value: str

    def __str__(self) -> str:
        return f"{self.kind}:{self.value}"


@dataclass(frozen=True, slots=True)
class Marker:
    """Ownership marker:
    ``keystate:[<owner>/]<name>[#<digest>][@retire=<YYYY-MM-DDTHH:MM:SSZ>][;protect][;pending]``.

    ``#<digest>`` (8 lowercase hex) is the drift digest of the fields keystate last
    wrote. ``@retire=`` marks a **retiring** key: the predecessor of a rotation, which
    keeps working until that time (UTC, whole seconds) and is then retired; a retiring
    key is never updated, never a duplicate and never adoptable. Parts appear in this
    order; markers without them still parse.

    ``;protect`` records ``protect: true`` on the key itself, so a protected key stays
    protected even if its block is removed from the configuration. ``;pending`` marks a
    key whose create has not finished: keystate creates keys with it, delivers the new
    value to the secrets sink, then removes it. A pending key found later means an apply
    was interrupted before the value was surely delivered.
    """

    name: str
    owner: str | None = None
    protect: bool = False
    pending: bool = False
    digest: str | None = None
    retire_at: datetime | None = None

    def render(self) -> str:
        owner = f"{self.owner}/" if self.owner else ""
        digest = f"#{self.digest}" if self.digest else ""
        retire = f"{RETIRE_PREFIX}{format_retire(self.retire_at)}" if self.retire_at else ""
        flags = (PROTECT_SUFFIX if self.protect else "") + (PENDING_SUFFIX if self.pending else "")
        return f"{MARKER_PREFIX}{owner}{self.name}{digest}{retire}{flags}"

    def stored_description(self, description: str) -> str:
        """The description as keystate stores it: the user's text, then the marker."""
        return f"{description} {self.render()}" if description else self.render()


def parse_description(stored: str) -> tuple[str, Marker | None]:
    """Split a stored description into the user's text and the ownership marker."""
    match = _MARKER_RE.search(stored)
    if not match:
        return stored, None
    user = stored[: match.start()].rstrip(" ")
    retire = match.group("retire")
    marker = Marker(
        name=match.group("name"),
        owner=match.group("owner"),
        protect=match.group("protect") is not None,
        pending=match.group("pending") is not None,
        digest=match.group("digest"),
        retire_at=_parse_retire(retire) if retire else None,
    )
    return user, marker


def format_retire(when: datetime) -> str:
    """A retire time as markers write it: UTC, whole seconds, ``Z``."""
    return when.astimezone(UTC).strftime(_RETIRE_FORMAT)


def _parse_retire(text: str) -> datetime | None:
    try:
        return datetime.strptime(text, _RETIRE_FORMAT).replace(tzinfo=UTC)
    except ValueError:  # e.g. month 13: no retire time rather than no marker
        return None


@dataclass(frozen=True, slots=True)
class Rotation:
    """``rotate: {every, overlap}``: a key older than ``every`` is rotated; its
    predecessor keeps working for ``overlap`` after the successor's value is delivered."""

    every: timedelta
    overlap: timedelta = timedelta(0)


class FieldValues(Mapping[str, FieldValue]):
    """A declared key's field values: a read-only mapping at half a dict's size.

    ``index`` (field name -> position) is shared by every key of a provider; a large
    configuration holds one of these per key, 100,000 of them at a time.
    """

    __slots__ = ("_index", "_values")

    def __init__(self, index: Mapping[str, int], values: tuple[FieldValue, ...]) -> None:
        if len(index) != len(values):
            raise ValueError("one value per indexed field")
        self._index = index
        self._values = values

    def __getitem__(self, name: str) -> FieldValue:
        return self._values[self._index[name]]

    def get(self, name: str, default: FieldValue = None) -> FieldValue:  # type: ignore[override]
        position = self._index.get(name)
        return default if position is None else self._values[position]

    def __contains__(self, name: object) -> bool:
        return name in self._index

    def __iter__(self) -> Iterator[str]:
        return iter(self._index)

    def __len__(self) -> int:
        return len(self._index)

    def __repr__(self) -> str:
        return repr(dict(self.items()))


class Places:
    """Where a declared key's fields, and the members of its set fields, were written.

    Packed, because a large configuration keeps one per key: ``layout`` names each field
    that has a place and how many member places follow it (one tuple shared by keys
    written alike), ``data`` holds each place's line and column. Members are in the order
    of ``sorted(members, key=str)``.
    """

    __slots__ = ("_data", "_layout", "path")

    def __init__(self, path: str, layout: tuple[tuple[str, int], ...], data: bytes) -> None:
        if len(data) != _PLACE.size * sum(1 + count for _, count in layout):
            raise ValueError("one line and column per place")
        self.path = path
        self._layout = layout
        self._data = data

    def find(self, field_name: str, member: object, members: object) -> Location | None:
        """The place of ``member`` of the field (``members`` is the field's value), else
        of the field, else None."""
        offset = 0
        for name, count in self._layout:
            if name == field_name:
                if member is not None and count and isinstance(members, frozenset):
                    order = sorted(members, key=str)
                    if len(order) == count and member in members:
                        return self._at(offset + 1 + order.index(member))
                return self._at(offset)
            offset += 1 + count
        return None

    def _at(self, index: int) -> Location:
        line, column = _PLACE.unpack_from(self._data, _PLACE.size * index)
        return Location(self.path, line, column)


_PLACE: Final = struct.Struct("<II")


def pack_places(places: Sequence[tuple[int, int]]) -> bytes:
    """Lines and columns, as :class:`Places` keeps them."""
    return struct.pack(f"<{2 * len(places)}I", *(n for place in places for n in place))


@dataclass(frozen=True, slots=True)
class KeySpec:
    """A key as declared in the configuration."""

    account: str
    name: str
    description: str = ""
    fields: Fields = field(default_factory=dict, hash=False)
    protect: bool = False
    adopt: Selector | None = None
    lint_ignore: frozenset[str] = frozenset()
    # Lifecycle (DESIGN §11): scheduled rotation, a lifetime relative to creation, and
    # the names the key had before (``previously:``).
    rotate: Rotation | None = None
    lifetime: timedelta | None = None
    previously: tuple[str, ...] = ()
    location: Location | None = field(default=None, compare=False)
    # Where each field, and each member of a set-valued field, was written.
    places: Places | None = field(default=None, compare=False, hash=False, repr=False)
    # The sinks its new values go to (its own deliver_to, else its account's); empty:
    # the default sink (DESIGN §12).
    deliver_to: tuple[str, ...] = field(default=(), compare=False)

    def where(self, field_name: str, member: object = None) -> Location | None:
        """The most precise known place of a field (or of one of its members)."""
        if self.places is not None:
            found = self.places.find(field_name, member, self.fields.get(field_name))
            if found is not None:
                return found
        return self.location

    @property
    def address(self) -> str:
        return f"{self.account}/{self.name}"


@dataclass(frozen=True, slots=True)
class LiveKey:
    """A key as read from a provider.

    ``ref`` is the public way to name the key (``fingerprint:<hex>`` or ``id:<id>``);
    ``handle`` is what the provider needs to address it, which for Algolia is the key
    value itself and therefore a :class:`Secret`. ``value`` is the key's value when the
    provider reveals it in listings (Algolia does, Coveo masks it).
    """

    ref: str
    handle: Secret | str
    stored_description: str
    fields: Fields = field(default_factory=dict, hash=False)
    id: str | None = None
    value: Secret | None = None
    fingerprint: str | None = None
    enabled: bool = True
    # The provider keeps expired keys around (Coveo): a declared one must be replaced.
    expired: bool = False
    is_credential: bool = False
    created_at: datetime | None = None
    # What the provider says of the key beyond its fields (for plans and reports):
    # its status word (Coveo: ENABLED, DISABLED_EXPOSED, ...), whether it was reported
    # leaked, a one-line summary of that report (never the value), and its last use.
    status: str | None = None
    exposed: bool = False
    exposure: str = ""
    last_used_at: datetime | None = None
    # The name the provider shows for the key (Coveo's displayName; "" where none), for
    # reports of keys keystate does not manage.
    display_name: str = ""
    # The stored description split once (planning asks for both parts many times).
    _parsed: tuple[str, Marker | None] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "_parsed", parse_description(self.stored_description))

    @property
    def description(self) -> str:
        return self._parsed[0]

    @property
    def marker(self) -> Marker | None:
        return self._parsed[1]
