"""(desired keys, live keys) -> changes, for one account (DESIGN §4–§5).

Live keys are sorted into four kinds: the **credential** keystate runs with (never
touched), **managed** keys (our ownership marker), **foreign** keys (another owner's
marker) and **unmanaged** keys (no marker; never touched). Declared keys are matched to
managed keys by name and compared field by field (:mod:`keystate.compare`).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace

from keystate.compare import drifted, exposure_refusal, field_changes
from keystate.contract import AccountConfig, ProviderSchema, Removal
from keystate.errors import PlanError
from keystate.leftovers import resolve_duplicates
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
        self.notices: list[str] = []
        self.changes: list[Change] = []
        self.unchanged = 0
        self.adopted: set[str] = set()

    def change(self, action: Action, name: str, **kw: object) -> None:
        self.changes.append(
            Change(action, self.account.name, self.schema.name, name, **kw)  # type: ignore[arg-type]
        )

    def run(self) -> AccountDiff:
        managed = resolve_duplicates(
            self.account, self.schema, self.desired, self.groups.managed, self.changes, self.errors
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
            notices=tuple(self.notices),
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
        if fields and not forced:
            self.exposure(spec, current)
        elif current.exposed:
            self.notices.append(_exposure_notice(spec.address, current))
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
                Action.UPDATE,
                spec.name,
                desired=spec,
                live=current,
                fields=fields,
                **(_exposure_reason(current) or {"reason": reason}),
            )

    def exposure(self, spec: KeySpec, current: LiveKey) -> None:
        """An update (or adopt) of a key reported exposed: refused if it would re-enable
        the key, shown as a notice otherwise."""
        refusal = exposure_refusal(self.schema, spec, current)
        if refusal is not None:
            self.refusals.append(refusal)
        elif current.exposed:
            self.notices.append(_exposure_notice(spec.address, current))

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
        self.exposure(spec, target)
        self.change(
            Action.ADOPT,
            spec.name,
            desired=spec,
            live=target,
            fields=fields,
            **_exposure_reason(target),
        )

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


def _exposure_reason(live: LiveKey) -> dict[str, object]:
    """The reason (and its detail) of a change to a key reported exposed."""
    if not live.exposed:
        return {}
    return {"reason": Reason.EXPOSED, "detail": live.exposure or "no details"}


def _exposure_notice(address: str, live: LiveKey) -> str:
    state = "still enabled" if live.enabled else "disabled"
    return (
        f"{address} ({live.ref}) was reported exposed ({live.exposure or 'no details'}) and "
        f"is {state}: replace it (remove it from the configuration and apply, then declare "
        "it again)"
    )


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
