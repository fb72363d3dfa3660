"""`keystate import` writes each key name once: of several live keys carrying one marker
(the disabled predecessor of a replace, two keys with one marker), one is written and a
comment names the others; the output loads with keystate's own loader."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest
import yaml
from click.testing import Result

from keystate.config import load_config
from keystate.emulators.coveo import CoveoEmulator
from keystate.emulators.http import RunningServer, start_in_thread

ORG = "acmeimport"
TOKEN = "ximporttoken00000000000000000000"
EXECUTE = {"owner": "SEARCH_API", "targetDomain": "EXECUTE_QUERY", "targetId": "*"}


@pytest.fixture
def server() -> Iterator[RunningServer]:
    with start_in_thread(CoveoEmulator(organization_id=ORG, token=TOKEN)) as running:
        yield running


def _create(c: httpx.Client, description: str, *, disabled: bool = False) -> str:
    body = {"displayName": "k", "description": description, "privileges": [EXECUTE]}
    response = c.post("/apikeys", json=body)
    assert response.status_code == 201, response.text
    ident: str = response.json()["id"]
    if disabled:
        assert c.put(f"/apikeys/{ident}/disable").status_code == 204
    return ident


def test_import_writes_each_name_once_and_loads(
    server: RunningServer, tmp_path: Path, run: Callable[..., Result]
) -> None:
    with httpx.Client(
        base_url=f"{server.url}/rest/organizations/{ORG}",
        headers={"authorization": f"Bearer {TOKEN}"},
    ) as c:
        predecessor = _create(c, "Site keystate:site-search", disabled=True)
        current = _create(c, "Site keystate:site-search")
        first_dup = _create(c, "keystate:twice")
        second_dup = _create(c, "keystate:twice")
        _create(c, "site search")  # unmanaged; its slug is taken by the managed name
    main = tmp_path / "main.yaml"
    main.write_text(
        "version: 1\naccounts:\n  coveo-prod:\n    provider: coveo\n"
        f"    organization_id: {ORG}\n    token: ${{COVEO_ACCESS_TOKEN}}\n"
        f"    base_url: {server.url}\n    removal: disable\n"
    )
    out = tmp_path / "imported.yaml"
    env = {"COVEO_ACCESS_TOKEN": TOKEN}
    result = run("import", "coveo-prod", "-c", str(main), "--out", str(out), env=env)
    assert result.exit_code == 0, result.stderr
    text = out.read_text()

    document = yaml.safe_load(text)  # valid YAML, one entry per name
    names = list(document["keys"]["coveo-prod"])
    assert sorted(names) == ["site-search", "site-search-2", "twice"]
    for name in names:
        assert text.count(f"\n    {name}:\n") == 1
    assert f"id:{predecessor} (disabled" in text
    assert f"written: id:{current}" in text
    left_dup = second_dup if f"written: id:{first_dup}" in text else first_dup
    assert f"id:{left_dup} (a second key with this marker" in text
    assert "# Left out 2 key(s)" in text

    config = load_config(tmp_path)  # keystate's own loader accepts it
    assert set(config.keys["coveo-prod"]) == {"site-search", "site-search-2", "twice"}
    validated = run("validate", "-c", str(tmp_path), env=env)
    assert validated.exit_code == 0, validated.stderr
