"""The key lifecycle in the plan (DESIGN §11): rotation, retirement, rename, forget.

Stateless like the rest: what a later run must know travels with the live key. A
rotation's predecessor carries its retire time in its marker (``@retire=``), so any run,
on any machine, knows it is **retiring**: never updated, never a duplicate, never
adoptable, and retired once its overlap has ended.

* A declared key is **rotated** when the provider reports it exposed (no overlap), when
  ``--replace`` names it (``--overlap``, default 0), or when its live age reaches its
  ``rotate.every`` (``rotate.overlap``).
* ``lifetime:`` gives a key an expiry of its creation time plus the lifetime; a live
  key satisfies it when its expiry is within a day of that (providers round lifetimes).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import Final

from keystate.contract import AccountConfig, ProviderSchema, Removal
from keystate.durations import format_age, format_duration
from keystate.model import Action, KeySpec, LiveKey
from keystate.plan import Change, Reason, Retiring

# How far a live expiry may be from creation + lifetime and still satisfy ``lifetime:``.
LIFETIME_SLACK: Final = timedelta(days=1)


@dataclass(frozen=True)
class LifecycleOptions:
    """What a plan needs besides the configuration: the time it is made at, and the
    keys to replace now (``--replace ADDR``, with ``--overlap``)."""

    now: datetime
    replace: frozenset[str] = frozenset()
    overlap: timedelta = timedelta(0)


@dataclass(frozen=True)
class Rotation:
    """Why and how one key is rotated."""

    reason: Reason
    overlap: timedelta
    detail: str


def is_retiring(key: LiveKey) -> bool:
    return key.marker is not None and key.marker.retire_at is not None


def rotation(spec: KeySpec, live: LiveKey, options: LifecycleOptions) -> Rotation | None:
    """Whether a declared, managed live key is to be rotated in this plan."""
    if live.exposed:
        detail = f"reported exposed: {live.exposure}" if live.exposure else "reported exposed"
        return Rotation(Reason.EXPOSED, timedelta(0), detail)
    if spec.address in options.replace:
        return Rotation(Reason.REPLACE_REQUESTED, options.overlap, "")
    every = spec.rotate.every if spec.rotate else None
    if every is None or live.created_at is None or spec.rotate is None:
        return None
    age = options.now - live.created_at
    if age < every:
        return None
    detail = f"age {format_age(age)} >= every {format_duration(every)}"
    return Rotation(Reason.ROTATION_DUE, spec.rotate.overlap, detail)


def with_lifetime(
    schema: ProviderSchema, spec: KeySpec, base: datetime, live: LiveKey | None = None
) -> KeySpec:
    """The key with its expiry set from ``lifetime:`` (creation ``base`` + lifetime).
    Against a live key, an expiry within a day of that satisfies it as it is."""
    expiry = schema.expiry
    if spec.lifetime is None or expiry is None:
        return spec
    wanted = base + spec.lifetime
    if live is not None:
        found = live.fields.get(expiry.name)
        if isinstance(found, datetime) and abs(found - wanted) <= LIFETIME_SLACK:
            wanted = found
    fields = {name: spec.fields.get(name) for name in schema.field_names}
    fields[expiry.name] = wanted
    return replace(spec, fields=fields)


def retirements(
    account: AccountConfig, schema: ProviderSchema, retiring: Iterable[LiveKey], now: datetime
) -> tuple[list[Change], list[Retiring]]:
    """Retiring keys whose overlap has ended are retired (deleted, or disabled under
    ``removal: disable``); the others are listed with their retire time."""
    changes: list[Change] = []
    waiting: list[Retiring] = []
    for key in retiring:
        marker = key.marker
        assert marker is not None and marker.retire_at is not None
        if marker.retire_at > now:
            waiting.append(Retiring(marker.name, key.ref, marker.retire_at))
        elif account.removal is not Removal.DISABLE or key.enabled:
            changes.append(
                Change(
                    Action.RETIRE,
                    account.name,
                    schema.name,
                    marker.name,
                    live=key,
                    reason=Reason.RETIRE_DUE,
                    detail=f"retire time {marker.retire_at:%Y-%m-%d %H:%M}Z has passed",
                )
            )
    return changes, waiting


def rename_source(
    spec: KeySpec, managed: Mapping[str, LiveKey], desired: Mapping[str, KeySpec]
) -> tuple[str | None, str | None]:
    """(the previous name a declared key is found under, or None; a problem, or None)."""
    found = [n for n in spec.previously if n in managed and n not in desired]
    if len(found) > 1:
        return None, (
            f"{spec.address}: previously: {', '.join(found)} all exist; keystate will not "
            "guess which one the key was: forget or remove the others first"
        )
    return (found[0] if found else None), None


def unmatched_previously(spec: KeySpec, renamed_from: str | None) -> list[str]:
    """Warnings for ``previously:`` names that match nothing (the rename happened)."""
    return [
        f"{spec.address}: previously: {name} matches no managed key (already renamed?); "
        "the entry can go"
        for name in spec.previously
        if name != renamed_from
    ]
