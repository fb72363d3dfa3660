"""``--format text``: a plan that reads like Terraform's.

A legend of the symbols used, one block per changed key headed
``# <account>/<name> will be ...``, changed fields as ``before -> after`` (members of
sets and query strings one per line), a footer with the counts, and the unmanaged keys
counted (listed with ``--show-unmanaged``), then the plan's warnings (e.g. a check the
credential could not run). Keys without changes are counted, not shown.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace

import click

from keystate import kinds
from keystate.compare import marker_for
from keystate.contract import Kind, ProviderSchema
from keystate.durations import format_duration, format_left
from keystate.model import Action, FieldValue, KeySpec, LiveKey, format_retire
from keystate.plan import DESCRIPTION, PROTECT, STATUS, AccountDiff, Change, FieldChange, Plan
from keystate.render import RenderOptions, counts_text

_HEADINGS = {
    Action.CREATE: "will be created",
    Action.ADOPT: "will be adopted (brought under management; its value does not change)",
    Action.UPDATE: "will be updated in-place",
    Action.REPLACE: "must be replaced",
    Action.DELETE: "will be deleted",
    Action.DISABLE: "will be disabled",
    Action.ROTATE: "will be rotated (a new key value; the old one retires after the overlap)",
    Action.RETIRE: "will be retired (the old key of a rotation)",
    Action.RENAME: "will be renamed (its value does not change)",
    Action.FORGET: "will be forgotten (marker removed; the key stays live, unmanaged)",
}
_LEGEND = {
    Action.CREATE: "create",
    Action.ADOPT: "adopt (update in-place, bringing an existing key under management)",
    Action.UPDATE: "update in-place",
    Action.REPLACE: "create replacement and then delete (the key value changes)",
    Action.DELETE: "delete",
    Action.DISABLE: "disable",
    Action.ROTATE: "rotate (create a successor, deliver its value, then retire the old key)",
    Action.RETIRE: "retire (delete or disable a rotated-out key)",
    Action.RENAME: "rename (rewrite the marker; the value does not change)",
    Action.FORGET: "forget (remove the marker; the key stays live, unmanaged)",
}
_COLORS = {"+": "green", "~": "yellow", "-": "red", "+/-": "magenta", "-/": "cyan"}

Style = Callable[[str, str], str]


def _styler(color: bool) -> Style:
    if not color:
        return lambda text, _symbol: text
    return lambda text, symbol: click.style(text, fg=_COLORS.get(symbol))


def render(plan: Plan, options: RenderOptions) -> str:
    style = _styler(options.color)
    lines: list[str] = []
    changes = list(plan.changes)
    lines += drift_note(plan)
    if changes:
        lines += _legend(changes, style)
        lines += ["", "keystate will perform the following actions:", ""]
        for account in plan.accounts:
            for change in account.changes:
                lines += _block(account.schema, change, style, plan.owner)
                lines += _sinks(plan.deliver_to(change))
                lines.append("")
    if plan.refusals:
        lines += ["keystate refuses to apply this plan:", ""]
        lines += [f"{style('  !', '-')} {reason}" for reason in plan.refusals]
        lines.append("")
    lines += _footer(plan)
    for account in plan.accounts:
        lines += _unmanaged(account, options.show_unmanaged)
        lines += _foreign(account)
    lines += [f"\nWarning: apply will need --force: {reason}" for reason in plan.needs_force()]
    if plan.warnings:
        lines.append("")
        lines += [f"Warning: {warning}" for warning in plan.warnings]
    return "\n".join(lines) + "\n"


def drift_note(plan: Plan) -> list[str]:
    """Terraform's "Objects have changed outside of Terraform": the keys that changed on
    the live side while their configuration stayed what keystate last wrote."""
    drift = plan.drift
    if not drift:
        return []
    lines = [
        "Note: keys changed outside of keystate (drift)",
        "",
        "keystate last wrote these keys as the configuration still declares them; since then",
        "they were changed elsewhere (a dashboard, a script). The plan below puts them back:",
        "",
    ]
    for change in drift:
        lines.append(f"  ~ {change.address}: {', '.join(change.changed_fields)}")
    return [*lines, ""]


def _legend(changes: list[Change], style: Style) -> list[str]:
    used = sorted({c.action for c in changes}, key=lambda a: a.order)
    lines = ["Key actions are indicated with the following symbols:"]
    for action in used:
        symbol = action.symbol
        lines.append(f"{style(symbol.rjust(5), symbol)} {_LEGEND[action]}")
    return lines


def _block(schema: ProviderSchema, change: Change, style: Style, owner: str | None) -> list[str]:
    symbol = change.action.symbol
    lines = [f"  # {change.address} {_HEADINGS[change.action]}"]
    if change.note:
        lines.append(f"  # ({change.note})")
    lines += _lifecycle_lines(change)
    lines.append(f'{style(symbol.rjust(3), symbol)} key "{change.address}" {{')
    if change.live is not None:
        lines.append(f"        ref = {change.live.ref}")
    if change.action is Action.CREATE and change.desired is not None:
        lines += _all_fields(schema, change.desired, "+", style)
    elif change.action in _REMOVING and change.live is not None:
        lines += _live_fields(schema, change.live, "-", style)
    else:
        if change.action is Action.ADOPT and change.desired is not None:
            marker = replace(marker_for(schema, change.desired, owner), digest=None).render()
            lines.append(f"        # the stored description gets the ownership marker {marker}")
        lines += _changed_fields(schema, change, style)
        shown = len([f for f in change.fields if f.name != STATUS])
        hidden = len(schema.fields) + 2 - shown
        if hidden > 0:
            lines.append(
                f"        # ({hidden} unchanged attribute{'s' if hidden != 1 else ''} hidden)"
            )
    lines.append("    }")
    if change.action is Action.REPLACE:
        lines.append(
            f"  Warning: replacing {change.address} creates a NEW KEY VALUE; the old value stops "
            "working once the new one is delivered."
        )
    return lines


def _sinks(sinks: tuple[str, ...]) -> list[str]:
    """Where a new value goes (keys without a configured sink: --secrets-out, not shown)."""
    return [f"  New value delivered to: {', '.join(sinks)}"] if sinks else []


_REMOVING = (Action.DELETE, Action.DISABLE, Action.RETIRE, Action.FORGET)


def _lifecycle_lines(change: Change) -> list[str]:
    """Why a lifecycle change happens and what happens to the old key."""
    if change.action is Action.RENAME:
        return [f"  # (renamed from {change.detail}: same key, same value)"]
    lines = [f"  # ({change.detail})"] if change.detail else []
    if change.action is Action.ROTATE:
        if change.overlap:
            lines.append(
                f"  # (the old key keeps working for {format_duration(change.overlap)} after "
                "the new value is delivered, then stops)"
            )
        else:
            lines.append("  # (the old key is retired as soon as the new value is delivered)")
    return lines


def _row(symbol: str, name: str, value: str, width: int, style: Style) -> str:
    return f"      {style(symbol, symbol)} {name.ljust(width)} = {value}"


def _all_fields(schema: ProviderSchema, spec: KeySpec, symbol: str, style: Style) -> list[str]:
    values: list[tuple[str, FieldValue]] = []
    if spec.description:
        values.append((DESCRIPTION, spec.description))
    if spec.protect:
        values.append((PROTECT, True))
    for fspec in schema.fields:
        value = spec.fields.get(fspec.name, fspec.default)
        if not kinds.is_default(fspec, value):
            values.append((fspec.name, value))
    return _rows(values, symbol, style)


def _live_fields(schema: ProviderSchema, key: LiveKey, symbol: str, style: Style) -> list[str]:
    values: list[tuple[str, FieldValue]] = []
    if key.description:
        values.append((DESCRIPTION, key.description))
    for fspec in schema.fields:
        value = key.fields.get(fspec.name, fspec.default)
        if not kinds.is_default(fspec, value):
            values.append((fspec.name, value))
    return _rows(values, symbol, style)


def _rows(values: list[tuple[str, FieldValue]], symbol: str, style: Style) -> list[str]:
    width = max((len(name) for name, _ in values), default=0)
    return [_row(symbol, name, kinds.to_text(value), width, style) for name, value in values]


def _changed_fields(schema: ProviderSchema, change: Change, style: Style) -> list[str]:
    width = max((len(f.name) for f in change.fields), default=0)
    maps = {f.name for f in schema.fields if f.kind is Kind.QUERY}
    lines: list[str] = []
    for fc in sorted(change.fields, key=lambda f: f.name):
        lines += _field_change(fc, width, style, fc.name in maps)
    return lines


def _field_change(fc: FieldChange, width: int, style: Style, is_map: bool) -> list[str]:
    suffix = " # forces replacement" if fc.forces_replacement else ""
    if fc.members:
        lines = [_row("~", fc.name, "{" if is_map else "[", width, style)]
        for symbol, text in fc.members:
            lines.append(f"          {style(symbol, symbol)} {text}")
        kept = _unchanged_members(fc)
        if kept:
            lines.append(
                f"            # ({kept} unchanged element{'s' if kept != 1 else ''} hidden)"
            )
        lines.append(f"        {'}' if is_map else ']'}{suffix}")
        return lines
    before, after = kinds.to_text(fc.before), kinds.to_text(fc.after)
    return [_row("~", fc.name, f"{before} -> {after}{suffix}", width, style)]


def _unchanged_members(fc: FieldChange) -> int:
    if isinstance(fc.before, frozenset) and isinstance(fc.after, frozenset):
        return len(fc.before & fc.after)
    return 0


def _footer(plan: Plan) -> list[str]:
    lines = [
        f"{a.account.name}/{r.name} ({r.ref}) retires in "
        f"{format_left(r.retire_at - plan.created_at)} (at {format_retire(r.retire_at)}): the "
        "old key of a rotation, still working."
        for a in plan.accounts
        for r in a.retiring
    ]
    lines += [""] if lines else []
    if not plan.has_changes and plan.refusals:
        n = len(plan.refusals)
        refused = f"No changes can be applied: {n} refusal{'s' if n != 1 else ''} (above)."
        return [*lines, refused]
    if not plan.has_changes:
        return [*lines, "No changes. Live keys match the configuration."]
    return [*lines, f"Plan: {counts_text(plan.counts())}."]


def _foreign(account: AccountDiff) -> list[str]:
    n = account.foreign
    if not n:
        return []
    return [
        f"{account.account.name}: {n} key{'s' if n != 1 else ''} of other owners "
        "(their markers name another owner; never changed by this configuration)."
    ]


def _unmanaged(account: AccountDiff, show: bool) -> list[str]:
    keys = account.unmanaged
    if not keys:
        return []
    n = len(keys)
    lines = [
        f"{account.account.name}: {n} unmanaged key{'s' if n != 1 else ''} "
        f"(never changed by keystate{'' if show else '; --show-unmanaged lists them'})."
    ]
    if show:
        first = account.schema.fields[0]
        for key in sorted(keys, key=lambda k: k.ref):
            grants = kinds.to_text(key.fields.get(first.name, first.default))
            description = f"  {key.description!r}" if key.description else ""
            lines.append(f"    {key.ref}  {first.name} = {grants}{description}")
    return lines
