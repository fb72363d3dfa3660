"""keystate: a declarative, Terraform-style reconciler for SaaS API-key permissions.

Data flows one way::

    YAML -> config -> desired KeySpecs
    provider -> live keys
    diff -> changes -> plan (ordered, checked) -> render / apply

Only ``keystate.providers`` knows HTTP paths and JSON shapes; only ``keystate.cli``
writes to the terminal.
"""

__version__ = "0.1.0"
