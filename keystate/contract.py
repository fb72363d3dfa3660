"""The provider contract: what a provider declares (schema) and what it does (I/O).

The core (configuration, diff, plan, lint, renderers) knows providers only through this
module; a provider knows the core only through this module and :mod:`keystate.model`.

A provider is split in two so that ``keystate --help`` and ``validate`` never import the
HTTP stack (:mod:`keystate.providers` is the registry that loads each half):

* its ``schema`` module exports ``SCHEMA``, a :class:`ProviderSchema`: connection
  settings and key fields, declaratively — including the roles some fields play for the
  core (which field is the expiry, which one a template implies, how a value compares).
  The configuration loader, the diff and the renderers interpret it; none of them knows
  a provider or a field by name.
* its ``api`` module exports ``connect(account, options)``, which returns a
  :class:`Provider`: list the live keys, create/update/delete/disable one, read one
  back. It is the only code that knows HTTP paths and JSON shapes.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from enum import Enum
from pathlib import Path
from typing import Final, Protocol

from keystate.errors import Problem
from keystate.model import FieldValue, KeySpec, LiveKey, Location, Privilege
from keystate.secrets import Secret


class Kind(Enum):
    """How a key field is written in YAML, normalised, compared and shown."""

    TEXT = "text"  # a string
    INT = "int"  # a non-negative integer
    BOOL = "bool"
    STRING_SET = "string_set"  # a YAML list, compared as a set
    TIMESTAMP = "timestamp"  # RFC 3339 with an offset; compared with a tolerance
    QUERY = "query"  # a mapping or a query string; compared in canonical form
    PRIVILEGES = "privilege_set"  # a list of {owner, target_domain, type?, target_id?}
    RECORDS = "records"  # a list of small objects of strings (FieldSpec.record), as a set


class Role(Enum):
    """Where the access review (``keystate report``) shows a field."""

    PERMISSIONS = "permissions"  # what the key may do (ACLs, privileges, template)
    SCOPE = "scope"  # on what (indexes, search hub)
    RESTRICTIONS = "restrictions"  # from where, how much (referers, IPs, limits)
    EXPIRY = "expiry"
    OTHER = "other"


class Breadth(Enum):
    """How much one granted permission allows, for reviews (ordered: ``.rank``)."""

    READ = "read"
    WRITE = "write"
    ADMIN = "admin"

    @property
    def rank(self) -> int:
        return ("read", "write", "admin").index(self.value)


@dataclass(frozen=True)
class RecordShape:
    """The attributes of each member of a ``Kind.RECORDS`` field, e.g. Coveo's
    ``{name, provider, type}`` identities."""

    fields: tuple[str, ...]
    required: tuple[str, ...] = ()
    defaults: Mapping[str, str] = field(default_factory=dict)
    choices: Mapping[str, tuple[str, ...]] = field(default_factory=dict)

    def normalise(self, values: Mapping[str, str]) -> tuple[tuple[str, str], ...]:
        """The attributes in order, defaults filled in, absent optional ones left out."""
        out = []
        for name in self.fields:
            value = values.get(name, self.defaults.get(name))
            if value is not None:
                out.append((name, value))
        return tuple(out)


@dataclass(frozen=True)
class FieldSpec:
    """One provider field of a key."""

    name: str
    kind: Kind
    doc: str
    default: FieldValue = None
    required: bool = False
    create_only: bool = False
    choices: tuple[str, ...] = ()
    non_empty: bool = False
    maximum: int | None = None
    max_length: int | None = None
    tolerance: timedelta = timedelta(0)
    # Not declaring the field accepts whatever the provider has (e.g. a server-chosen
    # default lifetime, or privileges that come from a template).
    any_when_unset: bool = False
    # Provider rule on the normalised value; returns one message per problem. For a set
    # (STRING_SET, PRIVILEGES) it is called once per member, as a one-member set, so that
    # each problem names the line of its member.
    check: Callable[[FieldValue], list[str]] | None = None
    # Shown in the JSON schema and docs, e.g. "products_*".
    example: str | None = None
    # A regular expression each member of a string set must match (JSON schema and check).
    item_pattern: str | None = None
    # What the field is to the core and to reports: Role.EXPIRY is the key's expiry (lint
    # asks for one; a key the provider reports expired is renewed by a replacement this
    # field forces); `keystate report` groups fields by role.
    role: Role = Role.OTHER
    # The name of another field which, when set, provides this one (e.g. a template
    # provides a key's privileges): this field is then neither declared nor imported.
    implied_by: str | None = None
    # Values that mean the same to the provider compare equal once passed through this
    # (e.g. a privilege on every target written two ways). Applied to both sides.
    compare_as: Callable[[FieldValue], FieldValue] | None = None
    # JSON-schema constraints for one member of a set field (beyond its kind's shape).
    member_json_schema: Mapping[str, object] | None = None
    # The attributes of each member of a RECORDS field.
    record: RecordShape | None = None
    # Not declaring the field (or declaring null) means the key's own name, e.g. a
    # display name that defaults to the name the configuration gives the key.
    defaults_to_key_name: bool = False


class SettingKind(Enum):
    TEXT = "text"
    SECRET = "secret"  # may also be given as <name>_file
    URL = "url"
    URLS = "urls"
    PATH = "path"
    CHOICE = "choice"


@dataclass(frozen=True)
class SettingSpec:
    """One connection setting of an account."""

    name: str
    kind: SettingKind
    doc: str
    required: bool = False
    required_unless: tuple[str, ...] = ()
    conflicts: tuple[str, ...] = ()
    choices: tuple[str, ...] = ()
    default: str | None = None
    pattern: str | None = None


# Every provider can serve an account from its embedded emulator (DESIGN §9).
SANDBOX_SETTING: Final = SettingSpec(
    "sandbox",
    SettingKind.PATH,
    "Serve this account from the embedded emulator, state kept in this file",
)


class Removal(Enum):
    """What happens to a managed key that is no longer declared (``removal:``)."""

    DELETE = "delete"
    DISABLE = "disable"


@dataclass(frozen=True)
class LintRule:
    """A least-privilege warning: ``check`` returns (field, message) when it applies."""

    id: str
    doc: str
    check: Callable[[KeySpec, datetime], tuple[str, str] | None]


@dataclass(frozen=True)
class ProviderSchema:
    """Everything the core needs to know about a provider without doing I/O."""

    name: str
    title: str
    settings: tuple[SettingSpec, ...]
    fields: tuple[FieldSpec, ...]
    selector_kinds: tuple[str, ...]
    removal_policies: tuple[Removal, ...] = (Removal.DELETE,)
    description_max: int | None = None
    # Whether reads may lag behind writes; apply then waits (bounded) after each write.
    eventually_consistent: bool = False
    # Whether one listing shows every key as a read of it would (every compared field):
    # apply then confirms a wave of writes with one shared listing, not one read per key.
    listing_confirms: bool = False
    # Rules across fields of one key: (field or None, message) per problem.
    key_rules: Callable[[Mapping[str, FieldValue]], list[tuple[str | None, str]]] | None = None
    # Least-privilege warnings specific to this provider's fields.
    lint_rules: tuple[LintRule, ...] = ()
    # Extra JSON-schema constraints on a key that mirror ``key_rules``.
    key_json_schema: Mapping[str, object] | None = None
    # How much one member of a PERMISSIONS field allows (an ACL, a Privilege), for
    # `keystate report`; None: every permission counts as READ.
    breadth: Callable[[object], Breadth] | None = None
    # Whether live keys carry their last use (``LiveKey.last_used_at``; None = never used).
    reports_last_use: bool = False
    # The BOOL field that says whether a key is usable (Coveo: ``enabled``). With it, a
    # plan never re-enables a key the provider reported exposed (LiveKey.exposed), and
    # keeps alive a key declared enabled whose LiveKey.status is one of
    # ``lapsing_statuses`` (Coveo: inactive keys): the plan shows
    # ``status = "<status>" -> "<renewed_status>"`` and the provider's update renews it.
    enabled_field: str | None = None
    lapsing_statuses: tuple[str, ...] = ()
    renewed_status: str = ""

    def field(self, name: str) -> FieldSpec:
        for spec in self.fields:
            if spec.name == name:
                return spec
        raise KeyError(name)

    @property
    def field_names(self) -> tuple[str, ...]:
        return tuple(f.name for f in self.fields)

    @property
    def expiry(self) -> FieldSpec | None:
        """The field that is the key's expiry, if the provider has one."""
        return next((f for f in self.fields if f.role is Role.EXPIRY), None)

    def defaults(self) -> dict[str, FieldValue]:
        return {f.name: f.default for f in self.fields}


@dataclass(frozen=True)
class SecretSetting:
    """A credential from the configuration, with where it came from (for messages)."""

    secret: Secret
    source: str  # "${VAR}", "file:<path>" or "literal"


SettingValue = str | tuple[str, ...] | Path | SecretSetting | None


@dataclass(frozen=True)
class AccountConfig:
    """One account: its provider, connection settings and HTTP tuning."""

    name: str
    provider: str
    settings: Mapping[str, SettingValue]
    removal: Removal = Removal.DELETE
    timeout: float | None = None
    max_attempts: int | None = None
    wait_timeout: float | None = None
    # Seconds to wait for the answer to a write (POST/PUT/DELETE); None: the provider's.
    write_timeout: float | None = None
    location: Location | None = field(default=None, compare=False)

    def text(self, name: str) -> str | None:
        value = self.settings.get(name)
        if value is None:
            return None
        if not isinstance(value, str):
            raise TypeError(f"setting {name} is not text")
        return value

    def secret(self, name: str) -> SecretSetting | None:
        value = self.settings.get(name)
        if value is None or isinstance(value, SecretSetting):
            return value
        raise TypeError(f"setting {name} is not a secret")

    def path(self, name: str) -> Path | None:
        value = self.settings.get(name)
        if value is None or isinstance(value, Path):
            return value
        raise TypeError(f"setting {name} is not a path")

    def urls(self, name: str) -> tuple[str, ...]:
        value = self.settings.get(name)
        if value is None:
            return ()
        if isinstance(value, tuple):
            return value
        raise TypeError(f"setting {name} is not a list of URLs")

    def describe(self) -> dict[str, str | list[str]]:
        """Connection settings for plan files: secrets replaced by where they came from."""
        out: dict[str, str | list[str]] = {"provider": self.provider}
        for key, value in sorted(self.settings.items()):
            if value is None:
                continue
            if isinstance(value, SecretSetting):
                out[key] = value.source
            elif isinstance(value, tuple):
                out[key] = list(value)
            else:
                out[key] = str(value)
        return out


@dataclass(frozen=True)
class CreatedKey:
    """A key a provider just created, with the value shown this once."""

    live: LiveKey
    value: Secret
    created_at: datetime


@dataclass(frozen=True)
class Catalogue:
    """Assignable privileges of one account, read live (Coveo's /privileges/apikeys).

    A declared privilege is assignable when its owner, target domain and type appear
    here (the target id is free). ``applies`` says which keys the catalogue constrains
    (e.g. only keys made without a template).
    """

    field: str
    entries: frozenset[Privilege]
    scope: str  # human words for the catalogue, e.g. "custom keys of organization acme"
    applies: Callable[[KeySpec], bool]


@dataclass(frozen=True)
class Grant:
    """Something that can be granted to a key (an ACL or a privilege), for display.

    ``entry`` is its JSON form for ``keystate privileges --format json``, shaped like
    what the configuration declares (an ACL's ``name`` and ``doc``; a privilege's
    ``owner``, ``target_domain``, ``type``), plus facts about it (``custom_keys``)."""

    name: str
    detail: str = ""
    entry: Mapping[str, str | bool] = field(default_factory=dict)


class Provider(Protocol):
    """A connection to one account. All methods may raise ProviderError."""

    schema: ProviderSchema
    account: AccountConfig

    async def list_keys(self) -> list[LiveKey]: ...

    async def read_key(self, key: LiveKey) -> LiveKey | None:
        """Read one key back (None when it does not exist, or not yet)."""
        ...

    async def create(self, spec: KeySpec, stored_description: str) -> CreatedKey: ...

    async def update(self, live: LiveKey, spec: KeySpec, stored_description: str) -> None: ...

    async def delete(self, live: LiveKey) -> None: ...

    async def disable(self, live: LiveKey) -> None: ...

    async def grants(self) -> list[Grant]:
        """What can be granted to a key in this account."""
        ...

    async def catalogue(self) -> Catalogue | None:
        """What may be granted, read live, to check a plan before any write (or None)."""
        ...

    async def check_creates(self, specs: Sequence[KeySpec]) -> list[Problem]:
        """What the provider would refuse in keys about to be created, asked before any
        write (one problem per refusal, at the key's place; [] when all is well)."""
        ...

    async def aclose(self) -> None: ...


@dataclass(frozen=True)
class ConnectOptions:
    """Run-wide options a provider connection needs."""

    verbose: bool = False
    user_agent: str = ""


class ConnectFn(Protocol):
    def __call__(self, account: AccountConfig, options: ConnectOptions) -> Provider: ...
