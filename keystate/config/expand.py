"""``${VAR}``, ``${VAR:-default}`` and ``$$`` in configuration strings.

A ``$`` followed by anything else is a literal ``$``. ``${VAR:-default}`` uses the
default when VAR is unset or empty (as in POSIX shells and Compose files).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field

_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


@dataclass
class Expansion:
    value: str
    variables: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    # Variables referenced without a default that the environment does not set.
    unset: list[str] = field(default_factory=list)
    # The text was exactly one ``${VAR}`` reference (credentials then name their source).
    whole_variable: bool = False


def expand(text: str, env: Mapping[str, str]) -> Expansion:
    if "$" not in text:
        return Expansion(text)
    out: list[str] = []
    result = Expansion("")
    i = 0
    n = len(text)
    while i < n:
        ch = text[i]
        if ch != "$":
            j = text.find("$", i)
            j = n if j < 0 else j
            out.append(text[i:j])
            i = j
            continue
        nxt = text[i + 1] if i + 1 < n else ""
        if nxt == "$":
            out.append("$")
            i += 2
            continue
        if nxt != "{":
            out.append("$")
            i += 1
            continue
        end = text.find("}", i + 2)
        if end < 0:
            result.errors.append(f"unterminated '${{' in {text[i : i + 20]!r}; close it with '}}'")
            break
        body = text[i + 2 : end]
        name, sep, default = body.partition(":-")
        if not _NAME.fullmatch(name):
            result.errors.append(
                f"invalid variable reference '${{{body}}}'; use ${{NAME}} or ${{NAME:-default}}"
            )
        else:
            result.variables.append(name)
            current = env.get(name)
            if sep:
                out.append(current if current else default)
            elif current is None:
                result.unset.append(name)
                result.errors.append(
                    f"environment variable {name} is not set; export it, "
                    f"or write ${{{name}:-default}} to give a default"
                )
            else:
                out.append(current)
        i = end + 1
    result.value = "".join(out)
    stripped = text.strip()
    result.whole_variable = (
        len(result.variables) == 1
        and stripped.startswith("${")
        and stripped.endswith("}")
        and stripped.count("$") == 1
    )
    return result
