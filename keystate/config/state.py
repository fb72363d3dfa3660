"""What loading a configuration builds up: the :class:`Config` it returns, and the
state of one load (:class:`LoadState`) that the account and key readers fill in."""

from __future__ import annotations

import re
from collections.abc import Mapping, MutableMapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Final

from keystate.config.fields import FieldReader
from keystate.config.lifecycle import Lifecycle
from keystate.config.nodes import YNode, YScalar
from keystate.config.reader import Reader
from keystate.config.secrets import SinkState
from keystate.contract import (
    AccountConfig,
    ProviderSchema,
)
from keystate.errors import Problem
from keystate.model import (
    NAME_RE,
    KeySpec,
    Location,
    Marker,
)
from keystate.providers import schema_for
from keystate.sinks.spec import SecretsConfig

TOP_LEVEL: Final = ("version", "owner", "defaults", "accounts", "keys", "forget", "secrets")
ACCOUNT_COMMON: Final = (
    "provider",
    "removal",
    "timeout",
    "write_timeout",
    "max_attempts",
    "wait_timeout",
    "deliver_to",
    "defaults",
)
KEY_COMMON: Final = (
    "description",
    "protect",
    "adopt",
    "lint_ignore",
    "deliver_to",
    "rotate",
    "lifetime",
    "previously",
)
SUPPORTED_VERSION: Final = 1
NO_RULES: Final[frozenset[str]] = frozenset()  # one object: each frozenset() is a new one
MAX_SECRET_BYTES: Final = 64 * 1024
HEX = re.compile(r"^[0-9a-f]{12,64}$")
LONGEST_MARKER: Final = (
    len(
        Marker(
            "x" * 63,
            "x" * 63,
            protect=True,
            pending=True,
            digest="0" * 8,
            retire_at=datetime(2000, 1, 1, tzinfo=UTC),
        ).render()
    )
    + 1
)


@dataclass(frozen=True)
class Config:
    """A loaded configuration: accounts, desired keys per account, and warnings."""

    files: tuple[str, ...]
    owner: str | None
    accounts: Mapping[str, AccountConfig]
    keys: Mapping[str, Mapping[str, KeySpec]]
    warnings: tuple[Problem, ...] = ()
    secrets: SecretsConfig = field(default_factory=SecretsConfig)
    # Offline loads (validate): what was not resolved, e.g. "${ALGOLIA_ADMIN_API_KEY}".
    skipped: tuple[str, ...] = ()
    # Accounts that cannot be planned, with why (a key's expiry has passed): the other
    # accounts still can be.
    blocked: Mapping[str, tuple[Problem, ...]] = field(default_factory=dict)
    # ``forget:``: per account, the names of managed keys to release (DESIGN §11).
    forget: Mapping[str, frozenset[str]] = field(default_factory=dict)

    def schema(self, account: str) -> ProviderSchema:
        return schema_for(self.accounts[account].provider)

    def release_keys(self, account: str) -> None:
        """Forget an account's declared keys, for a caller done with them: a plan keeps
        the keys it changes, and at 100,000 keys the others are half the memory."""
        keys = self.keys.get(account)
        if isinstance(keys, MutableMapping):
            keys.clear()


@dataclass
class PendingKey:
    account: str
    name: str
    node: YNode
    loc: Location
    account_loc: Location


@dataclass(frozen=True)
class ProviderShape:
    """What every key of a provider shares: its schema, the fields a key may have, and the
    index of its field values (one object each, however many keys)."""

    schema: ProviderSchema
    allowed: tuple[str, ...]
    index: dict[str, int]


@dataclass
class Shapes:
    """Per provider, its :class:`ProviderShape`; and the layouts of places, one object each."""

    providers: dict[str, ProviderShape] = field(default_factory=dict)
    layouts: dict[tuple[tuple[str, int], ...], tuple[tuple[str, int], ...]] = field(
        default_factory=dict
    )

    def of(self, provider: str) -> ProviderShape:
        found = self.providers.get(provider)
        if found is None:
            schema = schema_for(provider)
            index = {f.name: i for i, f in enumerate(schema.fields)}
            found = self.providers[provider] = ProviderShape(
                schema, KEY_COMMON + schema.field_names, index
            )
        return found


@dataclass
class LoadState:
    reader: FieldReader
    files: list[str] = field(default_factory=list)
    version_seen: bool = False
    owner: tuple[str, Location] | None = None
    accounts: dict[str, AccountConfig] = field(default_factory=dict)
    account_locs: dict[str, Location] = field(default_factory=dict)
    # Keys read as soon as their account is known (so that each file's YAML tree can go);
    # the others wait in ``keys`` until every file is read.
    specs: dict[str, dict[str, KeySpec]] = field(default_factory=dict)
    keys: list[PendingKey] = field(default_factory=list)
    key_locs: dict[str, dict[str, Location]] = field(default_factory=dict)
    shapes: Shapes = field(default_factory=Shapes)
    sinks: SinkState = field(default_factory=SinkState)
    blocked: dict[str, list[Problem]] = field(default_factory=dict)
    # ``defaults:`` per file (by path) and per account; ``forget:`` items.
    file_defaults: dict[str, Lifecycle] = field(default_factory=dict)
    account_defaults: dict[str, Lifecycle] = field(default_factory=dict)
    forget: list[tuple[str, str, Location]] = field(default_factory=list)


def check_name(reader: Reader, key: YScalar, what: str) -> bool:
    if NAME_RE.match(key.raw):
        return True
    reader.error(
        key,
        f"{what} name {key.raw!r} is invalid: use lower-case letters, digits, '.', '_' and '-', "
        "starting with a letter or digit, at most 63 characters",
    )
    return False
