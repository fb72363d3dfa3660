"""One declared key against one live key: which fields differ, and how.

Field equality is the kind's (``kinds.equal``), so list order, absent-versus-default
and expiry jitter never show as changes. Member-level detail of a changed structured
field, and only of fields that did change: set members that left and joined (plain set
arithmetic), and which query parameter changed (deepdiff, the one structured value where
a member can change in place).
"""

from __future__ import annotations

import hashlib
import json
from typing import Any
from urllib.parse import parse_qsl

from keystate import kinds
from keystate.contract import FieldSpec, Kind, ProviderSchema
from keystate.model import FieldValue, KeySpec, LiveKey, Marker
from keystate.plan import DESCRIPTION, PROTECT, STATUS, FieldChange


def marker_for(schema: ProviderSchema, spec: KeySpec, owner: str | None) -> Marker:
    """The marker keystate writes with a declared key, with the digest of what it writes."""
    return Marker(spec.name, owner, spec.protect, digest=digest(schema, spec))


def digest(schema: ProviderSchema, spec: KeySpec) -> str:
    """8 hex digits of SHA-256 over the canonical JSON of a declared key's view (its
    description, protect and every provider field in its JSON form): what keystate
    writes. Stored in the marker, it tells drift (the live key changed, the
    configuration did not) from a change of the configuration, without any state."""
    view: dict[str, object] = {DESCRIPTION: spec.description, PROTECT: spec.protect}
    for fspec in schema.fields:
        view[fspec.name] = kinds.to_json(spec.fields.get(fspec.name, fspec.default))
    canonical = json.dumps(view, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(canonical.encode("utf-8")).hexdigest()[:8]


def drifted(schema: ProviderSchema, spec: KeySpec, live: LiveKey) -> bool:
    """Whether a live key that differs from ``spec`` was changed outside keystate: the
    configuration is still what keystate last wrote (its digest is in the marker)."""
    marker = live.marker
    return (
        marker is not None and marker.digest is not None and marker.digest == digest(schema, spec)
    )


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
    return kinds.member_text(as_list[0])


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
