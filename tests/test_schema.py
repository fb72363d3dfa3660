"""`keystate schema`: a JSON Schema that accepts every example and rejects the invalid
configurations it can recognise, checked with check-jsonschema."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

from click.testing import Result
from test_config_errors import CASES, account_yaml

ROOT = Path(__file__).parent.parent
SCHEMA_FILE = ROOT / "docs" / "keystate.schema.json"
EXAMPLES = sorted(
    p
    for p in (ROOT / "examples").rglob("*.y*ml")
    if "ci" not in p.relative_to(ROOT / "examples").parts and p.suffix in (".yaml", ".yml")
)
# Invalid only in ways a schema cannot see: environment, files, time, cross-references.
SCHEMA_BLIND = {
    "missing-version",  # a file of a directory may leave version to another file
    "missing-env",
    "unterminated-var",
    "bad-var-name",
    "secret-file-missing",
    "keys-unknown-account",
    "past-date",
    "sink-unknown-placeholder",
    "deliver-to-unknown",
    "default-sink-unknown",
    # Comparisons of durations and references across the file are beyond a JSON schema.
    "rotate-overlap-not-shorter",
    "rotate-every-not-below-lifetime",
    "previously-itself",
    "forget-unknown-account",
    "forget-a-declared-key",
}


def check_jsonschema(*files: Path) -> subprocess.CompletedProcess[str]:
    """check-jsonschema (a dev dependency) on ``files``; a missing validator fails the test
    instead of passing for a rejection."""
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "check_jsonschema",
            "--schemafile",
            str(SCHEMA_FILE),
            *map(str, files),
        ],
        capture_output=True,
        text=True,
        check=False,
    )
    assert "No module named check_jsonschema" not in done.stderr, (
        "check-jsonschema is not installed: make .venv/.installed (the dev extra)"
    )
    return done


def test_committed_schema_is_current(run: Callable[..., Result]) -> None:
    result = run("schema")
    assert result.exit_code == 0
    assert json.loads(result.stdout) == json.loads(SCHEMA_FILE.read_text()), (
        "docs/keystate.schema.json is stale: keystate schema > docs/keystate.schema.json"
    )
    assert json.loads(result.stdout)["$schema"] == "https://json-schema.org/draft/2020-12/schema"


def test_every_example_validates_and_names_the_schema() -> None:
    assert EXAMPLES, "no examples found"
    result = check_jsonschema(*EXAMPLES)
    assert result.returncode == 0, result.stdout + result.stderr
    for example in EXAMPLES:
        first = example.read_text().splitlines()[0]
        assert first.startswith("# yaml-language-server: $schema="), example
        target = (example.parent / first.split("=", 1)[1]).resolve()
        assert target == SCHEMA_FILE.resolve(), example


# Hostile YAML that check-jsonschema rejects one file at a time: a recursive alias makes
# it crash (RecursionError while reading), which would abort a batch. What each run says.
ALONE = {
    "recursive-alias": "RecursionError: maximum recursion depth exceeded",
    "alias-bomb": "{path}::$: Additional properties are not allowed ('a', 'b', 'c', 'd', 'e',",
    "deep-nesting": "{path}::$: Additional properties are not allowed ('x' was unexpected)",
}


def test_invalid_configs_are_rejected(tmp_path: Path) -> None:
    files: dict[str, Path] = {}
    for case_id, body, _, _ in CASES:
        path = tmp_path / f"{case_id}.yaml"
        path.write_text(body.format(account=account_yaml("http://127.0.0.1:8100")))
        files[case_id] = path
    for case_id, expected in sorted(ALONE.items()):
        path = files.pop(case_id)
        alone = check_jsonschema(path)
        said = alone.stdout + alone.stderr
        assert alone.returncode == 1, (case_id, said[-2000:])
        assert expected.format(path=path) in said, (case_id, said[-2000:])
    result = check_jsonschema(*files.values())
    report = result.stdout + result.stderr
    assert result.returncode == 1, report
    # One run over all files; a file is rejected when the report names it.
    rejected = {case_id for case_id, path in files.items() if f"{path}" in report}
    missed = sorted(set(files) - rejected - SCHEMA_BLIND)
    assert not missed, f"the schema accepts invalid configs: {missed}"
    newly = sorted(SCHEMA_BLIND & rejected)
    assert not newly, f"now caught by the schema, remove from SCHEMA_BLIND: {newly}"
