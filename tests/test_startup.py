"""Cold start (issue 6, acceptance d): commands that need no network import no network
stack. Checked with ``python -X importtime``, which lists every module a run imported;
the time itself is measured side by side by ``make bench``, never asserted here."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

HEAVY = ("httpx", "deepdiff", "keystate.emulators")

SMALL_CONFIG = """\
version: 1
accounts:
  web:
    provider: algolia
    sandbox: web.json
  support:
    provider: coveo
    organization_id: acme
    token: ${COVEO_TOKEN}
keys:
  web:
    storefront:
      description: Storefront search box
      acl: [search]
      referers: ["https://shop.example.com/*"]
      expires_at: 2099-01-01T00:00:00Z
  support:
    site-search:
      privileges:
        - {owner: SEARCH_API, target_domain: EXECUTE_QUERY}
      expires_at: 2099-01-01T00:00:00Z
"""


def imported_modules(*args: str, cwd: Path) -> set[str]:
    """Every module ``python -X importtime -m keystate ARGS`` imported."""
    done = subprocess.run(
        [sys.executable, "-X", "importtime", "-m", "keystate", *args],
        capture_output=True,
        check=False,
        text=True,
        cwd=cwd,
        env={"PATH": "", "COVEO_TOKEN": "not-a-real-token", "NO_COLOR": "1"},
        timeout=60,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    lines = [line for line in done.stderr.splitlines() if line.startswith("import time:")]
    modules = {line.rsplit("|", 1)[-1].strip() for line in lines[1:]}  # [0] is the header
    assert "keystate.cli" in modules, "importtime output not understood"
    return modules


def heavy(modules: set[str]) -> list[str]:
    return sorted(m for m in modules for h in HEAVY if m == h or m.startswith(h + "."))


def test_help_imports_no_network_diff_or_emulator_stack(tmp_path: Path) -> None:
    assert heavy(imported_modules("--help", cwd=tmp_path)) == []


@pytest.mark.parametrize("args", [("validate",), ("validate", "--strict"), ("schema",)])
def test_offline_commands_import_no_network_diff_or_emulator_stack(
    tmp_path: Path, args: tuple[str, ...]
) -> None:
    (tmp_path / "keystate.yaml").write_text(SMALL_CONFIG)
    modules = imported_modules(*args, cwd=tmp_path)
    assert heavy(modules) == []
    # validate is offline: it must not even create the sandbox's state file.
    assert not (tmp_path / "web.json").exists()


def test_plan_does_import_the_network_stack(tmp_path: Path) -> None:
    """The check above can fail: a command that does use the network shows up in it."""
    sandbox_only = SMALL_CONFIG.partition("  support:")[0] + "keys: {}\n"
    (tmp_path / "keystate.yaml").write_text(sandbox_only)
    modules = imported_modules("plan", "--account", "web", cwd=tmp_path)
    assert "httpx" in heavy(modules)
