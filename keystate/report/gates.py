"""``--fail-on`` policy gates: rules over a report's rows; a tripped gate exits 2.

| rule | trips on |
|---|---|
| ``unmanaged`` | a key without a keystate marker (the credential keystate runs with excepted) |
| ``no-expiry`` | an active key without an expiry |
| ``unused:<n>d`` | an active key unused for n days (never used: since creation), |
|  | where the provider reports use (Coveo) |
| ``exposed`` | a key the provider reports leaked (active or not) |
| ``older-than:<n>d`` | an active key created more than n days ago |
| ``lint:<rule-id>`` | a key with that least-privilege finding |
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Final

from keystate.errors import UsageError
from keystate.report.model import KeyRow, Manager, Report

_DAYS = re.compile(r"^([1-9][0-9]{0,5})d$")
RULES: Final = (
    "unmanaged",
    "no-expiry",
    "unused:<n>d",
    "exposed",
    "older-than:<n>d",
    "lint:<rule-id>",
)


@dataclass(frozen=True)
class Gate:
    rule: str  # as written, e.g. "unused:90d"
    trips: Callable[[KeyRow, datetime], bool]


@dataclass(frozen=True)
class GateResult:
    rule: str
    keys: tuple[str, ...]  # addresses of the keys that trip it

    @property
    def tripped(self) -> bool:
        return bool(self.keys)


def parse(rules: Iterable[str], lint_rules: Sequence[str]) -> list[Gate]:
    """Gates from ``--fail-on`` values; every bad value is reported at once."""
    gates: list[Gate] = []
    problems: list[str] = []
    for rule in rules:
        gate = _parse_one(rule, lint_rules)
        if isinstance(gate, str):
            problems.append(gate)
        else:
            gates.append(gate)
    if problems:
        raise UsageError("\n".join(problems))
    return gates


def _parse_one(rule: str, lint_rules: Sequence[str]) -> Gate | str:
    name, _, arg = rule.partition(":")
    if name == "unmanaged" and not arg:
        return Gate(rule, lambda row, now: row.manager is Manager.UNMANAGED)
    if name == "no-expiry" and not arg:
        return Gate(rule, lambda row, now: row.active and row.expires_at is None)
    if name == "exposed" and not arg:
        return Gate(rule, lambda row, now: row.exposed)
    if name in ("unused", "older-than"):
        match = _DAYS.match(arg)
        if not match:
            return f"--fail-on {rule}: write {name}:<n>d, e.g. {name}:90d"
        days = int(match.group(1))
        if name == "unused":
            return Gate(rule, lambda row, now: _unused(row, now, days))
        return Gate(rule, lambda row, now: _older(row, now, days))
    if name == "lint" and arg:
        if arg not in lint_rules:
            return f"--fail-on {rule}: unknown lint rule {arg!r} (known: {', '.join(lint_rules)})"
        return Gate(rule, lambda row, now: any(f.rule == arg for f in row.lint))
    return f"--fail-on {rule}: unknown rule (known: {', '.join(RULES)})"


def _unused(row: KeyRow, now: datetime, days: int) -> bool:
    unused = row.days_unused(now)
    return row.active and unused is not None and unused >= days


def _older(row: KeyRow, now: datetime, days: int) -> bool:
    age = row.age_days(now)
    return row.active and age is not None and age > days


def evaluate(report: Report, gates: Sequence[Gate]) -> list[GateResult]:
    now = report.generated_at
    return [
        GateResult(g.rule, tuple(r.address for r in report.rows if g.trips(r, now))) for g in gates
    ]
