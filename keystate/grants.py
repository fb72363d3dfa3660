"""Checks declared grants against what an account says can be granted, before any write.

Coveo publishes, per organization, the privileges an API key may receive
(``/privileges/apikeys``). A plan reads that list together with the keys and rejects a
privilege that is not on it here, pointing at the YAML line, so a typo fails in ``plan``
rather than halfway through an ``apply``.
"""

from __future__ import annotations

import difflib
from collections.abc import Mapping

from keystate.contract import Catalogue
from keystate.errors import Problem
from keystate.model import KeySpec, Privilege


def check(account: str, keys: Mapping[str, KeySpec], catalogue: Catalogue) -> list[Problem]:
    """One problem per declared privilege the catalogue does not offer."""
    problems: list[Problem] = []
    offered = {str(e) for e in catalogue.entries}
    for spec in sorted(keys.values(), key=lambda s: s.name):
        if not catalogue.applies(spec):
            continue
        value = spec.fields.get(catalogue.field)
        if not isinstance(value, frozenset):
            continue
        for privilege in sorted(
            (p for p in value if isinstance(p, Privilege)), key=Privilege.sort_key
        ):
            base = Privilege(privilege.owner, privilege.target_domain, privilege.type)
            if base in catalogue.entries:
                continue
            close = difflib.get_close_matches(str(base), sorted(offered), n=3, cutoff=0.6)
            hint = f"; closest valid: {', '.join(close)}" if close else ""
            problems.append(
                Problem(
                    f"{spec.address}: privilege {base} cannot be granted to {catalogue.scope}"
                    f"{hint} (`keystate privileges {account}` lists them)",
                    spec.where(catalogue.field, privilege),
                )
            )
    return problems
