"""An in-memory provider and secrets sink for fast tests of apply (no HTTP, no emulator).

:class:`FakeProvider` implements :class:`keystate.contract.Provider` over a dict of keys
and can misbehave on demand:

* ``ambiguous_creates`` — the Nth create (1-based) commits the key, then raises
  :class:`AmbiguousWriteError` (a timeout after the write landed);
* ``failing_creates`` / ``failing_removals`` — names whose create, or whose delete and
  disable, raise :class:`ProviderError` and change nothing;
* ``lag`` — eventual consistency: a write of that kind (create, update, delete,
  disable) shows in reads only from the Nth read after it (:data:`NEVER`: not during a
  test);
* ``reveals_values`` — whether listings show key values (Algolia does; Coveo masks them);
* ``stores_instead`` — field values the provider stores on create whatever was asked
  (e.g. a capped lifetime).

Every write, and every delivery to a :class:`RecordingSink` sharing its journal, is
recorded in order in ``calls``; ``max_in_flight`` is the most provider calls that were
ever running at once (each call yields to the event loop, so concurrent calls overlap).
"""

from __future__ import annotations

import asyncio
import io
from collections.abc import AsyncIterator, Iterable, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from typing import Final, Literal

from keystate.contract import (
    AccountConfig,
    Catalogue,
    CreatedKey,
    FieldSpec,
    Grant,
    Kind,
    Provider,
    ProviderSchema,
    Removal,
    Role,
)
from keystate.errors import AmbiguousWriteError, NotFoundError, Problem, ProviderError
from keystate.model import FieldValue, KeySpec, LiveKey
from keystate.secrets import DeliveredSecret, Secret, SecretsSink

Op = Literal["create", "update", "delete", "disable", "deliver"]
WRITES: Final[tuple[Op, ...]] = ("create", "update", "delete", "disable")
NEVER: Final = 10**9
EPOCH: Final = datetime(2030, 1, 1, tzinfo=UTC)

SCHEMA: Final = ProviderSchema(
    name="fake",
    title="Fake",
    settings=(),
    fields=(
        FieldSpec("grants", Kind.STRING_SET, "what the key may do", default=frozenset()),
        FieldSpec(
            "expires_at",
            Kind.TIMESTAMP,
            "when the key stops working",
            create_only=True,
            tolerance=timedelta(seconds=60),
            role=Role.EXPIRY,
        ),
    ),
    selector_kinds=("id",),
    removal_policies=(Removal.DELETE, Removal.DISABLE),
)
LAGGING_SCHEMA: Final = replace(SCHEMA, name="fake-lagging", eventually_consistent=True)


@dataclass(frozen=True)
class Call:
    """One write or delivery: the key's name, its ref, and the description written."""

    op: Op
    name: str
    ref: str
    description: str = ""


@dataclass(frozen=True)
class _Version:
    key: LiveKey | None  # None: deleted
    visible_from: int  # the first read that sees this version


@dataclass
class FakeProvider:
    """An account held in memory; see the module docstring for its failure knobs."""

    schema: ProviderSchema = SCHEMA
    account: AccountConfig = field(
        default_factory=lambda: AccountConfig(name="acct", provider="fake", settings={})
    )
    reveals_values: bool = True
    ambiguous_creates: set[int] = field(default_factory=set)
    failing_creates: set[str] = field(default_factory=set)
    failing_removals: set[str] = field(default_factory=set)
    lag: dict[Op, int] = field(default_factory=dict)
    stores_instead: dict[str, FieldValue] = field(default_factory=dict)
    calls: list[Call] = field(default_factory=list)
    creates: int = 0
    in_flight: int = 0
    max_in_flight: int = 0
    _history: dict[str, list[_Version]] = field(default_factory=dict)
    _values: dict[str, Secret] = field(default_factory=dict)
    _reads: int = 0
    _born: int = 0

    # -- test set-up and inspection (not part of the Provider protocol) ---------------

    def seed(
        self,
        stored_description: str,
        fields: dict[str, FieldValue] | None = None,
        *,
        enabled: bool = True,
    ) -> LiveKey:
        """Put a key in the account, visible at once."""
        key = self._new_key(stored_description, dict(fields or {}))
        key = replace(key, enabled=enabled)
        self._history[key.ref] = [_Version(key, 0)]
        return self._shown(key)

    def snapshot(self) -> list[LiveKey]:
        """The keys as they really are (what a plan reads), without counting a read."""
        return [self._shown(k) for k in self._current()]

    def named(self, name: str) -> list[LiveKey]:
        """The keys whose marker carries ``name``."""
        return [k for k in self.snapshot() if k.marker is not None and k.marker.name == name]

    def value_of(self, key: LiveKey) -> Secret:
        return self._values[key.ref]

    def ops(self, *ops: Op) -> list[tuple[Op, str]]:
        """(op, name) of the recorded calls of these kinds (every kind if none given)."""
        return [(c.op, c.name) for c in self.calls if not ops or c.op in ops]

    # -- the Provider protocol ---------------------------------------------------------

    async def list_keys(self) -> list[LiveKey]:
        async with self._call():
            return [self._shown(k) for k in self._visible()]

    async def read_key(self, key: LiveKey) -> LiveKey | None:
        async with self._call():
            found = [k for k in self._visible() if k.ref == key.ref]
            return self._shown(found[0]) if found else None

    async def create(self, spec: KeySpec, stored_description: str) -> CreatedKey:
        async with self._call():
            self.creates += 1
            if spec.name in self.failing_creates:
                raise ProviderError(f"create {spec.name}: refused", account=self.account.name)
            fields = {**dict(spec.fields), **self.stores_instead}
            key = self._new_key(stored_description, fields)
            self._write("create", spec.name, key.ref, key)
            if self.creates in self.ambiguous_creates:
                raise AmbiguousWriteError("create: timed out", account=self.account.name)
            assert key.created_at is not None
            return CreatedKey(self._shown(key), self._values[key.ref], key.created_at)

    async def update(self, live: LiveKey, spec: KeySpec, stored_description: str) -> None:
        async with self._call():
            current = self._existing(live)
            changed = replace(current, stored_description=stored_description, fields=spec.fields)
            self._write("update", spec.name, live.ref, changed)

    async def delete(self, live: LiveKey) -> None:
        async with self._call():
            current = self._existing(live)
            self._refuse_removal(current)
            self._write("delete", _name(current), live.ref, None)

    async def disable(self, live: LiveKey) -> None:
        async with self._call():
            current = self._existing(live)
            self._refuse_removal(current)
            self._write("disable", _name(current), live.ref, replace(current, enabled=False))

    async def grants(self) -> list[Grant]:
        return []

    async def catalogue(self) -> Catalogue | None:
        return None

    async def check_creates(self, specs: Sequence[KeySpec]) -> list[Problem]:
        return []

    async def aclose(self) -> None:
        return None

    # -- inside ------------------------------------------------------------------------

    @asynccontextmanager
    async def _call(self) -> AsyncIterator[None]:
        self.in_flight += 1
        self.max_in_flight = max(self.max_in_flight, self.in_flight)
        try:
            # Let the other tasks run, as a request on the wire would.
            await asyncio.sleep(0)
            await asyncio.sleep(0)
            yield
        finally:
            self.in_flight -= 1

    def _new_key(self, stored_description: str, fields: dict[str, FieldValue]) -> LiveKey:
        self._born += 1
        ident = f"k{self._born}"
        self._values[f"id:{ident}"] = Secret(f"fake-value-{ident}-0123456789")
        return LiveKey(
            ref=f"id:{ident}",
            handle=ident,
            stored_description=stored_description,
            fields=fields,
            id=ident,
            created_at=EPOCH + timedelta(seconds=self._born),
        )

    def _write(self, op: Op, name: str, ref: str, key: LiveKey | None) -> None:
        description = key.stored_description if key is not None else ""
        self.calls.append(Call(op, name, ref, description))
        versions = self._history.setdefault(ref, [])
        # Writes to one key show in the order they were made.
        earliest = versions[-1].visible_from if versions else 0
        visible_from = max(earliest, self._reads + 1 + self.lag.get(op, 0))
        versions.append(_Version(key, visible_from))

    def _current(self) -> Iterable[LiveKey]:
        for versions in self._history.values():
            if versions[-1].key is not None:
                yield versions[-1].key

    def _visible(self) -> Iterable[LiveKey]:
        self._reads += 1
        for versions in self._history.values():
            seen = [v for v in versions if v.visible_from <= self._reads]
            if seen and seen[-1].key is not None:
                yield seen[-1].key

    def _existing(self, live: LiveKey) -> LiveKey:
        for key in self._current():
            if key.ref == live.ref:
                return key
        raise NotFoundError(f"{live.ref}: no such key", account=self.account.name, status=404)

    def _refuse_removal(self, key: LiveKey) -> None:
        if _name(key) in self.failing_removals:
            raise ProviderError(f"remove {key.ref}: refused", account=self.account.name)

    def _shown(self, key: LiveKey) -> LiveKey:
        return replace(key, value=self._values[key.ref] if self.reveals_values else None)


def _name(key: LiveKey) -> str:
    return key.marker.name if key.marker is not None else key.ref


class RecordingSink(SecretsSink):
    """A secrets sink in memory that also records each delivery in a provider's journal."""

    def __init__(self, calls: list[Call]) -> None:
        super().__init__(io.StringIO(), is_file=False, github_actions=False)
        self.calls = calls
        self.items: list[DeliveredSecret] = []

    def deliver(self, item: DeliveredSecret) -> None:
        super().deliver(item)
        self.items.append(item)
        self.calls.append(Call("deliver", item.name, f"id:{item.id}"))


def as_provider(fake: FakeProvider) -> Provider:
    """The fake, typed as the protocol (mypy checks that it conforms)."""
    return fake
