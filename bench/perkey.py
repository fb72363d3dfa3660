"""The Terraform providers' refresh pattern: read the YAML, then one GET per key, 10 in
flight (Terraform's default parallelism)."""

from __future__ import annotations

import asyncio
import json
import sys
from pathlib import Path
from urllib.parse import quote

import httpx
import yaml

PARALLELISM = 10


def key_requests(account: dict[str, object]) -> list[tuple[str, dict[str, str]]]:
    creds = account["credentials"]
    assert isinstance(creds, dict)
    handles = account["handles"]
    assert isinstance(handles, list)
    if account["provider"] == "algolia":
        headers = {
            "x-algolia-application-id": creds["application_id"],
            "x-algolia-api-key": creds["api_key"],
        }
        return [(f"{account['url']}/1/keys/{quote(str(h), safe='')}", headers) for h in handles]
    prefix = f"{account['url']}/rest/organizations/{creds['organization_id']}"
    headers = {"authorization": f"Bearer {creds['token']}"}
    return [(f"{prefix}/apikeys/{h}", headers) for h in handles]


async def refresh(accounts: list[dict[str, object]]) -> None:
    gate = asyncio.Semaphore(PARALLELISM)
    async with httpx.AsyncClient(timeout=60) as client:

        async def one(url: str, headers: dict[str, str]) -> None:
            async with gate:
                (await client.get(url, headers=headers)).raise_for_status()

        await asyncio.gather(*(one(u, h) for a in accounts for u, h in key_requests(a)))


def main() -> None:
    world = json.loads(Path(sys.argv[1]).read_text())
    for file in world["config"]:
        yaml.load(Path(file).read_text(), Loader=yaml.CSafeLoader)
    asyncio.run(refresh(world["accounts"]))


if __name__ == "__main__":
    main()
