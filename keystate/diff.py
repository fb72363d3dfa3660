"""(desired keys, live keys) -> changes, for one account (DESIGN §4–§5).

Live keys are sorted into four kinds: the **credential** keystate runs with (never
touched), **managed** keys (our ownership marker), **foreign** keys (another owner's
marker) and **unmanaged** keys (no marker; never touched). Declared keys are matched to
managed keys by name and compared field by field (:mod:`keystate.compare`).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace

from keystate.compare import drifted, field_changes
from keystate.contract import AccountConfig, ProviderSchema, Removal
from keystate.errors import PlanError
from keystate.model import Action, KeySpec, LiveKey
from keystate.plan import AccountDiff, Change, FieldChange, Reason


@dataclass
class _Sorted:
    managed: dict[str, list[LiveKey]] = field(default_factory=dict)
    unmanaged: list[LiveKey] = field(default_factory=list)
    foreign: list[LiveKey] = field(default_factory=list)
    credential: list[LiveKey] = field(default_factory=list)


def _sort(live: Sequence[LiveKey], owner: str | None) -> _Sorted:
    out = _Sorted()
    for key in live:
        marker = key.marker
        if key.is_credential:
            out.credential.append(key)
        elif marker is None:
            out.unmanaged.append(key)
        elif marker.owner != owner:
            out.foreign.append(key)
        else:
            out.managed.setdefault(marker.name, []).append(key)
    return out


def diff_account(
    account: AccountConfig,
    schema: ProviderSchema,
    desired: Mapping[str, KeySpec],
    live: Sequence[LiveKey],
    owner: str | None,
) -> AccountDiff:
    """Plan one account. Raises PlanError for live states that cannot be planned."""
    return _Planner(account, schema, desired, live, owner).run()


class _Planner:
    def __init__(
        self,
        account: AccountConfig,
        schema: ProviderSchema,
        desired: Mapping[str, KeySpec],
        live: Sequence[LiveKey],
        owner: str | None,
    ) -> None:
        self.account = account
        self.schema = schema
        self.desired = desired
        self.live = live
        self.groups = _sort(live, owner)
        self.errors: list[str] = []
        self.refusals: list[str] = []
        self.changes: list[Change] = []
        self.unchanged = 0
        self.adopted: set[str] = set()

    def change(self, action: Action, name: str, **kw: object) -> None:
        self.changes.append(
            Change(action, self.account.name, self.schema.name, name, **kw)  # type: ignore[arg-type]
        )

    def run(self) -> AccountDiff:
        managed = _resolve_duplicates(
            self.account, self.schema, self.desired, self.groups, self.changes, self.errors
        )
        foreign = {k.marker.name: k for k in self.groups.foreign if k.marker}
        for name, spec in sorted(self.desired.items()):
            current = managed.get(name)
            if current is not None:
                self.declared_managed(spec, current)
            elif spec.adopt is not None:
                self.adopt(spec)
            elif name in foreign:
                self.collision(spec, foreign[name])
            else:
                self.change(Action.CREATE, name, desired=spec)
        for name, current in sorted(managed.items()):
            if name not in self.desired:
                self.undeclared(name, current)
        if self.errors:
            raise PlanError("\n".join(self.errors))
        return AccountDiff(
            account=self.account,
            schema=self.schema,
            changes=tuple(sorted(self.changes, key=Change.sort_key)),
            unchanged=self.unchanged,
            managed=sum(len(v) for v in self.groups.managed.values()),
            unmanaged=tuple(k for k in self.groups.unmanaged if k.ref not in self.adopted),
            foreign=len(self.groups.foreign),
            refusals=tuple(self.refusals),
            seen=frozenset(k.ref for k in self.live),
        )

    def declared_managed(self, spec: KeySpec, current: LiveKey) -> None:
        if current.marker is not None and current.marker.pending:
            self.interrupted_create(spec, current)
            return
        fields = field_changes(self.schema, spec, current)
        reason: Reason | None = None
        if current.expired:
            fields = _expired(self.schema, spec, current, fields)
            reason = Reason.EXPIRED
        forced = [f.name for f in fields if f.forces_replacement]
        if fields and reason is None and drifted(self.schema, spec, current):
            reason = Reason.DRIFT
        if not fields:
            self.unchanged += 1
        elif forced:
            if spec.protect or (current.marker and current.marker.protect):
                self.refusals.append(
                    f"{spec.address} is protected, but {', '.join(forced)} can only change by "
                    "replacing the key; set protect: false first if you mean it"
                )
            self.change(
                Action.REPLACE, spec.name, desired=spec, live=current, fields=fields, reason=reason
            )
        else:
            self.change(
                Action.UPDATE, spec.name, desired=spec, live=current, fields=fields, reason=reason
            )

    def interrupted_create(self, spec: KeySpec, current: LiveKey) -> None:
        """A key left ``;pending`` by an interrupted apply: its value may never have
        reached the secrets sink."""
        fields = field_changes(self.schema, spec, current)
        if current.value is not None:
            self.change(
                Action.UPDATE,
                spec.name,
                desired=spec,
                live=current,
                fields=fields,
                delivers_value=True,
                reason=Reason.FINISH_CREATE,
            )
            return
        forced = tuple(replace(f, forces_replacement=True) for f in fields)
        self.change(
            Action.REPLACE,
            spec.name,
            desired=spec,
            live=current,
            fields=forced,
            reason=Reason.ORPHANED_CREATE,
        )

    def adopt(self, spec: KeySpec) -> None:
        target = _adopt_target(spec, self.groups, self.live, self.errors, self.refusals)
        if target is None:
            return
        self.adopted.add(target.ref)
        fields = field_changes(self.schema, spec, target)
        forced = [f.name for f in fields if f.forces_replacement]
        if forced:
            self.errors.append(
                f"{spec.address}: adopting {target.ref} would replace it because "
                f"{', '.join(forced)} differ(s); make the configuration match the live key "
                "(`keystate import` prints it)"
            )
        self.change(Action.ADOPT, spec.name, desired=spec, live=target, fields=fields)

    def collision(self, spec: KeySpec, other: LiveKey) -> None:
        marker = other.marker.render() if other.marker else "?"
        self.refusals.append(
            f"{spec.address}: live key {other.ref} carries another owner's marker '{marker}'; "
            "keystate will not create a second key of that name: rename the key, or set "
            "owner: to match"
        )

    def undeclared(self, name: str, current: LiveKey) -> None:
        if current.marker and current.marker.pending:
            self.change(Action.DELETE, name, live=current, reason=Reason.LEFTOVER_OF_CREATE)
        elif current.marker and current.marker.protect:
            self.refusals.append(
                f"{self.account.name}/{name} ({current.ref}) is protected and no longer "
                "declared; declare it again, or set protect: false and apply before removing it"
            )
        elif self.account.removal is not Removal.DISABLE:
            self.change(Action.DELETE, name, live=current)
        elif current.enabled:
            self.change(Action.DISABLE, name, live=current)


def _expired(
    schema: ProviderSchema, spec: KeySpec, live: LiveKey, fields: tuple[FieldChange, ...]
) -> tuple[FieldChange, ...]:
    """An expired key (kept by the provider) can only be renewed by replacing it: the
    expiry field forces the replacement (every field does, if there is none)."""
    expiry = schema.expiry
    if expiry is None:
        return tuple(replace(f, forces_replacement=True) for f in fields)
    name = expiry.name
    if any(f.name == name for f in fields):
        return tuple(replace(f, forces_replacement=True) if f.name == name else f for f in fields)
    before, after = live.fields.get(name), spec.fields.get(name)
    return (*fields, FieldChange(name, before, after, forces_replacement=True))


def _resolve_duplicates(
    account: AccountConfig,
    schema: ProviderSchema,
    desired: Mapping[str, KeySpec],
    groups: _Sorted,
    changes: list[Change],
    errors: list[str],
) -> dict[str, LiveKey]:
    """One live key per name. Duplicates left by an interrupted replace are cleaned up:
    when exactly one matches the declaration and the others differ from it in a
    create-only field, the others are deleted (disabled under `removal: disable`). Any
    other duplicate is an error."""
    managed: dict[str, LiveKey] = {}
    for name, found in sorted(groups.managed.items()):
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


def _adopt_target(
    spec: KeySpec,
    groups: _Sorted,
    live: Sequence[LiveKey],
    errors: list[str],
    refusals: list[str],
) -> LiveKey | None:
    selector = spec.adopt
    assert selector is not None
    if selector.kind == "fingerprint":
        found = [k for k in live if k.fingerprint and k.fingerprint.startswith(selector.value)]
    else:
        found = [k for k in live if k.id == selector.value]
    if not found:
        errors.append(f"{spec.address}: adopt: {selector} matches no live key in {spec.account}")
        return None
    if len(found) > 1:
        errors.append(
            f"{spec.address}: adopt: {selector} matches {len(found)} keys; give more digits"
        )
        return None
    target = found[0]
    if target.is_credential:
        refusals.append(
            f"{spec.address}: adopt: {selector} is the credential keystate runs with; "
            "keystate never adopts, changes or deletes it"
        )
        return None
    if any(target is k for k in groups.foreign):
        refusals.append(
            f"{spec.address}: adopt: {selector} is owned by another owner "
            f"({target.marker.render() if target.marker else '?'})"
        )
        return None
    marker = target.marker
    if marker is not None:
        errors.append(f"{spec.address}: adopt: {selector} is already managed as '{marker.name}'")
        return None
    return target
