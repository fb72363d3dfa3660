"""The house rules (issue 11), checked on the source so that they cannot quietly erode.

* No module of ``keystate/`` outside ``emulators/`` is over 400 lines; no function or
  method anywhere in ``keystate/`` is over 60 lines.
* No core module (everything outside ``keystate/providers/`` and ``keystate/emulators/``,
  and the ``keystate emulator algolia|coveo`` commands that start them) names a provider
  or a provider's field in a string literal: the core learns them from the provider
  schemas (docstrings and comments may mention them).

The layers themselves are import-linter's job (``lint-imports`` in ``make lint``).
"""

from __future__ import annotations

import ast
import re
from collections.abc import Iterator
from pathlib import Path

from keystate.providers import known_providers, schema_for

PACKAGE = Path(__file__).resolve().parents[1] / "keystate"
# The emulators' own face: one command per provider emulator, named after it.
EMULATOR_COMMANDS = PACKAGE / "cli" / "emulator.py"
MAX_MODULE_LINES = 400
MAX_FUNCTION_LINES = 60


def modules() -> Iterator[Path]:
    yield from sorted(PACKAGE.rglob("*.py"))


def is_under(path: Path, part: str) -> bool:
    return (PACKAGE / part) in path.parents


def test_no_module_outside_the_emulators_is_over_400_lines() -> None:
    long = {
        str(p.relative_to(PACKAGE)): n
        for p in modules()
        if not is_under(p, "emulators")
        and (n := len(p.read_text(encoding="utf-8").splitlines())) > MAX_MODULE_LINES
    }
    assert long == {}


def test_no_function_is_over_60_lines() -> None:
    long: dict[str, int] = {}
    for path in modules():
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for node in ast.walk(tree):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                assert node.end_lineno is not None
                size = node.end_lineno - node.lineno + 1
                if size > MAX_FUNCTION_LINES:
                    long[f"{path.relative_to(PACKAGE)}:{node.lineno} {node.name}"] = size
    assert long == {}


def provider_words() -> set[str]:
    words = set(known_providers())
    for name in known_providers():
        words |= set(schema_for(name).field_names)
    return words


def string_literals(tree: ast.AST) -> Iterator[tuple[int, str]]:
    """Every string constant that is not a docstring."""
    docstrings: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)):
            body = node.body
            if body and isinstance(body[0], ast.Expr) and isinstance(body[0].value, ast.Constant):
                docstrings.add(id(body[0].value))
    for node in ast.walk(tree):
        if (
            isinstance(node, ast.Constant)
            and isinstance(node.value, str)
            and id(node) not in docstrings
        ):
            yield node.lineno, node.value


def found_words(text: str, words: set[str]) -> list[str]:
    """Words named in a literal: the whole literal, or, for names that are no English
    word (they have an underscore), anywhere in it."""
    hits = [w for w in words if text == w]
    hits += [w for w in words if "_" in w and re.search(rf"\b{re.escape(w)}\b", text)]
    return sorted(set(hits))


def test_no_core_module_names_a_provider_or_its_fields() -> None:
    words = provider_words()
    assert {"algolia", "coveo", "expires_at", "privileges", "query_parameters"} <= words
    offending: list[str] = []
    for path in modules():
        if is_under(path, "providers") or is_under(path, "emulators") or path == EMULATOR_COMMANDS:
            continue
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for line, text in string_literals(tree):
            for word in found_words(text, words):
                offending.append(f"{path.relative_to(PACKAGE)}:{line}: {word!r} in {text!r}")
    assert offending == []


def test_the_literal_check_finds_what_it_looks_for() -> None:
    """The check above must be able to fail."""
    tree = ast.parse(
        '"""expires_at in a docstring is fine"""\nx = "expires_at"\ny = f"no {1} acl"\n'
    )
    literals = [text for _, text in string_literals(tree)]
    assert found_words(literals[0], provider_words()) == ["expires_at"]
    assert all("docstring" not in t for t in literals)
