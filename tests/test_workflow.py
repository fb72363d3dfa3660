"""Issue 15: a Terraform user's day without surprises (credential-free validate, one
expired key blocking only its account, import beside a configuration, checks before
changes, user mistakes that are no internal errors, honest plans, CLI habits)."""

from __future__ import annotations

import re
import time
from collections.abc import Callable
from pathlib import Path

import pytest
from click.testing import CliRunner, Result
from conftest import ADMIN_KEY, Algolia, algolia_account

from keystate.cli import cli

ROOT = Path(__file__).parent.parent


def readme_config() -> str:
    text = (ROOT / "README.md").read_text()
    match = re.search(r"```yaml\n(# keystate.yaml\n.*?)```", text, re.S)
    assert match
    return match.group(1)


# -- 1. validate needs no credentials ----------------------------------------------------
def test_validate_of_the_readme_example_needs_no_credentials(
    write: Callable[..., Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    path = write(readme_config())
    for name in ("ALGOLIA_APPLICATION_ID", "ALGOLIA_ADMIN_API_KEY", "COVEO_ACCESS_TOKEN"):
        monkeypatch.delenv(name, raising=False)
    result = CliRunner().invoke(cli, ["validate", "--strict", "-c", str(path)])
    assert result.exit_code == 0, result.output
    assert "Configuration is valid: 2 accounts, 2 keys." in result.stdout
    assert "Not checked without credentials (3;" in result.stdout
    for name in ("ALGOLIA_APPLICATION_ID", "ALGOLIA_ADMIN_API_KEY", "COVEO_ACCESS_TOKEN"):
        assert f"${{{name}}}" in result.stdout
    # --resolve-env asks for them, as plan would.
    result = CliRunner().invoke(cli, ["validate", "--resolve-env", "-c", str(path)])
    assert result.exit_code == 1
    assert "environment variable COVEO_ACCESS_TOKEN is not set" in result.stderr


def test_validate_still_checks_that_references_are_well_formed(
    run: Callable[..., Result], write: Callable[..., Path]
) -> None:
    path = write(readme_config().replace("${COVEO_ACCESS_TOKEN}", "${COVEO ACCESS}"))
    result = run("validate", "-c", str(path))
    assert result.exit_code == 1
    assert f"{path}:12:" in result.stderr
    assert "invalid variable reference" in result.stderr


def test_validate_does_not_read_missing_credential_files(
    run: Callable[..., Result], write: Callable[..., Path]
) -> None:
    path = write(
        readme_config().replace("token: ${COVEO_ACCESS_TOKEN}", "token_file: secrets/coveo-token")
    )
    result = run("validate", "-c", str(path))
    assert result.exit_code == 0, result.output
    assert "token_file secrets/coveo-token" in result.stdout
    result = run("plan", "-c", str(path), "--account", "coveo-prod")
    assert result.exit_code == 1
    assert "token_file: cannot read secrets/coveo-token" in result.stderr


# -- 2. one expired key blocks only its account ------------------------------------------
def two_accounts(algolia: Algolia, expires: str) -> str:
    return (
        "version: 1\naccounts:\n"
        + algolia_account(algolia.url)
        + algolia_account(algolia.url, "other")
        + "keys:\n  algolia-prod:\n    old:\n      acl: [search]\n"
        + f"      expires_at: {expires}\n"
        + "  other:\n    fresh: {acl: [search]}\n"
    )


def test_an_expired_key_blocks_only_its_own_account(
    algolia: Algolia, run: Callable[..., Result], write: Callable[..., Path]
) -> None:
    path = write(two_accounts(algolia, "2001-01-01T00:00:00Z"))
    where = f"{path}:21:"
    # The other account plans as if nothing happened.
    result = run("plan", "-c", str(path), "--account", "other")
    assert result.exit_code == 0, result.output
    assert 'key "other/fresh" will be created' in result.stdout or "other/fresh" in result.stdout
    assert "in the past" not in result.stderr
    # All accounts: the expired key is reported for its account, the others planned, exit 1.
    result = run("plan", "-c", str(path))
    assert result.exit_code == 1
    assert "other/fresh" in result.stdout
    assert "algolia-prod/" not in result.stdout
    assert any(where in ln and "is in the past" in ln for ln in result.stderr.splitlines()), (
        result.stderr
    )
    assert "account(s) algolia-prod not planned" in result.stderr
    # Its own account: an error, nothing read or planned for it.
    before = algolia.requests()
    result = run("plan", "-c", str(path), "--account", "algolia-prod")
    assert result.exit_code == 1
    assert where in result.stderr
    assert algolia.requests() == before
    # apply changes nothing while a selected account is blocked, and says how to go on.
    result = run("apply", "-c", str(path), "--auto-approve", "--secrets-out", "-")
    assert result.exit_code == 1
    assert "--account other" in result.stderr
    assert algolia.emulator.snapshot() == [] or all(
        "keystate:" not in k.get("description", "") for k in algolia.emulator.snapshot()
    )
    result = run(
        "apply", "-c", str(path), "--account", "other", "--auto-approve", "--secrets-out", "-"
    )
    assert result.exit_code == 0, result.output
    # validate reports it as an error of the configuration.
    result = run("validate", "-c", str(path))
    assert result.exit_code == 1
    assert where in result.stderr


def test_the_library_never_plans_an_account_with_an_expired_key(
    algolia: Algolia, write: Callable[..., Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    import keystate
    from keystate.errors import ConfigError

    monkeypatch.setenv("ALGOLIA_APPLICATION_ID", "KSTESTAPP1")
    monkeypatch.setenv("ALGOLIA_ADMIN_API_KEY", ADMIN_KEY)
    config = keystate.load_config(write(two_accounts(algolia, "2001-01-01T00:00:00Z")))
    assert list(config.blocked) == ["algolia-prod"]
    assert "old" not in config.keys["algolia-prod"]
    with pytest.raises(ConfigError):
        keystate.make_plan(config, accounts=["algolia-prod"])
    with pytest.raises(ConfigError):
        keystate.make_plan(config)
    assert keystate.make_plan(config, accounts=["other"]).has_changes


# -- 4. --report is checked before anything changes ---------------------------------------
def sandbox_config(tmp_path: Path, algolia_state: str = "algolia.json") -> Path:
    path = tmp_path / "keystate.yaml"
    path.write_text(
        "version: 1\naccounts:\n"
        f"  algolia-prod: {{provider: algolia, sandbox: {algolia_state}}}\n"
        "keys:\n  algolia-prod:\n    a: {acl: [search]}\n"
    )
    return path


def test_an_unwritable_report_is_refused_before_anything_changes(
    tmp_path: Path, run: Callable[..., Result]
) -> None:
    config = sandbox_config(tmp_path)
    report = tmp_path / "no-such-dir" / "report.json"
    result = run(
        "apply",
        "-c",
        str(config),
        "--auto-approve",
        "--secrets-out",
        "-",
        "--report",
        str(report),
    )
    assert result.exit_code == 1
    assert "Internal error" not in result.output + result.stderr
    assert f"--report {report}: No such file or directory" in result.stderr
    assert (
        not (tmp_path / "algolia.json").exists()
        or "keystate:" not in (tmp_path / "algolia.json").read_text()
    )
    # A writable one works, and is written.
    report = tmp_path / "report.json"
    result = run(
        "apply",
        "-c",
        str(config),
        "--auto-approve",
        "--secrets-out",
        str(tmp_path / "s"),
        "--report",
        str(report),
    )
    assert result.exit_code == 0, result.output
    assert '"done": 1' in report.read_text()


# -- 5. user mistakes are not internal errors ---------------------------------------------
def bad_inputs(tmp_path: Path) -> dict[str, Path]:
    """A directory, a corrupt file, and another provider's state file."""
    directory = tmp_path / "a-directory"
    directory.mkdir()
    corrupt = tmp_path / "corrupt.json"
    corrupt.write_text("{not json")
    coveo = tmp_path / "coveo-state.json"
    coveo.write_text((ROOT / "examples/quickstart/seed/coveo-prod.json").read_text())
    algolia = tmp_path / "algolia-state.json"
    algolia.write_text((ROOT / "examples/quickstart/seed/algolia-prod.json").read_text())
    return {"directory": directory, "corrupt": corrupt, "coveo": coveo, "algolia": algolia}


def sweep_commands(tmp_path: Path) -> list[list[str]]:
    inputs = bad_inputs(tmp_path)
    commands: list[list[str]] = []
    for kind in ("directory", "corrupt", "coveo"):
        config = tmp_path / f"sandbox-{kind}.yaml"
        config.write_text(
            "version: 1\naccounts:\n"
            f"  algolia-prod: {{provider: algolia, sandbox: {inputs[kind]}}}\n"
            "keys:\n  algolia-prod:\n    a: {acl: [search]}\n"
        )
        c = ["-c", str(config)]
        commands += [
            ["plan", *c],
            ["apply", *c, "--auto-approve", "--secrets-out", "-"],
            ["import", "algolia-prod", *c],
            ["privileges", "algolia-prod", *c],
        ]
    key = ["--app-id", "KSTESTAPP1", "--admin-key", ADMIN_KEY]
    token = ["--org", "acme", "--token", ADMIN_KEY]
    for kind in ("directory", "corrupt", "coveo"):
        commands.append(["emulator", "algolia", "--state", str(inputs[kind]), *key])
    for kind in ("directory", "corrupt", "algolia"):
        commands.append(["emulator", "coveo", "--state", str(inputs[kind]), *token])
    for kind in ("directory", "corrupt", "coveo"):
        commands += [["show", str(inputs[kind])], ["apply", str(inputs[kind])]]
    good = sandbox_config(tmp_path)
    commands += [
        ["plan", "-c", str(good), "--out", str(inputs["directory"])],
        ["apply", "-c", str(good), "--auto-approve", "--secrets-out", str(inputs["directory"])],
        ["apply", "-c", str(good), "--auto-approve", "--report", str(inputs["directory"])],
        ["import", "algolia-prod", "-c", str(good), "--out", str(inputs["directory"])],
        ["validate", "-c", str(inputs["corrupt"])],
        ["plan", "-c", str(inputs["directory"])],
    ]
    return commands


def test_every_command_answers_user_mistakes_with_one_clear_error(
    tmp_path: Path, run: Callable[..., Result]
) -> None:
    commands = sweep_commands(tmp_path)
    assert len(commands) >= 30
    for args in commands:
        result = run(*args)
        text = result.output + result.stderr
        assert result.exit_code == 1, (args, text)
        assert "Internal error" not in text and "Traceback" not in text, (args, text)
        assert "bug in keystate" not in text, (args, text)
        assert ADMIN_KEY not in text
        assert "Error:" in text or ": error:" in text, (args, text)


def test_an_emulator_port_in_use_is_a_clear_error(run: Callable[..., Result]) -> None:
    import socket

    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        result = run(
            "emulator", "algolia", "--port", str(port), "--app-id", "A1", "--admin-key", ADMIN_KEY
        )
    assert result.exit_code == 1
    assert f"--port {port} is already in use" in result.stderr
    assert "Internal error" not in result.stderr


# -- 6, 7, 8: plans that tell the whole truth ----------------------------------------------
def sandbox(tmp_path: Path, keys: str, name: str = "keystate.yaml") -> Path:
    path = tmp_path / name
    path.write_text(
        "version: 1\nowner: team\naccounts:\n"
        "  algolia-prod: {provider: algolia, sandbox: algolia.json}\n"
        f"keys:\n  algolia-prod:\n{keys}"
    )
    return path


def edit_live(tmp_path: Path, name: str, body: dict[str, object]) -> None:
    """Someone changes a key in the dashboard (keeping its description)."""
    import json

    from keystate.emulators.algolia import AlgoliaEmulator
    from keystate.emulators.http import EmuRequest

    emulator = AlgoliaEmulator(tmp_path / "algolia.json")
    key = next(
        k for k in emulator.snapshot() if f"keystate:team/{name}#" in k.get("description", "")
    )
    reply = emulator.handle(
        EmuRequest(
            "PUT",
            f"/1/keys/{key['value']}",
            "",
            {"x-algolia-application-id": emulator.app_id, "x-algolia-api-key": emulator.admin_key},
            json.dumps({**body, "description": key["description"]}).encode(),
        )
    )
    assert reply.status == 200


TWO_KEYS = "    a: {acl: [search]}\n    b: {acl: [search]}\n"


def test_drift_is_told_apart_from_a_change_of_the_configuration(
    tmp_path: Path, run: Callable[..., Result]
) -> None:
    import json

    config = sandbox(tmp_path, TWO_KEYS)
    secrets = str(tmp_path / "s")
    assert (
        run("apply", "-c", str(config), "--auto-approve", "--secrets-out", secrets).exit_code == 0
    )
    edit_live(tmp_path, "a", {"acl": ["search", "deleteIndex"]})
    # The configuration changes b, and nobody touched b live.
    config = sandbox(tmp_path, "    a: {acl: [search]}\n    b: {acl: [search, browse]}\n")

    result = run("plan", "-c", str(config))
    assert result.exit_code == 0, result.output
    assert "Note: keys changed outside of keystate (drift)" in result.stdout
    assert "  ~ algolia-prod/a: acl" in result.stdout
    assert "algolia-prod/b: acl" not in result.stdout.split("keystate will perform")[0]
    assert "Plan: 0 to create, 2 to update" in result.stdout

    markdown = run("plan", "-c", str(config), "--format", "markdown").stdout
    drift_section = markdown.split("#### Drift", 1)[1].split("####", 1)[0]
    assert "`algolia-prod/a`" in drift_section and "algolia-prod/b" not in drift_section

    document = json.loads(run("plan", "-c", str(config), "--format", "json").stdout)
    assert document["drift"] == ["algolia-prod/a"]
    reasons = {c["address"]: c.get("reason") for c in document["changes"]}
    assert reasons == {"algolia-prod/a": "drift", "algolia-prod/b": None}

    # Drift only (nightly): a's drift, not b's change; --detailed-exitcode says 2.
    result = run("plan", "-c", str(config), "--drift-only", "--detailed-exitcode")
    assert result.exit_code == 2, result.output
    assert "algolia-prod/a" in result.stdout and "algolia-prod/b" not in result.stdout
    assert "Plan: 0 to create, 1 to update" in result.stdout

    # Once applied, nothing drifts; a key keystate never wrote a digest for is no drift.
    assert run("apply", "-c", str(config), "--auto-approve").exit_code == 0
    result = run("plan", "-c", str(config), "--drift-only", "--detailed-exitcode")
    assert result.exit_code == 0, result.output
    assert "No changes." in result.stdout


def test_a_refusal_is_never_reported_as_no_changes(
    tmp_path: Path, run: Callable[..., Result]
) -> None:
    import json

    config = sandbox(tmp_path, "    a: {acl: [search], protect: true}\n    b: {acl: [search]}\n")
    secrets = str(tmp_path / "s")
    assert (
        run("apply", "-c", str(config), "--auto-approve", "--secrets-out", secrets).exit_code == 0
    )
    config = sandbox(tmp_path, "    b: {acl: [search]}\n")
    result = run("plan", "-c", str(config), "--out", str(tmp_path / "plan.json"))
    assert result.exit_code == 3
    assert "No changes. Live keys match" not in result.stdout
    assert "No changes can be applied: 1 refusal (above)." in result.stdout
    assert "  ! algolia-prod/a (" in result.stdout and "is protected" in result.stdout
    assert "apply it with" not in result.stderr
    markdown = run("plan", "-c", str(config), "--format", "markdown").stdout
    assert "**No changes.**" not in markdown
    assert "**No changes can be applied:**" in markdown and "is protected" in markdown
    document = json.loads(run("plan", "-c", str(config), "--format", "json").stdout)
    assert any("algolia-prod/a" in r and "protected" in r for r in document["refusals"])


def test_the_plan_warns_when_apply_will_need_force(
    tmp_path: Path, run: Callable[..., Result]
) -> None:
    import json

    keys = "".join(f"    k{i}: {{acl: [search]}}\n" for i in range(5))
    config = sandbox(tmp_path, keys)
    secrets = str(tmp_path / "s")
    assert (
        run("apply", "-c", str(config), "--auto-approve", "--secrets-out", secrets).exit_code == 0
    )
    config = sandbox(tmp_path, "    k0: {acl: [search]}\n")
    result = run("plan", "-c", str(config))
    assert result.exit_code == 0
    assert "Warning: apply will need --force: algolia-prod: the plan removes 4 of 5" in (
        result.stdout
    )
    markdown = run("plan", "-c", str(config), "--format", "markdown").stdout
    assert "will need **`--force`**" in markdown
    document = json.loads(run("plan", "-c", str(config), "--format", "json").stdout)
    assert "removes 4 of 5" in document["needs_force"][0]
    # The warning is right: apply refuses without --force.
    assert run("apply", "-c", str(config), "--auto-approve").exit_code == 3
    # A plan that needs no --force says nothing of it.
    assert "--force" not in run("plan", "-c", str(sandbox(tmp_path, keys))).stdout


# -- 12. Terraform muscle memory ------------------------------------------------------------
@pytest.mark.parametrize(
    ("args", "hint"),
    [
        (["plan", "-out", "x"], "did you mean --out?"),
        (["apply", "-auto-approve"], "did you mean --auto-approve?"),
        (["plan", "-detailed-exitcode"], "did you mean --detailed-exitcode?"),
        (["plan", "-target=a/b"], "did you mean --target?"),
        (["apply", "-replace", "a/b"], "did you mean --replace?"),
    ],
)
def test_terraform_single_dash_flags_get_a_hint(
    args: list[str], hint: str, run: Callable[..., Result]
) -> None:
    result = run(*args)
    assert result.exit_code == 1
    assert hint in result.stderr


def test_no_color_after_the_subcommand_and_bare_keystate(
    run: Callable[..., Result], write: Callable[..., Path]
) -> None:
    path = write(readme_config())
    result = run("validate", "-c", str(path), "--no-color")
    assert result.exit_code == 0, result.output
    result = run()
    assert result.exit_code == 0
    assert "Usage: " in result.stdout and "Commands:" in result.stdout


def test_empty_no_color_does_not_disable_colour(monkeypatch: pytest.MonkeyPatch) -> None:
    import io

    from keystate.cli.ui import color_wanted

    class Tty(io.StringIO):
        def isatty(self) -> bool:
            return True

    monkeypatch.setenv("NO_COLOR", "")
    assert color_wanted(False, Tty())
    monkeypatch.setenv("NO_COLOR", "1")
    assert not color_wanted(False, Tty())
    monkeypatch.delenv("NO_COLOR")
    assert color_wanted(False, Tty())
    assert not color_wanted(True, Tty())


# -- 3. import beside an existing configuration ---------------------------------------------
def add_unmanaged(tmp_path: Path, description: str) -> None:
    import json

    from keystate.emulators.algolia import AlgoliaEmulator
    from keystate.emulators.http import EmuRequest

    emulator = AlgoliaEmulator(tmp_path / "algolia.json")
    reply = emulator.handle(
        EmuRequest(
            "POST",
            "/1/keys",
            "",
            {"x-algolia-application-id": emulator.app_id, "x-algolia-api-key": emulator.admin_key},
            json.dumps({"acl": ["search"], "description": description}).encode(),
        )
    )
    assert reply.status == 200


def test_import_writes_only_what_the_configuration_does_not_declare(
    tmp_path: Path, run: Callable[..., Result]
) -> None:
    import yaml

    directory = tmp_path
    config = sandbox(directory, "    a: {acl: [search]}\n    b: {acl: [search]}\n")
    secrets = str(tmp_path / "s")
    assert (
        run("apply", "-c", str(config), "--auto-approve", "--secrets-out", secrets).exit_code == 0
    )
    # The configuration now declares only a; b stays managed live; one key is unmanaged,
    # its description would make the name "a" again.
    config = sandbox(directory, "    a: {acl: [search]}\n")
    add_unmanaged(tmp_path, "A")
    result = run("import", "algolia-prod", "-c", str(config), "--out", str(tmp_path / "i.yaml"))
    assert result.exit_code == 0, result.output
    imported = yaml.safe_load((tmp_path / "i.yaml").read_text())
    names = sorted(imported["keys"]["algolia-prod"])
    assert names == ["a-2", "b"], names
    assert (
        "Left out 1 key(s) the configuration already declares" in (tmp_path / "i.yaml").read_text()
    )
    # Beside the configuration, as docs/commands.md says: valid, and plan adopts only.
    result = run("plan", "-c", str(directory))
    assert result.exit_code == 0, result.output
    assert "Plan: 0 to create, 0 to update, 1 to adopt, 0 to replace, 0 to delete." in result.stdout
    # --all: every key, as before.
    result = run("import", "algolia-prod", "-c", str(config), "--all")
    assert sorted(yaml.safe_load(result.stdout)["keys"]["algolia-prod"]) == ["a", "a-2", "b"]


# -- 11. shell completion -------------------------------------------------------------------
@pytest.mark.parametrize("shell", ["bash", "zsh", "fish"])
def test_completion_scripts(shell: str, run: Callable[..., Result]) -> None:
    result = run("completion", shell)
    assert result.exit_code == 0
    assert "_KEYSTATE_COMPLETE" in result.stdout


def test_account_names_complete(tmp_path: Path) -> None:
    import os
    import subprocess
    import sys

    (tmp_path / "keystate.yaml").write_text(
        "version: 1\naccounts:\n"
        "  algolia-prod: {provider: algolia, sandbox: a.json}\n"
        "  algolia-staging: {provider: algolia, sandbox: b.json}\n"
        "  coveo-prod: {provider: coveo, sandbox: c.json}\n"
    )

    def complete(words: str) -> list[str]:
        env = {
            **os.environ,
            "COMP_WORDS": words,
            "COMP_CWORD": str(len(words.split()) - 1),
            "_KEYSTATE_COMPLETE": "bash_complete",
        }
        out = subprocess.run(
            [sys.executable, "-m", "keystate"],
            env=env,
            cwd=tmp_path,
            capture_output=True,
            text=True,
            check=False,
        ).stdout
        return [line.split(",", 1)[1] for line in out.splitlines() if "," in line]

    assert complete("keystate plan --account alg") == ["algolia-prod", "algolia-staging"]
    assert complete("keystate import co") == ["coveo-prod"]
    assert complete("keystate privileges -c keystate.yaml algolia-s") == ["algolia-staging"]
    # A broken configuration completes nothing, quietly.
    (tmp_path / "keystate.yaml").write_text("version: [")
    assert complete("keystate plan --account a") == []


# -- 15. the emulator docs match the CLI ------------------------------------------------------
@pytest.mark.parametrize(("command", "variable"), [("algolia", "ADMIN_KEY"), ("coveo", "TOKEN")])
def test_emulator_docs_say_what_the_cli_does_without_a_credential(
    command: str, variable: str, run: Callable[..., Result], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv(f"KEYSTATE_EMULATOR_{variable}", raising=False)
    result = run("emulator", command, "--port", "0")
    assert result.exit_code == 1
    assert "could not be shown to you" in result.stderr
    docs = (ROOT / "docs" / "emulators.md").read_text()
    assert (
        "makes up an application ID (10 upper-case\nletters and digits) and an admin key"
        not in docs
    )
    assert "Without either it refuses (exit 1)" in docs
    assert "and refuses without it" in docs


# -- 9. --target ------------------------------------------------------------------------------
def test_target_limits_plan_and_apply_to_keys_with_terraforms_warning(
    tmp_path: Path, run: Callable[..., Result]
) -> None:
    config = sandbox(tmp_path, TWO_KEYS)
    result = run("plan", "-c", str(config), "--target", "algolia-prod/a")
    assert result.exit_code == 0, result.output
    assert "Warning: Resource targeting is in effect" in result.stderr
    assert "algolia-prod/a" in result.stdout and "algolia-prod/b" not in result.stdout
    assert "Plan: 1 to create" in result.stdout
    secrets = str(tmp_path / "s")
    result = run(
        "apply",
        "-c",
        str(config),
        "--auto-approve",
        "--secrets-out",
        secrets,
        "--target",
        "algolia-prod/a",
    )
    assert result.exit_code == 0, result.output
    assert "Apply complete: 1 change(s) made" in result.stdout
    result = run("plan", "-c", str(config))
    assert "algolia-prod/b" in result.stdout and "Plan: 1 to create" in result.stdout
    # Repeatable; bad addresses are usage errors.
    result = run(
        "plan", "-c", str(config), "--target", "algolia-prod/a", "--target", "algolia-prod/b"
    )
    assert "Plan: 1 to create" in result.stdout
    for bad, message in [("nope", "use ACCOUNT/NAME"), ("other/a", "no account 'other'")]:
        result = run("plan", "-c", str(config), "--target", bad)
        assert result.exit_code == 1 and message in result.stderr
    result = run("apply", str(tmp_path / "p.json"), "--target", "algolia-prod/a")
    assert result.exit_code == 1 and "cannot be combined with a saved plan" in result.stderr


# -- 14. make demo ends by telling the user what to do next ----------------------------------
def test_the_demo_tells_the_user_how_to_go_on(tmp_path: Path) -> None:
    import os
    import shutil
    import subprocess
    import sys

    quickstart = tmp_path / "quickstart"
    shutil.copytree(
        ROOT / "examples" / "quickstart", quickstart, ignore=shutil.ignore_patterns(".keystate")
    )
    env = {**os.environ, "KEYSTATE": str(Path(sys.executable).parent / "keystate"), "NO_COLOR": "1"}
    done = subprocess.run(
        ["bash", str(quickstart / "demo.sh")],
        env=env,
        capture_output=True,
        text=True,
        check=False,
        timeout=120,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    tail = done.stdout.split("Done.", 1)[1]
    assert "Run keystate yourself" in tail
    assert ".venv/bin/keystate plan" in tail and "pip install ." in tail
    assert "docs/commands.md" in tail
    assert "Warning" not in done.stderr and "Internal error" not in done.stderr


def test_make_installs_without_packaging_warnings() -> None:
    makefile = (ROOT / "Makefile").read_text()
    install = next(line for line in makefile.splitlines() if "pip install" in line and "-e" in line)
    assert "PYTHONWARNINGS=ignore" in install and "--quiet --quiet" in install


# -- 10. long waits are visible ------------------------------------------------------------
def test_long_waits_print_terraform_style_progress(
    algolia_factory: Callable[..., Algolia],
    write: Callable[..., Path],
    run: Callable[..., Result],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from keystate import progress

    monkeypatch.setattr(progress, "PROGRESS_EVERY", 0.3)
    algolia = algolia_factory()
    config = write(
        "version: 1\naccounts:\n"
        + algolia_account(algolia.url)
        + "keys:\n  algolia-prod:\n    a: {acl: [search]}\n    b: {acl: [search]}\n"
    )
    secrets = str(tmp_path / "s")
    assert (
        run("apply", "-c", str(config), "--auto-approve", "--secrets-out", secrets).exit_code == 0
    )
    algolia.emulator._delay_s = 1.5  # from now on, writes take 1.5 s to be seen
    # An update and a delete: each waits until the change is visible, and says so.
    config.write_text(
        config.read_text()
        .replace("a: {acl: [search]}", "a: {acl: [search, browse]}")
        .replace("    b: {acl: [search]}\n", "")
    )
    result = run("apply", "-c", str(config), "--auto-approve")
    assert result.exit_code == 0, result.output
    lines = [ln for ln in result.stderr.splitlines() if ln.startswith("still waiting for")]
    pattern = r"still waiting for algolia-prod/{} to {}\.\.\. \[\d+s elapsed\]"
    assert any(re.fullmatch(pattern.format("a", "appear"), ln) for ln in lines), result.stderr
    assert any(re.fullmatch(pattern.format("b", "disappear"), ln) for ln in lines), result.stderr
    assert ADMIN_KEY not in result.output + result.stderr
    # -q silences it.
    config.write_text(config.read_text().replace("[search, browse]", "[search]"))
    time.sleep(1.6)
    result = run("-q", "apply", "-c", str(config), "--auto-approve")
    assert result.exit_code == 0, result.output
    assert "still waiting" not in result.stderr


def test_a_long_retry_wait_is_announced(
    algolia_factory: Callable[..., Algolia], write: Callable[..., Path], run: Callable[..., Result]
) -> None:
    algolia = algolia_factory(faults="429=1", retry_after=2.0)
    config = write(
        "version: 1\naccounts:\n" + algolia_account(algolia.url, extra="    max_attempts: 2\n")
    )
    result = run("plan", "-c", str(config))
    assert result.exit_code == 1
    assert re.search(r"algolia-prod: .*429.*; retrying in 2s", result.stderr), result.stderr


# -- 13. small truths -----------------------------------------------------------------------
def coveo_sandbox(tmp_path: Path, privileges: str) -> Path:
    path = tmp_path / "coveo.yaml"
    path.write_text(
        "version: 1\naccounts:\n  coveo-prod: {provider: coveo, sandbox: coveo.json}\n"
        f"keys:\n  coveo-prod:\n    k:\n      privileges: {privileges}\n"
    )
    return path


def test_privileges_print_in_one_syntax_in_whole_values_and_member_diffs(
    tmp_path: Path, run: Callable[..., Result]
) -> None:
    search = "{owner: SEARCH_API, target_domain: EXECUTE_QUERY}"
    config = coveo_sandbox(tmp_path, f"[{search}]")
    created = run("plan", "-c", str(config)).stdout
    whole = '{ owner = "SEARCH_API", target_domain = "EXECUTE_QUERY" }'
    assert f"privileges = [{whole}]" in created
    secrets = str(tmp_path / "s")
    assert (
        run("apply", "-c", str(config), "--auto-approve", "--secrets-out", secrets).exit_code == 0
    )
    config = coveo_sandbox(
        tmp_path, f"[{search}, {{owner: SEARCH_API, target_domain: VIEW_ALL_CONTENT}}]"
    )
    updated = run("plan", "-c", str(config)).stdout
    assert '+ { owner = "SEARCH_API", target_domain = "VIEW_ALL_CONTENT" }' in updated, updated
    assert '"owner":' not in updated


def test_expires_in_rounds_to_the_nearest_day() -> None:
    from datetime import timedelta

    from keystate.lint import _left

    assert _left(timedelta(days=13, hours=20)) == "14 days"
    assert _left(timedelta(days=1, hours=2)) == "1 day"
    assert _left(timedelta(hours=5, minutes=40)) == "6 hours"
    assert _left(timedelta(minutes=50)) == "1 hour"


def test_the_saved_plan_hint_is_honest(tmp_path: Path, run: Callable[..., Result]) -> None:
    config = sandbox(tmp_path, TWO_KEYS)
    plan = tmp_path / "plan.json"
    result = run("plan", "-c", str(config), "--out", str(plan))
    assert f"apply it with: keystate apply {plan} --secrets-out new-keys.jsonl" in result.stderr
    secrets = str(tmp_path / "s")
    assert run("apply", str(plan), "--secrets-out", secrets).exit_code == 0
    result = run("plan", "-c", str(config), "--out", str(tmp_path / "empty.json"))
    assert "apply it with" not in result.stderr
    assert "it has no changes: nothing to apply" in result.stderr
    config = sandbox(tmp_path, "    a: {acl: [search, browse]}\n    b: {acl: [search]}\n")
    result = run("plan", "-c", str(config), "--out", str(tmp_path / "update.json"))
    assert f"apply it with: keystate apply {tmp_path / 'update.json'}\n" in result.stderr
    # show renders a plan; it says nothing about changing anything.
    result = run("show", str(tmp_path / "update.json"))
    assert result.exit_code == 0
    assert "Nothing was changed" not in result.stdout + result.stderr


def test_help_of_plan_and_apply_mentions_exit_code_3(run: Callable[..., Result]) -> None:
    for command in ("plan", "apply"):
        text = run(command, "--help").stdout
        assert "3 " in text and "refuse" in text, text


def test_warnings_are_listed_once_per_run_and_counted_elsewhere(
    tmp_path: Path, run: Callable[..., Result]
) -> None:
    config = sandbox(tmp_path, TWO_KEYS)
    listed = run("validate", "-c", str(config)).stderr
    assert listed.count("warning:") == 4, listed  # no-expiry, search-unrestricted, twice
    result = run("plan", "-c", str(config))
    assert "warning:" not in result.stderr
    assert "4 configuration warnings (`keystate validate` lists them" in result.stderr
    assert "warning:" in run("-v", "plan", "-c", str(config)).stderr
    assert "configuration warning" not in run("-q", "plan", "-c", str(config)).stderr


def test_an_algolia_expiry_read_back_shows_as_declared(
    algolia: Algolia, write: Callable[..., Path], run: Callable[..., Result], tmp_path: Path
) -> None:
    from datetime import UTC, datetime, timedelta

    from keystate.providers.algolia.api import _snap

    whole = datetime(2030, 6, 30, tzinfo=UTC)
    assert _snap(whole + timedelta(seconds=1)) == whole
    assert _snap(whole - timedelta(seconds=2, microseconds=300)) == whole
    assert _snap(whole + timedelta(seconds=20)) == whole + timedelta(seconds=20)
    # Through a real server: the plan shows the live expiry as it was declared.
    config = write(
        "version: 1\naccounts:\n"
        + algolia_account(algolia.url)
        + "keys:\n  algolia-prod:\n    a:\n      acl: [search]\n"
        + "      expires_at: 2030-06-30T00:00:00Z\n"
    )
    secrets = str(tmp_path / "s")
    assert (
        run("apply", "-c", str(config), "--auto-approve", "--secrets-out", secrets).exit_code == 0
    )
    time.sleep(1.2)  # a second of remaining validity gone
    config.write_text(config.read_text().replace("2030-06-30", "2031-06-30"))
    result = run("plan", "-c", str(config))
    assert '~ expires_at = "2030-06-30T00:00:00Z" -> "2031-06-30T00:00:00Z"' in result.stdout


def test_validate_defers_unset_variables_in_url_lists_and_checks_the_rest(
    run: Callable[..., Result], write: Callable[..., Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("ALGOLIA_URL", raising=False)
    body = (
        "version: 1\naccounts:\n  algolia-prod:\n    provider: algolia\n"
        "    application_id: ${ALGOLIA_APPLICATION_ID}\n    api_key: ${ALGOLIA_ADMIN_API_KEY}\n"
        '    hosts: ["${ALGOLIA_URL}", "{second}"]\n'
    )
    ok = run("validate", "-c", str(write(body.replace("{second}", "http://127.0.0.1:1"))))
    assert ok.exit_code == 0, ok.output
    assert "${ALGOLIA_URL}" in ok.stdout
    bad = run("validate", "-c", str(write(body.replace("{second}", "not a url"))))
    assert bad.exit_code == 1
    assert "hosts item" in bad.stderr


def test_the_shared_marker_grammar_parses_and_renders_every_part() -> None:
    from datetime import UTC, datetime

    from keystate.model import Marker, parse_description

    full = "keystate:team/web#1a2b3c4d@retire=2027-01-01T00:00:00Z;protect;pending"
    user, marker = parse_description(f"Storefront {full}")
    assert user == "Storefront"
    assert marker == Marker("web", "team", True, True, "1a2b3c4d", datetime(2027, 1, 1, tzinfo=UTC))
    assert marker.render() == full
    for old in (
        "keystate:web",
        "keystate:team/web;protect",
        "keystate:web@retire=2027-01-01T00:00:00Z",
    ):
        parsed = parse_description(old)[1]
        assert parsed is not None and parsed.render() == old
    # Out of order or malformed parts are not a marker of ours.
    for bad in ("keystate:web;protect#1a2b3c4d", "keystate:web#1A2B3C4D", "keystate:web#123"):
        assert parse_description(bad)[1] is None
