"""Bad input: every malformed configuration gets one clear line per problem with
file:line:column, exit 1, no traceback — and not a single request reaches a provider."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
from click.testing import Result
from conftest import Algolia, algolia_account

HEAD = "version: 1\naccounts:\n{account}"


def account_yaml(url: str, extra: str = "") -> str:
    return algolia_account(url, extra=extra)


# (id, body after the accounts block or a whole file, expected line, message fragment)
# "{account}" is replaced by a valid account pointing at the emulator.
CASES: list[tuple[str, str, int, str]] = [
    ("yaml-syntax", "version: 1\naccounts: [\n", 3, "YAML syntax error"),
    ("tab-indent", "version: 1\naccounts:\n\tx: 1\n", 3, "YAML syntax error"),
    ("not-a-mapping", "- just\n- a list\n", 1, "must be a mapping"),
    ("missing-version", "accounts:\n{account}", 1, "missing 'version: 1'"),
    ("wrong-version", "version: 2\naccounts:\n{account}", 1, "unsupported version 2"),
    ("unknown-top", HEAD + "kees: {{}}\n", 10, "unknown field 'kees'"),
    (
        "dup-key-yaml",
        HEAD + "keys:\n  algolia-prod:\n    a: {{acl: [search]}}\n    a: {{acl: [browse]}}\n",
        13,
        "duplicate key 'a'",
    ),
    (
        "bad-account-name",
        "version: 1\naccounts:\n  Algolia_Prod:\n    provider: algolia\n    sandbox: x.json\n",
        3,
        "account name 'Algolia_Prod' is invalid",
    ),
    (
        "missing-provider",
        "version: 1\naccounts:\n  a:\n    sandbox: x.json\n",
        3,
        "missing 'provider'",
    ),
    (
        "unknown-provider",
        "version: 1\naccounts:\n  a:\n    provider: algolai\n",
        4,
        "did you mean 'algolia'",
    ),
    (
        "missing-app-id",
        "version: 1\naccounts:\n  a:\n    provider: algolia\n    api_key: ${{ALGOLIA_ADMIN_API_KEY}}\n",
        3,
        "missing 'application_id'",
    ),
    (
        "unknown-account-field",
        HEAD.replace("{account}", "{account}    regoin: us\n"),
        10,
        "unknown field 'regoin'",
    ),
    (
        "missing-env",
        "version: 1\naccounts:\n  a:\n    provider: algolia\n    application_id: ${{NOPE_NOT_SET}}\n    api_key: x\n",
        5,
        "NOPE_NOT_SET is not set",
    ),
    (
        "unterminated-var",
        "version: 1\naccounts:\n  a:\n    provider: algolia\n    application_id: ${{APP\n    api_key: x\n",
        5,
        "unterminated",
    ),
    (
        "bad-var-name",
        "version: 1\naccounts:\n  a:\n    provider: algolia\n    application_id: ${{1X}}\n    api_key: x\n",
        5,
        "invalid variable reference",
    ),
    (
        "http-remote",
        'version: 1\naccounts:\n  a:\n    provider: algolia\n    application_id: X\n    api_key: ${{ALGOLIA_ADMIN_API_KEY}}\n    hosts: ["http://example.com"]\n',
        7,
        "plain http:// is only allowed for loopback",
    ),
    (
        "host-path",
        'version: 1\naccounts:\n  a:\n    provider: algolia\n    application_id: X\n    api_key: ${{ALGOLIA_ADMIN_API_KEY}}\n    hosts: ["https://h.example.com/1/keys"]\n',
        7,
        "not a path",
    ),
    (
        "secret-and-file",
        "version: 1\naccounts:\n  a:\n    provider: algolia\n    application_id: X\n    api_key: ${{ALGOLIA_ADMIN_API_KEY}}\n    api_key_file: k.txt\n",
        7,
        "not both",
    ),
    (
        "secret-file-missing",
        "version: 1\naccounts:\n  a:\n    provider: algolia\n    application_id: X\n    api_key_file: missing.txt\n",
        6,
        "cannot read missing.txt",
    ),
    (
        "removal-disable",
        HEAD.replace("{account}", "{account}    removal: disable\n"),
        10,
        "not supported by Algolia",
    ),
    (
        "timeout-type",
        HEAD.replace("{account}", "{account}    max_attempts: many\n"),
        10,
        "max_attempts must be a non-negative integer",
    ),
    (
        "keys-unknown-account",
        HEAD + "keys:\n  algolia-prd:\n    a: {{acl: [search]}}\n",
        11,
        "did you mean 'algolia-prod'",
    ),
    (
        "bad-key-name",
        HEAD + "keys:\n  algolia-prod:\n    Storefront Search: {{acl: [search]}}\n",
        12,
        "key name 'Storefront Search' is invalid",
    ),
    (
        "missing-acl",
        HEAD + "keys:\n  algolia-prod:\n    a: {{description: x}}\n",
        12,
        "missing 'acl'",
    ),
    (
        "empty-acl",
        HEAD + "keys:\n  algolia-prod:\n    a: {{acl: []}}\n",
        12,
        "acl must not be empty",
    ),
    (
        "bad-acl",
        HEAD + "keys:\n  algolia-prod:\n    a: {{acl: [serach]}}\n",
        12,
        "did you mean 'search'",
    ),
    (
        "acl-not-list",
        HEAD + "keys:\n  algolia-prod:\n    a: {{acl: search}}\n",
        12,
        "acl must be a list",
    ),
    (
        "camel-field",
        HEAD + "keys:\n  algolia-prod:\n    a:\n      acl: [search]\n      maxHitsPerQuery: 5\n",
        14,
        "did you mean 'max_hits_per_query'",
    ),
    (
        "negative-int",
        HEAD
        + "keys:\n  algolia-prod:\n    a:\n      acl: [search]\n      max_hits_per_query: -5\n",
        14,
        "non-negative integer",
    ),
    (
        "string-int",
        HEAD
        + "keys:\n  algolia-prod:\n    a:\n      acl: [search]\n      max_queries_per_ip_per_hour: lots\n",
        14,
        "must be a non-negative integer",
    ),
    (
        "bool-int",
        HEAD
        + "keys:\n  algolia-prod:\n    a:\n      acl: [search]\n      max_hits_per_query: true\n",
        14,
        "must be a non-negative integer",
    ),
    (
        "bad-date",
        HEAD
        + 'keys:\n  algolia-prod:\n    a:\n      acl: [search]\n      expires_at: "2027-13-45"\n',
        14,
        "not an RFC 3339 timestamp",
    ),
    (
        "naive-date",
        HEAD
        + 'keys:\n  algolia-prod:\n    a:\n      acl: [search]\n      expires_at: "2030-01-01T00:00:00"\n',
        14,
        "needs a UTC offset",
    ),
    (
        "date-only",
        HEAD
        + "keys:\n  algolia-prod:\n    a:\n      acl: [search]\n      expires_at: 2030-01-01\n",
        14,
        "needs a time and offset",
    ),
    (
        "past-date",
        HEAD
        + "keys:\n  algolia-prod:\n    a:\n      acl: [search]\n      expires_at: 2001-01-01T00:00:00Z\n",
        14,
        "is in the past",
    ),
    (
        "query-not-query",
        HEAD
        + "keys:\n  algolia-prod:\n    a:\n      acl: [search]\n      query_parameters: just text\n",
        14,
        "is not a query string",
    ),
    (
        "query-nested-map",
        HEAD
        + "keys:\n  algolia-prod:\n    a:\n      acl: [search]\n      query_parameters: {{a: {{b: c}}}}\n",
        14,
        "query_parameters.a must be",
    ),
    (
        "protect-not-bool",
        HEAD + "keys:\n  algolia-prod:\n    a:\n      acl: [search]\n      protect: maybe\n",
        14,
        "protect must be true or false",
    ),
    (
        "adopt-bad-kind",
        HEAD + "keys:\n  algolia-prod:\n    a:\n      acl: [search]\n      adopt: id:abc\n",
        14,
        "not a selector for Algolia keys",
    ),
    (
        "adopt-short-fp",
        HEAD
        + "keys:\n  algolia-prod:\n    a:\n      acl: [search]\n      adopt: fingerprint:abc\n",
        14,
        "12 to 64 hex digits",
    ),
    (
        "description-marker",
        HEAD
        + 'keys:\n  algolia-prod:\n    a:\n      acl: [search]\n      description: "x keystate:y"\n',
        14,
        "must not contain 'keystate:'",
    ),
    (
        "bad-owner",
        "version: 1\nowner: Search Team\naccounts:\n{account}",
        2,
        "owner 'Search Team' must match",
    ),
    ("multi-doc", "version: 1\n---\nversion: 1\n", 2, "more than one YAML document"),
    (
        "python-tag",
        "version: 1\naccounts: !!python/object:os.system {{}}\n",
        2,
        "unsupported YAML tag",
    ),
    ("recursive-alias", "version: 1\naccounts: &a [*a]\n", 2, "recursive alias"),
    ("unknown-alias", "version: 1\naccounts: *nope\n", 2, "unknown alias *nope"),
    (
        "alias-bomb",
        "version: 1\na: &a [x,x,x,x,x,x,x,x,x,x]\nb: &b [*a,*a,*a,*a,*a,*a,*a,*a,*a,*a]\nc: &c [*b,*b,*b,*b,*b,*b,*b,*b,*b,*b]\nd: &d [*c,*c,*c,*c,*c,*c,*c,*c,*c,*c]\ne: &e [*d,*d,*d,*d,*d,*d,*d,*d,*d,*d]\nf: &f [*e,*e,*e,*e,*e,*e,*e,*e,*e,*e]\n",
        7,
        "alias bomb",
    ),
    ("deep-nesting", "version: 1\nx: " + "[" * 200 + "]" * 200 + "\n", 2, "nesting deeper than"),
    ("non-string-key", "version: 1\n[a, b]: 1\n", 2, "mapping keys must be plain strings"),
    # secrets: and deliver_to (docs/secrets.md)
    (
        "sink-unknown-placeholder",
        HEAD + "secrets:\n  sinks:\n    s: {{file: 'out-{{nam}}.jsonl'}}\n",
        12,
        "unknown placeholder {nam}",
    ),
    (
        "sink-two-kinds",
        HEAD + "secrets:\n  sinks:\n    s: {{file: a, exec: [b]}}\n",
        12,
        "needs exactly one of file, exec, aws_secrets_manager",
    ),
    (
        "sink-exec-string",
        HEAD + "secrets:\n  sinks:\n    s: {{exec: gh secret set}}\n",
        12,
        "exec must be a list of arguments",
    ),
    (
        "deliver-to-unknown",
        HEAD
        + "secrets:\n  sinks:\n    s: {{file: a}}\nkeys:\n  algolia-prod:\n    k:\n"
        + "      acl: [search]\n      deliver_to: [t]\n",
        17,
        "unknown sink 't'",
    ),
    ("default-sink-unknown", HEAD + "secrets:\n  default: nope\n", 11, "unknown sink 'nope'"),
    (
        "aws-sink-missing-name",
        HEAD + "secrets:\n  sinks:\n    s:\n      aws_secrets_manager: {{region: us-east-1}}\n",
        13,
        "aws_secrets_manager is missing 'name'",
    ),
    ("secrets-unknown-field", HEAD + "secrets:\n  defualt: x\n", 11, "unknown field 'defualt'"),
    # The lifecycle (DESIGN §11): durations, rotate/lifetime rules, forget, previously.
    (
        "rotate-bad-duration",
        HEAD + "keys:\n  algolia-prod:\n    k:\n      acl: [search]\n      rotate: {{every: 90}}\n",
        14,
        "is not a duration",
    ),
    (
        "rotate-overlap-not-shorter",
        HEAD
        + "keys:\n  algolia-prod:\n    k:\n      acl: [search]\n      rotate: {{every: 7d, overlap: 7d}}\n",
        14,
        "must be shorter than every",
    ),
    (
        "rotate-every-not-below-lifetime",
        HEAD
        + "keys:\n  algolia-prod:\n    k:\n      acl: [search]\n      rotate: {{every: 90d}}\n      lifetime: 30d\n",
        12,
        "must be shorter than lifetime",
    ),
    (
        "lifetime-and-expires-at",
        HEAD
        + "keys:\n  algolia-prod:\n    k:\n      acl: [search]\n      lifetime: 30d\n      expires_at: 2031-01-01T00:00:00Z\n",
        14,
        "lifetime and expires_at exclude each other",
    ),
    (
        "rotate-without-every",
        HEAD
        + "keys:\n  algolia-prod:\n    k:\n      acl: [search]\n      rotate: {{overlap: 1d}}\n",
        14,
        "missing 'every'",
    ),
    (
        "previously-itself",
        HEAD + "keys:\n  algolia-prod:\n    k:\n      acl: [search]\n      previously: [k]\n",
        14,
        "the key's own name",
    ),
    ("forget-unknown-account", HEAD + "forget: [nope/k]\n", 10, "no account 'nope'"),
    ("forget-not-an-address", HEAD + "forget: [justaname]\n", 10, "is not ACCOUNT/NAME"),
    (
        "forget-a-declared-key",
        HEAD + "keys:\n  algolia-prod:\n    k:\n      acl: [search]\nforget: [algolia-prod/k]\n",
        14,
        "a key is either managed or forgotten",
    ),
    ("defaults-bad-duration", HEAD + "defaults:\n  lifetime: soon\n", 11, "is not a duration"),
]


@pytest.mark.parametrize(("case_id", "body", "line", "fragment"), CASES, ids=[c[0] for c in CASES])
def test_bad_config_is_one_clear_error_and_sends_nothing(
    case_id: str,
    body: str,
    line: int,
    fragment: str,
    algolia: Algolia,
    write: Callable[..., Path],
    run: Callable[..., Result],
) -> None:
    path = write(body.format(account=account_yaml(algolia.url)))
    result = run("plan", "-c", str(path))
    assert result.exit_code == 1, result.output
    errors = [ln for ln in result.stderr.splitlines() if ": error: " in ln]
    assert errors, result.stderr
    assert any(f"{path}:{line}:" in ln and fragment in ln for ln in errors), (
        f"expected {path}:{line}: ... {fragment!r} in:\n{result.stderr}"
    )
    assert "Traceback" not in result.output + result.stderr
    assert algolia.requests() == 0


def test_corpus_has_at_least_thirty_distinct_cases() -> None:
    assert len({c[0] for c in CASES}) >= 30
    assert len({c[1] for c in CASES}) == len(CASES)


def test_all_problems_of_a_file_are_reported_together(
    algolia: Algolia, write: Callable[..., Path], run: Callable[..., Result]
) -> None:
    body = HEAD + (
        "keys:\n  algolia-prod:\n    a:\n      acl: [serach]\n      maxHitsPerQuery: 1\n"
        "    b:\n      acl: [search]\n      expires_at: nonsense\n"
    )
    path = write(body.format(account=account_yaml(algolia.url)))
    result = run("validate", "-c", str(path))
    assert result.exit_code == 1
    errors = [ln for ln in result.stderr.splitlines() if ": error: " in ln]
    assert len(errors) == 3, result.stderr
    assert [e.split(":")[1] for e in errors] == ["13", "14", "17"]


def test_directory_with_a_key_defined_twice_names_both_places(
    algolia: Algolia, tmp_path: Path, run: Callable[..., Result]
) -> None:
    (tmp_path / "a.yaml").write_text(
        "version: 1\naccounts:\n"
        + account_yaml(algolia.url)
        + "keys:\n  algolia-prod:\n    web: {acl: [search]}\n"
    )
    (tmp_path / "b.yaml").write_text("keys:\n  algolia-prod:\n    web: {acl: [browse]}\n")
    result = run("plan", "-c", str(tmp_path))
    assert result.exit_code == 1
    assert (
        f"{tmp_path / 'b.yaml'}:3:5: error: key 'algolia-prod/web' is defined twice: "
        in result.stderr
    )
    assert f"{tmp_path / 'a.yaml'}:12:5" in result.stderr
    assert algolia.requests() == 0


def test_directory_with_an_account_defined_twice(
    algolia: Algolia, tmp_path: Path, run: Callable[..., Result]
) -> None:
    (tmp_path / "a.yml").write_text("version: 1\naccounts:\n" + account_yaml(algolia.url))
    (tmp_path / "b.yml").write_text("accounts:\n" + account_yaml(algolia.url))
    result = run("validate", "-c", str(tmp_path))
    assert result.exit_code == 1
    assert "account 'algolia-prod' is defined twice" in result.stderr


@pytest.mark.parametrize(
    ("content", "fragment"),
    [
        (b"version: 1\x00\x01\x02", "binary file"),
        (b"version: 1\ndescription: caf\xe9\n", "not UTF-8"),
    ],
)
def test_binary_and_non_utf8_files(
    content: bytes, fragment: str, tmp_path: Path, run: Callable[..., Result]
) -> None:
    path = tmp_path / "k.yaml"
    path.write_bytes(content)
    result = run("validate", "-c", str(path))
    assert result.exit_code == 1
    assert fragment in result.stderr
    assert f"{path}:" in result.stderr


def test_missing_file_and_empty_directory(tmp_path: Path, run: Callable[..., Result]) -> None:
    result = run("validate", "-c", str(tmp_path / "nope.yaml"))
    assert result.exit_code == 1
    assert "no such file or directory" in result.stderr
    result = run("validate", "-c", str(tmp_path))
    assert result.exit_code == 1
    assert "no *.yaml or *.yml files" in result.stderr


def test_usage_errors_exit_one_not_two(run: Callable[..., Result]) -> None:
    result = run("plan", "--format", "xml")
    assert result.exit_code == 1
    result = run("no-such-command")
    assert result.exit_code == 1
