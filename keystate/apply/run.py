"""Executes a Plan (DESIGN §6, §8): accounts at once, each account phase by phase.

* Accounts run concurrently; within an account the phases run in order — create, adopt,
  update, replace, delete/disable — with at most ``parallelism`` changes in flight.
* Deletes and disables of an account are skipped when one of its creates or replaces
  failed, so that nobody is left without a working key — except the removal of an old key
  a replace left behind (its declared successor exists: removing it ends that replace).
* A new value goes to the secrets sink the moment it exists (:mod:`keystate.apply.create`).
* On eventually consistent providers every write is followed by a bounded wait until
  it is visible (:mod:`keystate.apply.wait`); past the bound the change is
  ``unconfirmed``, never a hang. Where a listing confirms writes, a change waits for
  its confirmation after giving back its slot, and one listing confirms a whole wave.
* Every change ends with one result: done, unconfirmed, failed (with the reason) or
  skipped (a prerequisite failed).
"""

from __future__ import annotations

import asyncio
import contextlib
from datetime import UTC, datetime
from typing import Final

from keystate import kinds
from keystate.apply.create import Creator
from keystate.apply.lifecycle import LifecycleRun
from keystate.apply.outcome import (
    DEFAULT_WAIT_TIMEOUT,
    ApplyOptions,
    Outcome,
    Result,
    Unconfirmed,
)
from keystate.apply.wait import Pending, Visibility
from keystate.contract import CreatedKey, Provider, Removal
from keystate.errors import KeystateError, ProviderError
from keystate.model import LIFECYCLE, Action, KeySpec, LiveKey
from keystate.plan import CREATING, REMOVALS, AccountDiff, Change, Plan, Reason

# Removals that wait for no create: the old key of an earlier replace, a retirement an
# earlier rotation scheduled, and a leftover pending key (its create is over: a new
# value nobody may rely on; kept, it would become a second key of its name once a
# lagging read had shown it pending while it was in fact finished).
_UNBLOCKED: Final = (Reason.LEFTOVER_OF_REPLACE, Reason.RETIRE_DUE, Reason.LEFTOVER_OF_CREATE)
# The phases before removals, in order (DESIGN §11); retirements run with the removals,
# forgets last.
BEFORE_REMOVALS: Final = (
    Action.CREATE,
    Action.ADOPT,
    Action.RENAME,
    Action.UPDATE,
    Action.ROTATE,
    Action.REPLACE,
)


async def apply_plan(
    plan: Plan, providers: dict[str, Provider], options: ApplyOptions
) -> list[Result]:
    batches = await asyncio.gather(
        *(
            AccountRun(account, providers[account.account.name], plan.owner, options).run()
            for account in plan.accounts
            if account.changes
        )
    )
    return [result for batch in batches for result in batch]


class AccountRun:
    """Applies the changes of one account, phase by phase."""

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
        self.visibility = Visibility(provider, diff.schema, self.wait_timeout, diff.account.name)
        self.creator = Creator(diff, provider, owner, options, self.visibility)
        self.lifecycle = LifecycleRun(diff, provider, owner, self.creator, self.visibility)

    async def run(self) -> list[Result]:
        phases: list[list[Change]] = []
        for action in BEFORE_REMOVALS:
            phases.append([c for c in self.diff.changes if c.action is action])
        for phase in phases:
            if phase:
                await self._phase(phase)
        removals = [c for c in self.diff.changes if c.action in (*REMOVALS, Action.RETIRE)]
        failed = [r for r in self.results if r.action in CREATING and r.outcome is Outcome.FAILED]
        # The old key of an earlier replace waits for nothing: the declared key of its
        # name exists, so removing it finishes that replace, as the replace itself would.
        waiting = [c for c in removals if failed and c.reason not in _UNBLOCKED]
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
            await self._phase(ready)
        forget = [c for c in self.diff.changes if c.action is Action.FORGET]
        if forget:
            await self._phase(forget)
        return self.results

    async def _phase(self, changes: list[Change]) -> None:
        self.visibility.waves.expect(len(changes))
        await asyncio.gather(*(self._guarded(c) for c in changes))

    def _record(self, result: Result) -> None:
        self.results.append(result)
        if self.options.on_result is not None:
            self.options.on_result(result)

    async def _guarded(self, change: Change) -> None:
        """One change: its write under the parallelism bound, then (slot given back) its
        confirmation by a shared listing where the provider's listing confirms."""
        pending: Pending | None = None
        async with self.sem:
            try:
                result, pending = await self._execute(change)
            except Unconfirmed as exc:
                result = Result(
                    change.address, change.action, Outcome.UNCONFIRMED, str(exc), _ref(change)
                )
            except KeystateError as exc:
                result = Result(
                    change.address, change.action, Outcome.FAILED, str(exc), _ref(change)
                )
            finally:
                confirmed = self.visibility.waves.written(pending)
        if not await confirmed and pending is not None:
            result = Result(
                change.address, change.action, Outcome.UNCONFIRMED, pending.unconfirmed, result.ref
            )
        self._record(result)

    async def _execute(self, change: Change) -> tuple[Result, Pending | None]:
        action = change.action
        if action in LIFECYCLE:
            return await self.lifecycle.execute(change), None
        if action is Action.CREATE:
            assert change.desired is not None
            spec = self.creator.resolved(change.desired)
            created = await self.creator.create(spec, exclude=())
            pending = await self.visibility.after_write(created.live, spec, "created")
            altered = self._altered(spec, created.live)
            if altered:
                raise ProviderError(f"created and its value delivered, but {altered}")
            done = Result(change.address, action, Outcome.DONE, "created", created.live.ref)
            return done, pending
        if action in (Action.UPDATE, Action.ADOPT):
            assert change.desired is not None and change.live is not None
            if change.delivers_value:
                value = change.live.value
                if value is None:
                    raise ProviderError(
                        f"{change.address}: the value of {change.live.ref} cannot be read"
                    )
                self.creator.deliver(
                    change.desired,
                    CreatedKey(change.live, value, change.live.created_at or datetime.now(UTC)),
                )
            await self.provider.update(
                change.live, change.desired, self.creator.stored(change.desired)
            )
            pending = await self.visibility.after_write(change.live, change.desired, "updated")
            verb = "adopted" if action is Action.ADOPT else "updated"
            return Result(change.address, action, Outcome.DONE, verb, change.live.ref), pending
        if action is Action.REPLACE:
            return await self._replace(change), None
        assert change.live is not None
        if action is Action.DISABLE:
            await self.provider.disable(change.live)
            return Result(change.address, action, Outcome.DONE, "disabled", change.live.ref), None
        await self.provider.delete(change.live)
        pending = await self.visibility.after_write(change.live, None, "deleted")
        return Result(change.address, action, Outcome.DONE, "deleted", change.live.ref), pending

    async def _replace(self, change: Change) -> Result:
        assert change.desired is not None and change.live is not None
        spec = self.creator.resolved(change.desired)
        if change.live.marker is not None and change.live.marker.pending:
            await self.creator.claim_orphan(spec, change.live)
        created = await self.creator.create(spec, exclude=(change.live.ref,))
        with contextlib.suppress(Unconfirmed):
            # The new value is delivered; removing the old key can go ahead regardless.
            await self.visibility.present(created.live, spec, "created")
        old = change.live
        # A key left ``;pending`` by an interrupted create has a value nobody holds: it
        # is deleted even under `removal: disable` (a disabled one would stay pending).
        pending = old.marker is not None and old.marker.pending
        try:
            if self.diff.account.removal is Removal.DISABLE and not pending:
                await self.provider.disable(old)
            else:
                await self.provider.delete(old)
        except KeystateError as exc:
            raise ProviderError(
                f"new key {created.live.ref} created and its value delivered, but removing the "
                f"old key {old.ref} failed ({exc}); run apply again to finish"
            ) from None
        altered = self._altered(spec, created.live)
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


def _ref(change: Change) -> str | None:
    return change.live.ref if change.live else None
