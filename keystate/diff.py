"""(desired keys, live keys) -> changes, for one account (DESIGN §4–§5).

Live keys are sorted into four kinds: the **credential** keystate runs with (never
touched), **managed** keys (our ownership marker), **foreign** keys (another owner's
marker) and **unmanaged** keys (no marker; never touched). Declared keys are matched to
managed keys by name; field equality is the kind's (``kinds.equal``), so list order,
absent-versus-default and expiry jitter never show as changes.

Member-level detail of a changed structured field, and only of fields that did change:
set members that left and joined (plain set arithmetic), and which query parameter
changed (deepdiff, the one structured value where a member can change in place).
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any
from urllib.parse import parse_qsl

from keystate import kinds
from keystate.errors import PlanError
from keystate.model import Action, FieldValue, KeySpec, LiveKey, Marker
from keystate.providers.base import AccountConfig, FieldSpec, Kind, ProviderSchema

DESCRIPTION = "description"
PROTECT = "protect"
# The pseudo-field of a lapsing key kept alive (ProviderSchema.lapsing_statuses).
STATUS = "status"
# The note of the removal that finishes a replace whose old key outlived it: the declared
# key of that name exists, so removing the old one waits for nothing else (apply).
LEFTOVER_OF_REPLACE = "left over from an interrupted replace"


@dataclass(frozen=True, slots=True)
class FieldChange:
    name: str
    before: FieldValue
    after: FieldValue
    forces_replacement: bool = False
    # Member-level detail for structured values: (symbol, text) pairs.
    members: tuple[tuple[str, str], ...] = ()


@dataclass(frozen=True, slots=True)
class Change:
    action: Action
    account: str
    provider: str
    name: str
    desired: KeySpec | None = None
    live: LiveKey | None = None
    fields: tuple[FieldChange, ...] = ()
    note: str = ""
    # Finishing an interrupted create: deliver the live key's value to the sink again.
    delivers_value: bool = False

    @property
    def address(self) -> str:
        return f"{self.account}/{self.name}"

    @property
    def changed_fields(self) -> tuple[str, ...]:
        return tuple(f.name for f in self.fields)

    @property
    def forces_replacement(self) -> tuple[str, ...]:
        return tuple(f.name for f in self.fields if f.forces_replacement)

    def sort_key(self) -> tuple[int, str]:
        return (self.action.order, self.name)


@dataclass(frozen=True)
class AccountDiff:
    account: AccountConfig
    schema: ProviderSchema
    changes: tuple[Change, ...]
    unchanged: int
    managed: int
    unmanaged: tuple[LiveKey, ...]
    foreign: int
    refusals: tuple[str, ...] = ()
    # What a reviewer must know that changes nothing, e.g. a key reported exposed.
    notices: tuple[str, ...] = ()
    # Refs of every live key the plan was made from: a key with our marker that is not
    # among them appeared since, e.g. made by another apply running at the same time.
    seen: frozenset[str] = frozenset()


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


def marker_for(spec: KeySpec, owner: str | None) -> Marker:
    return Marker(spec.name, owner, spec.protect)


def field_changes(schema: ProviderSchema, spec: KeySpec, live: LiveKey) -> tuple[FieldChange, ...]:
    """Fields whose live value does not satisfy the declared one."""
    out: list[FieldChange] = []
    if spec.description != live.description:
        out.append(FieldChange(DESCRIPTION, live.description, spec.description))
    live_marker = live.marker
    live_protect = bool(live_marker and live_marker.protect)
    if spec.protect != live_protect:
        out.append(FieldChange(PROTECT, live_protect, spec.protect))
    declared, found = spec.fields, live.fields
    for fspec in schema.fields:
        name, default = fspec.name, fspec.default
        desired = declared.get(name, default)
        if desired is None and fspec.defaults_to_key_name:
            desired = spec.name
        current = found.get(name, default)
        # Equal values satisfy every kind's comparison; most fields are equal.
        if desired != current and not kinds.equal(fspec, desired, current):
            out.append(
                FieldChange(
                    fspec.name,
                    current,
                    desired,
                    forces_replacement=fspec.create_only,
                    members=_members(fspec, current, desired),
                )
            )
    if live.status in schema.lapsing_statuses and wants_enabled(schema, spec):
        out.append(FieldChange(STATUS, live.status, schema.renewed_status))
    return tuple(out)


def wants_enabled(schema: ProviderSchema, spec: KeySpec) -> bool:
    """Whether the key is declared usable (always, for a provider without that field)."""
    name = schema.enabled_field
    if name is None:
        return True
    return spec.fields.get(name, schema.field(name).default) is not False


def exposure_refusal(schema: ProviderSchema, spec: KeySpec, live: LiveKey) -> str | None:
    """Why a change may not re-enable a key the provider reported exposed (leaked)."""
    name = schema.enabled_field
    if not live.exposed or name is None or live.enabled or not wants_enabled(schema, spec):
        return None
    status = f", status {live.status}" if live.status else ""
    return (
        f"{spec.address} ({live.ref}) was reported exposed ({live.exposure or 'no details'}"
        f"{status}) and keystate never re-enables an exposed key. Replace it: remove it from "
        "the configuration and apply (the leaked key is removed), then declare it again and "
        f"apply (a new key, new value); or declare {name}: false to keep it disabled"
    )


def _members(spec: FieldSpec, before: FieldValue, after: FieldValue) -> tuple[tuple[str, str], ...]:
    if spec.kind is Kind.QUERY and isinstance(before, str) and isinstance(after, str):
        return _deep_members(dict(parse_qsl(before)), dict(parse_qsl(after)))
    if isinstance(before, frozenset) and isinstance(after, frozenset):
        return _set_members(before, after)
    return ()


def _set_members(before: frozenset[Any], after: frozenset[Any]) -> tuple[tuple[str, str], ...]:
    """A set changes by members leaving and joining: ``-`` and ``+``, never a ``~`` that
    would pair two unrelated members (a whole Privilege is one member)."""
    out = [("-", _member_text(m)) for m in before - after]
    out += [("+", _member_text(m)) for m in after - before]
    return tuple(sorted(out, key=lambda item: (item[1], item[0])))


def _member_text(member: object) -> str:
    as_list = kinds.to_json(frozenset({member}))  # type: ignore[arg-type]
    assert isinstance(as_list, list)
    return _j(as_list[0])


def _deep_members(before: object, after: object) -> tuple[tuple[str, str], ...]:
    from deepdiff import DeepDiff  # imported only when a structured field changed

    tree = DeepDiff(before, after, ignore_order=True, view="tree")
    out: list[tuple[str, str]] = []
    for report, symbol in (
        ("iterable_item_removed", "-"),
        ("iterable_item_added", "+"),
        ("dictionary_item_removed", "-"),
        ("dictionary_item_added", "+"),
        ("values_changed", "~"),
        ("type_changes", "~"),
    ):
        for level in tree.get(report, []):
            path = level.path(output_format="list")
            key = str(path[0]) if path and isinstance(path[0], str) else None
            if symbol == "~":
                text = f"{_j(level.t1)} -> {_j(level.t2)}"
            else:
                text = _j(level.t2 if symbol == "+" else level.t1)
            out.append((symbol, f"{key} = {text}" if key is not None else text))
    return tuple(sorted(out, key=lambda item: (item[1], item[0])))


def _j(value: object) -> str:
    return json.dumps(value, ensure_ascii=False, sort_keys=True)


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
            notices=tuple(self.notices),
            seen=frozenset(k.ref for k in self.live),
        )

    def declared_managed(self, spec: KeySpec, current: LiveKey) -> None:
        if current.marker is not None and current.marker.pending:
            self.interrupted_create(spec, current)
            return
        fields = field_changes(self.schema, spec, current)
        note = ""
        if current.expired:
            fields = _expired(self.schema, spec, current, fields)
            note = "the live key has expired"
        forced = [f.name for f in fields if f.forces_replacement]
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
                Action.REPLACE, spec.name, desired=spec, live=current, fields=fields, note=note
            )
        else:
            self.change(
                Action.UPDATE,
                spec.name,
                desired=spec,
                live=current,
                fields=fields,
                note=_exposure_note(current),
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
                note="finishes an interrupted create: its value goes to --secrets-out again",
            )
            return
        forced = tuple(replace(f, forces_replacement=True) for f in fields)
        self.change(
            Action.REPLACE,
            spec.name,
            desired=spec,
            live=current,
            fields=forced,
            note="an interrupted create left this key, and its value cannot be read back",
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
            note=_exposure_note(target),
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
            self.change(
                Action.DELETE, name, live=current, note="left over from an interrupted create"
            )
        elif current.marker and current.marker.protect:
            self.refusals.append(
                f"{self.account.name}/{name} ({current.ref}) is protected and no longer "
                "declared; declare it again, or set protect: false and apply before removing it"
            )
        elif self.account.removal != "disable":
            self.change(Action.DELETE, name, live=current)
        elif current.enabled:
            self.change(Action.DISABLE, name, live=current)


def _exposure_note(live: LiveKey) -> str:
    return f"reported exposed: {live.exposure or 'no details'}" if live.exposed else ""


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
    """An expired key (kept by the provider) can only be renewed by replacing it."""
    if any(f.name == "expires_at" for f in fields):
        return tuple(
            replace(f, forces_replacement=True) if f.name == "expires_at" else f for f in fields
        )
    before = live.fields.get("expires_at")
    after = spec.fields.get("expires_at")
    return (*fields, FieldChange("expires_at", before, after, forces_replacement=True))


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
        retired = len(found) > 1 and len(enabled) == 1 and account.removal == "disable"
        if len(found) > 1 and not enabled and account.removal == "disable" and name not in desired:
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
            matching = [k for k in keys if not field_changes(schema, spec, k)]
            others = [k for k in keys if k not in matching]
            leftovers = all(
                any(f.forces_replacement for f in field_changes(schema, spec, k)) for k in others
            )
            if len(matching) == 1 and others and leftovers:
                managed[name] = matching[0]
                for old in others:
                    action = _removal(account, old)
                    if action is None:
                        continue  # already disabled under `removal: disable`
                    changes.append(
                        Change(
                            action,
                            account.name,
                            schema.name,
                            name,
                            live=old,
                            note=LEFTOVER_OF_REPLACE,
                        )
                    )
                continue
        refs = ", ".join(k.ref for k in keys)
        errors.append(
            f"{account.name}/{name}: {len(keys)} live keys carry the same marker ({refs}); "
            "delete all but one by hand (keystate will not guess which one is in use)"
        )
    return managed


def _removal(account: AccountConfig, old: LiveKey) -> Action | None:
    """How the old key of an interrupted replace goes: as the replace would have removed
    it (disabled under `removal: disable`, unless it is an unfinished create)."""
    if account.removal != "disable" or (old.marker is not None and old.marker.pending):
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
                    note="left over from an interrupted create",
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
