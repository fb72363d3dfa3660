"""Executing the lifecycle actions (DESIGN §11): rotate, retire, rename, forget.

A rotation in order, so that a kill at any point converges on the next apply:

1. the successor is created ``;pending`` and its value delivered (``Creator.deliver``);
2. the predecessor is retired at once (overlap 0: deleted, or disabled under
   ``removal: disable``) or marked **retiring** (``@retire=`` in its marker; where the
   expiry field can change in place, e.g. Algolia's ``validity``, it is also set to the
   retire time, so the provider itself ends the key even if keystate never runs again);
3. the successor's marker is finalised.

Killed after 1, the next plan finds a pending duplicate beside an untouched predecessor:
the pending key is removed and the rotation planned again (the sink may hold the value
of that removed key; no live key's value is lost). Killed after 2, the pending successor
is finished like any interrupted create. The predecessor is touched only after delivery.
"""

from __future__ import annotations

import contextlib
import math
from datetime import UTC, datetime, timedelta

from keystate.apply.create import Creator
from keystate.apply.outcome import Outcome, Result, Unconfirmed
from keystate.apply.wait import Visibility
from keystate.contract import Provider, Removal
from keystate.errors import KeystateError, ProviderError
from keystate.model import Action, KeySpec, LiveKey, Marker, format_retire
from keystate.plan import AccountDiff, Change


class LifecycleRun:
    """The lifecycle changes of one account."""

    def __init__(
        self,
        diff: AccountDiff,
        provider: Provider,
        owner: str | None,
        creator: Creator,
        visibility: Visibility,
    ) -> None:
        self.diff = diff
        self.provider = provider
        self.owner = owner
        self.creator = creator
        self.visibility = visibility

    async def execute(self, change: Change) -> Result:
        assert change.live is not None
        if change.action is Action.ROTATE:
            return await self.rotate(change)
        if change.action is Action.RETIRE:
            verb = await self.remove(change.live)
            return Result(change.address, change.action, Outcome.DONE, verb, change.live.ref)
        if change.action is Action.RENAME:
            assert change.desired is not None
            spec = self.creator.resolved(change.desired)
            await self.provider.update(change.live, spec, self.creator.stored(spec))
            await self.visibility.present(change.live, spec, "renamed")
            return Result(change.address, change.action, Outcome.DONE, "renamed", change.live.ref)
        # FORGET: the user's description without keystate's marker; the key stays live.
        live = change.live
        spec = as_declared(self.diff.account.name, live)
        await self.provider.update(live, spec, live.description)
        return Result(
            change.address,
            change.action,
            Outcome.DONE,
            "forgotten (marker removed; the key stays live, unmanaged)",
            live.ref,
        )

    async def rotate(self, change: Change) -> Result:
        assert change.desired is not None and change.live is not None
        spec = self.creator.resolved(change.desired)
        old = change.live
        created = await self.creator.create_pending(spec, exclude=(old.ref,))
        overlap = change.overlap or timedelta(0)
        try:
            if overlap:
                retire_at = await self.mark_retiring(old, overlap)
                after = f"the old key {old.ref} retires at {format_retire(retire_at)}"
            else:
                verb = await self.remove(old)
                after = f"the old key {old.ref} was {verb}"
        except KeystateError as exc:
            raise ProviderError(
                f"new key {created.live.ref} created and its value delivered, but retiring the "
                f"old key {old.ref} failed ({exc}); run apply again to finish"
            ) from None
        await self.creator.finalise(created, spec)
        with contextlib.suppress(Unconfirmed):
            await self.visibility.present(created.live, spec, "created")
        return Result(
            change.address,
            Action.ROTATE,
            Outcome.DONE,
            f"rotated (new value delivered; {after})",
            created.live.ref,
        )

    async def remove(self, key: LiveKey) -> str:
        """Retire a key now, under the account's ``removal:`` policy."""
        if self.diff.account.removal is Removal.DISABLE:
            await self.provider.disable(key)
            return "disabled"
        await self.provider.delete(key)
        await self.visibility.gone(key, strict=False)
        return "deleted"

    async def mark_retiring(self, old: LiveKey, overlap: timedelta) -> datetime:
        """Write the retire time into the predecessor's marker (and its expiry, where
        the provider can shorten it in place)."""
        now = datetime.now(UTC)
        retire_at = now + timedelta(seconds=math.ceil(overlap.total_seconds()))
        retire_at = retire_at.replace(microsecond=0) + timedelta(seconds=1)
        spec = as_declared(self.diff.account.name, old)
        expiry = self.diff.schema.expiry
        if expiry is not None and not expiry.create_only:
            current = old.fields.get(expiry.name)
            if not isinstance(current, datetime) or current > retire_at:
                fields = dict(spec.fields)
                fields[expiry.name] = retire_at
                spec = KeySpec(
                    spec.account, spec.name, spec.description, fields, protect=spec.protect
                )
        marker = old.marker
        assert marker is not None
        stored = Marker(
            marker.name, marker.owner, marker.protect, retire_at=retire_at
        ).stored_description(old.description)
        await self.provider.update(old, spec, stored)
        with contextlib.suppress(Unconfirmed):
            await self.visibility.present(old, spec, "marked retiring")
        return retire_at


def as_declared(account: str, live: LiveKey) -> KeySpec:
    """A live key as if declared exactly as it is (to rewrite only its description)."""
    marker = live.marker
    name = marker.name if marker is not None else live.ref
    return KeySpec(
        account=account,
        name=name,
        description=live.description,
        fields=dict(live.fields),
        protect=bool(marker and marker.protect),
    )
