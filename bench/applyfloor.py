"""The floor of an apply: a minimal httpx script sending the same PUTs (one per key,
the whole key, as an Algolia update is) with 8 in flight over one client, and nothing
else: no plan, no confirmation."""

from __future__ import annotations

import asyncio
import json
import sys
from pathlib import Path

import httpx

PARALLELISM = 8


async def put_all(url: str, headers: dict[str, str], puts: list[list[object]]) -> None:
    gate = asyncio.Semaphore(PARALLELISM)
    async with httpx.AsyncClient(headers=headers, timeout=60) as client:

        async def one(path: str, body: object) -> None:
            async with gate:
                (await client.put(url + path, json=body)).raise_for_status()

        await asyncio.gather(*(one(str(path), body) for path, body in puts))


def main() -> None:
    job = json.loads(Path(sys.argv[1]).read_text())
    asyncio.run(put_all(job["url"], job["headers"], job["puts"]))


if __name__ == "__main__":
    main()
