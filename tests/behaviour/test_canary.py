"""No key value and no credential in any output, for every provider: every command and
output format at -vv, reports, plan files and errors. Only the secrets sink holds values."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

from click.testing import Result

from .harness import Harness, Running


def test_every_command_and_format_leaks_nothing(
    harness: Harness,
    emulators: list[Running],
    write: Callable[..., Path],
    run: Callable[..., Result],
    tmp_path: Path,
) -> None:
    running = harness.start()
    emulators.append(running)
    harness.add_unmanaged(running, "unmanaged canary")
    outputs: dict[str, str] = {}

    def record(name: str, *args: str, env: dict[str, str] | None = None) -> Result:
        result = run("-vv", *args, env=env or harness.env)
        outputs[f"{name} stdout"] = result.stdout
        outputs[f"{name} stderr"] = result.stderr
        assert "Traceback" not in result.stdout + result.stderr, name
        return result

    def config_for(names: list[str], variant: int = 0) -> Path:
        keys = "".join(harness.key_yaml(n, variant) for n in names)
        return write(
            f"version: 1\naccounts:\n{harness.account_yaml(running.url)}"
            f"keys:\n  {harness.account}:\n{keys}"
        )

    config = config_for(["a", "b", "c", "d"])
    secrets = tmp_path / "secrets.jsonl"
    report = tmp_path / "report.json"
    planfile = tmp_path / "plan.json"
    c = ("-c", str(config))
    for fmt in ("text", "json", "markdown"):
        record(f"plan-{fmt}", "plan", *c, "--format", fmt, "--show-unmanaged")
    record("validate", "validate", *c)
    result = record(
        "apply",
        "apply",
        *c,
        "--auto-approve",
        "--secrets-out",
        str(secrets),
        "--report",
        str(report),
    )
    assert result.exit_code == 0, result.output
    outputs["report"] = report.read_text()
    delivered = [json.loads(line)["value"] for line in secrets.read_text().splitlines()]
    assert len(delivered) == 4

    # Updates and a delete, through a saved plan.
    config = config_for(["a", "b", "c"], variant=1)
    assert record("plan-out", "plan", *c, "--out", str(planfile)).exit_code == 0
    outputs["plan file"] = planfile.read_text()
    for fmt in ("text", "json", "markdown"):
        record(f"show-{fmt}", "show", str(planfile), "--format", fmt)
    result = record("apply-saved", "apply", str(planfile), "--report", str(report))
    assert result.exit_code == 0, result.output
    outputs["report-2"] = report.read_text()
    imported = tmp_path / "imported.yaml"
    assert record("import", "import", harness.account, *c, "--out", str(imported)).exit_code == 0
    outputs["import file"] = imported.read_text()
    record("import-stdout", "import", harness.account, *c)
    for fmt in ("text", "json"):
        record(f"privileges-{fmt}", "privileges", harness.account, *c, "--format", fmt)
    # The lifecycle: a break-glass replace (every format, a saved plan with an overlap),
    # the retiring key shown by the next plan, a rename, a forget, a nightly --only run.
    address = f"{harness.account}/a"
    for fmt in ("text", "json", "markdown"):
        record(f"plan-replace-{fmt}", "plan", *c, "--replace", address, "--format", fmt)
    lifecycle_plan = tmp_path / "rotate.json"
    result = record(
        "plan-replace-out",
        "plan",
        *c,
        "--replace",
        address,
        "--overlap",
        "1h",
        "--out",
        str(lifecycle_plan),
    )
    assert result.exit_code == 0, result.output
    outputs["rotate plan file"] = lifecycle_plan.read_text()
    record("show-rotate", "show", str(lifecycle_plan), "--format", "markdown")
    result = record(
        "apply-rotate",
        "apply",
        str(lifecycle_plan),
        "--secrets-out",
        str(secrets),
        "--report",
        str(report),
    )
    assert result.exit_code == 0, result.output
    outputs["report-rotate"] = report.read_text()
    for fmt in ("text", "json", "markdown"):
        record(f"plan-retiring-{fmt}", "plan", *c, "--format", fmt)
    record("apply-only", "apply", *c, "--auto-approve", "--only", "rotate,retire")
    config = config_for(["a", "c"], variant=1)
    renamed = config.read_text().replace("    a:\n", "    a2:\n      previously: [a]\n")
    config.write_text(renamed + "forget:\n  - " + f"{harness.account}/b\n")
    record("plan-rename-forget", "plan", *c, "--format", "json")
    result = record("apply-rename-forget", "apply", *c, "--auto-approve")
    assert result.exit_code == 0, result.output
    delivered = [json.loads(line)["value"] for line in secrets.read_text().splitlines()]
    assert len(delivered) == 5
    # Wrong credentials: the error must echo neither the real nor the wrong one.
    result = record("bad-credentials", "plan", *c, env=harness.bad_env)
    assert result.exit_code == 1
    assert "${" in result.stderr  # names the variable the credential came from

    wrong = set(harness.bad_env.values()) - set(harness.env.values())
    secrets_seen = harness.secrets(running) | set(delivered) | wrong
    assert len(secrets_seen) == 8  # admin, wrong, unmanaged, 4 created, 1 rotated
    for where, text in outputs.items():
        for secret in secrets_seen:
            assert secret not in text, f"a secret leaked into {where}"
    # -vv did log every request line (scrubbed), so the scan above had something to read.
    assert outputs["apply stderr"].count("HTTP Request:") >= 5
    sink = secrets.read_text()
    assert all(v in sink for v in delivered)
