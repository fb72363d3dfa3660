"""import -> plan shows only adoptions, for every provider; applying them rotates
nothing and leaves the keys' permissions as they were."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from click.testing import Result
from support import Servers

from keystate.model import parse_description

from .harness import Harness


def test_import_then_plan_shows_only_adoptions(
    harness: Harness,
    serve: Servers,
    run: Callable[..., Result],
    tmp_path: Path,
) -> None:
    running = harness.start(serve)
    for i in range(20):
        harness.add_unmanaged(running, "" if i % 7 == 0 else f"Legacy key #{i % 6}")
    before = {harness.value_of(k): k for k in harness.stored(running)}
    main = tmp_path / "main.yaml"
    main.write_text(f"version: 1\naccounts:\n{harness.account_yaml(running.url)}")
    imported = tmp_path / "imported.yaml"
    result = run(
        "import", harness.account, "-c", str(main), "--out", str(imported), env=harness.env
    )
    assert result.exit_code == 0, result.stderr
    text = imported.read_text()
    assert text.count("adopt: ") == 20
    again = run("import", harness.account, "-c", str(main), env=harness.env)
    assert again.stdout == text  # deterministic

    result = run("validate", "-c", str(tmp_path), env=harness.env)
    assert result.exit_code == 0, result.output
    result = run("plan", "-c", str(tmp_path), "--detailed-exitcode", env=harness.env)
    assert result.exit_code == 2, result.output
    assert (
        "Plan: 0 to create, 0 to update, 20 to adopt, 0 to replace, 0 to delete." in result.stdout
    )

    result = run("apply", "-c", str(tmp_path), "--auto-approve", env=harness.env)
    assert result.exit_code == 0, result.output
    after = {harness.value_of(k): k for k in harness.stored(running)}
    assert set(after) == set(before)  # same values: nothing was rotated
    for value, key in after.items():
        description, marker = parse_description(str(key["description"]))
        assert marker is not None
        assert description == str(before[value]["description"] or "")

        # Everything but the description (and Coveo's displayName, which becomes the
        # key's name, DESIGN section 4) is as it was: permissions, expiry, ids.
        def kept(k: dict[str, object]) -> dict[str, object]:
            return {f: v for f, v in k.items() if f not in ("description", "display_name")}

        assert kept(key) == kept(before[value])
    assert run("plan", "-c", str(tmp_path), "--detailed-exitcode", env=harness.env).exit_code == 0
