"""Managed live keys that share a name: which one is the key, and what the others are.

Interrupted applies leave duplicates behind — a pending create, the old key of a
replace — which are cleaned up; any other duplicate is an error (DESIGN §4).
"""

from __future__ import annotations

from collections.abc import Mapping

from keystate.compare import field_changes
from keystate.contract import AccountConfig, ProviderSchema, Removal
from keystate.model import Action, KeySpec, LiveKey
from keystate.plan import Change, Reason


def resolve_duplicates(
    account: AccountConfig,
    schema: ProviderSchema,
    desired: Mapping[str, KeySpec],
    groups: Mapping[str, list[LiveKey]],
    changes: list[Change],
    errors: list[str],
) -> dict[str, LiveKey]:
    """One live key per name. Duplicates left by an interrupted replace are cleaned up:
    when exactly one matches the declaration and the others differ from it in a
    create-only field, the others are deleted (disabled under `removal: disable`). Any
    other duplicate is an error."""
    managed: dict[str, LiveKey] = {}
    for name, found in sorted(groups.items()):
        enabled = [k for k in found if k.enabled]
        # Under `removal: disable`, a replace disables the old key: disabled duplicates
        # next to one enabled key are retired keys, not a conflict.
        retired = len(found) > 1 and len(enabled) == 1 and account.removal is Removal.DISABLE
        if (
            len(found) > 1
            and not enabled
            and account.removal is Removal.DISABLE
            and name not in desired
        ):
            continue  # every copy is retired (a replace, then a removal): nothing to do
        keys = enabled if retired else found
        pending = [k for k in keys if k.marker and k.marker.pending]
        if len(keys) > 1 and pending:
            keys = _drop_pending(account, schema, name, keys, pending, changes)
        if len(keys) == 1:
            managed[name] = keys[0]
            continue
        spec = desired.get(name)
        if spec is not None:
            kept = _finish_replace(account, schema, spec, keys, changes)
            if kept is not None:
                managed[name] = kept
                continue
        refs = ", ".join(k.ref for k in keys)
        errors.append(
            f"{account.name}/{name}: {len(keys)} live keys carry the same marker ({refs}); "
            "delete all but one by hand (keystate will not guess which one is in use)"
        )
    return managed


def _finish_replace(
    account: AccountConfig,
    schema: ProviderSchema,
    spec: KeySpec,
    keys: list[LiveKey],
    changes: list[Change],
) -> LiveKey | None:
    """The key to keep when exactly one of ``keys`` matches the declaration and the
    others are old keys of an interrupted replace (they differ in a create-only field),
    which are then removed; None otherwise."""
    matching = [k for k in keys if not field_changes(schema, spec, k)]
    others = [k for k in keys if k not in matching]
    leftovers = all(
        any(f.forces_replacement for f in field_changes(schema, spec, k)) for k in others
    )
    if len(matching) != 1 or not others or not leftovers:
        return None
    for old in others:
        action = _removal(account, old)
        if action is not None:  # None: already disabled under `removal: disable`
            changes.append(
                Change(
                    action,
                    account.name,
                    schema.name,
                    spec.name,
                    live=old,
                    reason=Reason.LEFTOVER_OF_REPLACE,
                )
            )
    return matching[0]


def _removal(account: AccountConfig, old: LiveKey) -> Action | None:
    """How the old key of an interrupted replace goes: as the replace would have removed
    it (disabled under `removal: disable`, unless it is an unfinished create)."""
    if account.removal is not Removal.DISABLE or (old.marker is not None and old.marker.pending):
        return Action.DELETE
    return Action.DISABLE if old.enabled else None


def _drop_pending(
    account: AccountConfig,
    schema: ProviderSchema,
    name: str,
    keys: list[LiveKey],
    pending: list[LiveKey],
    changes: list[Change],
) -> list[LiveKey]:
    """Pending duplicates are leftovers of interrupted creates: keep the finished key if
    there is one, else the newest pending key, and delete the rest."""
    finished = [k for k in keys if k not in pending]
    if len(finished) > 1:
        return keys  # a real conflict: reported by the caller
    keep = finished or [max(pending, key=lambda k: (k.created_at is not None, k.created_at, k.ref))]
    for key in keys:
        if key is not keep[0]:
            changes.append(
                Change(
                    Action.DELETE,
                    account.name,
                    schema.name,
                    name,
                    live=key,
                    reason=Reason.LEFTOVER_OF_CREATE,
                )
            )
    return keep
