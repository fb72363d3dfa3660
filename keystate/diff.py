"""(desired keys, live keys) -> changes, for one account (DESIGN §4–§5).

Live keys are sorted into four kinds: the **credential** keystate runs with (never
touched), **managed** keys (our ownership marker), **foreign** keys (another owner's
marker) and **unmanaged** keys (no marker; never touched). Declared keys are matched to
managed keys by name and compared field by field (:mod:`keystate.compare`).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime

from keystate import lifecycle
from keystate.compare import drifted, exposure_refusal, field_changes
from keystate.contract import AccountConfig, ProviderSchema, Removal
from keystate.errors import PlanError
from keystate.leftovers import resolve_duplicates
from keystate.lifecycle import LifecycleOptions
from keystate.model import Action, KeySpec, LiveKey
from keystate.plan import AccountDiff, Change, FieldChange, Reason


@dataclass
class _Sorted:
    managed: dict[str, list[LiveKey]] = field(default_factory=dict)
    retiring: list[LiveKey] = field(default_factory=list)
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
        elif marker.retire_at is not None:
            out.retiring.append(key)
        else:
            out.managed.setdefault(marker.name, []).append(key)
    return out


def diff_account(
    account: AccountConfig,
    schema: ProviderSchema,
    desired: Mapping[str, KeySpec],
    live: Sequence[LiveKey],
    owner: str | None,
    options: LifecycleOptions | None = None,
    forget: frozenset[str] = frozenset(),
) -> AccountDiff:
    """Plan one account. Raises PlanError for live states that cannot be planned."""
    options = options or LifecycleOptions(now=datetime.now(UTC))
    return _Planner(account, schema, desired, live, owner, options, forget).run()


class _Planner:
    def __init__(
        self,
        account: AccountConfig,
        schema: ProviderSchema,
        desired: Mapping[str, KeySpec],
        live: Sequence[LiveKey],
        owner: str | None,
        options: LifecycleOptions,
        forget: frozenset[str],
    ) -> None:
        self.options = options
        self.forget = forget
        self.warnings: list[str] = []
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
        managed = resolve_duplicates(
            self.account, self.schema, self.desired, self.groups.managed, self.changes, self.errors
        )
        foreign = {
            k.marker.name: k for k in self.groups.foreign if k.marker and not k.marker.retire_at
        }
        for name, spec in sorted(self.desired.items()):
            current = managed.get(name)
            renamed = None if current is not None else self.rename(spec, managed)
            if spec.previously:
                self.warnings += lifecycle.unmatched_previously(spec, renamed)
            if current is not None:
                self.declared_managed(spec, current)
            elif renamed is not None:
                pass
            elif spec.adopt is not None:
                self.adopt(spec)
            elif name in foreign:
                self.collision(spec, foreign[name])
            else:
                self.create(spec)
        for name, current in sorted(managed.items()):
            if name in self.forget:
                self.change(Action.FORGET, name, live=current)
            elif name not in self.desired:
                self.undeclared(name, current)
        self.warnings += [
            f"{self.account.name}/{n}: forget: no managed key of that name (already forgotten?); "
            "the entry can go"
            for n in sorted(self.forget - set(managed))
        ]
        self.unmatched_replace()
        retired, retiring = lifecycle.retirements(
            self.account, self.schema, self.groups.retiring, self.options.now
        )
        self.changes += retired
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
            retiring=tuple(retiring),
            warnings=tuple(self.warnings),
        )

    def create(self, spec: KeySpec) -> None:
        spec = lifecycle.with_lifetime(self.schema, spec, self.options.now)
        self.change(Action.CREATE, spec.name, desired=spec)

    def rename(self, spec: KeySpec, managed: dict[str, LiveKey]) -> str | None:
        """``previously:``: the key found under an old name is renamed (its value stays)."""
        old, problem = lifecycle.rename_source(spec, managed, self.desired)
        if problem is not None:
            self.errors.append(problem)
        if old is None:
            return None
        current = managed.pop(old)
        spec = self.with_lifetime(spec, current)
        fields = field_changes(self.schema, spec, current)
        forced = [f.name for f in fields if f.forces_replacement]
        if forced:
            self.errors.append(
                f"{spec.address}: renaming {old} keeps the key, but {', '.join(forced)} can "
                "only change by replacing it; rename first (apply), then change them"
            )
        self.change(Action.RENAME, spec.name, desired=spec, live=current, fields=fields, detail=old)
        return old

    def with_lifetime(self, spec: KeySpec, current: LiveKey) -> KeySpec:
        if spec.lifetime is None or current.created_at is None:
            return spec
        return lifecycle.with_lifetime(self.schema, spec, current.created_at, current)

    def unmatched_replace(self) -> None:
        prefix = f"{self.account.name}/"
        planned = {c.address for c in self.changes if c.action is Action.ROTATE}
        for address in sorted(self.options.replace):
            if address.startswith(prefix) and address not in planned:
                self.errors.append(
                    f"--replace {address}: no declared key of that name is live and managed "
                    "(only a managed key can be replaced; a missing one is simply created)"
                )

    def rotate(self, spec: KeySpec, current: LiveKey, fields: tuple[FieldChange, ...]) -> bool:
        """Plan a rotation if one is due (or asked for); whether one was planned."""
        due = lifecycle.rotation(spec, current, self.options)
        if due is None:
            return False
        if due.reason is Reason.REPLACE_REQUESTED and (
            spec.protect or (current.marker and current.marker.protect)
        ):
            self.refusals.append(
                f"{spec.address} is protected; --replace would give it a new value: set "
                "protect: false first if you mean it"
            )
        successor = lifecycle.with_lifetime(self.schema, spec, self.options.now)
        if spec.lifetime is not None:
            fields = field_changes(self.schema, successor, current)
        self.change(
            Action.ROTATE,
            spec.name,
            desired=successor,
            live=current,
            # The successor is a new key: no field "forces" anything.
            fields=tuple(replace(f, forces_replacement=False) for f in fields),
            reason=due.reason,
            overlap=due.overlap,
            detail=due.detail,
        )
        return True

    def declared_managed(self, spec: KeySpec, current: LiveKey) -> None:
        if current.marker is not None and current.marker.pending:
            self.interrupted_create(spec, current)
            return
        spec = self.with_lifetime(spec, current)
        fields = field_changes(self.schema, spec, current)
        if not current.expired and self.rotate(spec, current, fields):
            return
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
            self.warnings.append(_exposure_notice(spec.address, current))
        if not fields:
            self.unchanged += 1
        elif forced:
            if spec.protect or (current.marker and current.marker.protect):
                self.refusals.append(
                    f"{spec.address} is protected, but {', '.join(forced)} can only change by "
                    "replacing the key; set protect: false first if you mean it"
                )
            renewed = lifecycle.with_lifetime(self.schema, spec, self.options.now)
            self.change(
                Action.REPLACE,
                spec.name,
                desired=renewed,
                live=current,
                fields=fields,
                reason=reason,
            )
        else:
            self.change(
                Action.UPDATE,
                spec.name,
                desired=spec,
                live=current,
                fields=fields,
                reason=reason,
            )

    def exposure(self, spec: KeySpec, current: LiveKey) -> None:
        """An update (or adopt) of a key reported exposed: refused if it would re-enable
        the key, shown as a notice otherwise."""
        refusal = exposure_refusal(self.schema, spec, current)
        if refusal is not None:
            self.refusals.append(refusal)
        elif current.exposed:
            self.warnings.append(_exposure_notice(spec.address, current))

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
