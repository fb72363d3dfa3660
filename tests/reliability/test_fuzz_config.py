"""A fuzzer over the configuration loader (hypothesis).

Inputs: valid configurations mutated as text (tokens inserted, lines cut, swapped,
re-indented, values replaced) and as data (values of any YAML type put anywhere, keys
renamed or dropped), random YAML documents, and random bytes.

Oracle, for every input: ``load_config`` either returns a configuration that the rest of
keystate can use (a plan against empty accounts renders as text, JSON and Markdown with
no credential in it), or raises ``ConfigError`` whose problems are each one printable
line naming a line of the file. Any other exception is a defect. The CLI agrees: exit 0
or 1, never a traceback or an "Internal error".

Profiles: ``input-ci`` (bounded, derandomised, for ``make test``) and ``input-long``
(``KEYSTATE_RELIABILITY_PROFILE=long``).
"""

from __future__ import annotations

import copy
import os
import re
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from keystate.config import Config, load_config
from keystate.engine import plan_from_live
from keystate.errors import ConfigError, PlanError, Severity
from keystate.render import RenderOptions
from keystate.render import json as render_json
from keystate.render import markdown as render_markdown
from keystate.render import text as render_text

from ._inputs import ALGOLIA_ADMIN_KEY, COVEO_TOKEN, invoke

if TYPE_CHECKING:
    from .conftest import Figures

LONG = os.environ.get("KEYSTATE_RELIABILITY_PROFILE", "ci") == "long"
_COMMON = {
    "deadline": None,
    "database": None,
    "suppress_health_check": [
        HealthCheck.too_slow,
        HealthCheck.function_scoped_fixture,
        HealthCheck.data_too_large,
    ],
}
settings.register_profile("input-ci", max_examples=250, derandomize=True, **_COMMON)
settings.register_profile("input-long", max_examples=10000, **_COMMON)
FUZZ = settings.get_profile("input-long" if LONG else "input-ci")

SECTION = "config_fuzzer"
YAML_BREAKS = re.compile("\r\n|[\r\n\x85\u2028\u2029]")
NOW = datetime(2026, 6, 1, tzinfo=UTC)
ENV = {
    "ALGOLIA_APPLICATION_ID": "FUZZAPP1",
    "ALGOLIA_ADMIN_API_KEY": ALGOLIA_ADMIN_KEY,
    "COVEO_ACCESS_TOKEN": COVEO_TOKEN,
    "EMPTY": "",
}

BASE_TEXTS = [
    """\
version: 1
owner: search-team
accounts:
  algolia-prod:
    provider: algolia
    application_id: ${ALGOLIA_APPLICATION_ID}
    api_key: ${ALGOLIA_ADMIN_API_KEY}
    hosts: ["http://127.0.0.1:9", "https://a.example.com"]
    timeout: 2
    max_attempts: 3
  coveo-prod:
    provider: coveo
    organization_id: acme
    region: eu
    token: ${COVEO_ACCESS_TOKEN}
    removal: disable
keys:
  algolia-prod:
    storefront-search:
      description: Storefront search box
      acl: [search, browse]
      indexes: ["products_*"]
      referers: ["https://shop.example.com/*"]
      max_hits_per_query: 50
      max_queries_per_ip_per_hour: 2000
      query_parameters: {filters: "visibility:public", hitsPerPage: 20}
      expires_at: 2027-06-30T00:00:00Z
      protect: true
      lint_ignore: [algolia-search-unrestricted]
    writer:
      acl: [addObject, deleteObject]
      indexes: [products]
      query_parameters: "typoTolerance=false&x=1"
      adopt: fingerprint:0123456789abcdef
  coveo-prod:
    site-search:
      description: Public site search
      privileges:
        - {owner: SEARCH_API, target_domain: EXECUTE_QUERY}
        - {owner: USAGE_ANALYTICS, target_domain: ANALYTICS_DATA, type: EDIT}
      allowed_ips: ["203.0.113.0/24", "2001:db8::/32"]
      denied_ips: [198.51.100.7]
      search_hub: website
      enabled: false
      expires_at: "2027-01-01T00:00:00+02:00"
    from-template:
      template: AuthenticatedSearch
      search_hub: intranet
      adopt: id:abc123
""",
    """\
version: 1
accounts:
  a:
    provider: algolia
    application_id: APP1
    api_key: ${ALGOLIA_ADMIN_API_KEY}
keys:
  a:
    k1: {acl: [search], description: "${EMPTY:-plain} $$literal"}
    k2:
      acl:
        - analytics
        - usage
      expires_at: 2030-01-01T00:00:00+05:30
""",
]
BASE_DATA = [yaml.safe_load(t) for t in BASE_TEXTS]

TOKENS = [
    ":",
    ": ",
    "- ",
    "-",
    "[",
    "]",
    "{",
    "}",
    ",",
    "?",
    "? ",
    "|",
    ">",
    "#",
    "&a ",
    "*a",
    "*b",
    "&b [*a, *a, *a]",
    "<<: *a",
    "!!str ",
    "!!int ",
    "!!python/object:os.system ",
    "!e ",
    "\t",
    "  ",
    "\n",
    "\r\n",
    "\r",
    "'",
    '"',
    "\\",
    "%YAML 1.1\n",
    "---\n",
    "...\n",
    "${",
    "${X}",
    "${ALGOLIA_ADMIN_API_KEY}",
    "$$",
    "${EMPTY:-}",
    "~",
    "null",
    "yes",
    "no",
    "on",
    "0x1F",
    "0o17",
    "1e400",
    "-1",
    ".nan",
    ".inf",
    "2030-02-30",
    "2030-01-01T00:00:00",
    "9999-12-31T23:59:59-23:59",
    "\x00",
    "\x1b",
    "\ufeff",
    "\u2028",
    "\ud7ff",
    "é",
    "😀",
    "keystate:",
    "http://",
    "https://u:p@h",
    "*",
    "/",
    "%",
]
SCALARS = [
    "",
    "~",
    "null",
    "true",
    "yes",
    "0",
    "-5",
    "1.5",
    "1e400",
    ".nan",
    "9" * 5000,
    "[]",
    "{}",
    "[a, [b]]",
    "{a: {b: c}}",
    "'quoted'",
    '"\\x1b[2J"',
    "${NOPE}",
    "${EMPTY:-²}",
    "${EMPTY:-}",
    "${",
    "2001-01-01T00:00:00Z",
    "2030-01-01",
    "0001-01-01T00:00:00+23:59",
    "http://example.com",
    "https://[::1]:99999",
    "fingerprint:abc",
    "id:",
    "*",
    "&x v",
    "*nowhere",
    "!!binary aGk=",
    "search",
    "SEARCH",
    "EXECUTE_QUERY",
    "300.1.1.1",
    "::1/200",
]


def _lines(text: str) -> list[str]:
    return text.split("\n")


@st.composite
def mutated_text(draw: st.DrawFn) -> str:
    text: str = draw(st.sampled_from(BASE_TEXTS))
    for _ in range(draw(st.integers(1, 4))):
        op = draw(st.sampled_from(["insert", "delete", "dup", "swap", "indent", "value", "key"]))
        lines = _lines(text)
        i = draw(st.integers(0, len(lines) - 1))
        if op == "insert":
            at = draw(st.integers(0, len(text)))
            token = draw(st.sampled_from(TOKENS) | st.text(max_size=6))
            text = text[:at] + token + text[at:]
            continue
        if op == "delete":
            at = draw(st.integers(0, len(text)))
            text = text[:at] + text[at + draw(st.integers(1, 40)) :]
            continue
        if op == "dup":
            lines.insert(i, lines[i])
        elif op == "swap":
            j = draw(st.integers(0, len(lines) - 1))
            lines[i], lines[j] = lines[j], lines[i]
        elif op == "indent":
            prefix = draw(st.sampled_from(["", " ", "  ", "\t", "      "]))
            lines[i] = prefix + lines[i].lstrip(" ")
        elif op == "value" and ": " in lines[i]:
            head = lines[i].split(": ", 1)[0]
            lines[i] = f"{head}: {draw(st.sampled_from(SCALARS) | st.text(max_size=12))}"
        elif op == "key" and ":" in lines[i]:
            indent = len(lines[i]) - len(lines[i].lstrip(" "))
            tail = lines[i].split(":", 1)[1]
            key = draw(st.sampled_from(["acl", "Acl", "aclx", "privileges", "hosts", "<<", "x"]))
            lines[i] = " " * indent + key + ":" + tail
        text = "\n".join(lines)
    return text


yaml_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=True)
    | st.text(max_size=20)
    | st.sampled_from(SCALARS)
    | st.dates()
    | st.datetimes(timezones=st.none() | st.timezones()),
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=10), inner, max_size=4)
    ),
    max_leaves=12,
)


def _paths(node: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    out = [prefix]
    if isinstance(node, dict):
        for k, v in node.items():
            out += _paths(v, (*prefix, k))
    elif isinstance(node, list):
        for i, v in enumerate(node):
            out += _paths(v, (*prefix, i))
    return out


@st.composite
def mutated_tree(draw: st.DrawFn) -> str:
    data = copy.deepcopy(draw(st.sampled_from(BASE_DATA)))
    for _ in range(draw(st.integers(1, 3))):
        path = draw(st.sampled_from(_paths(data)[1:]))
        parent = data
        for step in path[:-1]:
            parent = parent[step]
        last = path[-1]
        op = draw(st.sampled_from(["replace", "drop", "rename", "add"]))
        if op == "replace":
            parent[last] = draw(yaml_values)
        elif op == "drop":
            del parent[last]
        elif op == "rename" and isinstance(parent, dict):
            parent[draw(st.text(max_size=12) | st.sampled_from(TOKENS))] = parent.pop(last)
        elif op == "add" and isinstance(parent, dict):
            parent[draw(st.text(max_size=12))] = draw(yaml_values)
    flow = draw(st.sampled_from([None, True, False]))
    return yaml.safe_dump(data, default_flow_style=flow, allow_unicode=draw(st.booleans()))


random_yaml = st.builds(
    lambda head, body: yaml.safe_dump({**head, **body} if isinstance(body, dict) else body),
    st.fixed_dictionaries({}, optional={"version": yaml_values | st.just(1)}),
    yaml_values | st.dictionaries(st.sampled_from(["accounts", "keys", "owner"]), yaml_values),
)


def check_config(text: bytes, tmp: Path, figures: Figures) -> None:
    path = tmp / "keystate.yaml"
    path.write_bytes(text)
    # Lines as YAML counts them: NEL, LS and PS break lines too.
    lines = len(YAML_BREAKS.split(text.decode("utf-8", "replace")))
    try:
        config = load_config(path, env=ENV, now=NOW)
    except ConfigError as exc:
        figures.add(SECTION, inputs=1, rejected=1, tracebacks=0, unexpected_exceptions=0)
        assert exc.problems, "a ConfigError without a problem"
        for problem in exc.problems:
            if problem.severity is not Severity.ERROR:
                continue
            shown = str(problem)
            assert "\n" not in shown and "\x1b" not in shown, shown
            assert problem.location is not None, shown
            assert problem.location.path == str(path), shown
            assert 1 <= problem.location.line <= lines + 1, shown
    except Exception as exc:
        figures.add(SECTION, inputs=1, unexpected_exceptions=1)
        raise AssertionError(f"load_config raised {type(exc).__name__}: {exc}") from exc
    else:
        figures.add(SECTION, inputs=1, valid=1, tracebacks=0, unexpected_exceptions=0)
        use(config)
    result = invoke(["validate", "-c", str(path)], ENV)
    text_out = result.stdout + result.stderr
    if "Traceback" in text_out or "Internal error" in text_out:
        figures.add(SECTION, tracebacks=1)
    assert result.exit_code in (0, 1), text_out
    assert "Traceback" not in text_out and "Internal error" not in text_out, text_out
    assert ALGOLIA_ADMIN_KEY not in text_out and COVEO_TOKEN not in text_out


def use(config: Config) -> None:
    """A configuration that loads can be planned and rendered, without leaking."""
    try:
        the_plan = plan_from_live(config, {name: [] for name in config.accounts})
    except PlanError as exc:  # e.g. an adopt: selector that matches no (empty) live key
        for line in str(exc).splitlines():
            assert line.split(":", 1)[0].count("/") == 1, line  # names account/key
        return
    options = RenderOptions(show_unmanaged=True)
    for module in (render_text, render_json, render_markdown):
        out = module.render(the_plan, options)
        assert ALGOLIA_ADMIN_KEY not in out and COVEO_TOKEN not in out


def test_base_configurations_are_valid(tmp_path: Path) -> None:
    """The fuzzer starts from valid ground, so its mutations explore near-valid input."""
    for i, text in enumerate(BASE_TEXTS):
        path = tmp_path / f"base{i}.yaml"
        path.write_text(text, encoding="utf-8")
        config = load_config(path, env=ENV, now=NOW)
        assert sum(len(k) for k in config.keys.values()) >= 2
        use(config)


def _fuzz(strategy: st.SearchStrategy[Any], encode: Callable[[Any], bytes]) -> Any:
    @FUZZ
    @given(data=strategy)
    def test(data: Any, tmp_path: Path, figures: Figures) -> None:
        check_config(encode(data), tmp_path, figures)

    return test


def _utf8(text: str) -> bytes:
    return text.encode("utf-8", "surrogatepass")


test_mutated_text = _fuzz(mutated_text(), _utf8)
test_mutated_tree = _fuzz(mutated_tree(), _utf8)
test_random_yaml = _fuzz(random_yaml, _utf8)
test_random_bytes = _fuzz(st.binary(max_size=400) | st.text(max_size=200).map(_utf8), bytes)


# Inputs the long profile found, kept as regressions: three product defects (now fixed)
# and one mistake of this oracle (it counted lines as "\n" only).
FOUND = {
    # the admin key's variable in application_id, api_key missing: the error echoed the key
    "credential-in-wrong-field": BASE_TEXTS[1].replace(
        "application_id: APP1\n    api_key: ${ALGOLIA_ADMIN_API_KEY}\n",
        "application_id: A${ALGOLIA_ADMIN_API_KEY}\n",
    ),
    # a YAML date inside a list in query_parameters: "Object of type date is not JSON
    # serializable"
    "date-in-a-query-list": BASE_TEXTS[1].replace(
        "k1: {acl: [search],", "k1: {acl: [search], query_parameters: {f: [2000-01-01]},"
    ),
    "explicit-tag-constructor-fails": "version: !!timestamp '1912-01-01 00:00:00-00:16:08'\n",
    # U+0085 (NEL) breaks lines for YAML: the error's line is 3 in a file with no "\n"
    "next-line-character": "?\x85.",
}


@pytest.mark.parametrize("name", sorted(FOUND))
def test_found_by_the_fuzzer(name: str, tmp_path: Path, figures: Figures) -> None:
    assert FOUND[name] not in BASE_TEXTS  # the replacement above did apply
    check_config(_utf8(FOUND[name]), tmp_path, figures)


@pytest.mark.parametrize("days", [-1, 0, 1, 10_000, 2_900_000])
def test_expiry_edges(days: int, tmp_path: Path, figures: Figures) -> None:
    """Dates around now and near the end of the calendar, as text and as YAML timestamps:
    a date at or before now blocks the key's account with an error at its
    file:line:column, a later one is kept."""
    try:
        moment = NOW + timedelta(days=days)
    except OverflowError:
        moment = datetime(9999, 12, 31, 23, 59, 59, tzinfo=UTC)
    line = _lines(BASE_TEXTS[1]).index("      expires_at: 2030-01-01T00:00:00+05:30") + 1
    for value in (moment.isoformat(), f'"{moment.isoformat()}"'):
        text = BASE_TEXTS[1].replace("2030-01-01T00:00:00+05:30", value)
        check_config(_utf8(text), tmp_path, figures)
        path = tmp_path / "keystate.yaml"
        if moment > NOW:
            config = load_config(path, env=ENV, now=NOW)
            assert config.keys["a"]["k2"].fields["expires_at"] == moment, value
            continue
        # A passed expiry blocks that key's account only (issue 15): the configuration
        # loads, and the account carries the error at its file:line:column.
        config = load_config(path, env=ENV, now=NOW)
        assert "k2" not in config.keys.get("a", {}), value
        shown = moment.isoformat().replace("+00:00", "Z")
        assert [str(p) for p in config.blocked["a"]] == [
            f"{path}:{line}:19: error: expires_at {shown} is in the past; "
            "the key would expire at once: extend it or remove the key"
        ], value
