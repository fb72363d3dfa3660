"""Least-privilege lint (DESIGN §10): warnings about keys that grant more than they need.

Rules are small functions of a declared key. Rules that only make sense for one
provider's fields live in that provider's schema (``ProviderSchema.lint_rules``); the
generic ones live here. Every warning names the key and ``file:line`` and carries its
rule id; ``lint_ignore: [rule-id]`` on a key silences it, and ``validate --strict`` turns
warnings into errors.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import datetime, timedelta

from keystate.errors import Problem, Severity
from keystate.model import KeySpec
from keystate.providers.base import LintRule, ProviderSchema

EXPIRY_WARNING = timedelta(days=14)


def _no_expiry(spec: KeySpec, now: datetime) -> tuple[str, str] | None:
    if "expires_at" in spec.fields and spec.fields.get("expires_at") is None:
        return "expires_at", "has no expires_at: a leaked key would work forever"
    return None


def _expires_soon(spec: KeySpec, now: datetime) -> tuple[str, str] | None:
    expiry = spec.fields.get("expires_at")
    if isinstance(expiry, datetime) and expiry - now < EXPIRY_WARNING:
        days = max(0, (expiry - now).days)
        return "expires_at", f"expires in {days} day(s); plan its renewal"
    return None


GENERIC_RULES: tuple[LintRule, ...] = (
    LintRule("no-expiry", "Keys should expire.", _no_expiry),
    LintRule("expires-soon", "A key expires within 14 days.", _expires_soon),
)
CONFIG_RULES: Mapping[str, str] = {
    "literal-credential": "A credential is written in the configuration file.",
}


def rules_for(schema: ProviderSchema) -> tuple[LintRule, ...]:
    return GENERIC_RULES + schema.lint_rules


def all_rule_ids(schemas: Iterable[ProviderSchema]) -> list[str]:
    ids = {r.id for r in GENERIC_RULES} | set(CONFIG_RULES)
    for schema in schemas:
        ids |= {r.id for r in schema.lint_rules}
    return sorted(ids)


def lint_key(schema: ProviderSchema, spec: KeySpec, now: datetime) -> list[Problem]:
    problems: list[Problem] = []
    for rule in rules_for(schema):
        if rule.id in spec.lint_ignore:
            continue
        found = rule.check(spec, now)
        if found is None:
            continue
        field, message = found
        problems.append(
            Problem(f"{spec.address} {message}", spec.where(field), Severity.WARNING, rule.id)
        )
    return problems
