"""The ``aws_secrets_manager`` sink: boto3, imported only here and only when used
(``pip install 'keystate[aws]'``).

Each delivery writes the secret's JSON (value, fingerprint, account, name, created_at):
``CreateSecret`` when the secret does not exist, else ``PutSecretValue``, a new version
that AWS labels ``AWSCURRENT`` while the one before becomes ``AWSPREVIOUS`` — both
values readable during a rotation's overlap. Credentials come from the standard AWS
chain (environment, profile, instance role); ``endpoint_url`` points elsewhere (a
VPC endpoint, or a local test server).
"""

from __future__ import annotations

import json
import logging
from typing import Any

from keystate.sinks.base import Delivery, SinkFailed, scrub
from keystate.sinks.spec import AwsSinkSpec

EXTRA_HINT = "the aws_secrets_manager sink needs boto3: pip install 'keystate[aws]'"
_NOT_FOUND = "ResourceNotFoundException"
_EXISTS = "ResourceExistsException"
_CHATTY = ("boto3", "botocore", "urllib3", "s3transfer")


def boto3_missing() -> bool:
    import importlib.util

    return importlib.util.find_spec("boto3") is None


class AwsSink:
    def __init__(self, name: str, spec: AwsSinkSpec) -> None:
        self.name = name
        self.spec = spec
        self._clients: dict[str, Any] = {}

    def _client(self, region: str) -> Any:
        client = self._clients.get(region)
        if client is None:
            try:
                import boto3  # type: ignore[import-untyped]
            except ImportError:
                raise SinkFailed(f"sink '{self.name}': {EXTRA_HINT}") from None
            from botocore.config import Config  # type: ignore[import-untyped]

            for name in _CHATTY:  # their debug logs show request bodies: values
                logging.getLogger(name).setLevel(logging.WARNING)
            session = boto3.session.Session()
            client = session.client(
                "secretsmanager",
                region_name=region,
                endpoint_url=self.spec.endpoint_url,
                config=Config(
                    connect_timeout=5,
                    read_timeout=30,
                    retries={"max_attempts": 3, "mode": "standard"},
                ),
            )
            self._clients[region] = client
        return client

    def deliver(self, delivery: Delivery) -> None:
        values = delivery.values
        secret = values.fill(self.spec.name)
        item = delivery.item
        body = json.dumps(
            {
                "value": item.value.reveal(),
                "fingerprint": values.fingerprint,
                "account": item.account,
                "name": item.name,
                "created_at": item.created_at.isoformat().replace("+00:00", "Z"),
            }
        )
        client = self._client(values.fill(self.spec.region))
        try:
            self._write(client, secret, body)
        except SinkFailed:
            raise
        except Exception as exc:  # botocore's errors: ClientError, BotoCoreError
            raise SinkFailed(f"sink '{self.name}': secret {secret}: {_describe(exc)}") from None

    @staticmethod
    def _write(client: Any, secret: str, body: str) -> None:
        try:
            client.put_secret_value(SecretId=secret, SecretString=body)
            return
        except Exception as exc:
            if _code(exc) != _NOT_FOUND:
                raise
        try:
            client.create_secret(
                Name=secret, SecretString=body, Description="API key delivered by keystate"
            )
        except Exception as exc:
            if _code(exc) != _EXISTS:  # created meanwhile (another run): add a version
                raise
            client.put_secret_value(SecretId=secret, SecretString=body)

    def check(self, live: bool) -> list[str]:
        if boto3_missing():
            return [f"sink '{self.name}': {EXTRA_HINT}"]
        if not live or "{" in self.spec.region:
            return []
        client = self._client(self.spec.region)
        try:
            # Lists no value: proves the credentials and the endpoint, and that the
            # caller may read the secrets' metadata.
            client.list_secrets(MaxResults=1)
            if "{" not in self.spec.name:
                client.describe_secret(SecretId=self.spec.name)
        except Exception as exc:
            if _code(exc) == _NOT_FOUND:
                return []  # created on the first delivery
            return [f"sink '{self.name}': {_describe(exc)}"]
        return []

    def close(self) -> None:
        self._clients.clear()


def _code(exc: Exception) -> str:
    response = getattr(exc, "response", None)
    if isinstance(response, dict):
        return str(response.get("Error", {}).get("Code", ""))
    return ""


def _describe(exc: Exception) -> str:
    code = _code(exc)
    text = scrub(str(exc))
    return f"{code}: {text}" if code and code not in text else text
