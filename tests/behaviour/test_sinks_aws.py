"""The aws_secrets_manager sink against moto's standalone server: real HTTP on
127.0.0.1, boto3 unchanged, fake credentials (never AWS)."""

from __future__ import annotations

import json
import socket
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import boto3  # the dev extra: make test installs it, with moto[server]
import pytest
from click.testing import Result
from moto import server as moto_server
from support import Servers

from .harness import HARNESSES, Harness, Running, markers

REGION = "us-east-1"
AWS_ENV = {
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_SESSION_TOKEN": "testing",
    "AWS_DEFAULT_REGION": REGION,
    "AWS_CONFIG_FILE": "/dev/null",
    "AWS_SHARED_CREDENTIALS_FILE": "/dev/null",
    "AWS_EC2_METADATA_DISABLED": "true",
}


@pytest.fixture(scope="module")
def moto() -> Iterator[str]:
    server = moto_server.ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    try:
        yield f"http://{host}:{port}"
    finally:
        server.stop()


@pytest.fixture
def aws(moto: str, monkeypatch: pytest.MonkeyPatch) -> Any:
    for key, value in AWS_ENV.items():
        monkeypatch.setenv(key, value)
    return boto3.session.Session().client("secretsmanager", region_name=REGION, endpoint_url=moto)


def _config(harness: Harness, running: Running, moto: str, keys: str, prefix: str) -> str:
    secrets = (
        "secrets:\n  default: aws\n  sinks:\n    aws:\n      aws_secrets_manager:\n"
        f"        region: {REGION}\n        name: '{prefix}/{{account}}/{{name}}'\n"
        f"        endpoint_url: {moto}\n"
    )
    return (
        f"version: 1\n{secrets}accounts:\n{harness.account_yaml(running.url)}"
        f"keys:\n  {harness.account}:\n{keys}"
    )


def _value(harness: Harness, running: Running, name: str) -> str:
    (key,) = [k for k in harness.stored(running) if f"keystate:{name}" in str(k["description"])]
    return harness.value_of(key)


def test_aws_sink_creates_the_secret(
    harness: Harness,
    serve: Servers,
    aws: Any,
    moto: str,
    write: Callable[..., Path],
    run: Callable[..., Result],
) -> None:
    running = harness.start(serve)
    prefix = f"create-{harness.provider}"
    config = write(_config(harness, running, moto, harness.key_yaml("search"), prefix))
    env = harness.env | AWS_ENV
    check = run("sinks", "check", "--live", "-c", str(config), env=env)
    assert check.exit_code == 0, check.output
    assert "aws (default): aws_secrets_manager: ok" in check.stdout

    result = run("apply", "-c", str(config), "--auto-approve", env=env)
    assert result.exit_code == 0, result.output
    secret = aws.get_secret_value(SecretId=f"{prefix}/{harness.account}/search")
    body = json.loads(secret["SecretString"])
    value = _value(harness, running, "search")
    assert body["value"] == value
    assert (body["account"], body["name"]) == (harness.account, "search")
    assert len(body["fingerprint"]) == 64 and body["created_at"].endswith("Z")
    assert value not in result.output


def test_aws_sink_keeps_the_previous_value_after_a_replace(
    serve: Servers,
    aws: Any,
    moto: str,
    write: Callable[..., Path],
    run: Callable[..., Result],
) -> None:
    harness = HARNESSES["coveo"]  # expires_at is create-only there: a change replaces the key
    running = harness.start(serve)
    env = harness.env | AWS_ENV
    key = harness.key_yaml("site")
    config = write(_config(harness, running, moto, key, "rotate"))
    assert run("apply", "-c", str(config), "--auto-approve", env=env).exit_code == 0
    first = _value(harness, running, "site")
    config = write(
        _config(harness, running, moto, key.replace("2031-01-01", "2032-01-01"), "rotate")
    )
    plan = run("plan", "-c", str(config), env=env)
    assert "New value delivered to: aws" in plan.stdout
    result = run("apply", "-c", str(config), "--auto-approve", env=env)
    assert result.exit_code == 0, result.output
    second = _value(harness, running, "site")
    assert second != first and markers(harness, running) == {("site", False): 1}
    name = f"rotate/{harness.account}/site"
    current = aws.get_secret_value(SecretId=name, VersionStage="AWSCURRENT")
    previous = aws.get_secret_value(SecretId=name, VersionStage="AWSPREVIOUS")
    assert json.loads(current["SecretString"])["value"] == second
    assert json.loads(previous["SecretString"])["value"] == first


def test_aws_failure_is_rescued_and_named_without_the_value(
    harness: Harness,
    serve: Servers,
    aws: Any,
    write: Callable[..., Path],
    run: Callable[..., Result],
    tmp_path: Path,
) -> None:
    running = harness.start(serve)
    # Nothing listens there: every attempt is refused (after boto3's own retries).
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        closed = f"http://127.0.0.1:{probe.getsockname()[1]}"
    text = _config(harness, running, closed, harness.key_yaml("k"), "doomed")
    text = text.replace("secrets:\n", f"secrets:\n  rescue_dir: '{tmp_path / 'rescue'}'\n")
    config = write(text)
    result = run("-vv", "apply", "-c", str(config), "--auto-approve", env=harness.env | AWS_ENV)
    assert result.exit_code == 1, result.output
    assert "sink 'aws': secret doomed/" in result.output
    (rescue,) = (tmp_path / "rescue").iterdir()
    value = json.loads(rescue.read_text())["value"]
    assert value == _value(harness, running, "k")
    assert value not in result.output
