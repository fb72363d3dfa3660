"""The Plan: ordered changes for every account, counts, safety gates, JSON form (§5–§7).

A plan knows how to count itself, check itself against the safety gates and turn itself
into the versioned JSON document that ``plan --format json`` prints and ``plan --out``
saves. Renderers and ``apply`` only read it.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime

from keystate import __version__, kinds
from keystate.diff import DESCRIPTION, PROTECT, AccountDiff, Change
from keystate.kinds import JSONValue
from keystate.model import Action, KeySpec, LiveKey
from keystate.providers.base import ProviderSchema

FORMAT_VERSION = "1"
DEFAULT_MAX_DELETE_RATIO = 0.25
RATIO_MIN_MANAGED = 4
REMOVALS = (Action.DELETE, Action.DISABLE)
CREATING = (Action.CREATE, Action.REPLACE)


@dataclass(frozen=True)
class Plan:
    accounts: tuple[AccountDiff, ...]
    owner: str | None
    created_at: datetime
    warnings: tuple[str, ...] = ()

    @property
    def changes(self) -> Iterator[Change]:
        for account in self.accounts:
            yield from account.changes

    @property
    def has_changes(self) -> bool:
        return any(account.changes for account in self.accounts)

    @property
    def refusals(self) -> tuple[str, ...]:
        return tuple(r for account in self.accounts for r in account.refusals)

    def counts(self) -> dict[str, int]:
        counts = {action.value: 0 for action in Action}
        for change in self.changes:
            counts[change.action.value] += 1
        counts["unchanged"] = sum(a.unchanged for a in self.accounts)
        counts["unmanaged"] = sum(len(a.unmanaged) for a in self.accounts)
        return counts

    def gate(self, *, force: bool, max_delete_ratio: float, secrets_sink: bool) -> list[str]:
        """Reasons to refuse applying this plan (empty: go ahead)."""
        reasons = list(self.refusals)
        if not force:
            for account in self.accounts:
                removals = [c for c in account.changes if c.action in REMOVALS and not c.note]
                managed = account.managed
                if managed >= RATIO_MIN_MANAGED and len(removals) > max_delete_ratio * managed:
                    reasons.append(
                        f"{account.account.name}: the plan removes {len(removals)} of {managed} "
                        f"managed keys ({len(removals) / managed:.0%}), more than the "
                        f"--max-delete-ratio of {max_delete_ratio:.0%}; check the configuration, "
                        "then re-run with --force if you mean it"
                    )
        creating = [c for c in self.changes if c.action in CREATING or c.delivers_value]
        if creating and not secrets_sink:
            names = ", ".join(c.address for c in creating[:3]) + (
                ", ..." if len(creating) > 3 else ""
            )
            reasons.append(
                f"the plan creates {len(creating)} key value(s) ({names}) and no --secrets-out "
                "was given, so the new values would be lost; pass --secrets-out FILE (or - for "
                "standard output)"
            )
        return reasons

    def to_dict(self) -> dict[str, JSONValue]:
        counts = self.counts()
        return {
            "format_version": FORMAT_VERSION,
            "keystate_version": __version__,
            "created_at": kinds.format_timestamp(self.created_at),
            "owner": self.owner,
            "accounts": [_account_json(a) for a in self.accounts],
            "changes": [_change_json(a.schema, c) for a in self.accounts for c in a.changes],
            "summary": {k: v for k, v in counts.items()},
            "warnings": list(self.warnings),
            "refusals": list(self.refusals),
        }


def new_plan(accounts: list[AccountDiff], owner: str | None, warnings: list[str]) -> Plan:
    ordered = tuple(sorted(accounts, key=lambda a: a.account.name))
    notices = [n for a in ordered for n in a.notices]
    return Plan(ordered, owner, datetime.now(UTC), (*warnings, *notices))


def _account_json(account: AccountDiff) -> JSONValue:
    settings: dict[str, JSONValue] = {}
    for key, value in account.account.describe().items():
        settings[key] = value if isinstance(value, str) else list(value)
    return {
        "name": account.account.name,
        "provider": account.schema.name,
        "settings": settings,
        "removal": account.account.removal,
        "timeout": account.account.timeout,
        "max_attempts": account.account.max_attempts,
        "wait_timeout": account.account.wait_timeout,
        "managed": account.managed,
        "unchanged": account.unchanged,
        "unmanaged": len(account.unmanaged),
        "foreign": account.foreign,
    }


def desired_view(schema: ProviderSchema, spec: KeySpec) -> dict[str, JSONValue]:
    view: dict[str, JSONValue] = {DESCRIPTION: spec.description, PROTECT: spec.protect}
    for fspec in schema.fields:
        view[fspec.name] = kinds.to_json(spec.fields.get(fspec.name, fspec.default))
    return view


def live_view(schema: ProviderSchema, key: LiveKey) -> dict[str, JSONValue]:
    marker = key.marker
    view: dict[str, JSONValue] = {
        DESCRIPTION: key.description,
        PROTECT: bool(marker and marker.protect),
    }
    if marker is not None and marker.pending:
        view["pending"] = True
    if key.status is not None:
        view["status"] = key.status
    if key.exposed:
        view["exposure"] = key.exposure
    for fspec in schema.fields:
        view[fspec.name] = kinds.to_json(key.fields.get(fspec.name, fspec.default))
    return view


def _change_json(schema: ProviderSchema, change: Change) -> JSONValue:
    out: dict[str, JSONValue] = {
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
    if change.note:
        out["note"] = change.note
    if change.delivers_value:
        out["delivers_value"] = True
    return out
