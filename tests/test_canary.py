"""No key value and no credential in any output: stdout, stderr at -vv, JSON plans,
reports, error messages and reprs. Only the secrets sink may hold values."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from pathlib import Path

from algoliasearch.search.models.api_key import ApiKey
from click.testing import Result
from conftest import ADMIN_KEY, APP_ID, Algolia, algolia_account, official_client

from keystate import planfile
from keystate.config import load_config
from keystate.contract import ConnectOptions
from keystate.engine import make_plan

CONFIG = """\
version: 1
accounts:
{account}keys:
  algolia-prod:
{keys}"""


def keys_yaml(names: list[str], acl: str = "search") -> str:
    return "".join(f"    {n}:\n      description: canary {n}\n      acl: [{acl}]\n" for n in names)


def all_values(algolia: Algolia, extra: set[str]) -> set[str]:
    return {k["value"] for k in algolia.emulator.snapshot()} | {ADMIN_KEY} | extra


def assert_clean(texts: dict[str, str], secrets: set[str]) -> None:
    for where, text in texts.items():
        for secret in secrets:
            assert secret not in text, f"a secret leaked into {where}"


def test_full_run_leaks_nothing(
    algolia: Algolia, write: Callable[..., Path], run: Callable[..., Result], tmp_path: Path
) -> None:
    client = official_client(algolia.url)
    unmanaged = client.add_api_key(ApiKey(acl=["search"], description="unmanaged")).key  # type: ignore[attr-defined]
    outputs: dict[str, str] = {}
    seen_values: set[str] = {unmanaged}

    def record(name: str, result: Result) -> None:
        outputs[f"{name} stdout"] = result.stdout
        outputs[f"{name} stderr"] = result.stderr
        assert "Traceback" not in result.stdout + result.stderr

    config = write(
        CONFIG.format(account=algolia_account(algolia.url), keys=keys_yaml(["a", "b", "c", "d"]))
    )
    secrets = tmp_path / "secrets.jsonl"
    report = tmp_path / "report.json"
    record("plan", run("-vv", "plan", "-c", str(config), "--show-unmanaged"))
    record(
        "plan-json", run("-vv", "plan", "-c", str(config), "--format", "json", "--show-unmanaged")
    )
    result = run(
        "-vv",
        "apply",
        "-c",
        str(config),
        "--auto-approve",
        "--secrets-out",
        str(secrets),
        "--report",
        str(report),
    )
    assert result.exit_code == 0, result.output
    record("apply", result)
    outputs["report"] = report.read_text()
    seen_values |= {json.loads(line)["value"] for line in secrets.read_text().splitlines()}
    assert len(seen_values) == 5

    # Drift, then repair with updates and a delete; an API error on the way.
    write(
        CONFIG.format(
            account=algolia_account(algolia.url), keys=keys_yaml(["a", "b", "c"], "browse")
        )
    )
    record("plan-2", run("-vv", "plan", "-c", str(config), "--format", "json"))
    record(
        "apply-2", run("-vv", "apply", "-c", str(config), "--auto-approve", "--report", str(report))
    )
    outputs["report-2"] = report.read_text()
    record("privileges", run("-vv", "privileges", "algolia-prod", "-c", str(config)))
    review = tmp_path / "review.out"
    for fmt in ("html", "markdown", "json", "csv"):
        args = ("report", "-c", str(config), "--format", fmt, "--fail-on", "unmanaged")
        record(f"report-{fmt}", run("-vv", *args))
        assert (
            run("report", "-c", str(config), "--format", fmt, "--out", str(review)).exit_code == 0
        )
        outputs[f"report file {fmt}"] = review.read_text()
    # Wrong credentials: the error must not echo either key.
    record(
        "bad-credentials",
        run("-vv", "plan", "-c", str(config), env={"ALGOLIA_ADMIN_API_KEY": "f" * 32}),
    )
    assert (
        "check the admin API key from ${ALGOLIA_ADMIN_API_KEY}" in outputs["bad-credentials stderr"]
    )
    seen_values.add("f" * 32)

    assert_clean(outputs, all_values(algolia, seen_values))
    assert "[REDACTED]" in outputs["apply stderr"]  # -vv logged request lines, scrubbed
    # The sink holds the values, and only the sink.
    sink = secrets.read_text()
    assert all(v in sink for v in seen_values - {unmanaged, "f" * 32})


def test_reprs_and_plan_objects_hold_no_values(
    algolia: Algolia, write: Callable[..., Path]
) -> None:
    client = official_client(algolia.url)
    value = client.add_api_key(ApiKey(acl=["search"], description="x")).key  # type: ignore[attr-defined]
    config = load_config(
        write(CONFIG.format(account=algolia_account(algolia.url), keys="")),
        env={
            "ALGOLIA_APPLICATION_ID": APP_ID,
            "ALGOLIA_ADMIN_API_KEY": ADMIN_KEY,
        },
    )

    async def go() -> str:
        plan, conns = await make_plan(config, [], ConnectOptions())
        texts = [
            repr(plan),
            repr(conns.providers),
            repr(config),
            planfile.dumps(planfile.document(plan)),
        ]
        texts += [repr(k) for a in plan.accounts for k in a.unmanaged]
        await conns.aclose()
        return "\n".join(texts)

    text = asyncio.run(go())
    assert value not in text
    assert ADMIN_KEY not in text
    assert "Secret(sha256:" in text


def test_sink_objects_and_errors_hold_no_values(tmp_path: Path) -> None:
    """A value on its way to a sink: the delivery, its failure and the rescue file's
    record in a log line show fingerprints only."""
    import sys
    from datetime import UTC, datetime

    from keystate.errors import DeliveryError
    from keystate.secrets import DeliveredSecret, Secret
    from keystate.sinks import SecretsConfig, SinkSpec
    from keystate.sinks.base import Delivery
    from keystate.sinks.delivery import Deliveries
    from keystate.sinks.spec import ExecSinkSpec, Placeholders

    value = "c4nary" + "7" * 26
    item = DeliveredSecret("a/k", "a", "k", "algolia", "id", Secret(value), datetime.now(UTC))
    echo = "import sys; v = sys.stdin.read(); print(v); sys.exit('bad ' + v)"
    config = SecretsConfig(
        {"echo": SinkSpec("echo", ExecSinkSpec((sys.executable, "-c", echo)))},
        rescue_dir=tmp_path,
    )
    deliveries = Deliveries(config, None)
    try:
        deliveries.deliver(item, ("echo",), "create")
    except DeliveryError as exc:
        error = exc
    deliveries.close()
    texts = [
        repr(item),
        repr(Delivery(item, Placeholders("a", "k", None, item.value.fingerprint), "create")),
        repr(deliveries.sinks),
        str(error),
        repr(error),
    ]
    text = "\n".join(texts)
    assert value not in text
    assert "[REDACTED]" in str(error)  # the command's stderr, scrubbed


def test_issue_15_output_paths_leak_nothing(
    algolia: Algolia, write: Callable[..., Path], run: Callable[..., Result], tmp_path: Path
) -> None:
    """validate without credentials, drift (every format, --drift-only), refusals, the
    --force warning, --target, import beside a configuration, a blocked account,
    completion and the saved-plan hint."""
    client = official_client(algolia.url)
    unmanaged = client.add_api_key(ApiKey(acl=["search"], description="canary u")).key  # type: ignore[attr-defined]
    outputs: dict[str, str] = {}

    def record(name: str, result: Result) -> Result:
        outputs[f"{name} stdout"] = result.stdout
        outputs[f"{name} stderr"] = result.stderr
        assert "Traceback" not in result.stdout + result.stderr
        return result

    names = ["a", "b", "c", "d", "e"]
    config = write(CONFIG.format(account=algolia_account(algolia.url), keys=keys_yaml(names)))
    secrets = tmp_path / "secrets.jsonl"
    record("validate", run("-vv", "validate", "-c", str(config)))
    record("validate-strict", run("validate", "--strict", "-c", str(config)))
    applied = run("apply", "-c", str(config), "--auto-approve", "--secrets-out", str(secrets))
    assert applied.exit_code == 0, applied.output
    seen = {json.loads(line)["value"] for line in secrets.read_text().splitlines()}
    # Drift on a (its description, hence its digest, kept), a refusal on e (protected),
    # and most keys removed: drift, refusal and the --force warning in one plan.
    a = next(k for k in client.list_api_keys().keys if "keystate:a#" in (k.description or ""))  # type: ignore[attr-defined]
    client.update_api_key(a.value, ApiKey(acl=["logs"], description=a.description))  # type: ignore[attr-defined]
    write(CONFIG.format(account=algolia_account(algolia.url), keys=keys_yaml(["a"])))
    for fmt in ("text", "json", "markdown"):
        record(f"plan-{fmt}", run("-vv", "plan", "-c", str(config), "--format", fmt))
    assert "Warning: apply will need --force" in outputs["plan-text stdout"]
    assert "keys changed outside of keystate" in outputs["plan-text stdout"]
    record("drift-only", run("plan", "-c", str(config), "--drift-only", "--detailed-exitcode"))
    record("target", run("plan", "-c", str(config), "--target", "algolia-prod/a"))
    record("out", run("plan", "-c", str(config), "--out", str(tmp_path / "plan.json")))
    outputs["planfile"] = (tmp_path / "plan.json").read_text()
    record("show", run("show", str(tmp_path / "plan.json"), "--format", "markdown"))
    record("import", run("-vv", "import", "algolia-prod", "-c", str(config)))
    record("import-all", run("import", "algolia-prod", "-c", str(config), "--all"))
    record("completion", run("completion", "bash"))
    # An expired key blocks its account: the error names the key, never a value.
    expired = keys_yaml(["a"]) + "      expires_at: 2001-01-01T00:00:00Z\n"
    write(CONFIG.format(account=algolia_account(algolia.url), keys=expired))
    record("blocked-plan", run("-vv", "plan", "-c", str(config)))
    record("blocked-apply", run("apply", "-c", str(config), "--auto-approve"))
    assert "is in the past" in outputs["blocked-plan stderr"]
    assert_clean(outputs, all_values(algolia, seen | {unmanaged}))
