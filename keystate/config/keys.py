"""Reading the ``keys:`` section: each key with its account's provider schema.

Keys may be written in a different file from their account: those whose account is not
known yet wait (:class:`~keystate.config.state.PendingKey`) until every file is read.
"""

from __future__ import annotations

from dataclasses import replace

from keystate import lint
from keystate.config.fields import FieldReader
from keystate.config.lifecycle import (
    NONE,
    Lifecycle,
    check_lifecycle,
    read_lifecycle,
    read_previously,
)
from keystate.config.nodes import YMap, YNode, YScalar
from keystate.config.reader import Invalid, Reader, did_you_mean
from keystate.config.state import (
    HEX,
    LONGEST_MARKER,
    NO_RULES,
    LoadState,
    PendingKey,
    ProviderShape,
    Shapes,
    check_name,
)
from keystate.contract import (
    ProviderSchema,
)
from keystate.model import (
    FieldValue,
    FieldValues,
    KeySpec,
    Location,
    Places,
    Selector,
    pack_places,
)
from keystate.providers import known_providers, schema_for


def collect_keys(state: LoadState, node: YNode) -> None:
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
            state.keys.append(PendingKey(account, "", account_node, account_loc, account_loc))
        locs = state.key_locs.setdefault(account, {})
        for name_key, body in per_account.entries:
            if not check_name(reader, name_key, "key"):
                continue
            loc = name_key.loc
            first = locs.get(name_key.raw)
            if first is not None:
                reader.error(
                    loc, f"key '{account}/{name_key.raw}' is defined twice: {first} and {loc}"
                )
                continue
            locs[name_key.raw] = loc
            pending = PendingKey(account, name_key.raw, body, loc, account_loc)
            if known:
                _read_pending(state, pending)
            else:
                state.keys.append(pending)


def read_keys(state: LoadState) -> dict[str, dict[str, KeySpec]]:
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


def _read_pending(state: LoadState, pending: PendingKey) -> None:
    provider = state.shapes.of(state.accounts[pending.account].provider)
    expired = len(state.reader.expired)
    account = state.account_defaults.get(pending.account, NONE)
    defaults = account.over(state.file_defaults.get(pending.loc.path, NONE))
    spec = _read_key(state.reader, provider, pending, state.owner, state.shapes, defaults)
    if len(state.reader.expired) > expired:
        blocked = state.blocked.setdefault(pending.account, [])
        blocked += state.reader.expired[expired:]
        return
    if spec is not None and isinstance(pending.node, YMap):
        node = next((v for k, v in pending.node.entries if k.raw == "deliver_to"), None)
        sinks = state.sinks
        deliver_to = sinks.by_account.get(pending.account, ())
        if node is not None:
            deliver_to = sinks.deliver_to(state.reader, node) or ()
        if deliver_to:
            spec = replace(spec, deliver_to=deliver_to)
    if spec is not None:
        state.specs.setdefault(pending.account, {})[pending.name] = spec


def _read_key(
    reader: FieldReader,
    provider: ProviderShape,
    pending: PendingKey,
    owner: tuple[str, Location] | None,
    shapes: Shapes,
    defaults: Lifecycle,
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
    ignore = NO_RULES
    if "lint_ignore" in entries:
        items = reader.strings(entries["lint_ignore"][1], "lint_ignore") or []
        known = lint.all_rule_ids(schema_for(p) for p in known_providers())
        for text, item in items:
            if text not in known:
                hint = did_you_mean(text, known) or f" (rules: {', '.join(known)})"
                reader.error(item, f"lint_ignore: unknown rule {text!r}{hint}")
                ok = False
        ignore = frozenset(t for t, _ in items)
    life = _read_key_lifecycle(reader, schema, entries, pending, defaults)
    if not ok or life is None or description is None or ("adopt" in entries and adopt is None):
        return None
    lifecycle, previously = life
    return KeySpec(
        account=pending.account,
        name=pending.name,
        description=description,
        fields=fields,
        protect=protect,
        adopt=adopt,
        lint_ignore=ignore,
        rotate=lifecycle.rotate,
        lifetime=lifecycle.lifetime,
        previously=previously,
        location=pending.loc,
        places=places,
    )


def _read_key_lifecycle(
    reader: Reader,
    schema: ProviderSchema,
    entries: dict[str, tuple[YScalar, YNode]],
    pending: PendingKey,
    defaults: Lifecycle,
) -> tuple[Lifecycle, tuple[str, ...]] | None:
    """A key's ``rotate:``/``lifetime:`` (its own, else its defaults') and ``previously:``."""
    address = f"{pending.account}/{pending.name}"
    own = read_lifecycle(
        reader, {k: v for k, (_, v) in entries.items()}, f"key '{address}'", pending.loc
    )
    previously: tuple[str, ...] | None = ()
    if "previously" in entries:
        previously = read_previously(reader, entries["previously"][1], pending.name)
    if own is None or previously is None:
        return None
    expiry = schema.expiry.name if schema.expiry is not None else None
    if own.lifetime is not None and expiry is not None and expiry in entries:
        reader.error(
            entries["lifetime"][0],
            f"key '{address}': lifetime and {expiry} exclude each other (lifetime gives each "
            f"new key an expiry of its creation time plus the lifetime); keep one",
        )
        return None
    found = own.over(defaults)
    if expiry is not None and expiry in entries and own.lifetime is None:
        found = Lifecycle(found.rotate, None, found.where)  # an absolute expiry wins
    if not check_lifecycle(reader, found, expiry, address, pending.loc):
        return None
    return found, previously


def _read_fields(
    reader: FieldReader,
    provider: ProviderShape,
    entries: dict[str, tuple[YScalar, YNode]],
    pending: PendingKey,
    shapes: Shapes,
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
    reader: FieldReader,
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
        room = schema.description_max - LONGEST_MARKER
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
        if not HEX.match(value):
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
