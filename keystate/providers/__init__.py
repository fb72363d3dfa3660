"""The provider registry: the one entry point through which keystate reaches a provider.

Each provider registers two loaders, one per half (see :mod:`keystate.contract`): its
schema, imported by ``validate`` and every command, and its ``connect``, imported only
when a command talks to an account (so that ``--help`` and ``validate`` never import the
HTTP stack). The loaders import statically typed names, so mypy checks every provider's
``SCHEMA`` and ``connect`` against the contract.

Adding a provider: write ``keystate/providers/<name>/{schema,api}.py`` and add one
:class:`Registration` below (docs/architecture.md, "Adding a provider").
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Final

from keystate.contract import AccountConfig, ConnectFn, ConnectOptions, Provider, ProviderSchema
from keystate.errors import UsageError


@dataclass(frozen=True)
class Registration:
    """How to load one provider's halves."""

    schema: Callable[[], ProviderSchema]
    connect: Callable[[], ConnectFn]


def _algolia_schema() -> ProviderSchema:
    from keystate.providers.algolia.schema import SCHEMA

    return SCHEMA


def _algolia_connect() -> ConnectFn:
    from keystate.providers.algolia.api import connect

    return connect


def _coveo_schema() -> ProviderSchema:
    from keystate.providers.coveo.schema import SCHEMA

    return SCHEMA


def _coveo_connect() -> ConnectFn:
    from keystate.providers.coveo.api import connect

    return connect


REGISTRY: Final[dict[str, Registration]] = {
    "algolia": Registration(_algolia_schema, _algolia_connect),
    "coveo": Registration(_coveo_schema, _coveo_connect),
}


def _registration(name: str) -> Registration:
    try:
        return REGISTRY[name]
    except KeyError:
        raise UsageError(f"unknown provider {name!r}") from None


def known_providers() -> tuple[str, ...]:
    return tuple(REGISTRY)


def schema_for(name: str) -> ProviderSchema:
    """A provider's schema (imports its schema half only)."""
    return _registration(name).schema()


def connect(account: AccountConfig, options: ConnectOptions) -> Provider:
    """Open a connection to an account (imports the provider's HTTP half).

    A ``sandbox:`` state file that cannot be used (a directory, not JSON, another
    provider's file) is the user's mistake: a UsageError naming the account and file.
    """
    try:
        return _registration(account.provider).connect()(account, options)
    except (OSError, ValueError) as exc:
        sandbox = account.path("sandbox")
        if sandbox is None:
            raise
        reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
        reason = reason.replace(f"{sandbox}: ", "")
        raise UsageError(
            f"account '{account.name}' ({account.location}): sandbox {sandbox}: {reason}; "
            f"point it at a sandbox state file of provider {account.provider} (a new path "
            "starts an empty one)"
        ) from None
