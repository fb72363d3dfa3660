"""Secret sinks: configuration, --secrets-out over the default sink, the safety gate,
saved plans, `keystate sinks check`, placeholders, the rescue file (docs/secrets.md)."""

from __future__ import annotations

import json
import stat
import sys
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

import pytest
from click.testing import Result
from conftest import Algolia, algolia_account

from keystate.config import load_config
from keystate.secrets import DeliveredSecret, Secret
from keystate.sinks import SecretsConfig, SinkSpec
from keystate.sinks import aws as aws_sink
from keystate.sinks.delivery import Deliveries
from keystate.sinks.rescue import RescueFile
from keystate.sinks.spec import ExecSinkSpec, FileSinkSpec, Placeholders, placeholder_problems

KEY = "    k:\n      acl: [search]\n"


def config_text(url: str, secrets: str, keys: str = KEY) -> str:
    return f"version: 1\n{secrets}accounts:\n{algolia_account(url)}keys:\n  algolia-prod:\n{keys}"


def item(value: str = "v" * 32) -> DeliveredSecret:
    return DeliveredSecret(
        "acct/key-one", "acct", "key-one", "algolia", "id1", Secret(value), datetime.now(UTC)
    )


def test_placeholders_are_filled_and_checked() -> None:
    values = Placeholders("algolia-prod", "storefront-search.v2", "team", "ab" * 32)
    text = "{account}/{name}/{name_upper}/{owner}/{fingerprint}/{{literal}}"
    assert values.fill(text) == (
        f"algolia-prod/storefront-search.v2/STOREFRONT_SEARCH_V2/team/{'ab' * 32}/{{literal}}"
    )
    assert placeholder_problems(text) == []
    assert "unknown placeholder {nam}" in placeholder_problems("{nam}")[0]
    assert "takes no format" in placeholder_problems("{name!r}")[0]
    assert placeholder_problems("{name")  # unbalanced


def test_deliver_to_is_read_from_key_then_account(tmp_path: Path) -> None:
    path = tmp_path / "k.yaml"
    path.write_text(
        "version: 1\nsecrets:\n  default: f\n  sinks:\n    f: {file: out.jsonl}\n"
        "    g: {exec: [echo]}\naccounts:\n"
        + algolia_account("http://127.0.0.1:9", extra="    deliver_to: g\n")
        + "keys:\n  algolia-prod:\n    own:\n      acl: [search]\n      deliver_to: [f, g]\n"
        "    inherits:\n      acl: [search]\n"
    )
    config = load_config(
        path, env={"ALGOLIA_APPLICATION_ID": "APPID12345", "ALGOLIA_ADMIN_API_KEY": "x" * 32}
    )
    keys = config.keys["algolia-prod"]
    assert keys["own"].deliver_to == ("f", "g")
    assert keys["inherits"].deliver_to == ("g",)
    assert config.secrets.default == "f"
    sink = config.secrets.sinks["f"].settings
    assert isinstance(sink, FileSinkSpec) and sink.resolve_static() == str(tmp_path / "out.jsonl")


def test_secrets_out_overrides_the_default_sink(
    algolia: Algolia, write: Callable[..., Path], run: Callable[..., Result], tmp_path: Path
) -> None:
    configured = tmp_path / "configured.jsonl"
    given = tmp_path / "given.jsonl"
    secrets = f"secrets:\n  default: f\n  sinks:\n    f: {{file: '{configured}'}}\n"
    config = write(config_text(algolia.url, secrets))
    result = run("apply", "-c", str(config), "--auto-approve", "--secrets-out", str(given))
    assert result.exit_code == 0, result.output
    assert not configured.exists()
    assert [json.loads(x)["name"] for x in given.read_text().splitlines()] == ["k"]


def test_the_gate_counts_configured_sinks(
    algolia: Algolia, write: Callable[..., Path], run: Callable[..., Result], tmp_path: Path
) -> None:
    out = tmp_path / "out.jsonl"
    keys = KEY + "    l:\n      acl: [search]\n      deliver_to: f\n"
    config = write(
        config_text(algolia.url, f"secrets:\n  sinks:\n    f: {{file: '{out}'}}\n", keys)
    )
    refused = run("apply", "-c", str(config), "--auto-approve")
    assert refused.exit_code == 3
    assert "1 key value(s) (algolia-prod/k)" in refused.stderr
    assert list(algolia.emulator.snapshot()) == []
    config = write(
        config_text(
            algolia.url, f"secrets:\n  default: f\n  sinks:\n    f: {{file: '{out}'}}\n", keys
        )
    )
    done = run("apply", "-c", str(config), "--auto-approve")
    assert done.exit_code == 0, done.output
    assert sorted(json.loads(x)["name"] for x in out.read_text().splitlines()) == ["k", "l"]
    assert "2 new key value(s) delivered to f" in done.stdout


def test_saved_plan_keeps_the_sinks_and_needs_their_definitions(
    algolia: Algolia, write: Callable[..., Path], run: Callable[..., Result], tmp_path: Path
) -> None:
    out = tmp_path / "out.jsonl"
    secrets = f"secrets:\n  default: f\n  sinks:\n    f: {{file: '{out}'}}\n"
    config = write(config_text(algolia.url, secrets))
    planfile = tmp_path / "plan.json"
    assert run("plan", "-c", str(config), "--out", str(planfile)).exit_code == 0
    (change,) = json.loads(planfile.read_text())["changes"]
    assert change["deliver_to"] == ["f"]
    shown = run("show", str(planfile))
    assert "New value delivered to: f" in shown.stdout
    alone = run("apply", str(planfile))
    assert alone.exit_code == 1
    assert "sink 'f', which is not configured here" in alone.stderr
    assert list(algolia.emulator.snapshot()) == []
    done = run("apply", "-c", str(config), str(planfile))
    assert done.exit_code == 0, done.output
    assert json.loads(out.read_text())["name"] == "k"


def test_sinks_check_offline_and_live(
    write: Callable[..., Path], run: Callable[..., Result], tmp_path: Path
) -> None:
    secrets = (
        "secrets:\n  default: f\n  sinks:\n    f: {file: out.jsonl}\n"
        f"    ok: {{exec: [{json.dumps(sys.executable)}, -c, pass]}}\n"
        "    gone: {exec: [keystate-no-such-command-x, '{name}']}\n"
    )
    config = write(config_text("http://127.0.0.1:9", secrets))
    offline = run("sinks", "check", "-c", str(config))
    assert offline.exit_code == 0, offline.output
    assert "f (default): file: ok" in offline.stdout
    live = run("sinks", "check", "--live", "-c", str(config))
    assert live.exit_code == 1
    assert "gone: exec: sink 'gone': command 'keystate-no-such-command-x' not found" in live.stdout
    assert "ok: exec: ok" in live.stdout
    assert "1 sink problem(s)" in live.stderr
    assert not (tmp_path / "out.jsonl").exists()  # nothing delivered


def test_missing_boto3_names_the_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(aws_sink, "boto3_missing", lambda: True)
    from keystate.sinks.spec import AwsSinkSpec

    config = SecretsConfig({"a": SinkSpec("a", AwsSinkSpec("us-east-1", "x/{name}"))})
    deliveries = Deliveries(config, None)
    assert deliveries.preflight(["a"]) == [
        "sink 'a': the aws_secrets_manager sink needs boto3: pip install 'keystate[aws]'"
    ]


def test_rescue_files_are_0600_and_never_overwritten(tmp_path: Path) -> None:
    first, second = RescueFile(tmp_path / "r"), RescueFile(tmp_path / "r")
    a = first.keep(item("a" * 32), ["s"])
    b = second.keep(item("b" * 32), ["s"])
    first.keep(item("c" * 32), ["t"])
    first.close()
    second.close()
    assert a != b
    assert stat.S_IMODE(a.stat().st_mode) == 0o600
    assert [json.loads(x)["value"] for x in a.read_text().splitlines()] == ["a" * 32, "c" * 32]
    assert json.loads(b.read_text())["failed_sinks"] == ["s"]


def test_a_failed_sink_does_not_stop_the_others(tmp_path: Path) -> None:
    out = tmp_path / "out.jsonl"
    config = SecretsConfig(
        {
            "bad": SinkSpec("bad", ExecSinkSpec((sys.executable, "-c", "import sys; sys.exit(2)"))),
            "good": SinkSpec("good", FileSinkSpec(str(out))),
        },
        rescue_dir=tmp_path / "rescue",
    )
    deliveries = Deliveries(config, None)
    with pytest.raises(Exception, match=r"sink 'bad'.* exited with status 2.*rescue file"):
        deliveries.deliver(item(), ("bad", "good"), "create")
    deliveries.close()
    assert json.loads(out.read_text())["value"] == "v" * 32
    (rescue,) = (tmp_path / "rescue").iterdir()
    assert json.loads(rescue.read_text())["failed_sinks"] == ["bad"]


def test_exec_sink_timeout(tmp_path: Path) -> None:
    slow = ExecSinkSpec((sys.executable, "-c", "import time; time.sleep(5)"), timeout=0.3)
    config = SecretsConfig({"slow": SinkSpec("slow", slow)}, rescue_dir=tmp_path)
    deliveries = Deliveries(config, None)
    with pytest.raises(Exception, match=r"timed out after 0.3s"):
        deliveries.deliver(item(), ("slow",), "create")
    deliveries.close()
