"""The Algolia emulator's data: stored keys, the deleted-key store, propagation.

:class:`AppState` is one application's state at a point in time, with the operations
that change it. Time is always passed in (``now``, Unix seconds from the emulator's
injected clock), so expiry and propagation can be driven by tests without sleeping.

Eventual consistency is modelled as a *primary* (``keys``, where writes land at once and
later writes are validated) plus an undo log ``pending``: each write with a propagation
delay appends ``Pending(value, before, visible_at)``, where ``before`` is the key's primary
object just before the write (None if it did not exist). What a reader sees for a key at
time ``now`` is the ``before`` of the first of its pending entries that is not yet
visible, or else its primary object. Entries are dropped once visible. Expired keys are
invisible everywhere and physically purged on the next write.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, replace
from typing import Any

DELETED_KEYS_CAP = 1000
"""Algolia keeps up to 1,000 deleted keys restorable; older ones are dropped."""


@dataclass(frozen=True)
class StoredKey:
    """One API key as stored (absolute expiry; ``created_at`` in Unix seconds)."""

    value: str
    created_at: int
    acl: tuple[str, ...] = ()
    description: str = ""
    indexes: tuple[str, ...] = ()
    referers: tuple[str, ...] = ()
    query_parameters: str = ""
    max_hits_per_query: int = 0
    max_queries_per_ip_per_hour: int = 0
    expires_at: float | None = None

    def expired(self, now: float) -> bool:
        return self.expires_at is not None and self.expires_at <= now

    def remaining_validity(self, now: float) -> int:
        """Remaining seconds, rounded up so that a live expiring key never reads 0."""
        if self.expires_at is None:
            return 0
        return max(1, math.ceil(self.expires_at - now))

    def to_json(self) -> dict[str, Any]:
        return {
            "value": self.value,
            "createdAt": self.created_at,
            "acl": list(self.acl),
            "description": self.description,
            "indexes": list(self.indexes),
            "referers": list(self.referers),
            "queryParameters": self.query_parameters,
            "maxHitsPerQuery": self.max_hits_per_query,
            "maxQueriesPerIPPerHour": self.max_queries_per_ip_per_hour,
            "expiresAt": self.expires_at,
        }

    @classmethod
    def from_json(cls, data: object, where: str) -> StoredKey:
        """Parse a state-file key object; ValueError naming ``where`` if malformed."""
        fields = _object(data, where)
        known = {
            "value",
            "createdAt",
            "acl",
            "description",
            "indexes",
            "referers",
            "queryParameters",
            "maxHitsPerQuery",
            "maxQueriesPerIPPerHour",
            "expiresAt",
        }
        _no_extra(fields, known, where)
        expires = fields.get("expiresAt")
        if expires is not None and not _is_number(expires):
            raise ValueError(f"{where}.expiresAt: expected a number or null")
        return cls(
            value=_typed(fields, "value", str, where, required=True),
            created_at=_typed(fields, "createdAt", int, where, required=True),
            acl=tuple(_strings(fields, "acl", where)),
            description=_typed(fields, "description", str, where, default=""),
            indexes=tuple(_strings(fields, "indexes", where)),
            referers=tuple(_strings(fields, "referers", where)),
            query_parameters=_typed(fields, "queryParameters", str, where, default=""),
            max_hits_per_query=_typed(fields, "maxHitsPerQuery", int, where, default=0),
            max_queries_per_ip_per_hour=_typed(
                fields, "maxQueriesPerIPPerHour", int, where, default=0
            ),
            expires_at=None if expires is None else float(expires),
        )


@dataclass(frozen=True)
class DeletedKey:
    key: StoredKey
    deleted_at: float


@dataclass(frozen=True)
class Pending:
    """Until ``visible_at``, readers still see ``before`` for ``value``."""

    value: str
    before: StoredKey | None
    visible_at: float


@dataclass
class AppState:
    """One application: credentials, primary keys, deleted keys, pending propagation."""

    app_id: str
    admin_key: str
    keys: dict[str, StoredKey] = field(default_factory=dict)
    deleted: list[DeletedKey] = field(default_factory=list)
    pending: list[Pending] = field(default_factory=list)

    # --- reads -------------------------------------------------------------------------

    def live(self, value: str, now: float) -> StoredKey | None:
        """The primary object of ``value``, if it exists and has not expired."""
        key = self.keys.get(value)
        return None if key is None or key.expired(now) else key

    def visible(self, value: str, now: float) -> StoredKey | None:
        """What a reader sees for ``value`` at ``now`` (propagation and expiry applied)."""
        for entry in self.pending:
            if entry.value == value and entry.visible_at > now:
                key = entry.before
                break
        else:
            key = self.keys.get(value)
        return None if key is None or key.expired(now) else key

    def visible_all(self, now: float) -> list[StoredKey]:
        """Every key a reader sees at ``now``, oldest first (then by value)."""
        seen: dict[str, StoredKey | None] = {}
        for entry in self.pending:
            if entry.visible_at > now and entry.value not in seen:
                seen[entry.value] = entry.before
        for value, key in self.keys.items():
            seen.setdefault(value, key)
        found = [k for k in seen.values() if k is not None and not k.expired(now)]
        return sorted(found, key=lambda k: (k.created_at, k.value))

    def is_known(self, value: str) -> bool:
        """Whether ``value`` is taken (live, deleted or the admin key)."""
        return (
            value == self.admin_key
            or value in self.keys
            or any(d.key.value == value for d in self.deleted)
        )

    # --- writes ------------------------------------------------------------------------

    def settle(self, now: float) -> None:
        """Drop expired keys and pending entries that are already visible."""
        self.keys = {v: k for v, k in self.keys.items() if not k.expired(now)}
        self.pending = [p for p in self.pending if p.visible_at > now]

    def put(self, key: StoredKey, now: float, delay_s: float) -> None:
        """Create or replace ``key`` in the primary."""
        self._record(key.value, now, delay_s)
        self.keys[key.value] = key

    def delete(self, value: str, now: float, delay_s: float) -> None:
        """Move a live key to the deleted store (capped, oldest dropped)."""
        self._record(value, now, delay_s)
        key = self.keys.pop(value)
        self.deleted.append(DeletedKey(key, now))
        del self.deleted[:-DELETED_KEYS_CAP]

    def restore(self, value: str, now: float, delay_s: float) -> StoredKey | None:
        """Bring back the most recently deleted ``value`` without expiry; None if unknown."""
        for index in range(len(self.deleted) - 1, -1, -1):
            if self.deleted[index].key.value == value:
                key = replace(self.deleted.pop(index).key, expires_at=None)
                self.put(key, now, delay_s)
                return key
        return None

    def _record(self, value: str, now: float, delay_s: float) -> None:
        if delay_s > 0:
            self.pending.append(Pending(value, self.keys.get(value), now + delay_s))

    # --- state file --------------------------------------------------------------------

    def to_json(self) -> dict[str, Any]:
        return {
            "format": 1,
            "application_id": self.app_id,
            "admin_key": self.admin_key,
            "keys": [k.to_json() for k in self.keys.values()],
            "deleted": [{**d.key.to_json(), "deletedAt": d.deleted_at} for d in self.deleted],
            "pending": [
                {
                    "value": p.value,
                    "visibleAt": p.visible_at,
                    "before": None if p.before is None else p.before.to_json(),
                }
                for p in self.pending
            ],
        }

    @classmethod
    def from_json(cls, data: object, where: str) -> AppState:
        """Parse a whole state file; ValueError naming ``where`` and the bad part."""
        top = _object(data, where)
        _no_extra(
            top, {"format", "application_id", "admin_key", "keys", "deleted", "pending"}, where
        )
        if top.get("format") != 1:
            raise ValueError(f"{where}: unsupported or missing format (expected 1)")
        state = cls(
            app_id=_typed(top, "application_id", str, where, required=True),
            admin_key=_typed(top, "admin_key", str, where, required=True),
        )
        for i, item in enumerate(_list(top, "keys", where)):
            key = StoredKey.from_json(item, f"{where}: keys[{i}]")
            state.keys[key.value] = key
        for i, item in enumerate(_list(top, "deleted", where)):
            place = f"{where}: deleted[{i}]"
            fields = dict(_object(item, place))
            when = fields.pop("deletedAt", None)
            if not _is_number(when):
                raise ValueError(f"{place}.deletedAt: expected a number")
            state.deleted.append(DeletedKey(StoredKey.from_json(fields, place), float(when)))
        for i, item in enumerate(_list(top, "pending", where)):
            state.pending.append(_pending_from_json(item, f"{where}: pending[{i}]"))
        return state


def _pending_from_json(data: object, where: str) -> Pending:
    fields = _object(data, where)
    _no_extra(fields, {"value", "visibleAt", "before"}, where)
    when = fields.get("visibleAt")
    if not _is_number(when):
        raise ValueError(f"{where}.visibleAt: expected a number")
    before = fields.get("before")
    return Pending(
        value=_typed(fields, "value", str, where, required=True),
        before=None if before is None else StoredKey.from_json(before, f"{where}.before"),
        visible_at=float(when),  # type: ignore[arg-type]  # checked by _is_number
    )


def _is_number(value: object) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _object(data: object, where: str) -> dict[str, Any]:
    if not isinstance(data, dict):
        raise ValueError(f"{where}: expected a JSON object")
    return data


def _list(fields: dict[str, Any], name: str, where: str) -> list[Any]:
    value = fields.get(name, [])
    if not isinstance(value, list):
        raise ValueError(f"{where}.{name}: expected an array")
    return value


def _no_extra(fields: dict[str, Any], known: set[str], where: str) -> None:
    extra = sorted(set(fields) - known)
    if extra:
        raise ValueError(f"{where}: unknown field {extra[0]!r}")


def _typed(
    fields: dict[str, Any],
    name: str,
    kind: type[Any],
    where: str,
    *,
    required: bool = False,
    default: Any = None,
) -> Any:
    if name not in fields:
        if required:
            raise ValueError(f"{where}: missing {name!r}")
        return default
    value = fields[name]
    if not isinstance(value, kind) or isinstance(value, bool):
        raise ValueError(f"{where}.{name}: expected {kind.__name__}")
    return value


def _strings(fields: dict[str, Any], name: str, where: str) -> list[str]:
    values = _list(fields, name, where)
    if not all(isinstance(v, str) for v in values):
        raise ValueError(f"{where}.{name}: expected an array of strings")
    return values
