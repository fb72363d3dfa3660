"""``keystate import ACCOUNT``: YAML for the live keys of an account (DESIGN §4).

Keys keystate already manages are written under their names; unmanaged keys get a name
derived from their description and an ``adopt:`` selector, so that ``import`` followed
by ``plan`` shows only ``adopt`` actions and applying them rotates nothing. Foreign keys
and the credential are skipped (and said so in a comment).

A name is written once: when several live keys carry one marker (the disabled
predecessor of a replace, a leftover of an interrupted create, or a real conflict), the
one the plan would keep is written — enabled before disabled, finished before pending,
newest first — and a comment names the others and why they were left out.

The output is deterministic: keys sorted by name, sets sorted, no run timestamp. Expiry is
written as an absolute time; Algolia only reports a remaining validity, so its expiry is
rounded to the minute (well inside the 60-second comparison tolerance), which keeps two
imports of the same account identical.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime, timedelta

import yaml

from keystate import kinds
from keystate.contract import Kind, ProviderSchema
from keystate.model import FieldValue, KeySpec, LiveKey, Marker

MAX_NAME = 63
_SLUG_OUT = re.compile(r"[^a-z0-9._-]+")


def slug(text: str) -> str:
    name = _SLUG_OUT.sub("-", text.lower()).strip("-._")
    name = re.sub(r"-{2,}", "-", name)[:MAX_NAME].rstrip("-._")
    return name


def _selector(schema: ProviderSchema, key: LiveKey) -> str:
    if "fingerprint" in schema.selector_kinds and key.fingerprint:
        return f"fingerprint:{key.fingerprint[:16]}"
    return f"id:{key.id}"


def _round_expiry(value: datetime) -> datetime:
    moment = value.astimezone(UTC)
    return (moment + timedelta(seconds=30)).replace(second=0, microsecond=0)


def _flow(value: object) -> str:
    text = yaml.safe_dump(value, default_flow_style=True, allow_unicode=True, width=10_000)
    return text.removesuffix("\n").removesuffix("\n...")


def _field_lines(schema: ProviderSchema, key: LiveKey) -> list[str]:
    lines: list[str] = []
    for spec in schema.fields:
        value: FieldValue = key.fields.get(spec.name, spec.default)
        if spec.implied_by is not None and key.fields.get(spec.implied_by):
            continue  # e.g. a key made from a template takes its privileges from it
        if value is None or (kinds.is_default(spec, value) and not spec.required):
            continue
        if spec.kind is Kind.TIMESTAMP and isinstance(value, datetime):
            rounded = _round_expiry(value) if schema.eventually_consistent else value
            lines.append(f"      {spec.name}: {kinds.format_timestamp(rounded)}")
            continue
        lines.append(f"      {spec.name}: {_flow(kinds.to_json(value))}")
    return lines


def _names(
    managed: Sequence[tuple[str, LiveKey]], unmanaged: Sequence[LiveKey], declared: set[str]
) -> list[tuple[str, LiveKey]]:
    taken = {name for name, _ in managed} | declared
    out = list(managed)
    for key in sorted(unmanaged, key=lambda k: (slug(k.description), k.ref)):
        base = slug(key.description) or f"key-{key.ref.split(':', 1)[1][:8]}"
        name, n = base, 2
        while name in taken:
            suffix = f"-{n}"
            name = base[: MAX_NAME - len(suffix)] + suffix
            n += 1
        taken.add(name)
        out.append((name, key))
    return sorted(out, key=lambda item: item[0])


def _keep_first(key: LiveKey) -> tuple[bool, bool, float, str]:
    """Sort key: the copy to write first (enabled, finished, newest), then by ref."""
    pending = key.marker is not None and key.marker.pending
    created = key.created_at.timestamp() if key.created_at else 0.0
    return (not key.enabled, pending, -created, key.ref)


def _why_left_out(key: LiveKey, kept: LiveKey) -> str:
    if key.marker is not None and key.marker.pending:
        return "pending: left by an interrupted create"
    if not key.enabled and kept.enabled:
        return "disabled: e.g. the predecessor of a replace"
    return "a second key with this marker: plan refuses until one is deleted by hand"


def _one_per_name(
    account: str, managed: Sequence[tuple[str, LiveKey]]
) -> tuple[list[tuple[str, LiveKey]], list[str]]:
    """One key per managed name, and a comment line per key left out."""
    groups: dict[str, list[LiveKey]] = {}
    for name, key in managed:
        groups.setdefault(name, []).append(key)
    kept: list[tuple[str, LiveKey]] = []
    notes: list[str] = []
    for name, keys in sorted(groups.items()):
        first, *others = sorted(keys, key=_keep_first)
        kept.append((name, first))
        for other in others:
            notes.append(
                f"#   {account}/{name}: {other.ref} ({_why_left_out(other, first)}); "
                f"written: {first.ref}"
            )
    return kept, notes


def _adopted_by(declared: Mapping[str, KeySpec], key: LiveKey) -> bool:
    """Whether a declared key's ``adopt:`` selector already picks this live key."""
    for spec in declared.values():
        selector = spec.adopt
        if selector is None:
            continue
        if selector.kind == "fingerprint" and (key.fingerprint or "").startswith(selector.value):
            return True
        if selector.kind == "id" and key.id == selector.value:
            return True
    return False


def render(
    account: str,
    schema: ProviderSchema,
    live: Sequence[LiveKey],
    owner: str | None,
    declared: Mapping[str, KeySpec] | None = None,
) -> str:
    """YAML for the live keys of ``account``. With ``declared`` (the keys the
    configuration already declares for it), only the others: the file can be put beside
    the configuration without any key defined twice."""
    known = declared or {}
    managed: list[tuple[str, LiveKey]] = []
    unmanaged: list[LiveKey] = []
    foreign: list[LiveKey] = []
    skipped = 0
    for key in live:
        marker: Marker | None = key.marker
        if key.is_credential or (marker is not None and marker.retire_at is not None):
            continue  # a retiring key (the old key of a rotation) is on its way out
        if (marker is not None and marker.owner == owner and marker.name in known) or (
            marker is None and _adopted_by(known, key)
        ):
            skipped += 1
        elif marker is None:
            unmanaged.append(key)
        elif marker.owner == owner:
            managed.append((marker.name, key))
        else:
            foreign.append(key)
    managed, left_out = _one_per_name(account, managed)
    lines = [
        f"# Generated by `keystate import {account}`: {len(managed)} managed key(s), "
        f"{len(unmanaged)} to adopt.",
        "# Keys with an `adopt:` line are not managed yet: `keystate plan` shows them as",
        "# adopt actions, and applying them writes keystate's marker without changing the value.",
    ]
    if skipped:
        lines.append(
            f"# Left out {skipped} key(s) the configuration already declares (--all: every key)."
        )
    if foreign:
        refs = ", ".join(sorted(k.ref for k in foreign))
        lines.append(f"# Skipped {len(foreign)} key(s) owned by another keystate owner: {refs}")
    if left_out:
        lines.append(
            f"# Left out {len(left_out)} key(s) carrying the marker of a key written below "
            "(a name is declared once):"
        )
        lines += left_out
    lines += ["version: 1", "keys:", f"  {account}:" + ("" if managed or unmanaged else " {}")]
    for name, key in _names(managed, unmanaged, set(known)):
        lines.append(f"    {name}:")
        if key.marker is None:
            lines.append(f"      adopt: {_selector(schema, key)}")
        if key.description:
            lines.append(f"      description: {_flow(key.description)}")
        if key.marker is not None and key.marker.protect:
            lines.append("      protect: true")
        lines += _field_lines(schema, key)
    return "\n".join(lines) + "\n"
