"""Shared helpers of the emulator tests (a uniquely named module, importable from tests)."""

from __future__ import annotations

from typing import Any

import httpx

APP_ID = "EMUTESTAPP"
ADMIN_KEY = "0123456789abcdef0123456789abcdef"
ADMIN_HEADERS = {"x-algolia-application-id": APP_ID, "x-algolia-api-key": ADMIN_KEY}


def key_headers(api_key: str, app_id: str = APP_ID) -> dict[str, str]:
    return {"x-algolia-application-id": app_id, "x-algolia-api-key": api_key}


def add_key(client: httpx.Client, **fields: Any) -> str:
    """Create a key through the API and return its value."""
    response = client.post("/1/keys", json=fields)
    assert response.status_code == 200, response.text
    value: str = response.json()["key"]
    return value


def http_client(
    base_url: str, headers: dict[str, str] | None = None, **kwargs: Any
) -> httpx.Client:
    """A plain-HTTP client: no proxies from the environment, no TLS context to build."""
    return httpx.Client(base_url=base_url, headers=headers, trust_env=False, verify=False, **kwargs)
