"""``--format json``: the versioned plan document (:mod:`keystate.planfile`).

Documented in docs/plan-format.md.
"""

from __future__ import annotations

from keystate import planfile
from keystate.plan import Plan
from keystate.render import RenderOptions


def render(plan: Plan, options: RenderOptions) -> str:
    return planfile.dumps(planfile.document(plan, unmanaged=options.show_unmanaged))
