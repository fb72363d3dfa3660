"""No key value and no credential in any output, for every provider: every command and
output format at -vv, reports, plan files and errors. Only the secrets sink holds values."""

from __future__ import annotations

import json
import socket
import sys
from collections.abc import Callable
from pathlib import Path

from click.testing import Result
from support import Servers

from .harness import Harness


def test_every_command_and_format_leaks_nothing(
    harness: Harness,
    serve: Servers,
    write: Callable[..., Path],
    run: Callable[..., Result],
    tmp_path: Path,
) -> None:
    running = harness.start(serve)
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
    record("import-all", "import", harness.account, *c, "--all")
    for fmt in ("text", "json"):
        record(f"privileges-{fmt}", "privileges", harness.account, *c, "--format", fmt)
    review = tmp_path / "review.out"
    for fmt in ("html", "markdown", "json", "csv"):
        record(f"report-{fmt}", "report", *c, "--format", fmt, "--fail-on", "unmanaged")
        result = record(f"report-out-{fmt}", "report", *c, "--format", fmt, "--out", str(review))
        assert result.exit_code == 0, result.output
        outputs[f"report file {fmt}"] = review.read_text()
    # Issue 15's outputs: drift-only, --target, validate without resolving, completion.
    record("drift-only", "plan", *c, "--drift-only", "--detailed-exitcode")
    record("target", "plan", *c, "--target", f"{harness.account}/a", "--format", "markdown")
    record("validate-offline", "validate", "--strict", *c, env={})
    record("completion", "completion", "zsh")
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


def test_sink_paths_leak_nothing(
    harness: Harness,
    serve: Servers,
    write: Callable[..., Path],
    run: Callable[..., Result],
    tmp_path: Path,
) -> None:
    """Every sink path at -vv — exec (a command that echoes the value on stdout and
    stderr), its failure, the rescue file, an unreachable AWS endpoint, sinks check —
    shows no value. Only the sinks and the rescue file hold values."""
    running = harness.start(serve)
    loud = tmp_path / "loud.py"
    loud.write_text(
        "import os, sys\nv = sys.stdin.read()\nprint('got', v)\n"
        "sys.stderr.write('stored ' + v + ' ' + os.environ['KEYSTATE_KEY'] + '\\n')\n"
        f"sys.exit(1 if os.path.exists({str(tmp_path / 'fail')!r}) else 0)\n"
    )
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        closed = f"http://127.0.0.1:{probe.getsockname()[1]}"
    file_sink = tmp_path / "file.jsonl"
    secrets = (
        f"secrets:\n  default: loud\n  rescue_dir: '{tmp_path / 'rescue'}'\n  sinks:\n"
        f"    loud: {{exec: [{json.dumps(sys.executable)}, '{loud}', '{{name_upper}}']}}\n"
        f"    file: {{file: '{file_sink}'}}\n"
        f"    aws: {{aws_secrets_manager: {{region: us-east-1, name: 'k/{{name}}', "
        f"endpoint_url: '{closed}'}}}}\n"
    )
    keys = (
        harness.key_yaml("ok")
        + "      deliver_to: [loud, file]\n"
        + harness.key_yaml("fails")
        + harness.key_yaml("unreachable")
        + "      deliver_to: aws\n"
    )
    config = write(
        f"version: 1\n{secrets}accounts:\n{harness.account_yaml(running.url)}"
        f"keys:\n  {harness.account}:\n{keys}"
    )
    env = harness.env | {
        "AWS_ACCESS_KEY_ID": "AKIACANARY0000000000",
        "AWS_SECRET_ACCESS_KEY": "canarysecret00000000",
        "AWS_CONFIG_FILE": "/dev/null",
        "AWS_SHARED_CREDENTIALS_FILE": "/dev/null",
        "AWS_EC2_METADATA_DISABLED": "true",
    }
    outputs: dict[str, str] = {}
    report = tmp_path / "report.json"

    def record(name: str, *args: str) -> Result:
        result = run("-vv", *args, env=env)
        outputs[f"{name} stdout"] = result.stdout
        outputs[f"{name} stderr"] = result.stderr
        assert "Traceback" not in result.stdout + result.stderr, name
        return result

    c = ("-c", str(config))
    for fmt in ("text", "json", "markdown"):
        record(f"plan-{fmt}", "plan", *c, "--format", fmt)
    record("check", "sinks", "check", "--live", *c)
    (tmp_path / "fail").touch()  # "loud" fails for every key
    first = record("apply-failing", "apply", *c, "--auto-approve", "--report", str(report))
    assert first.exit_code == 1
    outputs["report"] = report.read_text()
    (tmp_path / "fail").unlink()
    record("apply-again", "apply", *c, "--auto-approve", "--report", str(report))
    outputs["report-2"] = report.read_text()

    rescued = [
        json.loads(line)["value"]
        for path in (tmp_path / "rescue").iterdir()
        for line in path.read_text().splitlines()
    ]
    assert len(rescued) >= 3  # ok, fails and unreachable: each missed a sink
    secrets_seen = harness.secrets(running) | set(rescued) | {env["AWS_SECRET_ACCESS_KEY"]}
    assert "stored [REDACTED]" in outputs["apply-failing stdout"] + outputs["apply-failing stderr"]
    for where, text in outputs.items():
        for secret in secrets_seen:
            assert secret not in text, f"a secret leaked into {where}"
    assert file_sink.exists()
