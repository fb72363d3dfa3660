"""Secret sinks end to end, for every provider (DESIGN §12, docs/secrets.md): the exec
sink (the value on stdin only), fan-out, a failing sink (rescue file, exit 1, the next
apply converges with no duplicate), plans that name the sinks."""

from __future__ import annotations

import json
import stat
from collections.abc import Callable
from pathlib import Path

from click.testing import Result
from support import Servers

from keystate.model import parse_description

from .harness import Harness, Running, markers
from .recorder import Recorder


def _config(harness: Harness, running: Running, names: list[str], secrets: str) -> str:
    keys = "".join(harness.key_yaml(n) for n in names)
    return (
        f"version: 1\n{secrets}accounts:\n{harness.account_yaml(running.url)}"
        f"keys:\n  {harness.account}:\n{keys}"
    )


def _live_values(harness: Harness, running: Running) -> dict[str, str]:
    """Name -> value of every managed key (finished or pending) in the emulator."""
    out: dict[str, str] = {}
    for key in harness.stored(running):
        marker = parse_description(str(key.get("description") or ""))[1]
        if marker is not None:
            out[marker.name] = harness.value_of(key)
    return out


def test_exec_sink_gets_the_value_on_stdin_only(
    harness: Harness,
    serve: Servers,
    write: Callable[..., Path],
    run: Callable[..., Result],
    tmp_path: Path,
) -> None:
    running = harness.start(serve)
    rec = Recorder(tmp_path / "rec")
    secrets = f"secrets:\n  default: rec\n  sinks:\n    rec: {rec.exec_yaml()}\n"
    config = write(_config(harness, running, ["storefront-search", "b"], secrets))

    plan = run("plan", "-c", str(config), env=harness.env)
    assert plan.exit_code == 0, plan.output
    assert plan.stdout.count("New value delivered to: rec") == 2

    result = run("apply", "-c", str(config), "--auto-approve", env=harness.env)
    assert result.exit_code == 0, result.output
    assert "2 new key value(s) delivered to rec" in result.stdout
    live = _live_values(harness, running)
    calls = rec.calls()
    assert sorted(c["stdin"] for c in calls) == sorted(live.values())
    call = next(c for c in calls if c["env"]["KEYSTATE_KEY"] == "storefront-search")
    assert call["stdin"] == live["storefront-search"]
    assert call["argv"][1:] == ["STOREFRONT_SEARCH", f"--account={harness.account}"]
    assert call["env"]["KEYSTATE_ACCOUNT"] == harness.account
    assert call["env"]["KEYSTATE_ACTION"] == "create"
    assert len(call["env"]["KEYSTATE_FINGERPRINT"]) == 64
    for c in calls:  # the value is on stdin and nowhere else
        assert not any(c["stdin"] in arg for arg in c["argv"])
        assert not any(c["stdin"] in v for v in c["env"].values())
    assert markers(harness, running) == {("storefront-search", False): 1, ("b", False): 1}
    again = run("plan", "-c", str(config), "--detailed-exitcode", env=harness.env)
    assert again.exit_code == 0, again.output


def test_fan_out_to_two_sinks_and_per_key_choice(
    harness: Harness,
    serve: Servers,
    write: Callable[..., Path],
    run: Callable[..., Result],
    tmp_path: Path,
) -> None:
    running = harness.start(serve)
    rec = Recorder(tmp_path / "rec")
    out = tmp_path / "values" / "{account}.jsonl"
    (tmp_path / "values").mkdir()
    secrets = (
        "secrets:\n  default: file\n  sinks:\n"
        f"    rec: {rec.exec_yaml()}\n    file: {{file: '{out}'}}\n"
    )
    keys = harness.key_yaml("both") + "      deliver_to: [rec, file]\n" + harness.key_yaml("plain")
    text = (
        f"version: 1\n{secrets}accounts:\n{harness.account_yaml(running.url)}"
        f"keys:\n  {harness.account}:\n{keys}"
    )
    config = write(text)
    shown = run("plan", "-c", str(config), "--format", "json", env=harness.env)
    deliver = {c["name"]: c.get("deliver_to") for c in json.loads(shown.stdout)["changes"]}
    assert deliver == {"both": ["rec", "file"], "plain": ["file"]}
    markdown = run("plan", "-c", str(config), "--format", "markdown", env=harness.env)
    assert "new value delivered to `rec`, `file`" in markdown.stdout

    result = run("apply", "-c", str(config), "--auto-approve", env=harness.env)
    assert result.exit_code == 0, result.output
    live = _live_values(harness, running)
    written = tmp_path / "values" / f"{harness.account}.jsonl"
    assert stat.S_IMODE(written.stat().st_mode) == 0o600
    lines = {d["name"]: d["value"] for d in map(json.loads, written.read_text().splitlines())}
    assert lines == {"both": live["both"], "plain": live["plain"]}
    assert [c["stdin"] for c in rec.calls()] == [live["both"]]


def test_a_failing_sink_rescues_the_value_and_the_next_apply_converges(
    harness: Harness,
    serve: Servers,
    write: Callable[..., Path],
    run: Callable[..., Result],
    tmp_path: Path,
) -> None:
    running = harness.start(serve)
    rec = Recorder(tmp_path / "rec")
    rescue_dir = tmp_path / "rescue"
    secrets = (
        f"secrets:\n  default: rec\n  rescue_dir: '{rescue_dir}'\n"
        f"  sinks:\n    rec: {rec.exec_yaml()}\n"
    )
    config = write(_config(harness, running, ["a"], secrets))
    rec.fail(echo_stdin=True)  # and print the value on stderr: it must be redacted

    result = run("-vv", "apply", "-c", str(config), "--auto-approve", env=harness.env)
    assert result.exit_code == 1, result.output
    (rescue,) = rescue_dir.iterdir()
    assert stat.S_IMODE(rescue.stat().st_mode) == 0o600
    saved = json.loads(rescue.read_text())
    assert saved["failed_sinks"] == ["rec"]
    value = saved["value"]
    assert _live_values(harness, running)["a"] == value
    assert str(rescue) in result.output
    assert value not in result.output
    assert "exited with status 3" in result.output and "[REDACTED]" in result.output
    assert markers(harness, running) == {("a", True): 1}  # pending: not delivered

    rec.fail(False)
    again = run("apply", "-c", str(config), "--auto-approve", env=harness.env)
    assert again.exit_code == 0, again.output
    assert markers(harness, running) == {("a", False): 1}  # no duplicate
    live = _live_values(harness, running)["a"]
    assert rec.calls()[-1]["stdin"] == live
    assert [p.name for p in rescue_dir.iterdir()] == [rescue.name]  # never overwritten
    if harness.provider == "algolia":  # its value is read back from the listing
        assert live == value
    else:  # a masked value cannot be: the key is replaced
        assert live != value
    final = run("plan", "-c", str(config), "--detailed-exitcode", env=harness.env)
    assert final.exit_code == 0, final.output


def test_unknown_sink_is_refused_before_any_change(
    harness: Harness,
    serve: Servers,
    write: Callable[..., Path],
    run: Callable[..., Result],
) -> None:
    running = harness.start(serve)
    keys = harness.key_yaml("a") + "      deliver_to: nowhere\n"
    config = write(
        "version: 1\nsecrets:\n  sinks:\n    f: {file: out.jsonl}\n"
        f"accounts:\n{harness.account_yaml(running.url)}keys:\n  {harness.account}:\n{keys}"
    )
    result = run("apply", "-c", str(config), "--auto-approve", env=harness.env)
    assert result.exit_code == 1
    assert "keystate.yaml:" in result.stderr and "unknown sink 'nowhere'" in result.stderr
    assert harness.stored(running) == [] or markers(harness, running) == {}
