"""Whether a saved plan may still be applied (DESIGN §7).

``apply PLANFILE`` executes exactly the saved changes. It re-reads the accounts first
and refuses (exit 3) if anything a change would touch differs from what the plan saw:
a key it updates, replaces or deletes changed or vanished, a key it adopts got a marker,
a key it creates appeared meanwhile.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace

from keystate import kinds
from keystate.contract import ProviderSchema
from keystate.errors import StalePlanError
from keystate.model import Action, LiveKey
from keystate.plan import AccountDiff, Change, Plan


def bind_live(plan: Plan, live: Mapping[str, list[LiveKey]]) -> Plan:
    """Attach freshly read live keys to the saved changes; StalePlanError if any change
    would touch something that differs from what the plan saw."""
    stale: list[str] = []
    diffs: list[AccountDiff] = []
    for account in plan.accounts:
        keys = live.get(account.account.name, [])
        by_ref = {k.ref: k for k in keys}
        managed_names = {
            k.marker.name
            for k in keys
            if k.marker and k.marker.owner == plan.owner and k.marker.retire_at is None
        }
        changes: list[Change] = []
        for change in account.changes:
            reason = _stale_reason(account.schema, change, by_ref, managed_names, plan.owner)
            if reason:
                stale.append(f"{change.address} {reason}")
                continue
            current = by_ref.get(change.live.ref) if change.live else None
            changes.append(replace(change, live=current))
        diffs.append(replace(account, changes=tuple(changes), seen=frozenset(by_ref)))
    if stale:
        raise StalePlanError(
            [f"plan is stale: {reason} since the plan was made; run plan again" for reason in stale]
        )
    return replace(plan, accounts=tuple(diffs))


def _stale_reason(
    schema: ProviderSchema,
    change: Change,
    by_ref: Mapping[str, LiveKey],
    managed_names: set[str],
    owner: str | None,
) -> str:
    if change.action is Action.CREATE:
        return "was created" if change.name in managed_names else ""
    assert change.live is not None
    current = by_ref.get(change.live.ref)
    if current is None:
        return f"({change.live.ref}) was deleted"
    if change.action is Action.ADOPT:
        if current.marker is not None:
            return f"({current.ref}) came under management"
    elif (
        current.marker is None
        or current.marker.name != _marked_name(change)
        or current.marker.owner != owner
    ):
        return f"({current.ref}) lost its ownership marker"
    if not _same(schema, change.live, current) or _retire(change.live) != _retire(current):
        return "changed"
    return ""


def _marked_name(change: Change) -> str:
    """The name the live key's marker had when planned (a rename changes it)."""
    assert change.live is not None
    marker = change.live.marker
    return marker.name if change.action is Action.RENAME and marker else change.name


def _retire(key: LiveKey) -> object:
    return key.marker.retire_at if key.marker else None


def _same(schema: ProviderSchema, saved: LiveKey, current: LiveKey) -> bool:
    if saved.description != current.description:
        return False
    saved_protect = bool(saved.marker and saved.marker.protect)
    if saved_protect != bool(current.marker and current.marker.protect):
        return False
    return all(
        kinds.equal(f, saved.fields.get(f.name, f.default), current.fields.get(f.name, f.default))
        for f in schema.fields
    )
