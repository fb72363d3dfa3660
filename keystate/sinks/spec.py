"""The ``secrets:`` configuration: named sinks, the default, and placeholders.

A sink's settings may use placeholders, filled in per delivered key: ``{account}``,
``{name}``, ``{name_upper}`` (the name in upper case, every other character ``_``: a
valid environment or GitHub secret name), ``{owner}`` (the configuration's ``owner:``,
or empty) and ``{fingerprint}`` (SHA-256 of the value). ``{{`` and ``}}`` are literal
braces. Pure and cheap: the configuration loader imports it.
"""

from __future__ import annotations

import re
import string
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Final

from keystate.model import Location

PLACEHOLDERS: Final = ("account", "name", "name_upper", "owner", "fingerprint")
# The name --secrets-out takes when no default sink is configured (not a valid sink
# name, so it never collides with one).
SECRETS_OUT: Final = "--secrets-out"
DEFAULT_EXEC_TIMEOUT: Final = 30.0
_NOT_WORD = re.compile(r"[^A-Za-z0-9]")


def placeholder_problems(text: str) -> list[str]:
    """What is wrong with the placeholders of one setting (empty: nothing)."""
    try:
        parts = list(string.Formatter().parse(text))
    except ValueError as exc:
        return [f"{text!r}: {exc}; write {{{{ and }}}} for literal braces"]
    problems: list[str] = []
    for _, name, spec, conversion in parts:
        if name is None:
            continue
        if name not in PLACEHOLDERS:
            known = ", ".join(f"{{{p}}}" for p in PLACEHOLDERS)
            problems.append(f"unknown placeholder {{{name}}} in {text!r} (known: {known})")
        elif spec or conversion:
            problems.append(f"placeholder {{{name}}} in {text!r} takes no format or conversion")
    return problems


@dataclass(frozen=True)
class Placeholders:
    """The values of the placeholders for one delivered key."""

    account: str
    name: str
    owner: str | None
    fingerprint: str

    def fill(self, text: str) -> str:
        return text.format_map(
            {
                "account": self.account,
                "name": self.name,
                "name_upper": _NOT_WORD.sub("_", self.name).upper(),
                "owner": self.owner or "",
                "fingerprint": self.fingerprint,
            }
        )


@dataclass(frozen=True)
class FileSinkSpec:
    """A 0600 JSON-lines file (appended), or ``-`` for standard output."""

    path: str
    # Relative paths are relative to the directory of the file that declared the sink.
    base_dir: Path | None = None

    def resolve(self, values: Placeholders) -> str:
        filled = values.fill(self.path)
        if filled == "-" or self.base_dir is None:
            return filled
        return str(self.base_dir / filled)

    def resolve_static(self) -> str:
        """The path of a sink that uses no placeholder."""
        if self.path == "-" or self.base_dir is None:
            return self.path
        return str(self.base_dir / self.path)


@dataclass(frozen=True)
class ExecSinkSpec:
    """A command (argument list, no shell) that reads the value on standard input."""

    argv: tuple[str, ...]
    timeout: float = DEFAULT_EXEC_TIMEOUT


@dataclass(frozen=True)
class AwsSinkSpec:
    """An AWS Secrets Manager secret (created if absent, else a new version)."""

    region: str
    name: str
    endpoint_url: str | None = None


SinkSettings = FileSinkSpec | ExecSinkSpec | AwsSinkSpec


@dataclass(frozen=True)
class SinkSpec:
    name: str
    settings: SinkSettings
    location: Location | None = field(default=None, compare=False)

    @property
    def kind(self) -> str:
        if isinstance(self.settings, FileSinkSpec):
            return "file"
        if isinstance(self.settings, ExecSinkSpec):
            return "exec"
        return "aws_secrets_manager"


@dataclass(frozen=True)
class SecretsConfig:
    """``secrets:``: the named sinks, the default one, and where rescue files go."""

    sinks: Mapping[str, SinkSpec] = field(default_factory=dict)
    default: str | None = None
    rescue_dir: Path | None = None

    @property
    def default_sinks(self) -> tuple[str, ...]:
        return (self.default,) if self.default else ()
