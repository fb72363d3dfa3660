"""Applying a plan: :func:`apply_plan` executes it, :func:`bind_live` checks a saved one.

* :mod:`.run` — the run: accounts at once, each account phase by phase, one result per
  change.
* :mod:`.create` — one key's create path: no duplicates, no lost value.
* :mod:`.wait` — bounded waits for eventually consistent providers.
* :mod:`.stale` — whether a saved plan still matches the live accounts.
"""

from keystate.apply.outcome import DEFAULT_PARALLELISM, ApplyOptions, Outcome, Result
from keystate.apply.run import apply_plan
from keystate.apply.stale import bind_live

__all__ = ["DEFAULT_PARALLELISM", "ApplyOptions", "Outcome", "Result", "apply_plan", "bind_live"]
