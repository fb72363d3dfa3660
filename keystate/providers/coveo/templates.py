"""Plan-time checks of keys made from a template (coveo-api.md §4.5, §6): what Coveo
would refuse, found before any write — an unknown template, one the caller may not
generate keys from (eligibility), an expiry beyond its ``enforcedLifetimePeriod``."""

from __future__ import annotations

import difflib
from collections.abc import Mapping, Sequence
from datetime import datetime, timedelta
from typing import Any

from keystate.errors import Problem
from keystate.model import KeySpec
from keystate.providers.coveo.wire import period_end, privilege_from_json


def check(
    specs: Sequence[KeySpec],
    templates: Mapping[str, Mapping[str, Any]],
    eligibility: Mapping[str, Mapping[str, Any]],
    org: str,
    now: datetime,
) -> list[Problem]:
    """One problem per refusal, at the key's place."""
    problems: list[Problem] = []
    for spec in sorted(specs, key=lambda s: s.name):
        name = str(spec.fields.get("template"))
        template = templates.get(name)
        if template is None:
            problems.append(_unknown(spec, name, templates, org))
            continue
        verdict = eligibility.get(name)
        if verdict is not None and verdict.get("canGenerate") is False:
            problems.append(_not_eligible(spec, name, verdict, org))
        too_long = _beyond_lifetime(spec, name, template, now)
        if too_long is not None:
            problems.append(too_long)
    return problems


def _unknown(
    spec: KeySpec, name: str, templates: Mapping[str, Mapping[str, Any]], org: str
) -> Problem:
    close = difflib.get_close_matches(name, sorted(templates), n=1)
    hint = f"; did you mean {close[0]!r}?" if close else ""
    known = ", ".join(sorted(templates)) or "none"
    return Problem(
        f"{spec.address}: template {name!r} does not exist in organization {org}{hint} "
        f"(templates: {known})",
        spec.where("template"),
    )


def _not_eligible(spec: KeySpec, name: str, verdict: Mapping[str, Any], org: str) -> Problem:
    missing: list[str] = []
    for item in verdict.get("missingPrivileges") or []:
        try:
            missing += [str(p) for p in privilege_from_json(item)]
        except (ValueError, AttributeError, TypeError):
            continue
    return Problem(
        f"{spec.address}: the token may not create keys from template {name!r} in "
        f"organization {org}: it lacks "
        f"{', '.join(sorted(missing)) or 'privileges the template grants'} "
        "(a key can only be given privileges its creator holds)",
        spec.where("template"),
    )


def _beyond_lifetime(
    spec: KeySpec, name: str, template: Mapping[str, Any], now: datetime
) -> Problem | None:
    cap = template.get("enforcedLifetimePeriod")
    expires = spec.fields.get("expires_at")
    end = period_end(cap, now) if isinstance(cap, str) else None
    if end is None or not isinstance(expires, datetime) or expires <= end + timedelta(days=1):
        return None
    return Problem(
        f"{spec.address}: expires_at {expires.date().isoformat()} is beyond template "
        f"{name!r}'s maximum lifetime {cap} (keys made from it now expire by "
        f"{end.date().isoformat()}); declare an earlier expires_at, or leave it out to get "
        "the template's maximum",
        spec.where("expires_at"),
    )
