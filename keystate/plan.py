"""The Plan and its parts: what changes, in what order, and whether it may be applied.

* :class:`FieldChange` — one field of one key, before -> after.
* :class:`Change` — one action on one key (:class:`~keystate.model.Action`), with the
  :class:`Reason` when it is not the plain consequence of the configuration.
* :class:`AccountDiff` — an account's changes and counts, made by :mod:`keystate.diff`.
* :class:`Plan` — every account's diff; it counts itself and checks itself against the
  safety gates (DESIGN §6).

Its document form (``plan --format json``, ``plan --out``) is :mod:`keystate.planfile`.
Renderers and ``apply`` only read a plan.
"""

from __future__ import annotations

from collections.abc import Collection, Iterator
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from enum import Enum
from typing import Final

from keystate.contract import AccountConfig, ProviderSchema
from keystate.model import LIFECYCLE, Action, FieldValue, KeySpec, LiveKey

# keystate's own key attributes, next to the provider's fields in diffs and documents.
DESCRIPTION: Final = "description"
PROTECT: Final = "protect"
# The pseudo-field of a lapsing key kept alive (ProviderSchema.lapsing_statuses).
STATUS: Final = "status"
DEFAULT_MAX_DELETE_RATIO: Final = 0.25
RATIO_MIN_MANAGED: Final = 4
REMOVALS: Final = (Action.DELETE, Action.DISABLE)
CREATING: Final = (Action.CREATE, Action.REPLACE, Action.ROTATE)


class Reason(Enum):
    """Why a change is planned, when it is not simply what the configuration asks for.

    Safety decisions read the reason, never the human-readable note it comes with.
    """

    EXPIRED = "expired"
    DRIFT = "drift"
    FINISH_CREATE = "finish_create"
    ORPHANED_CREATE = "orphaned_create"
    LEFTOVER_OF_CREATE = "leftover_of_create"
    LEFTOVER_OF_REPLACE = "leftover_of_replace"
    ROTATION_DUE = "rotation_due"
    REPLACE_REQUESTED = "replace_requested"
    EXPOSED = "exposed"
    RETIRE_DUE = "retire_due"

    @property
    def note(self) -> str:
        return _NOTES[self]

    @property
    def finishes_earlier_apply(self) -> bool:
        """A removal that cleans up after an interrupted apply: it is no deletion the
        configuration asked for, so the mass-deletion gate does not count it."""
        return self in (Reason.LEFTOVER_OF_CREATE, Reason.LEFTOVER_OF_REPLACE)

    @classmethod
    def from_note(cls, note: str) -> Reason | None:
        return next((r for r in cls if r.note == note), None)


_NOTES: Final = {
    Reason.EXPIRED: "the live key has expired",
    Reason.DRIFT: "changed outside keystate since keystate last wrote it (drift)",
    Reason.FINISH_CREATE: "finishes an interrupted create: its value goes to --secrets-out again",
    Reason.ORPHANED_CREATE: (
        "an interrupted create left this key, and its value cannot be read back"
    ),
    Reason.LEFTOVER_OF_CREATE: "left over from an interrupted create",
    # The old key of a replace that outlived it: the declared key of that name exists, so
    # removing the old one waits for nothing else (apply).
    Reason.LEFTOVER_OF_REPLACE: "left over from an interrupted replace",
    Reason.ROTATION_DUE: "the key's rotation is due",
    Reason.REPLACE_REQUESTED: "replacement requested with --replace",
    Reason.EXPOSED: "the provider reports this key exposed: it is replaced now, with no overlap",
    # Asked for by the configuration in an earlier, applied plan (the rotation that
    # marked the key retiring): not held back by the mass-deletion gate.
    Reason.RETIRE_DUE: "the overlap of an earlier rotation has ended",
}


@dataclass(frozen=True, slots=True)
class FieldChange:
    name: str
    before: FieldValue
    after: FieldValue
    forces_replacement: bool = False
    # Member-level detail for structured values: (symbol, text) pairs.
    members: tuple[tuple[str, str], ...] = ()


@dataclass(frozen=True, slots=True)
class Change:
    action: Action
    account: str
    provider: str
    name: str
    desired: KeySpec | None = None
    live: LiveKey | None = None
    fields: tuple[FieldChange, ...] = ()
    reason: Reason | None = None
    # Finishing an interrupted create: deliver the live key's value to the sink again.
    delivers_value: bool = False
    # ROTATE: how long the predecessor keeps working after the successor's value is
    # delivered (0: it is retired in the same apply).
    overlap: timedelta | None = None
    # What the reason is about, for people (e.g. "age 93d >= every 90d", or an exposure
    # report's summary).
    detail: str = ""

    @property
    def address(self) -> str:
        return f"{self.account}/{self.name}"

    @property
    def note(self) -> str:
        return self.reason.note if self.reason is not None else ""

    @property
    def gives_value(self) -> bool:
        """Whether applying it delivers a key value to the secrets sinks."""
        return self.action in CREATING or self.delivers_value

    @property
    def changed_fields(self) -> tuple[str, ...]:
        return tuple(f.name for f in self.fields)

    @property
    def forces_replacement(self) -> tuple[str, ...]:
        return tuple(f.name for f in self.fields if f.forces_replacement)

    def sort_key(self) -> tuple[int, str]:
        return (self.action.order, self.name)


@dataclass(frozen=True)
class AccountDiff:
    account: AccountConfig
    schema: ProviderSchema
    changes: tuple[Change, ...]
    unchanged: int
    managed: int
    unmanaged: tuple[LiveKey, ...]
    foreign: int
    refusals: tuple[str, ...] = ()
    # Refs of every live key the plan was made from: a key with our marker that is not
    # among them appeared since, e.g. made by another apply running at the same time.
    seen: frozenset[str] = frozenset()
    # Predecessors of rotations still in their overlap (shown, not changed).
    retiring: tuple[Retiring, ...] = ()
    # What a reviewer must know that changes nothing (a key reported exposed, a
    # `previously:` that matches nothing...): plan warnings.
    warnings: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class Retiring:
    """A retiring key still in its overlap: it keeps working until ``retire_at``."""

    name: str
    ref: str
    retire_at: datetime


@dataclass(frozen=True)
class Plan:
    accounts: tuple[AccountDiff, ...]
    owner: str | None
    created_at: datetime
    warnings: tuple[str, ...] = ()
    # Where new values go when a key names no sink (the configuration's default sink).
    default_sinks: tuple[str, ...] = ()

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

    @property
    def drift(self) -> tuple[Change, ...]:
        """Changes that put back keys changed outside keystate (Reason.DRIFT)."""
        return tuple(c for c in self.changes if c.reason is Reason.DRIFT)

    def needs_force(self, max_delete_ratio: float = DEFAULT_MAX_DELETE_RATIO) -> list[str]:
        """Why ``apply`` would need ``--force`` (the mass-removal gate), for reviewers."""
        return [r for a in self.accounts if (r := _mass_removal(a, max_delete_ratio)) is not None]

    def drift_only(self) -> Plan:
        """This plan cut down to its drift (``plan --drift-only``): no refusal, nothing the
        configuration asks for anew."""
        accounts = tuple(
            replace(
                a,
                changes=tuple(c for c in a.changes if c.reason is Reason.DRIFT),
                refusals=(),
            )
            for a in self.accounts
        )
        return replace(self, accounts=accounts)

    def only(self, addresses: Collection[str]) -> Plan:
        """This plan limited to the keys at ``addresses`` (``--target``): their changes
        and refusals, nothing else."""

        def wanted(refusal: str) -> bool:
            return any(refusal.startswith((f"{a} ", f"{a}:")) for a in addresses)

        accounts = tuple(
            replace(
                a,
                changes=tuple(c for c in a.changes if c.address in addresses),
                refusals=tuple(r for r in a.refusals if wanted(r)),
            )
            for a in self.accounts
        )
        return replace(self, accounts=accounts)

    def counts(self) -> dict[str, int]:
        """Changes per action (lifecycle actions only when the plan has them), then
        unchanged and unmanaged keys."""
        counts = {action.value: 0 for action in Action if action not in LIFECYCLE}
        for change in self.changes:
            counts[change.action.value] = counts.get(change.action.value, 0) + 1
        counts["unchanged"] = sum(a.unchanged for a in self.accounts)
        counts["unmanaged"] = sum(len(a.unmanaged) for a in self.accounts)
        return counts

    def deliver_to(self, change: Change) -> tuple[str, ...]:
        """The sinks a change delivers a new value to (empty: none configured, so only
        ``--secrets-out`` can take it; also empty for changes that make no value)."""
        if change.desired is None or not change.gives_value:
            return ()
        return change.desired.deliver_to or self.default_sinks

    def gate(self, *, force: bool, max_delete_ratio: float, secrets_sink: bool) -> list[str]:
        """Reasons to refuse applying this plan (empty: go ahead). ``secrets_sink``:
        ``--secrets-out`` was given; without it, every new value needs a configured sink."""
        reasons = list(self.refusals)
        if not force:
            reasons += self.needs_force(max_delete_ratio)
        creating = [c for c in self.changes if c.gives_value and not self.deliver_to(c)]
        if creating and not secrets_sink:
            names = ", ".join(c.address for c in creating[:3]) + (
                ", ..." if len(creating) > 3 else ""
            )
            reasons.append(
                f"the plan creates {len(creating)} key value(s) ({names}) with no secrets sink "
                "configured, and no --secrets-out was given, so the new values would be lost; "
                "pass --secrets-out FILE (or - for standard output), or configure secrets: "
                "sinks (docs/secrets.md)"
            )
        return reasons

    def only_actions(self, actions: frozenset[Action]) -> Plan:
        """This plan with only the changes of these actions (``--only``)."""
        return replace(
            self,
            accounts=tuple(
                replace(a, changes=tuple(c for c in a.changes if c.action in actions))
                for a in self.accounts
            ),
        )


def removes_now(change: Change) -> bool:
    """Whether a change takes a key out of service in this apply, as the mass-deletion
    gate counts it: deletions, disables, retirements and rotations without overlap —
    except removals that finish an earlier apply, retirements an earlier applied plan
    scheduled, and replacements of exposed or explicitly named (--replace) keys."""
    reason = change.reason
    if reason is not None and (
        reason.finishes_earlier_apply
        or reason in (Reason.RETIRE_DUE, Reason.EXPOSED, Reason.REPLACE_REQUESTED)
    ):
        return False
    if change.action is Action.ROTATE:
        return not change.overlap
    return change.action in (*REMOVALS, Action.RETIRE)


def _mass_removal(account: AccountDiff, max_delete_ratio: float) -> str | None:
    removals = [c for c in account.changes if removes_now(c)]
    managed = account.managed
    if managed < RATIO_MIN_MANAGED or len(removals) <= max_delete_ratio * managed:
        return None
    return (
        f"{account.account.name}: the plan removes {len(removals)} of {managed} "
        f"managed keys ({len(removals) / managed:.0%}), more than the "
        f"--max-delete-ratio of {max_delete_ratio:.0%}; check the configuration, "
        "then re-run with --force if you mean it"
    )


def new_plan(
    accounts: list[AccountDiff],
    owner: str | None,
    warnings: list[str],
    default_sinks: tuple[str, ...] = (),
) -> Plan:
    ordered = tuple(sorted(accounts, key=lambda a: a.account.name))
    found = [*warnings, *(w for a in ordered for w in a.warnings)]
    return Plan(ordered, owner, datetime.now(UTC), tuple(found), default_sinks)
