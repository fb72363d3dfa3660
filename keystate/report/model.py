"""The access review as data: one typed row per live key (DESIGN §13).

:func:`build` turns the live keys of each account, the configuration and the
least-privilege rules into a :class:`Report`. Every renderer (JSON, CSV, Markdown, HTML)
is a pure function of it. Nothing here knows a provider by name: which field is a
permission, a scope or a restriction, and how broad a permission is, come from each
provider's schema (``FieldSpec.role``, ``ProviderSchema.breadth``).

A row never holds a key value: keys are named by ``ref`` (``fingerprint:<hex>`` or
``id:<id>``) and fingerprint.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from enum import Enum
from typing import Final

from keystate import kinds, lifecycle, lint
from keystate.compare import field_changes
from keystate.contract import Breadth, ProviderSchema, Role
from keystate.model import FieldValue, KeySpec, LiveKey, Privilege

UNUSED_DAYS: Final = 90
FINGERPRINT_SHOWN: Final = 16
_DAY: Final = 86_400


class Manager(Enum):
    """Who manages a live key."""

    MANAGED = "managed"  # this configuration's owner marker
    FOREIGN = "foreign"  # another owner's keystate marker
    UNMANAGED = "unmanaged"  # no marker
    CREDENTIAL = "credential"  # the key keystate runs with


@dataclass(frozen=True, slots=True)
class Permission:
    """One granted permission: an ACL or a privilege (``grant``), on ``target`` ("" for
    every resource the grant covers)."""

    grant: str
    target: str
    breadth: Breadth


@dataclass(frozen=True, slots=True)
class Finding:
    rule: str
    message: str


@dataclass(frozen=True, slots=True)
class Setting:
    """A scope or restriction field with a non-default value, as plain text."""

    field: str
    text: str


@dataclass(frozen=True, slots=True)
class KeyRow:
    """One live key, as the review shows it."""

    account: str
    provider: str
    provider_title: str
    name: str
    manager: Manager
    owner: str | None  # the marker's owner (managed and foreign keys)
    ref: str
    id: str | None
    fingerprint: str | None
    description: str
    permissions: tuple[Permission, ...]
    scope: tuple[Setting, ...]
    restrictions: tuple[Setting, ...]
    created_at: datetime | None
    expires_at: datetime | None
    last_used_at: datetime | None
    usage_known: bool  # whether the provider reports last use at all
    status: str
    enabled: bool
    expired: bool
    exposed: bool
    exposure: str
    lint: tuple[Finding, ...]
    # Managed keys: whether the configuration declares the key, and the fields whose
    # live value differs from the declaration. None/() for keys keystate does not manage.
    declared: bool | None
    drift: tuple[str, ...]
    # When a declared ``rotate:`` makes the key due (creation + every).
    rotation_due: datetime | None = None

    @property
    def address(self) -> str:
        """``account/name`` for keys with a keystate marker; ``account/ref`` for the others,
        whose labels (display names, descriptions) need not be unique."""
        if self.manager in (Manager.MANAGED, Manager.FOREIGN):
            return f"{self.account}/{self.name}"
        return f"{self.account}/{self.ref}"

    @property
    def active(self) -> bool:
        return self.enabled and not self.expired

    @property
    def breadth(self) -> Breadth | None:
        """The broadest of the key's permissions (None: it grants nothing listed)."""
        return max((p.breadth for p in self.permissions), key=lambda b: b.rank, default=None)

    def age_days(self, now: datetime) -> int | None:
        return None if self.created_at is None else _days(now - self.created_at)

    def days_left(self, now: datetime) -> int | None:
        return None if self.expires_at is None else _days(self.expires_at - now)

    def days_unused(self, now: datetime) -> int | None:
        """Days since last use; since creation for a key never used (when the provider
        reports use); None when unknown."""
        if not self.usage_known:
            return None
        since = self.last_used_at or self.created_at
        return None if since is None else _days(now - since)


def _days(delta: timedelta) -> int:
    return int(delta.total_seconds() // _DAY)


@dataclass(frozen=True, slots=True)
class AccountInfo:
    name: str
    provider: str
    title: str


@dataclass(frozen=True)
class Summary:
    keys: int
    by_account: Mapping[str, Mapping[str, int]]  # account -> manager value -> count
    managed: int
    unmanaged: int
    foreign: int
    credential: int
    write_or_admin: int
    admin: int
    no_expiry: int
    unused: int
    exposed: int
    inactive: int
    with_findings: int
    drifted: int


@dataclass(frozen=True)
class Report:
    generated_at: datetime
    owner: str | None
    accounts: tuple[AccountInfo, ...]
    rows: tuple[KeyRow, ...]
    unused_days: int = UNUSED_DAYS
    summary: Summary = field(init=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "summary", _summarise(self))

    def grants(self, account: str) -> list[str]:
        """The permissions granted to some key of the account, for the matrix columns."""
        return sorted({p.grant for r in self.rows if r.account == account for p in r.permissions})


def _summarise(report: Report) -> Summary:
    rows, now = report.rows, report.generated_at
    by_account: dict[str, dict[str, int]] = {a.name: {} for a in report.accounts}
    for row in rows:
        counts = by_account.setdefault(row.account, {})
        counts[row.manager.value] = counts.get(row.manager.value, 0) + 1

    def count(manager: Manager) -> int:
        return sum(1 for r in rows if r.manager is manager)

    def unused(row: KeyRow) -> bool:
        days = row.days_unused(now)
        return row.active and days is not None and days >= report.unused_days

    return Summary(
        keys=len(rows),
        by_account=by_account,
        managed=count(Manager.MANAGED),
        unmanaged=count(Manager.UNMANAGED),
        foreign=count(Manager.FOREIGN),
        credential=count(Manager.CREDENTIAL),
        write_or_admin=sum(1 for r in rows if r.breadth in (Breadth.WRITE, Breadth.ADMIN)),
        admin=sum(1 for r in rows if r.breadth is Breadth.ADMIN),
        no_expiry=sum(1 for r in rows if r.active and r.expires_at is None),
        unused=sum(1 for r in rows if unused(r)),
        exposed=sum(1 for r in rows if r.exposed),
        inactive=sum(1 for r in rows if not r.active),
        with_findings=sum(1 for r in rows if r.lint),
        drifted=sum(1 for r in rows if r.drift or r.declared is False),
    )


@dataclass(frozen=True)
class AccountInput:
    """What the review needs of one account: its schema, declared keys and live keys."""

    name: str
    schema: ProviderSchema
    declared: Mapping[str, KeySpec]
    live: Sequence[LiveKey]


def build(
    accounts: Sequence[AccountInput],
    owner: str | None,
    now: datetime,
    unused_days: int = UNUSED_DAYS,
) -> Report:
    rows: list[KeyRow] = []
    for account in accounts:
        rows += [_row(account, key, owner, now) for key in account.live]
    rows.sort(key=lambda r: (r.account, r.manager is not Manager.MANAGED, r.name, r.ref))
    infos = tuple(AccountInfo(a.name, a.schema.name, a.schema.title) for a in accounts)
    return Report(now, owner, infos, tuple(rows), unused_days)


def _row(account: AccountInput, key: LiveKey, owner: str | None, now: datetime) -> KeyRow:
    schema = account.schema
    manager, name = _manager(key, owner)
    retiring = key.marker.retire_at if key.marker is not None else None
    spec = account.declared.get(name) if manager is Manager.MANAGED and not retiring else None
    if spec is not None and key.created_at is not None:
        spec = lifecycle.with_lifetime(schema, spec, key.created_at, key)
    due = None
    if spec is not None and spec.rotate is not None and key.created_at is not None:
        due = key.created_at + spec.rotate.every
    expiry_field = schema.expiry
    expiry = key.fields.get(expiry_field.name) if expiry_field is not None else None
    return KeyRow(
        account=account.name,
        provider=schema.name,
        provider_title=schema.title,
        name=name,
        manager=manager,
        owner=key.marker.owner if key.marker else None,
        ref=key.ref,
        id=key.id,
        fingerprint=key.fingerprint[:FINGERPRINT_SHOWN] if key.fingerprint else None,
        description=key.description,
        permissions=_permissions(schema, key.fields),
        scope=_settings(schema, key.fields, Role.SCOPE),
        restrictions=_settings(schema, key.fields, Role.RESTRICTIONS),
        created_at=key.created_at,
        expires_at=expiry if isinstance(expiry, datetime) else None,
        last_used_at=key.last_used_at,
        usage_known=schema.reports_last_use,
        status=f"RETIRING at {kinds.format_timestamp(retiring)}" if retiring else _status(key),
        enabled=key.enabled,
        expired=key.expired,
        exposed=key.exposed,
        exposure=key.exposure,
        lint=_lint(account, key, name, spec, now),
        declared=(spec is not None) if manager is Manager.MANAGED else None,
        drift=tuple(f.name for f in field_changes(schema, spec, key)) if spec else (),
        rotation_due=due,
    )


def _manager(key: LiveKey, owner: str | None) -> tuple[Manager, str]:
    marker = key.marker
    if key.is_credential:
        return Manager.CREDENTIAL, _label(key)
    if marker is None:
        return Manager.UNMANAGED, _label(key)
    if marker.owner != owner:
        return Manager.FOREIGN, f"{marker.owner or '(no owner)'}/{marker.name}"
    return Manager.MANAGED, marker.name


def _label(key: LiveKey) -> str:
    """A name for a key keystate does not manage: the provider's display name, else the
    description, else its ref."""
    text = " ".join((key.display_name or key.description).split())
    return (text[:60] + "…" if len(text) > 60 else text) or key.ref


def _status(key: LiveKey) -> str:
    if key.status:
        return key.status
    if key.expired:
        return "EXPIRED"
    return "ENABLED" if key.enabled else "DISABLED"


def _permissions(
    schema: ProviderSchema, fields: Mapping[str, FieldValue]
) -> tuple[Permission, ...]:
    breadth = schema.breadth or (lambda _member: Breadth.READ)
    scope = [
        _plain(fields.get(f.name))
        for f in schema.fields
        if f.role is Role.SCOPE and isinstance(fields.get(f.name), frozenset)
    ]
    targets = ", ".join(s for s in scope if s)
    out: list[Permission] = []
    for spec in schema.fields:
        if spec.role is not Role.PERMISSIONS:
            continue
        value = fields.get(spec.name)
        if isinstance(value, frozenset):
            for member in value:
                if isinstance(member, Privilege):
                    grant = "/".join(
                        p for p in (member.owner, member.target_domain, member.type) if p
                    )
                    target = "" if member.target_id in (None, "*") else member.target_id
                    out.append(Permission(grant, target or "", breadth(member)))
                else:
                    out.append(Permission(str(member), targets, breadth(member)))
        elif isinstance(value, str) and value:
            out.append(Permission(f"{spec.name}:{value}", "", breadth(value)))
    return tuple(sorted(out, key=lambda p: (p.grant, p.target)))


def _settings(
    schema: ProviderSchema, fields: Mapping[str, FieldValue], role: Role
) -> tuple[Setting, ...]:
    out = []
    for spec in schema.fields:
        if spec.role is role:
            value = fields.get(spec.name, spec.default)
            if not kinds.is_default(spec, value):
                out.append(Setting(spec.name, _plain(value)))
    return tuple(out)


def _plain(value: FieldValue) -> str:
    """A value as plain text: sets joined with ", ", timestamps in RFC 3339."""
    if isinstance(value, frozenset):
        return ", ".join(sorted(str(v) for v in value))
    if isinstance(value, datetime):
        return kinds.format_timestamp(value)
    if isinstance(value, bool):
        return "true" if value else "false"
    return "" if value is None else str(value)


def _lint(
    account: AccountInput, key: LiveKey, name: str, spec: KeySpec | None, now: datetime
) -> tuple[Finding, ...]:
    """The least-privilege rules on the key as it is live (managed or not); a declared
    key's ``lint_ignore`` still silences its rules."""
    view = KeySpec(
        account=account.name,
        name=name,
        description=key.description,
        fields=key.fields,
        lint_ignore=spec.lint_ignore if spec else frozenset(),
    )
    prefix = f"{view.address} "
    found = []
    for problem in lint.lint_key(account.schema, view, now):
        message = problem.message
        message = message[len(prefix) :] if message.startswith(prefix) else message
        found.append(Finding(problem.rule or "lint", message))
    if key.expired:  # "expires in 0 day(s)" says nothing about a key already expired
        found = [f for f in found if f.rule != "expires-soon"]
    return tuple(found)
