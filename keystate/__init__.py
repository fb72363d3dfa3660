"""keystate: a declarative, Terraform-style reconciler for SaaS API-key permissions.

The public Python API (see :mod:`keystate.api` and docs/architecture.md)::

    config = keystate.load_config("keystate.yaml")
    plan = keystate.make_plan(config)
    print(keystate.render_plan(plan, "markdown"))
    results = keystate.apply_config(config, secrets_out="new-keys.jsonl")

Data flows one way: YAML -> config -> desired KeySpecs; provider -> live keys;
diff -> changes -> plan (ordered, checked) -> render / apply.
"""

from keystate._version import __version__
from keystate.api import (
    apply_config,
    apply_config_async,
    load_config,
    make_plan,
    make_plan_async,
    render_plan,
)

__all__ = [
    "__version__",
    "apply_config",
    "apply_config_async",
    "load_config",
    "make_plan",
    "make_plan_async",
    "render_plan",
]
