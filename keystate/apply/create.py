"""Creating a key without duplicates or lost values (DESIGN §6, §8).

* A key is born ``;pending``, its value is delivered, then its marker is finalised:
  killed in between, the next plan sees the pending marker and knows the value may not
  have reached the sink.
* A create is never retried blindly: after an ambiguous failure the account is listed
  again (for a bounded time) looking for the key's marker. Found with its value: done.
  Found without it (the provider masks values): the orphan — whose value nobody ever
  saw — is deleted and the create tried again.
* Two applies of the same configuration may run at once (two CI jobs). After each create
  the account is listed again; a key of the same name that the plan did not see and that
  is at least as old as ours means another run got there first, so ours is deleted before
  its value is delivered and the change fails with that reason. Equal creation times make
  both yield: never two keys, at worst a re-run.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from dataclasses import replace
from datetime import UTC, datetime
from typing import Final

from keystate.apply.outcome import ApplyOptions, Unconfirmed
from keystate.apply.wait import SharedListing, Visibility, poll
from keystate.compare import marker_for
from keystate.contract import CreatedKey, Provider
from keystate.errors import AmbiguousWriteError, NotFoundError, ProviderError
from keystate.lifecycle import with_lifetime
from keystate.model import KeySpec, LiveKey
from keystate.plan import REMOVALS, AccountDiff
from keystate.secrets import DeliveredSecret

log = logging.getLogger("keystate.apply")

CREATE_TRIES: Final = 3
# How long a pending key is watched before it is taken for an interrupted create.
PENDING_GRACE_SECONDS: Final = 3.0


class Creator:
    """Creates the keys of one account."""

    def __init__(
        self,
        diff: AccountDiff,
        provider: Provider,
        owner: str | None,
        options: ApplyOptions,
        visibility: Visibility,
    ) -> None:
        self.diff = diff
        self.provider = provider
        self.owner = owner
        self.options = options
        self.visibility = visibility
        self.listing = SharedListing(provider)
        # What made each new value, for the sinks (KEYSTATE_ACTION): finishing an
        # interrupted create delivers the value of a create.
        self.actions = {
            c.name: "create" if c.delivers_value else c.action.value for c in diff.changes
        }
        # Keys this plan removes (e.g. pending leftovers): never taken for a new key.
        self.doomed = frozenset(
            c.live.ref for c in diff.changes if c.live is not None and c.action in REMOVALS
        )

    def stored(self, spec: KeySpec, pending: bool = False) -> str:
        marker = replace(marker_for(self.diff.schema, spec, self.owner), pending=pending)
        return marker.stored_description(spec.description)

    def resolved(self, spec: KeySpec) -> KeySpec:
        """The key as it is created now: ``lifetime:`` counts from this moment."""
        return with_lifetime(self.diff.schema, spec, datetime.now(UTC))

    async def create(self, spec: KeySpec, exclude: Sequence[str]) -> CreatedKey:
        """Create in two phases: the key is born ``;pending``, its value is delivered,
        then the marker is finalised. Killed in between, the next plan sees the pending
        marker and knows the value may not have reached the sink."""
        created = await self.create_pending(spec, exclude)
        await self.finalise(created, spec)
        return created

    async def finalise(self, created: CreatedKey, spec: KeySpec) -> None:
        """Remove ``;pending`` from a created key whose value was delivered. On an
        eventually consistent provider a write may not find a key whose creation has not
        propagated yet (Algolia answers such a PUT 404, as a read would): then wait,
        bounded by ``wait_timeout``, until the key can be read, and send the update
        again. Past the bound the change is ``unconfirmed``: the key exists, its value is
        delivered, and the next apply finalises it (a ``;pending`` key whose value it can
        read)."""
        key = created.live
        try:
            await self.provider.update(key, spec, self.stored(spec))
            return
        except NotFoundError:
            if not self.diff.schema.eventually_consistent:
                raise
        log.info("%s: new key %s not found by the update yet; waiting", spec.address, key.ref)

        async def updated() -> bool | None:
            if await self.provider.read_key(key) is None:
                return None
            await self.provider.update(key, spec, self.stored(spec))
            return True

        if await poll(updated, self.visibility.timeout) is None:
            raise Unconfirmed(
                f"created {key.ref} and delivered its value, but the key is not yet visible "
                f"after {self.visibility.timeout:g}s, so its final marker is not written yet; "
                "run apply again to finish"
            )

    async def create_pending(self, spec: KeySpec, exclude: Sequence[str]) -> CreatedKey:
        """The key created ``;pending`` (never twice) and its value delivered."""
        stored = self.stored(spec, pending=True)
        last: Exception | None = None
        # Keys this loop removed stay excluded: a lagging list may still show one, and
        # taking it for the next try's key would leave that key behind as a duplicate.
        excluded = list(exclude)
        for _ in range(CREATE_TRIES):
            try:
                created = await self.provider.create(spec, stored)
            except AmbiguousWriteError as exc:
                last = exc
                log.info("%s: %s; looking for it before trying again", spec.address, exc)
                found = await self._find_created(spec, excluded)
                if found is None:
                    continue
                if found.value is None:
                    # Its value was never seen and cannot be read back: nobody can be
                    # using it. Remove it and create a key whose value we will see.
                    await self.provider.delete(found)
                    excluded.append(found.ref)
                    await self.visibility.gone(found, strict=False)
                    continue
                created = CreatedKey(found, found.value, found.created_at or datetime.now(UTC))
            await self._yield_to_concurrent_run(spec, created.live, excluded)
            self.deliver(spec, created)
            return created
        raise ProviderError(
            f"create {spec.address}: not created after {CREATE_TRIES} tries ({last})",
            account=self.diff.account.name,
        )

    async def _find_created(self, spec: KeySpec, exclude: Sequence[str]) -> LiveKey | None:
        async def look() -> LiveKey | None:
            for key in await self.provider.list_keys():
                marker = key.marker
                if (
                    marker is not None
                    and marker.name == spec.name
                    and marker.owner == self.owner
                    and marker.retire_at is None
                    and key.ref not in exclude
                    and key.ref not in self.doomed
                ):
                    return key
            return None

        what = f"looking for {spec.address} after an ambiguous create"
        return await poll(look, self.visibility.lookup_bound(), what)

    async def _yield_to_concurrent_run(
        self, spec: KeySpec, mine: LiveKey, exclude: Sequence[str]
    ) -> None:
        """Delete our new key if another run created the same one first (or at the same
        time); raise ProviderError then. Decided on a listing that shows our own key,
        so that every key created before ours shows too. Each try asks for a listing
        that started after the try: a listing that lagged is not handed back again."""

        async def listed() -> list[LiveKey] | None:
            keys = await self.listing.after(time.monotonic())
            return keys if any(k.ref == mine.ref for k in keys) else None

        keys = await poll(listed, self.visibility.lookup_bound())
        if keys is None:
            log.info("%s: new key not listed yet; cannot check for a concurrent run", spec.address)
            return
        ours = next(k for k in keys if k.ref == mine.ref)
        rivals = [
            k
            for k in keys
            if k.ref != mine.ref
            and k.ref not in self.diff.seen
            and k.ref not in exclude
            and k.marker is not None
            and k.marker.name == spec.name
            and k.marker.owner == self.owner
            and k.marker.retire_at is None
            and not_younger(k, ours)
        ]
        if not rivals:
            return
        await self.provider.delete(mine)
        await self.visibility.gone(mine, strict=False)
        raise ProviderError(
            f"create {spec.address}: another apply created this key at the same time "
            f"({rivals[0].ref}); this run deleted its own copy ({mine.ref}) before delivering "
            "its value, which is in the other run's --secrets-out; run plan to check",
            account=self.diff.account.name,
        )

    def deliver(self, spec: KeySpec, created: CreatedKey) -> None:
        """Deliver a new value to every sink of its key (DESIGN §12). Raises
        DeliveryError, the value kept in the rescue file, when a sink failed: the key
        then keeps its ``;pending`` marker and the caller must not retire a predecessor."""
        deliveries = self.options.deliveries
        if deliveries is None:
            raise ProviderError(
                f"{spec.address}: created, but there is no secrets sink for its value"
            )
        item = DeliveredSecret(
            address=spec.address,
            account=spec.account,
            name=spec.name,
            provider=self.diff.schema.name,
            id=created.live.id or created.live.ref,
            value=created.value,
            created_at=created.created_at,
        )
        deliveries.deliver(item, spec.deliver_to, self.actions.get(spec.name, "create"))

    async def claim_orphan(self, spec: KeySpec, pending: LiveKey) -> None:
        """A ``;pending`` key is an interrupted create — or another apply's create in
        progress, which finalises it within moments. Watch it for a short grace; if it
        is finalised or removed meanwhile, leave it to that run (ProviderError)."""

        async def settled() -> str | None:
            current = await self.provider.read_key(pending)
            if current is None:
                return "removed"
            marker = current.marker
            return "finished" if marker is None or not marker.pending else None

        what = await poll(settled, min(self.visibility.timeout, PENDING_GRACE_SECONDS))
        if what is not None:
            raise ProviderError(
                f"replace {spec.address}: the pending key {pending.ref} was {what} by another "
                "apply running at the same time; its value is in that run's --secrets-out; "
                "run plan to check",
                account=self.diff.account.name,
            )


def not_younger(other: LiveKey, ours: LiveKey) -> bool:
    """Whether ``other`` was created no later than ``ours`` (unknown times: assume so)."""
    if other.created_at is None or ours.created_at is None:
        return True
    return other.created_at <= ours.created_at
