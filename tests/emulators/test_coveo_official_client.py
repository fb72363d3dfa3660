"""Conformance: Coveo's official client (@coveo/platform-client, npm) works unchanged
against the Coveo emulator. `make test` installs it (npm ci in tests/conformance/coveo)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path

from support import Servers

from keystate.emulators.coveo import CoveoEmulator

HERE = Path(__file__).resolve().parent.parent / "conformance" / "coveo"
TOKEN = "xconformance00000000000000000000"


def test_official_coveo_client_works_unchanged(serve: Servers) -> None:
    node = shutil.which("node")
    assert node, "node is required for the Coveo conformance test (it comes with the CI image)"
    assert (HERE / "node_modules" / "@coveo" / "platform-client").is_dir(), (
        "install the official client first: npm ci --prefix tests/conformance/coveo (make test does)"
    )
    app = CoveoEmulator(organization_id="conformance", token=TOKEN)
    server = serve(app)
    result = subprocess.run(
        [node, str(HERE / "conformance.mjs"), server.url, "conformance"],
        env={**os.environ, "KEYSTATE_EMULATOR_TOKEN": TOKEN},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    routes = server.counters.by_route
    assert result.returncode == 0, result.stdout + result.stderr
    summary = json.loads(result.stdout.strip().splitlines()[-1])
    assert summary["failed"] == 0 and summary["passed"] >= 24, summary
    for route in (
        "list",
        "create",
        "get",
        "update",
        "disable",
        "activate",
        "extend",
        "eligibility",
        "delete",
        "privileges",
    ):
        assert any(name == route for _, name in routes), f"the client never called {route}"
    assert TOKEN not in result.stdout + result.stderr
