"""A plan document read back into a :class:`~keystate.plan.Plan` (``show``,
``apply PLANFILE``): account connections, and each change with the live key it saw."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from pathlib import Path

from keystate import kinds
from keystate.compare import field_changes
from keystate.contract import (
    AccountConfig,
    ProviderSchema,
    Removal,
    SecretSetting,
    SettingKind,
    SettingValue,
)
from keystate.errors import UsageError
from keystate.kinds import JSONValue
from keystate.model import Action, FieldValue, KeySpec, LiveKey, Marker
from keystate.plan import DESCRIPTION, PROTECT, AccountDiff, Change, Plan, Reason, Retiring
from keystate.planfile import (
    LIFETIME,
    RETIRE_AT,
    ChangeDocument,
    KeyView,
    PlanDocument,
    Schemas,
)
from keystate.secrets import Secret


def accounts_from_document(
    doc: PlanDocument, env: Mapping[str, str], schemas: Schemas, resolve_secrets: bool = True
) -> dict[str, AccountConfig]:
    """Account connections as recorded in the plan; credentials read from the environment
    (or their files) again. With ``resolve_secrets=False`` (for ``show``) they stay as
    the text of their source."""
    out: dict[str, AccountConfig] = {}
    for item in doc["accounts"]:
        schema = schemas(item["provider"])
        settings: dict[str, SettingValue] = {}
        for spec in schema.settings:
            raw = item["settings"].get(spec.name)
            if raw is None:
                continue
            if spec.kind is SettingKind.SECRET and isinstance(raw, str):
                settings[spec.name] = (
                    _secret(item["name"], spec.name, raw, env) if resolve_secrets else raw
                )
            elif spec.kind is SettingKind.URLS:
                settings[spec.name] = tuple(raw)
            elif spec.kind is SettingKind.PATH:
                settings[spec.name] = Path(str(raw))
            else:
                settings[spec.name] = str(raw)
        out[item["name"]] = AccountConfig(
            name=item["name"],
            provider=item["provider"],
            settings=settings,
            removal=Removal(item.get("removal", Removal.DELETE.value)),
            timeout=item.get("timeout"),
            max_attempts=item.get("max_attempts"),
            wait_timeout=item.get("wait_timeout"),
            write_timeout=item.get("write_timeout"),
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


def to_plan(doc: PlanDocument, accounts: Mapping[str, AccountConfig], schemas: Schemas) -> Plan:
    """The Plan a document describes (live keys carry no handle: see ``apply.stale``)."""
    owner = doc.get("owner")
    unmanaged: dict[str, list[LiveKey]] = {}
    for item in doc.get("unmanaged", []):
        key = LiveKey(ref=item["ref"], handle="", stored_description=item["description"])
        unmanaged.setdefault(item["account"], []).append(key)
    diffs: list[AccountDiff] = []
    for account in doc["accounts"]:
        name = account["name"]
        schema = schemas(account["provider"])
        changes = tuple(_rebuild(schema, c, owner) for c in doc["changes"] if c["account"] == name)
        diffs.append(
            AccountDiff(
                account=accounts[name],
                schema=schema,
                changes=changes,
                unchanged=account["unchanged"],
                managed=account["managed"],
                unmanaged=tuple(unmanaged.get(name, [])),
                foreign=account["foreign"],
                retiring=tuple(
                    Retiring(r["name"], r["ref"], _time(r["retire_at"]))
                    for r in account.get("retiring", [])
                ),
            )
        )
    created = datetime.fromisoformat(doc["created_at"]).astimezone(UTC)
    return Plan(tuple(diffs), owner, created, tuple(doc.get("warnings", [])))


def _fields(schema: ProviderSchema, view: Mapping[str, JSONValue]) -> dict[str, FieldValue]:
    return {f.name: kinds.from_json(f, view.get(f.name)) for f in schema.fields}


def _time(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00")).astimezone(UTC)


def _lifecycle(text: JSONValue) -> timedelta | None:
    """A duration as the document writes it (``format_duration``)."""
    if not isinstance(text, str):
        return None
    if text == "0":
        return timedelta(0)
    unit = {"d": 86400, "h": 3600, "s": 1}.get(text[-1:])
    if unit is None or not text[:-1].isdigit():
        raise UsageError(f"not a keystate plan file (duration {text!r})")
    return timedelta(seconds=int(text[:-1]) * unit)


def _before(name: str, owner: str | None, before: KeyView) -> str:
    """The stored description a saved change's live key had (marker included)."""
    retire = before.get(RETIRE_AT)
    marker = Marker(
        name,
        owner,
        bool(before[PROTECT]),
        bool(before.get("pending", False)),
        retire_at=_time(retire) if isinstance(retire, str) else None,
    )
    return marker.stored_description(str(before[DESCRIPTION]))


def _rebuild(schema: ProviderSchema, item: ChangeDocument, owner: str | None) -> Change:
    action = Action(item["action"])
    name = item["name"]
    desired = live = None
    after, before = item["after"], item["before"]
    if after is not None:
        desired = KeySpec(
            account=item["account"],
            name=name,
            description=str(after[DESCRIPTION]),
            fields=_fields(schema, after),
            protect=bool(after[PROTECT]),
            lifetime=_lifecycle(after.get(LIFETIME)),
            deliver_to=tuple(str(s) for s in item.get("deliver_to", [])),
        )
    if before is not None:
        stored = str(before[DESCRIPTION])
        if action is not Action.ADOPT:
            stored = _before(item.get("renamed_from", name), owner, before)
        live = LiveKey(
            ref=str(item["live_fingerprint"]),
            handle="",
            stored_description=stored,
            fields=_fields(schema, before),
            status=_text(before.get("status")),
            exposed="exposure" in before,
            exposure=str(before.get("exposure") or ""),
        )
    reason = Reason(item["reason"]) if "reason" in item else Reason.from_note(item.get("note", ""))
    fields = field_changes(schema, desired, live) if desired and live else ()
    return Change(
        action,
        item["account"],
        item["provider"],
        name,
        desired,
        live,
        fields=fields,
        reason=reason,
        delivers_value=bool(item.get("delivers_value", False)),
        overlap=_lifecycle(item.get("overlap")),
        detail=str(item.get("detail", "")),
    )


def _text(value: JSONValue) -> str | None:
    return value if isinstance(value, str) else None
