"""The physical floor of a plan: parse the YAML with PyYAML's C loader, then issue the
same list (and privileges) requests concurrently with a minimal httpx script."""

from __future__ import annotations

import asyncio
import json
import sys
from pathlib import Path

import httpx
import yaml


def requests_for(account: dict[str, object]) -> list[tuple[str, dict[str, str]]]:
    creds = account["credentials"]
    assert isinstance(creds, dict)
    url = str(account["url"])
    if account["provider"] == "algolia":
        headers = {
            "x-algolia-application-id": creds["application_id"],
            "x-algolia-api-key": creds["api_key"],
        }
        return [(f"{url}/1/keys", headers)]
    prefix = f"{url}/rest/organizations/{creds['organization_id']}"
    headers = {"authorization": f"Bearer {creds['token']}"}
    return [(f"{prefix}/apikeys", headers), (f"{prefix}/privileges/apikeys?filter=CUSTOM", headers)]


async def fetch_all(accounts: list[dict[str, object]]) -> None:
    limits = httpx.Limits(max_connections=200)
    async with httpx.AsyncClient(limits=limits, timeout=60) as client:
        calls = [client.get(url, headers=h) for a in accounts for url, h in requests_for(a)]
        for response in await asyncio.gather(*calls):
            response.raise_for_status()
            response.json()


def main() -> None:
    world = json.loads(Path(sys.argv[1]).read_text())
    for file in world["config"]:
        yaml.load(Path(file).read_text(), Loader=yaml.CSafeLoader)
    asyncio.run(fetch_all(world["accounts"]))


if __name__ == "__main__":
    main()
