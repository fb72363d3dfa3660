"""The lifecycle options of ``plan`` and ``apply`` (DESIGN §11): ``--replace ADDR``
(repeatable), ``--overlap DURATION`` and ``--only rotate,retire``."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any, Final

import click

from keystate.errors import UsageError

if TYPE_CHECKING:
    from keystate.config import Config
    from keystate.lifecycle import LifecycleOptions
    from keystate.model import Action
    from keystate.plan import Plan

# What --only accepts: the actions that fall due on their own (a nightly lifecycle run).
ONLY_CHOICES: Final = ("rotate", "retire")


def now() -> datetime:
    """The time a plan is made at: what ages and retire times are measured against."""
    return datetime.now(UTC)


def lifecycle_options(f: Callable[..., Any]) -> Callable[..., Any]:
    f = click.option(
        "--only",
        "only",
        metavar="ACTIONS",
        help="Perform only these lifecycle actions that are due, nothing else: "
        "a comma-separated list of rotate, retire (for nightly runs).",
    )(f)
    f = click.option(
        "--overlap",
        "overlap",
        metavar="DURATION",
        default="0",
        show_default=True,
        help="With --replace: how long the old key keeps working (<n>d or <n>h); "
        "0 retires it as soon as the new value is delivered.",
    )(f)
    return click.option(
        "--replace",
        "replace",
        multiple=True,
        metavar="ACCOUNT/NAME",
        help="Rotate this key now: a new key, its value delivered, the old one retired "
        "(repeatable; like terraform -replace).",
    )(f)


@dataclass(frozen=True)
class Lifecycle:
    """The parsed lifecycle options of one command."""

    replace: tuple[str, ...] = ()
    overlap: timedelta = timedelta(0)
    only: frozenset[Action] | None = None

    @classmethod
    def parse(cls, replace: Sequence[str], overlap: str, only: str | None) -> Lifecycle:
        from keystate.config.lifecycle import DURATION_HELP, parse_duration
        from keystate.model import Action

        gap = parse_duration(overlap, zero=True)
        if gap is None:
            raise UsageError(f"--overlap {overlap!r} is not a duration; {DURATION_HELP}, or 0")
        if gap and not replace:
            raise UsageError("--overlap applies to --replace; name the key(s) with --replace")
        actions = None
        if only is not None:
            words = [w.strip() for w in only.split(",") if w.strip()]
            wrong = [w for w in words if w not in ONLY_CHOICES]
            if wrong or not words:
                raise UsageError(
                    f"--only {only!r}: choose from {', '.join(ONLY_CHOICES)} (comma-separated)"
                )
            actions = frozenset(Action(w) for w in words)
        return cls(tuple(dict.fromkeys(replace)), gap, actions)

    def options(self, config: Config, accounts: Sequence[str]) -> LifecycleOptions:
        from keystate.engine import check_replace
        from keystate.lifecycle import LifecycleOptions

        check_replace(config, accounts, self.replace)
        return LifecycleOptions(now(), frozenset(self.replace), self.overlap)

    def narrow(self, the_plan: Plan) -> Plan:
        return the_plan if self.only is None else the_plan.only_actions(self.only)

    @property
    def used(self) -> bool:
        return bool(self.replace) or self.only is not None
