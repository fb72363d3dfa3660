"""Configuration: YAML files -> typed accounts and desired keys (DESIGN §2).

The only package that sees YAML. ``load_config`` reports every problem of every file at
once, each with ``file:line:column``, and never makes a network call.
"""

from keystate.config.loader import discover, load_config
from keystate.config.state import Config

__all__ = ["Config", "discover", "load_config"]
