"""Saved plans (DESIGN §7): ``plan --out``, ``show`` and ``apply PLANFILE``.

A plan file is the JSON plan document plus the unmanaged keys' references and a
``checksum`` (SHA-256 over the canonical JSON of everything else). It holds no secret:
credentials appear as the variable or file they come from, so it can be uploaded as a CI
artifact. The checksum catches edits, not forgery: guard plan artifacts like any CI
artifact.

``apply PLANFILE`` executes exactly the saved changes. It re-reads the accounts first
and refuses (exit 3) if anything a change would touch differs from what the plan saw:
a key it updates, replaces or deletes changed or vanished, a key it adopts got a marker,
a key it creates appeared meanwhile.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Mapping
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Final

from keystate import __version__, kinds
from keystate.diff import DESCRIPTION, PROTECT, AccountDiff, Change
from keystate.errors import StalePlanError, UsageError
from keystate.kinds import JSONValue
from keystate.model import Action, FieldValue, KeySpec, LiveKey, Marker
from keystate.plan import FORMAT_VERSION, Plan
from keystate.providers.base import (
    AccountConfig,
    ProviderSchema,
    SecretSetting,
    SettingKind,
    SettingValue,
    schema_for,
)
from keystate.secrets import Secret

CHECKSUM: Final = "checksum"


def checksum(document: Mapping[str, JSONValue]) -> str:
    body = {k: v for k, v in document.items() if k != CHECKSUM}
    canonical = json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return "sha256:" + hashlib.sha256(canonical.encode()).hexdigest()


def save(plan: Plan, path: Path) -> None:
    """Write the plan file (atomically; it holds no secret)."""
    document = plan.to_dict()
    document["unmanaged"] = [
        {"account": a.account.name, "ref": k.ref, "description": k.description}
        for a in plan.accounts
        for k in a.unmanaged
    ]
    document[CHECKSUM] = checksum(document)
    tmp = path.with_name(f".{path.name}.tmp{os.getpid()}")
    tmp.write_text(json.dumps(document, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    os.replace(tmp, path)


def load(path: Path) -> dict[str, Any]:
    """Read and verify a plan file. Raises UsageError or StalePlanError (edited)."""
    try:
        document = json.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise UsageError(f"{path}: cannot read the plan file ({exc.strerror or exc})") from None
    except (ValueError, UnicodeDecodeError):
        raise UsageError(f"{path}: not a keystate plan file (not JSON)") from None
    if not isinstance(document, dict) or CHECKSUM not in document:
        raise UsageError(f"{path}: not a keystate plan file (made with `keystate plan --out`)")
    if document.get("format_version") != FORMAT_VERSION:
        raise UsageError(
            f"{path}: plan format {document.get('format_version')!r} is not supported by "
            f"keystate {__version__} (format {FORMAT_VERSION}); run plan again"
        )
    if document[CHECKSUM] != checksum(document):
        raise StalePlanError(
            [f"{path} was edited after it was made (checksum mismatch); run plan again"]
        )
    return document


# -- rebuilding a Plan from its document ----------------------------------------------


def accounts_from_document(
    document: Mapping[str, Any], env: Mapping[str, str], resolve_secrets: bool = True
) -> dict[str, AccountConfig]:
    """Account connections as recorded in the plan; credentials read from the environment
    (or their files) again. With ``resolve_secrets=False`` (for ``show``) they stay as
    the text of their source."""
    out: dict[str, AccountConfig] = {}
    for item in document["accounts"]:
        schema = schema_for(item["provider"])
        settings: dict[str, SettingValue] = {}
        for spec in schema.settings:
            raw = item["settings"].get(spec.name)
            if raw is None:
                continue
            if spec.kind is SettingKind.SECRET:
                settings[spec.name] = (
                    _secret(item["name"], spec.name, raw, env) if resolve_secrets else raw
                )
            elif spec.kind is SettingKind.URLS:
                settings[spec.name] = tuple(raw)
            elif spec.kind is SettingKind.PATH:
                settings[spec.name] = Path(raw)
            else:
                settings[spec.name] = raw
        out[item["name"]] = AccountConfig(
            name=item["name"],
            provider=item["provider"],
            settings=settings,
            removal=item.get("removal", "delete"),
            timeout=item.get("timeout"),
            max_attempts=item.get("max_attempts"),
            wait_timeout=item.get("wait_timeout"),
        )
    return out


def _secret(account: str, name: str, source: str, env: Mapping[str, str]) -> SecretSetting:
    if source.startswith("${") and source.endswith("}"):
        var = source[2:-1]
        value = env.get(var)
        if not value:
            raise UsageError(f"{account}: {name} comes from {source}, which is not set")
        return SecretSetting(Secret(value.strip()), source)
    if source.startswith("file:"):
        file = Path(source[5:])
        try:
            return SecretSetting(Secret(file.read_text(encoding="utf-8").strip()), source)
        except OSError as exc:
            raise UsageError(f"{account}: cannot read {name} from {file}: {exc.strerror}") from None
    raise UsageError(
        f"{account}: the plan was made with a {name} written in the configuration; "
        "apply it with -c CONFIG so keystate can read it there"
    )


def to_plan(document: Mapping[str, Any], accounts: Mapping[str, AccountConfig]) -> Plan:
    """The Plan a document describes (live keys carry no handle: see ``bind_live``)."""
    owner = document.get("owner")
    unmanaged: dict[str, list[LiveKey]] = {}
    for item in document.get("unmanaged", []):
        key = LiveKey(ref=item["ref"], handle="", stored_description=item["description"])
        unmanaged.setdefault(item["account"], []).append(key)
    diffs: list[AccountDiff] = []
    for item in document["accounts"]:
        name = item["name"]
        schema = schema_for(item["provider"])
        changes = tuple(
            _change(schema, c, owner) for c in document["changes"] if c["account"] == name
        )
        diffs.append(
            AccountDiff(
                account=accounts[name],
                schema=schema,
                changes=changes,
                unchanged=item["unchanged"],
                managed=item["managed"],
                unmanaged=tuple(unmanaged.get(name, [])),
                foreign=item["foreign"],
            )
        )
    created = datetime.fromisoformat(document["created_at"]).astimezone(UTC)
    return Plan(tuple(diffs), owner, created, tuple(document.get("warnings", [])))


def _fields(schema: ProviderSchema, view: Mapping[str, JSONValue]) -> dict[str, FieldValue]:
    return {f.name: kinds.from_json(f, view.get(f.name)) for f in schema.fields}


def _change(schema: ProviderSchema, item: Mapping[str, Any], owner: str | None) -> Change:
    action = Action(item["action"])
    name = item["name"]
    desired = None
    if item["after"] is not None:
        after = item["after"]
        desired = KeySpec(
            account=item["account"],
            name=name,
            description=after[DESCRIPTION],
            fields=_fields(schema, after),
            protect=bool(after[PROTECT]),
        )
    live = None
    if item["before"] is not None:
        before = item["before"]
        stored = before[DESCRIPTION]
        if action is not Action.ADOPT:
            pending = bool(before.get("pending", False))
            marker = Marker(name, owner, bool(before[PROTECT]), pending)
            stored = marker.stored_description(stored)
        live = LiveKey(
            ref=item["live_fingerprint"],
            handle="",
            stored_description=stored,
            fields=_fields(schema, before),
            status=before.get("status"),
            exposed="exposure" in before,
            exposure=str(before.get("exposure") or ""),
        )
    current = Change(
        action, item["account"], item["provider"], name, desired, live, note=item.get("note", "")
    )
    # Recompute the field detail the renderers show, from the saved before/after.
    if desired is not None and live is not None:
        from keystate.diff import field_changes

        current = replace(current, fields=field_changes(schema, desired, live))
    return current


# -- staleness --------------------------------------------------------------------------


def bind_live(plan: Plan, live: Mapping[str, list[LiveKey]]) -> Plan:
    """Attach freshly read live keys to the saved changes; StalePlanError if any change
    would touch something that differs from what the plan saw."""
    stale: list[str] = []
    diffs: list[AccountDiff] = []
    for account in plan.accounts:
        keys = live.get(account.account.name, [])
        by_ref = {k.ref: k for k in keys}
        managed_names = {k.marker.name for k in keys if k.marker and k.marker.owner == plan.owner}
        changes: list[Change] = []
        for change in account.changes:
            reason = _stale_reason(account.schema, change, by_ref, managed_names, plan.owner)
            if reason:
                stale.append(f"{change.address} {reason}")
                continue
            current = by_ref.get(change.live.ref) if change.live else None
            changes.append(replace(change, live=current))
        diffs.append(replace(account, changes=tuple(changes), seen=frozenset(by_ref)))
    if stale:
        raise StalePlanError(
            [f"plan is stale: {reason} since the plan was made; run plan again" for reason in stale]
        )
    return replace(plan, accounts=tuple(diffs))


def _stale_reason(
    schema: ProviderSchema,
    change: Change,
    by_ref: Mapping[str, LiveKey],
    managed_names: set[str],
    owner: str | None,
) -> str:
    if change.action is Action.CREATE:
        return "was created" if change.name in managed_names else ""
    assert change.live is not None
    current = by_ref.get(change.live.ref)
    if current is None:
        return f"({change.live.ref}) was deleted"
    if change.action is Action.ADOPT:
        if current.marker is not None:
            return f"({current.ref}) came under management"
    elif (
        current.marker is None
        or current.marker.name != change.name
        or current.marker.owner != owner
    ):
        return f"({current.ref}) lost its ownership marker"
    if not _same(schema, change.live, current):
        return "changed"
    return ""


def _same(schema: ProviderSchema, saved: LiveKey, current: LiveKey) -> bool:
    if saved.description != current.description:
        return False
    saved_protect = bool(saved.marker and saved.marker.protect)
    if saved_protect != bool(current.marker and current.marker.protect):
        return False
    return all(
        kinds.equal(f, saved.fields.get(f.name, f.default), current.fields.get(f.name, f.default))
        for f in schema.fields
    )
