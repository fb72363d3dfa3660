"""``--format json``: the versioned plan document (see docs/plan-format.md)."""

from __future__ import annotations

import json

from keystate.plan import Plan
from keystate.render import RenderOptions


def render(plan: Plan, options: RenderOptions) -> str:
    document = plan.to_dict()
    if options.show_unmanaged:
        document["unmanaged"] = [
            {"account": a.account.name, "ref": k.ref, "description": k.description}
            for a in plan.accounts
            for k in a.unmanaged
        ]
    return json.dumps(document, indent=2, ensure_ascii=False) + "\n"
