"""Reading the ``secrets:`` section (named sinks, the default) and ``deliver_to:``.

Sinks may be declared in any file and referred to from any other: references are
collected with their place and checked once every file is read (:func:`check_refs`).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Final

from keystate.config.nodes import YNode, YScalar, YSeq
from keystate.config.reader import Reader, did_you_mean
from keystate.model import NAME_RE, Location
from keystate.sinks.spec import (
    DEFAULT_EXEC_TIMEOUT,
    AwsSinkSpec,
    ExecSinkSpec,
    FileSinkSpec,
    SecretsConfig,
    SinkSettings,
    SinkSpec,
    placeholder_problems,
)

SECRETS_FIELDS: Final = ("default", "sinks", "rescue_dir")
KINDS: Final = ("file", "exec", "aws_secrets_manager")
AWS_FIELDS: Final = ("region", "name", "endpoint_url")
EXEC_TIMEOUT_MAX: Final = 3600


@dataclass
class SinkState:
    """What the ``secrets:`` sections and ``deliver_to:`` settings of every file say."""

    sinks: dict[str, SinkSpec] = field(default_factory=dict)
    default: tuple[str, Location] | None = None
    rescue_dir: tuple[Path, Location] | None = None
    refs: list[tuple[str, Location]] = field(default_factory=list)
    # An account's deliver_to, inherited by its keys that have none.
    by_account: dict[str, tuple[str, ...]] = field(default_factory=dict)
    # One tuple object per distinct list: thousands of keys share a few.
    _interned: dict[tuple[str, ...], tuple[str, ...]] = field(default_factory=dict)

    def config(self) -> SecretsConfig:
        return SecretsConfig(
            sinks=dict(self.sinks),
            default=self.default[0] if self.default else None,
            rescue_dir=self.rescue_dir[0] if self.rescue_dir else None,
        )

    def deliver_to(self, reader: Reader, node: YNode) -> tuple[str, ...] | None:
        """A ``deliver_to:`` value: one sink name or a list of them (checked later)."""
        if isinstance(node, YScalar) and node.is_str:
            items: list[tuple[str, YNode]] | None = [(str(node.value), node)]
        else:
            items = reader.strings(node, "deliver_to")
        if items is None:
            return None
        if not items:
            reader.error(node, "deliver_to lists no sink; name at least one")
            return None
        names: list[str] = []
        for name, item in items:
            if name in names:
                reader.error(item, f"deliver_to names sink '{name}' twice")
                return None
            names.append(name)
            self.refs.append((name, item.loc))
        value = tuple(names)
        return self._interned.setdefault(value, value)


def read_secrets(reader: Reader, state: SinkState, node: YNode, base_dir: Path) -> None:
    body = reader.mapping(node, "secrets", allow_null=True)
    if body is None:
        return
    reader.unknown_fields(body, SECRETS_FIELDS, "secrets")
    for key, value in body.entries:
        if key.raw == "default":
            name = reader.string(value, "secrets.default")
            if name is None:
                continue
            if state.default is not None:
                reader.error(value, f"secrets.default is set twice: {state.default[1]} and here")
                continue
            state.default = (name, value.loc)
            state.refs.append((name, value.loc))
        elif key.raw == "rescue_dir":
            text = reader.string(value, "secrets.rescue_dir")
            if text is not None:
                path = Path(text).expanduser()
                state.rescue_dir = (path if path.is_absolute() else base_dir / path, value.loc)
        elif key.raw == "sinks":
            _read_sinks(reader, state, value, base_dir)


def _read_sinks(reader: Reader, state: SinkState, node: YNode, base_dir: Path) -> None:
    sinks = reader.mapping(node, "secrets.sinks", allow_null=True)
    if sinks is None:
        return
    for key, value in sinks.entries:
        if not NAME_RE.match(key.raw):
            reader.error(
                key,
                f"sink name {key.raw!r} is invalid: use lower-case letters, digits, '.', '_' "
                "and '-', starting with a letter or digit, at most 63 characters",
            )
            continue
        first = state.sinks.get(key.raw)
        if first is not None:
            reader.error(key, f"sink '{key.raw}' is defined twice: {first.location} and {key.loc}")
            continue
        settings = _read_sink(reader, key.raw, value, base_dir)
        if settings is not None:
            state.sinks[key.raw] = SinkSpec(key.raw, settings, key.loc)


def _read_sink(reader: Reader, name: str, node: YNode, base_dir: Path) -> SinkSettings | None:
    what = f"sink '{name}'"
    body = reader.mapping(node, what)
    if body is None:
        return None
    kinds = [k.raw for k, _ in body.entries if k.raw in KINDS]
    allowed = (*KINDS, "timeout") if kinds == ["exec"] else KINDS
    reader.unknown_fields(body, allowed, what)
    if len(kinds) != 1:
        found = f"has {' and '.join(kinds)}" if kinds else "has none"
        reader.error(body, f"{what} needs exactly one of {', '.join(KINDS)} ({found})")
        return None
    entries = {k.raw: v for k, v in body.entries}
    kind = kinds[0]
    if kind == "file":
        text = _template(reader, entries["file"], f"{what}: file")
        return None if text is None else FileSinkSpec(text, base_dir)
    if kind == "exec":
        return _read_exec(reader, what, entries)
    return _read_aws(reader, what, entries["aws_secrets_manager"])


def _read_exec(reader: Reader, what: str, entries: dict[str, YNode]) -> ExecSinkSpec | None:
    node = entries["exec"]
    if not isinstance(node, YSeq):
        reader.error(
            node,
            f"{what}: exec must be a list of arguments (no shell), e.g. "
            '[gh, secret, set, "{name_upper}"]',
        )
        return None
    args = [_template(reader, item, f"{what}: exec argument") for item in node.items]
    if not args:
        reader.error(node, f"{what}: exec is empty; give the command and its arguments")
        return None
    timeout = DEFAULT_EXEC_TIMEOUT
    if "timeout" in entries:
        given = reader.number(entries["timeout"], f"{what}: timeout", 0.1, EXEC_TIMEOUT_MAX)
        if given is None:
            return None
        timeout = given
    if any(a is None for a in args):
        return None
    return ExecSinkSpec(tuple(a for a in args if a is not None), timeout)


def _read_aws(reader: Reader, what: str, node: YNode) -> AwsSinkSpec | None:
    body = reader.mapping(node, f"{what}: aws_secrets_manager")
    if body is None:
        return None
    reader.unknown_fields(body, AWS_FIELDS, f"{what}: aws_secrets_manager")
    entries = {k.raw: v for k, v in body.entries}
    for required in ("region", "name"):
        if required not in entries:
            reader.error(body, f"{what}: aws_secrets_manager is missing '{required}'")
            return None
    region = _template(reader, entries["region"], f"{what}: region")
    name = _template(reader, entries["name"], f"{what}: name")
    endpoint = None
    if "endpoint_url" in entries:
        endpoint = reader.url(entries["endpoint_url"], f"{what}: endpoint_url")
        if endpoint is None:
            return None
    if region is None or name is None:
        return None
    return AwsSinkSpec(region, name, endpoint)


def _template(reader: Reader, node: YNode, what: str) -> str | None:
    text = reader.string(node, what)
    if text is None:
        return None
    if not text:
        reader.error(node, f"{what} is empty")
        return None
    problems = placeholder_problems(text)
    for problem in problems:
        reader.error(node, f"{what}: {problem}")
    return None if problems else text


def check_refs(reader: Reader, state: SinkState) -> None:
    """Every sink named by ``default`` or ``deliver_to`` exists."""
    reported: set[tuple[str, Location]] = set()
    for name, loc in state.refs:
        if name in state.sinks or (name, loc) in reported:
            continue
        reported.add((name, loc))
        hint = did_you_mean(name, state.sinks) or (
            f" (sinks: {', '.join(sorted(state.sinks))})"
            if state.sinks
            else "; declare it under secrets: sinks:"
        )
        reader.error(loc, f"unknown sink '{name}'{hint}")
