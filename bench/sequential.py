"""The reference script teams write today: read the YAML, then list every account's keys
one account after another with the official client (algoliasearch for Algolia; plain
httpx for Coveo, which has no official Python client)."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from urllib.parse import urlsplit

import httpx
import yaml
from algoliasearch.http.hosts import Host, HostsCollection
from algoliasearch.search.client import SearchClientSync
from algoliasearch.search.config import SearchConfig


def main() -> None:
    world = json.loads(Path(sys.argv[1]).read_text())
    for file in world["config"]:
        yaml.load(Path(file).read_text(), Loader=yaml.CSafeLoader)
    for account in world["accounts"]:
        creds = account["credentials"]
        if account["provider"] == "algolia":
            parts = urlsplit(account["url"])
            config = SearchConfig(creds["application_id"], creds["api_key"])
            config.hosts = HostsCollection([Host(parts.hostname, scheme="http", port=parts.port)])
            config.proxies = {}
            SearchClientSync.create_with_config(config).list_api_keys()
        else:
            prefix = f"{account['url']}/rest/organizations/{creds['organization_id']}"
            headers = {"authorization": f"Bearer {creds['token']}"}
            httpx.get(f"{prefix}/apikeys", headers=headers).raise_for_status()
            httpx.get(f"{prefix}/privileges/apikeys", headers=headers).raise_for_status()


if __name__ == "__main__":
    main()
