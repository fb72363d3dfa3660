"""Executes a Plan (DESIGN §6, §8).

* Accounts run concurrently; within an account the phases run in order — create, adopt,
  update, replace, delete/disable — with at most ``parallelism`` changes in flight.
* Deletes and disables of an account are skipped when one of its creates or replaces
  failed, so that nobody is left without a working key — except the removal of an old key
  a replace left behind (its declared successor exists: removing it ends that replace).
* A create is never retried blindly: after an ambiguous failure the account is listed
  again (for a bounded time, on eventually consistent providers) looking for the key's
  marker. Found with its value: done. Found without it (the provider masks values): the
  orphan — whose value nobody ever saw — is deleted and the create tried again.
* Two applies of the same configuration may run at once (two CI jobs): each would
  create the same keys. After each create the account is listed again; a key of the
  same name that the plan did not see and that is at least as old as ours means another
  run got there first, so ours is deleted before its value is delivered and the change
  fails with that reason (the older key's value is in the other run's sink). Equal
  creation times make both yield: never two keys, at worst a re-run.
* A new value goes to the secrets sink the moment it exists.
* On eventually consistent providers every write is followed by a bounded wait until
  it is visible; past the bound the change is ``unconfirmed``, never a hang.
* Every change ends with one result: done, unconfirmed, failed (with the reason) or
  skipped (a prerequisite failed).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from enum import Enum
from typing import TypeVar

from keystate import kinds
from keystate.diff import LEFTOVER_OF_REPLACE, AccountDiff, Change, field_changes, marker_for
from keystate.errors import AmbiguousWriteError, KeystateError, NotFoundError, ProviderError
from keystate.model import Action, KeySpec, LiveKey
from keystate.plan import CREATING, REMOVALS, Plan
from keystate.providers.base import CreatedKey, Provider
from keystate.secrets import DeliveredSecret, SecretsSink

log = logging.getLogger("keystate.apply")

DEFAULT_PARALLELISM = 4
DEFAULT_WAIT_TIMEOUT = 30.0
CREATE_TRIES = 3
CONSISTENT_LOOKUP_SECONDS = 2.0
# How long a pending key is watched before it is taken for an interrupted create.
PENDING_GRACE_SECONDS = 3.0
T = TypeVar("T")


class Outcome(Enum):
    DONE = "done"
    UNCONFIRMED = "unconfirmed"
    FAILED = "failed"
    SKIPPED = "skipped"


@dataclass(frozen=True)
class Result:
    address: str
    action: Action
    outcome: Outcome
    detail: str = ""
    ref: str | None = None

    def to_dict(self) -> dict[str, str | None]:
        return {
            "address": self.address,
            "action": self.action.value,
            "outcome": self.outcome.value,
            "detail": self.detail,
            "ref": self.ref,
        }


@dataclass(frozen=True)
class ApplyOptions:
    parallelism: int = DEFAULT_PARALLELISM
    wait_timeout: float | None = None
    sink: SecretsSink | None = None
    on_result: Callable[[Result], None] | None = None


class _Unconfirmed(Exception):
    pass


async def apply_plan(
    plan: Plan, providers: dict[str, Provider], options: ApplyOptions
) -> list[Result]:
    batches = await asyncio.gather(
        *(
            _Account(account, providers[account.account.name], plan.owner, options).run()
            for account in plan.accounts
            if account.changes
        )
    )
    return [result for batch in batches for result in batch]


class _Account:
    def __init__(
        self, diff: AccountDiff, provider: Provider, owner: str | None, options: ApplyOptions
    ) -> None:
        self.diff = diff
        self.provider = provider
        self.owner = owner
        self.options = options
        self.sem = asyncio.Semaphore(max(1, options.parallelism))
        wait = options.wait_timeout
        if wait is None:
            wait = diff.account.wait_timeout
        self.wait_timeout = DEFAULT_WAIT_TIMEOUT if wait is None else wait
        self.results: list[Result] = []
        self.listing = _SharedListing(provider)

    async def run(self) -> list[Result]:
        phases: list[list[Change]] = []
        for action in (Action.CREATE, Action.ADOPT, Action.UPDATE, Action.REPLACE):
            phases.append([c for c in self.diff.changes if c.action is action])
        for phase in phases:
            if phase:
                await asyncio.gather(*(self._guarded(c) for c in phase))
        removals = [c for c in self.diff.changes if c.action in REMOVALS]
        failed = [r for r in self.results if r.action in CREATING and r.outcome is Outcome.FAILED]
        # The old key of an earlier replace waits for nothing: the declared key of its
        # name exists, so removing it finishes that replace, as the replace itself would.
        waiting = [c for c in removals if failed and c.note != LEFTOVER_OF_REPLACE]
        if waiting:
            reason = (
                f"skipped: {len(failed)} create/replace in {self.diff.account.name} failed, and "
                "removals wait until every new key exists"
            )
            for change in waiting:
                self._record(
                    Result(change.address, change.action, Outcome.SKIPPED, reason, _ref(change))
                )
        ready = [c for c in removals if c not in waiting]
        if ready:
            await asyncio.gather(*(self._guarded(c) for c in ready))
        return self.results

    def _record(self, result: Result) -> None:
        self.results.append(result)
        if self.options.on_result is not None:
            self.options.on_result(result)

    async def _guarded(self, change: Change) -> None:
        async with self.sem:
            try:
                result = await self._execute(change)
            except _Unconfirmed as exc:
                result = Result(
                    change.address, change.action, Outcome.UNCONFIRMED, str(exc), _ref(change)
                )
            except KeystateError as exc:
                result = Result(
                    change.address, change.action, Outcome.FAILED, str(exc), _ref(change)
                )
        self._record(result)

    async def _execute(self, change: Change) -> Result:
        action = change.action
        if action is Action.CREATE:
            assert change.desired is not None
            created = await self._create(change.desired, exclude=())
            await self._confirm_present(created.live, change.desired, "created")
            altered = self._altered(change.desired, created.live)
            if altered:
                raise ProviderError(f"created and its value delivered, but {altered}")
            return Result(change.address, action, Outcome.DONE, "created", created.live.ref)
        if action in (Action.UPDATE, Action.ADOPT):
            assert change.desired is not None and change.live is not None
            if change.delivers_value:
                value = change.live.value
                if value is None:
                    raise ProviderError(
                        f"{change.address}: the value of {change.live.ref} cannot be read"
                    )
                self._deliver(
                    change.desired,
                    CreatedKey(change.live, value, change.live.created_at or datetime.now(UTC)),
                )
            await self.provider.update(change.live, change.desired, self._stored(change.desired))
            await self._confirm_present(change.live, change.desired, "updated")
            verb = "adopted" if action is Action.ADOPT else "updated"
            return Result(change.address, action, Outcome.DONE, verb, change.live.ref)
        if action is Action.REPLACE:
            return await self._replace(change)
        assert change.live is not None
        if action is Action.DISABLE:
            await self.provider.disable(change.live)
            return Result(change.address, action, Outcome.DONE, "disabled", change.live.ref)
        await self.provider.delete(change.live)
        await self._confirm_gone(change.live)
        return Result(change.address, action, Outcome.DONE, "deleted", change.live.ref)

    async def _replace(self, change: Change) -> Result:
        assert change.desired is not None and change.live is not None
        if change.live.marker is not None and change.live.marker.pending:
            await self._claim_orphan(change.desired, change.live)
        created = await self._create(change.desired, exclude=(change.live.ref,))
        with contextlib.suppress(_Unconfirmed):
            # The new value is delivered; removing the old key can go ahead regardless.
            await self._confirm_present(created.live, change.desired, "created")
        old = change.live
        # A key left ``;pending`` by an interrupted create has a value nobody holds: it
        # is deleted even under `removal: disable` (a disabled one would stay pending).
        pending = old.marker is not None and old.marker.pending
        try:
            if self.diff.account.removal == "disable" and not pending:
                await self.provider.disable(old)
            else:
                await self.provider.delete(old)
        except KeystateError as exc:
            raise ProviderError(
                f"new key {created.live.ref} created and its value delivered, but removing the "
                f"old key {old.ref} failed ({exc}); run apply again to finish"
            ) from None
        altered = self._altered(change.desired, created.live)
        if altered:
            raise ProviderError(f"replaced {old.ref} and the new value delivered, but {altered}")
        return Result(
            change.address,
            Action.REPLACE,
            Outcome.DONE,
            f"replaced {old.ref} (new value delivered)",
            created.live.ref,
        )

    def _altered(self, spec: KeySpec, created: LiveKey) -> str | None:
        """Whether the provider stored a create-only field otherwise than asked (e.g. it
        capped a lifetime). Such a key would be planned for replacement again on every
        run, each time with a new value: say so, rather than report the change done."""
        schema = self.diff.schema
        for fspec in schema.fields:
            if not fspec.create_only:
                continue
            wanted = spec.fields.get(fspec.name, fspec.default)
            got = created.fields.get(fspec.name, fspec.default)
            if not kinds.equal(fspec, wanted, got):
                return (
                    f"{schema.title} stored {fspec.name} = {kinds.to_text(got)} instead of "
                    f"{kinds.to_text(wanted)}; every plan would replace the key again: declare "
                    f"{fspec.name} as {schema.title} keeps it"
                )
        return None

    async def _claim_orphan(self, spec: KeySpec, pending: LiveKey) -> None:
        """A ``;pending`` key is an interrupted create — or another apply's create in
        progress, which finalises it within moments. Watch it for a short grace; if it
        is finalised or removed meanwhile, leave it to that run (ProviderError)."""

        async def settled() -> str | None:
            current = await self.provider.read_key(pending)
            if current is None:
                return "removed"
            marker = current.marker
            return "finished" if marker is None or not marker.pending else None

        what = await _poll(settled, min(self.wait_timeout, PENDING_GRACE_SECONDS))
        if what is not None:
            raise ProviderError(
                f"replace {spec.address}: the pending key {pending.ref} was {what} by another "
                "apply running at the same time; its value is in that run's --secrets-out; "
                "run plan to check",
                account=self.diff.account.name,
            )

    # -- create, without duplicates or lost values ----------------------------------------
    def _stored(self, spec: KeySpec, pending: bool = False) -> str:
        marker = replace(marker_for(spec, self.owner), pending=pending)
        return marker.stored_description(spec.description)

    async def _create(self, spec: KeySpec, exclude: Sequence[str]) -> CreatedKey:
        """Create in two phases: the key is born ``;pending``, its value is delivered,
        then the marker is finalised. Killed in between, the next plan sees the pending
        marker and knows the value may not have reached the sink."""
        created = await self._create_pending(spec, exclude)
        await self._finalise(created.live, spec)
        return created

    async def _finalise(self, key: LiveKey, spec: KeySpec) -> None:
        """Write the final marker on a key this run has just created. On an eventually
        consistent provider a write may not find a key whose creation has not propagated
        yet (Algolia answers such a PUT 404, as a read would): then wait, bounded by
        ``wait_timeout``, until the key can be read, and send the update again. Past the
        bound the change is ``unconfirmed``: the key exists, its value is delivered, and
        the next apply finalises it (a ``;pending`` key whose value it can read)."""
        try:
            await self.provider.update(key, spec, self._stored(spec))
            return
        except NotFoundError:
            if not self.diff.schema.eventually_consistent:
                raise
        log.info("%s: new key %s not found by the update yet; waiting", spec.address, key.ref)

        async def updated() -> bool | None:
            if await self.provider.read_key(key) is None:
                return None
            await self.provider.update(key, spec, self._stored(spec))
            return True

        if await _poll(updated, self.wait_timeout) is None:
            raise _Unconfirmed(
                f"created {key.ref} and delivered its value, but the key is not yet visible "
                f"after {self.wait_timeout:g}s, so its final marker is not written yet; "
                "run apply again to finish"
            )

    async def _create_pending(self, spec: KeySpec, exclude: Sequence[str]) -> CreatedKey:
        stored = self._stored(spec, pending=True)
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
                    await self._confirm_gone(found, strict=False)
                    continue
                created = CreatedKey(found, found.value, found.created_at or datetime.now(UTC))
            await self._yield_to_concurrent_run(spec, created.live, exclude)
            self._deliver(spec, created)
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
                    and key.ref not in exclude
                ):
                    return key
            return None

        # Even a provider documented as read-consistent gets a short look-again window:
        # missing a committed key here would mean creating it a second time.
        bound = self.wait_timeout
        if not self.diff.schema.eventually_consistent:
            bound = min(bound, CONSISTENT_LOOKUP_SECONDS)
        return await _poll(look, bound)

    async def _yield_to_concurrent_run(
        self, spec: KeySpec, mine: LiveKey, exclude: Sequence[str]
    ) -> None:
        """Delete our new key if another run created the same one first (or at the same
        time); raise ProviderError then. Decided on a listing that shows our own key,
        so that every key created before ours shows too."""
        asked = time.monotonic()

        async def listed() -> list[LiveKey] | None:
            keys = await self.listing.after(asked)
            return keys if any(k.ref == mine.ref for k in keys) else None

        bound = self.wait_timeout
        if not self.diff.schema.eventually_consistent:
            bound = min(bound, CONSISTENT_LOOKUP_SECONDS)
        keys = await _poll(listed, bound)
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
            and _not_younger(k, ours)
        ]
        if not rivals:
            return
        await self.provider.delete(mine)
        await self._confirm_gone(mine, strict=False)
        raise ProviderError(
            f"create {spec.address}: another apply created this key at the same time "
            f"({rivals[0].ref}); this run deleted its own copy ({mine.ref}) before delivering "
            "its value, which is in the other run's --secrets-out; run plan to check",
            account=self.diff.account.name,
        )

    def _deliver(self, spec: KeySpec, created: CreatedKey) -> None:
        sink = self.options.sink
        if sink is None:
            raise ProviderError(
                f"{spec.address}: created, but there is no secrets sink for its value"
            )
        sink.deliver(
            DeliveredSecret(
                address=spec.address,
                account=spec.account,
                name=spec.name,
                provider=self.diff.schema.name,
                id=created.live.id or created.live.ref,
                value=created.value,
                created_at=created.created_at,
            )
        )

    # -- eventual consistency ----------------------------------------------------------
    async def _confirm_present(self, key: LiveKey, spec: KeySpec, verb: str) -> None:
        if not self.diff.schema.eventually_consistent:
            return
        schema = self.diff.schema

        async def visible() -> bool | None:
            current = await self.provider.read_key(key)
            return (
                True if current is not None and not field_changes(schema, spec, current) else None
            )

        if await _poll(visible, self.wait_timeout) is None:
            raise _Unconfirmed(
                f"{verb}, but not yet visible after {self.wait_timeout:g}s; "
                "run plan later to confirm"
            )

    async def _confirm_gone(self, key: LiveKey, strict: bool = True) -> None:
        if not self.diff.schema.eventually_consistent:
            return

        async def gone() -> bool | None:
            return True if await self.provider.read_key(key) is None else None

        if await _poll(gone, self.wait_timeout) is None and strict:
            raise _Unconfirmed(
                f"deleted, but still visible after {self.wait_timeout:g}s; "
                "run plan later to confirm"
            )


class _SharedListing:
    """One account listing shared by the creates that ask for one at about the same
    time: each caller gets a listing that started after it asked."""

    def __init__(self, provider: Provider) -> None:
        self.provider = provider
        self._task: asyncio.Future[list[LiveKey]] | None = None
        self._started = 0.0

    async def after(self, moment: float) -> list[LiveKey]:
        while True:
            task = self._task
            if task is not None and self._started >= moment:
                return await asyncio.shield(task)
            if task is not None and not task.done():
                with contextlib.suppress(Exception):
                    await asyncio.shield(task)
                continue
            self._started = time.monotonic()
            self._task = asyncio.ensure_future(self.provider.list_keys())


def _not_younger(other: LiveKey, ours: LiveKey) -> bool:
    """Whether ``other`` was created no later than ``ours`` (unknown times: assume so)."""
    if other.created_at is None or ours.created_at is None:
        return True
    return other.created_at <= ours.created_at


async def _poll(check: Callable[[], Awaitable[T | None]], timeout: float) -> T | None:
    """Call ``check`` until it returns something, for at most ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    delay = 0.05
    while True:
        try:
            found = await check()
        except ProviderError as exc:
            log.info("while waiting: %s", exc)
            found = None
        if found is not None:
            return found
        left = deadline - time.monotonic()
        if left <= 0:
            return None
        await asyncio.sleep(min(delay, left))
        delay = min(delay * 2, 1.0)


def _ref(change: Change) -> str | None:
    return change.live.ref if change.live else None
