"""Configuration files -> a typed :class:`Config` (DESIGN §2).

Two passes: every file is read into accounts and raw key nodes (so keys may live in a
different file from their account), then each key is read with its account's provider
schema. Every problem of every file is collected; :func:`load_config` raises one
:class:`ConfigError` carrying all of them, or returns a config plus its warnings.
"""

from __future__ import annotations

import os
import re
import stat
from collections.abc import Mapping, MutableMapping
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Final

from keystate import gcpause, lint
from keystate.config.files import FileRefused, FileTooLarge, read_regular
from keystate.config.reader import Invalid, Reader, did_you_mean, kind_name, utc_now
from keystate.config.yamltree import MAX_BYTES, YNode, YScalar, decode, parse
from keystate.errors import ConfigError, Problem, Severity
from keystate.model import (
    NAME_RE,
    FieldValue,
    FieldValues,
    KeySpec,
    Location,
    Marker,
    Places,
    Selector,
    pack_places,
)
from keystate.providers.base import (
    AccountConfig,
    ProviderSchema,
    SecretSetting,
    SettingKind,
    SettingSpec,
    SettingValue,
    known_providers,
    schema_for,
)
from keystate.secrets import Secret

TOP_LEVEL: Final = ("version", "owner", "accounts", "keys")
ACCOUNT_COMMON: Final = (
    "provider",
    "removal",
    "timeout",
    "write_timeout",
    "max_attempts",
    "wait_timeout",
)
KEY_COMMON: Final = ("description", "protect", "adopt", "lint_ignore")
SUPPORTED_VERSION: Final = 1
_NO_RULES: Final[frozenset[str]] = frozenset()  # one object: each frozenset() is a new one
MAX_SECRET_BYTES: Final = 64 * 1024
_HEX = re.compile(r"^[0-9a-f]{12,64}$")
_LONGEST_MARKER: Final = len(Marker("x" * 63, "x" * 63, protect=True, pending=True).render()) + 1


@dataclass(frozen=True)
class Config:
    """A loaded configuration: accounts, desired keys per account, and warnings."""

    files: tuple[str, ...]
    owner: str | None
    accounts: Mapping[str, AccountConfig]
    keys: Mapping[str, Mapping[str, KeySpec]]
    warnings: tuple[Problem, ...] = ()

    def schema(self, account: str) -> ProviderSchema:
        return schema_for(self.accounts[account].provider)

    def release_keys(self, account: str) -> None:
        """Forget an account's declared keys, for a caller done with them: a plan keeps
        the keys it changes, and at 100,000 keys the others are half the memory."""
        keys = self.keys.get(account)
        if isinstance(keys, MutableMapping):
            keys.clear()


@dataclass
class _Pending:
    account: str
    name: str
    node: YNode
    loc: Location
    account_loc: Location


@dataclass(frozen=True)
class _Provider:
    """What every key of a provider shares: its schema, the fields a key may have, and the
    index of its field values (one object each, however many keys)."""

    schema: ProviderSchema
    allowed: tuple[str, ...]
    index: dict[str, int]


@dataclass
class _Shapes:
    """Per provider, its :class:`_Provider`; and the layouts of places, one object each."""

    providers: dict[str, _Provider] = field(default_factory=dict)
    layouts: dict[tuple[tuple[str, int], ...], tuple[tuple[str, int], ...]] = field(
        default_factory=dict
    )

    def of(self, provider: str) -> _Provider:
        found = self.providers.get(provider)
        if found is None:
            schema = schema_for(provider)
            index = {f.name: i for i, f in enumerate(schema.fields)}
            found = self.providers[provider] = _Provider(
                schema, KEY_COMMON + schema.field_names, index
            )
        return found


@dataclass
class _State:
    reader: Reader
    files: list[str] = field(default_factory=list)
    version_seen: bool = False
    owner: tuple[str, Location] | None = None
    accounts: dict[str, AccountConfig] = field(default_factory=dict)
    account_locs: dict[str, Location] = field(default_factory=dict)
    # Keys read as soon as their account is known (so that each file's YAML tree can go);
    # the others wait in ``keys`` until every file is read.
    specs: dict[str, dict[str, KeySpec]] = field(default_factory=dict)
    keys: list[_Pending] = field(default_factory=list)
    key_locs: dict[str, dict[str, Location]] = field(default_factory=dict)
    shapes: _Shapes = field(default_factory=_Shapes)


def discover(path: Path) -> list[Path]:
    """The files a ``-c PATH`` names: the file, or every *.yaml/*.yml in the directory."""
    try:
        is_dir = stat.S_ISDIR(path.stat().st_mode)
        found = sorted(p for p in path.iterdir() if p.suffix in (".yaml", ".yml")) if is_dir else []
    except FileNotFoundError:
        raise ConfigError([Problem(f"{path}: no such file or directory (pass -c PATH)")]) from None
    except OSError as exc:
        raise ConfigError([Problem(f"{path}: cannot read: {exc.strerror or exc}")]) from None
    if not is_dir:
        return [path]
    if not found:
        raise ConfigError([Problem(f"{path}: no *.yaml or *.yml files in this directory")])
    return found


def load_config(
    path: Path, env: Mapping[str, str] | None = None, now: datetime | None = None
) -> Config:
    """Load and check a configuration file or directory. Raises ConfigError."""
    state = _State(Reader(os.environ if env is None else env, now or utc_now()))
    with gcpause.paused():
        for file in discover(path):
            _load_file(state, file)
        keys = _read_keys(state)
    if not state.version_seen and not _errors(state):
        state.reader.error(Location(state.files[0], 1, 1), "missing 'version: 1'")
    hide = state.reader.hide_env
    errors = [hide(p) for p in _errors(state)]
    if errors:
        raise ConfigError(errors)
    warnings = [hide(p) for p in state.reader.problems if p.severity is Severity.WARNING]
    return Config(
        files=tuple(state.files),
        owner=state.owner[0] if state.owner else None,
        accounts=state.accounts,
        keys=keys,
        warnings=tuple(sorted(warnings, key=Problem.sort_key)),
    )


def _errors(state: _State) -> list[Problem]:
    return [p for p in state.reader.problems if p.severity is Severity.ERROR]


def _load_file(state: _State, file: Path) -> None:
    display = str(file)
    state.files.append(display)
    reader = state.reader
    top = Location(display, 1, 1)
    try:
        data = read_regular(file, MAX_BYTES)
    except FileTooLarge as exc:
        reader.error(top, f"file is {exc.size / 1e6:.1f} MB; configurations are limited to 10 MB")
        return
    except FileRefused as exc:
        reader.error(top, f"cannot read file: {exc}; expected a YAML file")
        return
    except OSError as exc:
        reader.error(top, f"cannot read file: {exc.strerror or exc}")
        return
    text, problems = decode(data, display)
    reader.problems.extend(problems)
    if text is None:
        return
    root, problems = parse(text, display)
    reader.problems.extend(problems)
    if problems or root is None or (isinstance(root, YScalar) and root.value is None):
        return
    doc = reader.mapping(root, "the configuration file")
    if doc is None:
        return
    reader.unknown_fields(doc, TOP_LEVEL, "the top level")
    base_dir = file.parent.absolute()
    for key, value in doc.entries:
        if key.raw == "version":
            _read_version(state, value)
        elif key.raw == "owner":
            _read_owner(state, value)
        elif key.raw == "accounts":
            _read_accounts(state, value, base_dir)
        elif key.raw == "keys":
            _collect_keys(state, value)


def _read_version(state: _State, node: YNode) -> None:
    state.version_seen = True
    if isinstance(node, YScalar) and node.tag.endswith("int"):
        if node.value != SUPPORTED_VERSION:
            state.reader.error(
                node,
                f"unsupported version {node.raw}; this keystate reads version: {SUPPORTED_VERSION}",
            )
        return
    shown = f" ({node.raw!r})" if isinstance(node, YScalar) else ""
    state.reader.error(
        node,
        f"version must be the number {SUPPORTED_VERSION}, not {kind_name(node)}{shown}; "
        f"write version: {SUPPORTED_VERSION}",
    )


def _read_owner(state: _State, node: YNode) -> None:
    reader = state.reader
    owner = reader.string(node, "owner")
    if owner is None:
        return
    if not NAME_RE.match(owner):
        reader.error(node, f"owner {owner!r} must match [a-z0-9][a-z0-9._-]{{0,62}}")
        return
    if state.owner and state.owner[0] != owner:
        reader.error(
            node, f"owner {owner!r} differs from owner {state.owner[0]!r} at {state.owner[1]}"
        )
        return
    state.owner = (owner, node.loc)


def _check_name(reader: Reader, key: YScalar, what: str) -> bool:
    if NAME_RE.match(key.raw):
        return True
    reader.error(
        key,
        f"{what} name {key.raw!r} is invalid: use lower-case letters, digits, '.', '_' and '-', "
        "starting with a letter or digit, at most 63 characters",
    )
    return False


def _read_accounts(state: _State, node: YNode, base_dir: Path) -> None:
    reader = state.reader
    accounts = reader.mapping(node, "accounts", allow_null=True)
    if accounts is None:
        return
    for key, value in accounts.entries:
        if not _check_name(reader, key, "account"):
            continue
        first = state.account_locs.get(key.raw)
        if first is not None:
            reader.error(key, f"account '{key.raw}' is defined twice: {first} and {key.loc}")
            continue
        state.account_locs[key.raw] = key.loc
        account = _read_account(reader, key, value, base_dir)
        if account is not None:
            state.accounts[key.raw] = account


def _read_account(
    reader: Reader, key: YScalar, node: YNode, base_dir: Path
) -> AccountConfig | None:
    what = f"account '{key.raw}'"
    body = reader.mapping(node, what)
    if body is None:
        return None
    entries = {k.raw: (k, v) for k, v in body.entries}
    if "provider" not in entries:
        reader.error(key, f"{what} is missing 'provider' (one of: {', '.join(known_providers())})")
        return None
    provider_node = entries["provider"][1]
    provider = reader.string(provider_node, "provider")
    if provider is None:
        return None
    if provider not in known_providers():
        hint = (
            did_you_mean(provider, known_providers()) or f" (known: {', '.join(known_providers())})"
        )
        reader.error(provider_node, f"unknown provider {provider!r}{hint}")
        return None
    schema = schema_for(provider)
    allowed = list(ACCOUNT_COMMON)
    for spec in schema.settings:
        allowed.append(spec.name)
        if spec.kind is SettingKind.SECRET:
            allowed.append(f"{spec.name}_file")
    reader.unknown_fields(body, allowed, what)
    settings = _read_settings(reader, schema, entries, key, base_dir)
    common = _read_common(reader, schema, entries, what)
    if settings is None or common is None:
        return None
    removal, timeouts, attempts, wait = common
    timeout, write_timeout = timeouts
    return AccountConfig(
        name=key.raw,
        provider=provider,
        settings=settings,
        removal=removal,
        timeout=timeout,
        max_attempts=attempts,
        wait_timeout=wait,
        write_timeout=write_timeout,
        location=key.loc,
    )


def _read_common(
    reader: Reader, schema: ProviderSchema, entries: dict[str, tuple[YScalar, YNode]], what: str
) -> tuple[str, tuple[float | None, float | None], int | None, float | None] | None:
    ok = True
    removal = "delete"
    if "removal" in entries:
        node = entries["removal"][1]
        text = reader.string(node, "removal")
        if text is not None and text not in ("delete", "disable"):
            reader.error(node, f"removal must be 'delete' or 'disable', not {text!r}")
            ok = False
        elif text is not None and text not in schema.removal_policies:
            reader.error(node, f"removal: {text} is not supported by {schema.title} keys")
            ok = False
        elif text is not None:
            removal = text
    timeout = write_timeout = attempts = wait = None
    if "timeout" in entries:
        timeout = reader.number(entries["timeout"][1], "timeout", 0.01, 600)
        ok = ok and timeout is not None
    if "write_timeout" in entries:
        write_timeout = reader.number(entries["write_timeout"][1], "write_timeout", 0.01, 600)
        ok = ok and write_timeout is not None
    if "max_attempts" in entries:
        attempts = reader.integer(entries["max_attempts"][1], "max_attempts", 20)
        if attempts == 0:
            reader.error(entries["max_attempts"][1], "max_attempts must be at least 1")
            attempts = None
        ok = ok and attempts is not None
    if "wait_timeout" in entries:
        wait = reader.number(entries["wait_timeout"][1], "wait_timeout", 0, 3600)
        ok = ok and wait is not None
    return (removal, (timeout, write_timeout), attempts, wait) if ok else None


def _read_settings(
    reader: Reader,
    schema: ProviderSchema,
    entries: dict[str, tuple[YScalar, YNode]],
    account_key: YScalar,
    base_dir: Path,
) -> dict[str, SettingValue] | None:
    values: dict[str, SettingValue] = {}
    ok = True
    for spec in schema.settings:
        file_key = f"{spec.name}_file"
        given = spec.name in entries or (spec.kind is SettingKind.SECRET and file_key in entries)
        if spec.kind is SettingKind.SECRET and spec.name in entries and file_key in entries:
            reader.error(entries[file_key][0], f"give '{spec.name}' or '{file_key}', not both")
            ok = False
            continue
        if not given:
            if spec.default is not None:
                values[spec.name] = spec.default
            elif spec.required or (
                spec.required_unless and not any(u in entries for u in spec.required_unless)
            ):
                unless = " or ".join(f"'{u}'" for u in spec.required_unless)
                hint = f" (or set {unless})" if unless else ""
                reader.error(
                    account_key, f"account '{account_key.raw}' is missing '{spec.name}'{hint}"
                )
                ok = False
            continue
        for other in spec.conflicts:
            if other in entries:
                reader.error(
                    entries[other][0], f"'{other}' and '{spec.name}' cannot be used together"
                )
                ok = False
        value = _read_setting(reader, spec, entries, base_dir)
        if value is None:
            ok = False
        else:
            values[spec.name] = value
    return values if ok else None


def _read_setting(
    reader: Reader, spec: SettingSpec, entries: dict[str, tuple[YScalar, YNode]], base_dir: Path
) -> SettingValue:
    if spec.kind is SettingKind.SECRET:
        return _read_secret(reader, spec, entries, base_dir)
    node = entries[spec.name][1]
    if spec.kind is SettingKind.URLS:
        items = reader.strings(node, spec.name)
        if items is None:
            return None
        urls = [reader.url(item, f"{spec.name} item") for _, item in items]
        if not urls:
            reader.error(node, f"{spec.name} must list at least one URL")
            return None
        return None if any(u is None for u in urls) else tuple(u for u in urls if u)
    if spec.kind is SettingKind.URL:
        return reader.url(node, spec.name)
    text = reader.string(node, spec.name)
    if text is None:
        return None
    if spec.kind is SettingKind.PATH:
        path = Path(text).expanduser()
        return path if path.is_absolute() else base_dir / path
    if spec.kind is SettingKind.CHOICE and text not in spec.choices:
        hint = did_you_mean(text, spec.choices) or f" (one of: {', '.join(spec.choices)})"
        reader.error(node, f"{spec.name}: unknown value {text!r}{hint}")
        return None
    if spec.pattern and not re.match(spec.pattern, text):
        reader.error(node, f"{spec.name} {text!r} is malformed")
        return None
    return text


def _read_secret(
    reader: Reader, spec: SettingSpec, entries: dict[str, tuple[YScalar, YNode]], base_dir: Path
) -> SecretSetting | None:
    if spec.name in entries:
        node = entries[spec.name][1]
        expansion = reader.expanded(node, spec.name)
        if expansion is None:
            return None
        if not expansion.value.strip():
            source = f"${{{expansion.variables[0]}}}" if expansion.variables else "it"
            reader.error(node, f"{spec.name} is empty (check {source})")
            return None
        if expansion.whole_variable:
            return SecretSetting(Secret(expansion.value.strip()), f"${{{expansion.variables[0]}}}")
        if not expansion.variables:
            reader.warn(
                node,
                f"{spec.name} is written in the configuration file; keep credentials out of it "
                f"with ${{VAR}} or {spec.name}_file",
                rule="literal-credential",
            )
        return SecretSetting(Secret(expansion.value.strip()), "literal")
    node = entries[f"{spec.name}_file"][1]
    text = reader.string(node, f"{spec.name}_file")
    if text is None:
        return None
    path = Path(text).expanduser()
    path = path if path.is_absolute() else base_dir / path
    try:
        content = read_regular(path, MAX_SECRET_BYTES).decode("utf-8").strip()
    except (OSError, FileRefused, UnicodeDecodeError) as exc:
        if isinstance(exc, FileTooLarge):
            reason = f"larger than {MAX_SECRET_BYTES // 1024} KiB, not a credential"
        elif isinstance(exc, FileRefused):
            reason = str(exc)
        elif isinstance(exc, OSError):
            reason = exc.strerror or str(exc)
        else:
            reason = "not UTF-8 text"
        reader.error(node, f"{spec.name}_file: cannot read {text}: {reason}")
        return None
    if not content:
        reader.error(node, f"{spec.name}_file: {text} is empty")
        return None
    return SecretSetting(Secret(content), f"file:{path}")


def _collect_keys(state: _State, node: YNode) -> None:
    reader = state.reader
    keys = reader.mapping(node, "keys", allow_null=True)
    if keys is None:
        return
    for account_key, account_node in keys.entries:
        per_account = reader.mapping(account_node, f"keys of '{account_key.raw}'", allow_null=True)
        if per_account is None:
            continue
        account, account_loc = account_key.raw, account_key.loc
        known = account in state.accounts
        if not per_account.entries and not known:
            state.keys.append(_Pending(account, "", account_node, account_loc, account_loc))
        locs = state.key_locs.setdefault(account, {})
        for name_key, body in per_account.entries:
            if not _check_name(reader, name_key, "key"):
                continue
            loc = name_key.loc
            first = locs.get(name_key.raw)
            if first is not None:
                reader.error(
                    loc, f"key '{account}/{name_key.raw}' is defined twice: {first} and {loc}"
                )
                continue
            locs[name_key.raw] = loc
            pending = _Pending(account, name_key.raw, body, loc, account_loc)
            if known:
                _read_pending(state, pending)
            else:
                state.keys.append(pending)


def _read_keys(state: _State) -> dict[str, dict[str, KeySpec]]:
    """Read the keys that waited for their account; every account's keys."""
    reader = state.reader
    reported: set[str] = set()
    for pending in state.keys:
        if pending.account not in state.accounts:
            if pending.account not in state.account_locs and pending.account not in reported:
                reported.add(pending.account)
                hint = did_you_mean(pending.account, state.account_locs) or (
                    f" (accounts: {', '.join(sorted(state.account_locs)) or 'none'})"
                )
                reader.error(
                    pending.account_loc, f"keys for unknown account '{pending.account}'{hint}"
                )
            continue
        if pending.name:
            _read_pending(state, pending)
    state.keys.clear()
    return {name: state.specs.get(name, {}) for name in state.accounts}


def _read_pending(state: _State, pending: _Pending) -> None:
    provider = state.shapes.of(state.accounts[pending.account].provider)
    schema = provider.schema
    spec = _read_key(state.reader, provider, pending, state.owner, state.shapes)
    if spec is not None:
        state.specs.setdefault(pending.account, {})[pending.name] = spec
        state.reader.problems.extend(lint.lint_key(schema, spec, state.reader.now))


def _read_key(
    reader: Reader,
    provider: _Provider,
    pending: _Pending,
    owner: tuple[str, Location] | None,
    shapes: _Shapes,
) -> KeySpec | None:
    schema = provider.schema
    address = f"{pending.account}/{pending.name}"
    body = reader.mapping(pending.node, f"key '{address}'")
    if body is None:
        return None
    reader.unknown_fields(body, provider.allowed, f"key '{address}'")
    entries = {k.raw: (k, v) for k, v in body.entries}
    ok, fields, places = _read_fields(reader, provider, entries, pending, shapes)
    if ok and schema.key_rules is not None:
        for field_name, message in schema.key_rules(fields):
            where = entries[field_name][0].loc if field_name in entries else pending.loc
            reader.error(where, f"key '{address}': {message}")
            ok = False
    description = _read_description(reader, schema, entries, owner)
    protect = False
    if "protect" in entries:
        flag = reader.boolean(entries["protect"][1], "protect")
        ok = ok and flag is not None
        protect = bool(flag)
    adopt = _read_selector(reader, schema, entries["adopt"][1]) if "adopt" in entries else None
    ignore = _NO_RULES
    if "lint_ignore" in entries:
        items = reader.strings(entries["lint_ignore"][1], "lint_ignore") or []
        known = lint.all_rule_ids(schema_for(p) for p in known_providers())
        for text, item in items:
            if text not in known:
                hint = did_you_mean(text, known) or f" (rules: {', '.join(known)})"
                reader.error(item, f"lint_ignore: unknown rule {text!r}{hint}")
                ok = False
        ignore = frozenset(t for t, _ in items)
    if not ok or description is None or ("adopt" in entries and adopt is None):
        return None
    return KeySpec(
        account=pending.account,
        name=pending.name,
        description=description,
        fields=fields,
        protect=protect,
        adopt=adopt,
        lint_ignore=ignore,
        location=pending.loc,
        places=places,
    )


def _read_fields(
    reader: Reader,
    provider: _Provider,
    entries: dict[str, tuple[YScalar, YNode]],
    pending: _Pending,
    shapes: _Shapes,
) -> tuple[bool, FieldValues, Places]:
    """The provider fields of a key (defaults for those not written), whether they are
    all valid, and where each field and set member was written."""
    ok = True
    values: list[FieldValue] = []
    layout: list[tuple[str, int]] = []
    places: list[tuple[int, int]] = []
    for spec in provider.schema.fields:
        if spec.name not in entries:
            if spec.required:
                reader.error(
                    pending.loc, f"key '{pending.account}/{pending.name}' is missing '{spec.name}'"
                )
                ok = False
            values.append(spec.default)
            continue
        key, node = entries[spec.name]
        value = reader.field(spec, node)
        places.append((key.line, key.column))
        if reader.members:
            members = sorted(reader.members, key=str)
            layout.append((spec.name, len(members)))
            places += [reader.members[m] for m in members]
        else:
            layout.append((spec.name, 0))
        ok = ok and not isinstance(value, Invalid)
        values.append(spec.default if isinstance(value, Invalid) else value)
    shape = tuple(layout)
    packed = Places(pending.loc.path, shapes.layouts.setdefault(shape, shape), pack_places(places))
    return ok, FieldValues(provider.index, tuple(values)), packed


def _read_description(
    reader: Reader,
    schema: ProviderSchema,
    entries: dict[str, tuple[YScalar, YNode]],
    owner: tuple[str, Location] | None,
) -> str | None:
    if "description" not in entries:
        return ""
    node = entries["description"][1]
    if isinstance(node, YScalar) and node.value is None:
        return ""
    text = reader.string(node, "description")
    if text is None:
        return None
    if schema.description_max is not None:
        room = schema.description_max - _LONGEST_MARKER
        if len(text) > room:
            reader.error(
                node,
                f"description is {len(text)} characters; {schema.title} allows "
                f"{schema.description_max} and keystate needs room for its marker: at most {room}",
            )
            return None
    if "keystate:" in text:
        reader.error(
            node, "description must not contain 'keystate:' (keystate adds its own marker)"
        )
        return None
    return text.strip()


def _read_selector(reader: Reader, schema: ProviderSchema, node: YNode) -> Selector | None:
    text = reader.string(node, "adopt")
    if text is None:
        return None
    kind, sep, value = text.partition(":")
    forms = " or ".join(f"'{k}:...'" for k in schema.selector_kinds)
    if not sep or kind not in schema.selector_kinds:
        reader.error(
            node, f"adopt: {text!r} is not a selector for {schema.title} keys; use {forms}"
        )
        return None
    value = value.strip()
    if kind == "fingerprint":
        value = value.lower()
        if not _HEX.match(value):
            reader.error(
                node,
                "adopt: a fingerprint is 12 to 64 hex digits of the key's SHA-256 "
                "(`keystate import` prints it)",
            )
            return None
        return Selector("fingerprint", value)
    if not value:
        reader.error(node, "adopt: the id is empty")
        return None
    return Selector("id", value)
