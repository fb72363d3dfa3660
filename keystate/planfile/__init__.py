"""The plan document: ``plan --format json``, ``plan --out PLANFILE``, ``show``, ``apply PLANFILE``.

One typed document (:class:`PlanDocument`, documented in docs/plan-format.md) is both
what ``--format json`` prints and what a plan file holds; a plan file adds the unmanaged
keys' references and a ``checksum`` (SHA-256 over the canonical JSON of everything
else). It holds no secret: credentials appear as the variable or file they come from,
so it can be uploaded as a CI artifact. The checksum catches edits, not forgery: guard
plan artifacts like any CI artifact.

Reading a document back (:func:`load` here, :func:`~.restore.to_plan`) checks its
shape once, in this package; nothing else reads raw plan JSON. Providers are looked up
through the ``schemas`` function the caller passes (the registry), so this package
depends on no provider.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Final, NotRequired, TypedDict, cast

from keystate import kinds
from keystate._version import __version__
from keystate.contract import ProviderSchema
from keystate.durations import format_duration
from keystate.errors import StalePlanError, UsageError
from keystate.kinds import JSONValue
from keystate.model import Action, KeySpec, LiveKey
from keystate.plan import DESCRIPTION, PROTECT, AccountDiff, Change, Plan

FORMAT_VERSION: Final = "1"
CHECKSUM: Final = "checksum"
LIFETIME: Final = "lifetime"
RETIRE_AT: Final = "retire_at"
Schemas = Callable[[str], ProviderSchema]
KeyView = dict[str, JSONValue]


class AccountDocument(TypedDict):
    name: str
    provider: str
    settings: dict[str, str | list[str]]
    removal: str
    timeout: float | None
    max_attempts: int | None
    wait_timeout: float | None
    write_timeout: float | None
    managed: int
    unchanged: int
    unmanaged: int
    foreign: int
    retiring: NotRequired[list[RetiringDocument]]


class RetiringDocument(TypedDict):
    name: str
    ref: str
    retire_at: str


class ChangeDocument(TypedDict):
    address: str
    account: str
    name: str
    provider: str
    action: str
    before: KeyView | None
    after: KeyView | None
    changed_fields: list[str]
    forces_replacement: list[str]
    live_fingerprint: str | None
    adopt: NotRequired[str]
    note: NotRequired[str]
    reason: NotRequired[str]
    delivers_value: NotRequired[bool]
    deliver_to: NotRequired[list[str]]
    overlap: NotRequired[str]
    detail: NotRequired[str]
    renamed_from: NotRequired[str]


class UnmanagedDocument(TypedDict):
    account: str
    ref: str
    description: str


class PlanDocument(TypedDict):
    format_version: str
    keystate_version: str
    created_at: str
    owner: str | None
    accounts: list[AccountDocument]
    changes: list[ChangeDocument]
    summary: dict[str, int]
    warnings: list[str]
    refusals: list[str]
    # Present only when not empty (optional fields: the format version is unchanged).
    drift: NotRequired[list[str]]
    needs_force: NotRequired[list[str]]
    unmanaged: NotRequired[list[UnmanagedDocument]]
    checksum: NotRequired[str]


# -- plan -> document --------------------------------------------------------------------


def document(plan: Plan, *, unmanaged: bool = False) -> PlanDocument:
    """The versioned document of a plan; with ``unmanaged``, the unmanaged keys too."""
    doc: PlanDocument = {
        "format_version": FORMAT_VERSION,
        "keystate_version": __version__,
        "created_at": kinds.format_timestamp(plan.created_at),
        "owner": plan.owner,
        "accounts": [_account(a) for a in plan.accounts],
        "changes": [_change(a.schema, c, plan) for a in plan.accounts for c in a.changes],
        "summary": plan.counts(),
        "warnings": list(plan.warnings),
        "refusals": list(plan.refusals),
    }
    if plan.drift:
        doc["drift"] = [c.address for c in plan.drift]
    if plan.needs_force():
        doc["needs_force"] = plan.needs_force()
    if unmanaged:
        doc["unmanaged"] = [
            {"account": a.account.name, "ref": k.ref, "description": k.description}
            for a in plan.accounts
            for k in a.unmanaged
        ]
    return doc


def _account(account: AccountDiff) -> AccountDocument:
    settings = {
        k: v if isinstance(v, str) else list(v) for k, v in account.account.describe().items()
    }
    out: AccountDocument = {
        "name": account.account.name,
        "provider": account.schema.name,
        "settings": settings,
        "removal": account.account.removal.value,
        "timeout": account.account.timeout,
        "max_attempts": account.account.max_attempts,
        "wait_timeout": account.account.wait_timeout,
        "write_timeout": account.account.write_timeout,
        "managed": account.managed,
        "unchanged": account.unchanged,
        "unmanaged": len(account.unmanaged),
        "foreign": account.foreign,
    }
    if account.retiring:
        out["retiring"] = [
            {"name": r.name, "ref": r.ref, "retire_at": kinds.format_timestamp(r.retire_at)}
            for r in account.retiring
        ]
    return out


def desired_view(schema: ProviderSchema, spec: KeySpec) -> KeyView:
    view: KeyView = {DESCRIPTION: spec.description, PROTECT: spec.protect}
    for fspec in schema.fields:
        view[fspec.name] = kinds.to_json(spec.fields.get(fspec.name, fspec.default))
    if spec.lifetime is not None:
        view[LIFETIME] = format_duration(spec.lifetime)
    return view


def live_view(schema: ProviderSchema, key: LiveKey) -> KeyView:
    marker = key.marker
    view: KeyView = {DESCRIPTION: key.description, PROTECT: bool(marker and marker.protect)}
    if marker is not None and marker.pending:
        view["pending"] = True
    if key.status is not None:
        view["status"] = key.status
    if key.exposed:
        view["exposure"] = key.exposure
    if marker is not None and marker.retire_at is not None:
        view[RETIRE_AT] = kinds.format_timestamp(marker.retire_at)
    for fspec in schema.fields:
        view[fspec.name] = kinds.to_json(key.fields.get(fspec.name, fspec.default))
    return view


def _change(schema: ProviderSchema, change: Change, plan: Plan) -> ChangeDocument:
    out: ChangeDocument = {
        "address": change.address,
        "account": change.account,
        "name": change.name,
        "provider": change.provider,
        "action": change.action.value,
        "before": live_view(schema, change.live) if change.live else None,
        "after": desired_view(schema, change.desired) if change.desired else None,
        "changed_fields": list(change.changed_fields),
        "forces_replacement": list(change.forces_replacement),
        "live_fingerprint": change.live.ref if change.live else None,
    }
    if change.desired and change.desired.adopt:
        out["adopt"] = str(change.desired.adopt)
    if change.reason is not None:
        out["note"] = change.reason.note
        out["reason"] = change.reason.value
    if change.delivers_value:
        out["delivers_value"] = True
    if sinks := plan.deliver_to(change):
        out["deliver_to"] = list(sinks)
    if change.overlap is not None:
        out["overlap"] = format_duration(change.overlap)
    if change.detail:
        out["detail"] = change.detail
    marker = change.live.marker if change.live else None
    if change.action is Action.RENAME and marker is not None:
        out["renamed_from"] = marker.name
    return out


def dumps(doc: PlanDocument) -> str:
    return json.dumps(doc, indent=2, ensure_ascii=False) + "\n"


# -- plan files ---------------------------------------------------------------------------


def checksum(doc: Mapping[str, object]) -> str:
    body = {k: v for k, v in doc.items() if k != CHECKSUM}
    canonical = json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return "sha256:" + hashlib.sha256(canonical.encode()).hexdigest()


def save(plan: Plan, path: Path) -> None:
    """Write the plan file (atomically; it holds no secret)."""
    doc = document(plan, unmanaged=True)
    doc["checksum"] = checksum(cast(Mapping[str, object], doc))
    tmp = path.with_name(f".{path.name}.tmp{os.getpid()}")
    tmp.write_text(dumps(doc), encoding="utf-8")
    os.replace(tmp, path)


def load(path: Path) -> PlanDocument:
    """Read and verify a plan file. Raises UsageError or StalePlanError (edited)."""
    try:
        raw = json.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise UsageError(f"{path}: cannot read the plan file ({exc.strerror or exc})") from None
    except (ValueError, UnicodeDecodeError):
        raise UsageError(f"{path}: not a keystate plan file (not JSON)") from None
    if not isinstance(raw, dict) or CHECKSUM not in raw:
        raise UsageError(f"{path}: not a keystate plan file (made with `keystate plan --out`)")
    if raw.get("format_version") != FORMAT_VERSION:
        raise UsageError(
            f"{path}: plan format {raw.get('format_version')!r} is not supported by "
            f"keystate {__version__} (format {FORMAT_VERSION}); run plan again"
        )
    if raw[CHECKSUM] != checksum(raw):
        raise StalePlanError(
            [f"{path} was edited after it was made (checksum mismatch); run plan again"]
        )
    problem = _shape_problem(raw)
    if problem:
        raise UsageError(f"{path}: not a keystate plan file ({problem})")
    return cast(PlanDocument, raw)


_SHAPES: Final[dict[str, dict[str, tuple[type, ...]]]] = {
    "plan": {"accounts": (list,), "changes": (list,), "created_at": (str,), "warnings": (list,)},
    "account": {"name": (str,), "provider": (str,), "settings": (dict,), "removal": (str,)},
    "change": {
        "account": (str,),
        "name": (str,),
        "action": (str,),
        "provider": (str,),
        "before": (dict, type(None)),
        "after": (dict, type(None)),
        "live_fingerprint": (str, type(None)),
    },
}


def _shape_problem(raw: Mapping[str, object]) -> str:
    """What is wrong with a document's shape (a checksum-valid file made by hand), or ""."""
    found = _missing(raw, "plan")
    if found:
        return found
    for what, items in (("account", raw["accounts"]), ("change", raw["changes"])):
        for item in cast(list[object], items):
            if not isinstance(item, dict):
                return f"a {what} is not an object"
            found = _missing(item, what)
            if found:
                return found
    return ""


def _missing(item: Mapping[str, object], what: str) -> str:
    for name, types in _SHAPES[what].items():
        if not isinstance(item.get(name), types):
            return f"{what} without a valid '{name}'"
    return ""


# Reading a document back into a Plan (kept apart for size; part of this module's API).
from keystate.planfile.rebuild import accounts_from_document, to_plan  # noqa: E402

__all__ = [
    "CHECKSUM",
    "FORMAT_VERSION",
    "AccountDocument",
    "ChangeDocument",
    "PlanDocument",
    "Schemas",
    "UnmanagedDocument",
    "accounts_from_document",
    "checksum",
    "desired_view",
    "document",
    "dumps",
    "live_view",
    "load",
    "save",
    "to_plan",
]
