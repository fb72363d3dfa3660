"""Configuration files -> a typed :class:`Config` (DESIGN §2).

Two passes: every file is read into accounts (:mod:`.accounts`) and raw key nodes (so
keys may live in a different file from their account), then each key is read with its
account's provider schema (:mod:`.keys`). The least-privilege lint runs as a pass over
the loaded keys. Every problem of every file is collected; :func:`load_config` raises one
:class:`ConfigError` carrying all of them, or returns a config plus its warnings.
"""

from __future__ import annotations

import os
import stat
from collections.abc import Mapping
from datetime import datetime
from pathlib import Path

from keystate import gcpause, lint
from keystate.config.accounts import read_accounts
from keystate.config.fields import FieldReader
from keystate.config.files import FileRefused, FileTooLarge, read_regular
from keystate.config.keys import collect_keys, read_keys
from keystate.config.lifecycle import read_defaults, read_forget
from keystate.config.nodes import YNode, YScalar, decode
from keystate.config.reader import kind_name, utc_now
from keystate.config.secrets import check_refs, read_secrets
from keystate.config.state import (
    SUPPORTED_VERSION,
    TOP_LEVEL,
    Config,
    LoadState,
)
from keystate.config.yamltree import MAX_BYTES, parse
from keystate.errors import ConfigError, Problem, Severity
from keystate.model import (
    NAME_RE,
    KeySpec,
    Location,
)


def discover(path: Path) -> list[Path]:
    """The files a ``-c PATH`` names: the file, or every *.yaml/*.yml in the directory."""
    try:
        is_dir = stat.S_ISDIR(path.stat().st_mode)
        found = sorted(p for p in path.iterdir() if p.suffix in (".yaml", ".yml")) if is_dir else []
    except FileNotFoundError:
        raise ConfigError([Problem(f"{path}: no such file or directory (pass -c PATH)")]) from None
    except OSError as exc:
        raise ConfigError([Problem(f"{path}: cannot read: {exc.strerror or exc}")]) from None
    if not is_dir:
        return [path]
    if not found:
        raise ConfigError([Problem(f"{path}: no *.yaml or *.yml files in this directory")])
    return found


def load_config(
    path: Path,
    env: Mapping[str, str] | None = None,
    now: datetime | None = None,
    *,
    offline: bool = False,
) -> Config:
    """Load and check a configuration file or directory. Raises ConfigError.

    ``offline`` (validate): connection settings that refer to unset variables, and
    credential files that cannot be read, are not errors; ``Config.skipped`` lists them.
    A key whose expiry has passed blocks only its account (``Config.blocked``).
    """
    reader = FieldReader(os.environ if env is None else env, now or utc_now(), offline)
    state = LoadState(reader)
    with gcpause.paused():
        for file in discover(path):
            _load_file(state, file)
        keys = read_keys(state)
        check_refs(state.reader, state.sinks)
        forget = _forget(state, keys)
    if not state.version_seen and not _errors(state):
        state.reader.error(Location(state.files[0], 1, 1), "missing 'version: 1'")
    hide = state.reader.hide_env
    errors = [hide(p) for p in _errors(state)]
    if errors:
        raise ConfigError(errors)
    found = [p for p in state.reader.problems if p.severity is Severity.WARNING]
    found += _lint(state, keys)
    warnings = [hide(p) for p in found]
    return Config(
        files=tuple(state.files),
        owner=state.owner[0] if state.owner else None,
        accounts=state.accounts,
        keys=keys,
        warnings=tuple(sorted(warnings, key=Problem.sort_key)),
        secrets=state.sinks.config(),
        skipped=tuple(f"{name} ({loc})" for name, loc in state.reader.skipped.items()),
        blocked={a: tuple(hide(p) for p in ps) for a, ps in sorted(state.blocked.items())},
        forget=forget,
    )


def _forget(
    state: LoadState, keys: Mapping[str, Mapping[str, KeySpec]]
) -> dict[str, frozenset[str]]:
    """``forget:`` items by account, checked: a known account, a name not declared."""
    out: dict[str, set[str]] = {}
    for account, name, where in state.forget:
        address = f"{account}/{name}"
        if account not in state.account_locs:
            state.reader.error(where, f"forget: {address}: no account '{account}'")
        elif name in state.key_locs.get(account, {}):
            first = state.key_locs[account][name]
            state.reader.error(
                where,
                f"forget: {address} is declared at {first}; a key is either managed or "
                "forgotten: remove one of the two",
            )
        elif name in out.get(account, set()):
            state.reader.error(where, f"forget: {address} is listed twice")
        else:
            out.setdefault(account, set()).add(name)
    return {account: frozenset(names) for account, names in out.items() if account in keys}


def _lint(state: LoadState, keys: Mapping[str, Mapping[str, KeySpec]]) -> list[Problem]:
    """The least-privilege pass over a configuration that loaded without errors."""
    problems: list[Problem] = []
    for account, specs in keys.items():
        schema = state.shapes.of(state.accounts[account].provider).schema
        for spec in specs.values():
            problems += lint.lint_key(schema, spec, state.reader.now)
    return problems


def _errors(state: LoadState) -> list[Problem]:
    return [p for p in state.reader.problems if p.severity is Severity.ERROR]


def _load_file(state: LoadState, file: Path) -> None:
    display = str(file)
    state.files.append(display)
    reader = state.reader
    top = Location(display, 1, 1)
    try:
        data = read_regular(file, MAX_BYTES)
    except FileTooLarge as exc:
        reader.error(top, f"file is {exc.size / 1e6:.1f} MB; configurations are limited to 10 MB")
        return
    except FileRefused as exc:
        reader.error(top, f"cannot read file: {exc}; expected a YAML file")
        return
    except OSError as exc:
        reader.error(top, f"cannot read file: {exc.strerror or exc}")
        return
    text, problems = decode(data, display)
    reader.problems.extend(problems)
    if text is None:
        return
    root, problems = parse(text, display)
    reader.problems.extend(problems)
    if problems or root is None or (isinstance(root, YScalar) and root.value is None):
        return
    doc = reader.mapping(root, "the configuration file")
    if doc is None:
        return
    reader.unknown_fields(doc, TOP_LEVEL, "the top level")
    base_dir = file.parent.absolute()
    for key, value in doc.entries:  # before the keys, which they apply to
        if key.raw == "defaults":
            state.file_defaults[display] = read_defaults(reader, value, "defaults")
    for key, value in doc.entries:
        if key.raw == "version":
            _read_version(state, value)
        elif key.raw == "owner":
            _read_owner(state, value)
        elif key.raw == "accounts":
            read_accounts(state, value, base_dir)
        elif key.raw == "keys":
            collect_keys(state, value)
        elif key.raw == "secrets":
            read_secrets(reader, state.sinks, value, base_dir)
        elif key.raw == "forget":
            state.forget += read_forget(reader, value)


def _read_version(state: LoadState, node: YNode) -> None:
    state.version_seen = True
    if isinstance(node, YScalar) and node.tag.endswith("int"):
        if node.value != SUPPORTED_VERSION:
            state.reader.error(
                node,
                f"unsupported version {node.raw}; this keystate reads version: {SUPPORTED_VERSION}",
            )
        return
    shown = f" ({node.raw!r})" if isinstance(node, YScalar) else ""
    state.reader.error(
        node,
        f"version must be the number {SUPPORTED_VERSION}, not {kind_name(node)}{shown}; "
        f"write version: {SUPPORTED_VERSION}",
    )


def _read_owner(state: LoadState, node: YNode) -> None:
    reader = state.reader
    owner = reader.string(node, "owner")
    if owner is None:
        return
    if not NAME_RE.match(owner):
        reader.error(node, f"owner {owner!r} must match [a-z0-9][a-z0-9._-]{{0,62}}")
        return
    if state.owner and state.owner[0] != owner:
        reader.error(
            node, f"owner {owner!r} differs from owner {state.owner[0]!r} at {state.owner[1]}"
        )
        return
    state.owner = (owner, node.loc)
