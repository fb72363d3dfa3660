"""Least-privilege lint (DESIGN §10): warnings about keys that grant more than they need.

Rules are small functions of a declared key. Rules that only make sense for one
provider's fields live in that provider's schema (``ProviderSchema.lint_rules``); the
generic ones live here. Every warning names the key and ``file:line`` and carries its
rule id; ``lint_ignore: [rule-id]`` on a key silences it, and ``validate --strict`` turns
warnings into errors.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from datetime import datetime, timedelta

from keystate.contract import LintRule, ProviderSchema
from keystate.errors import Problem, Severity
from keystate.model import KeySpec

EXPIRY_WARNING = timedelta(days=14)
LintCheck = Callable[[KeySpec, datetime], tuple[str, str] | None]


def _no_expiry(schema: ProviderSchema) -> Callable[[KeySpec, datetime], tuple[str, str] | None]:
    expiry = schema.expiry

    def check(spec: KeySpec, now: datetime) -> tuple[str, str] | None:
        if expiry is not None and spec.fields.get(expiry.name) is None and spec.lifetime is None:
            return expiry.name, f"has no {expiry.name}: a leaked key would work forever"
        return None

    return check


def _left(left: timedelta) -> str:
    """``13 days`` for 13 days 20 hours (rounded to the nearest day); hours under a day."""
    hours = round(left.total_seconds() / 3600)
    if hours < 24:
        return f"{hours} hour{'s' if hours != 1 else ''}"
    days = round(left.total_seconds() / 86400)
    return f"{days} day{'s' if days != 1 else ''}"


def _expires_soon(schema: ProviderSchema) -> Callable[[KeySpec, datetime], tuple[str, str] | None]:
    expiry = schema.expiry

    def check(spec: KeySpec, now: datetime) -> tuple[str, str] | None:
        moment = spec.fields.get(expiry.name) if expiry is not None else None
        if isinstance(moment, datetime) and moment - now < EXPIRY_WARNING:
            return (
                expiry.name if expiry else "",
                f"expires in {_left(moment - now)}; plan its renewal",
            )
        return None

    return check


# Rules every provider with an expiry field gets: (id, doc, rule factory).
GENERIC_RULES: tuple[tuple[str, str, Callable[[ProviderSchema], LintCheck]], ...] = (
    ("no-expiry", "Keys should expire.", _no_expiry),
    ("expires-soon", "A key expires within 14 days.", _expires_soon),
)
CONFIG_RULES: Mapping[str, str] = {
    "literal-credential": "A credential is written in the configuration file.",
}


_RULES: dict[int, tuple[ProviderSchema, tuple[LintRule, ...]]] = {}


def rules_for(schema: ProviderSchema) -> tuple[LintRule, ...]:
    """The generic rules made for this schema, then the provider's own (made once)."""
    found = _RULES.get(id(schema))
    if found is None or found[0] is not schema:
        generic = tuple(
            LintRule(rule_id, doc, make(schema)) for rule_id, doc, make in GENERIC_RULES
        )
        found = _RULES[id(schema)] = (schema, generic + schema.lint_rules)
    return found[1]


def all_rule_ids(schemas: Iterable[ProviderSchema]) -> list[str]:
    ids = {rule_id for rule_id, _, _ in GENERIC_RULES} | set(CONFIG_RULES)
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
