"""Helpers for the adversarial-input and security halves of the reliability suite.

Both emulators on loopback with request counters, the CLI run in-process or as a real
process (with its peak memory), the canary credentials every output is scanned for,
and the figures the suite records for docs/reliability.md.

Fixtures live in the test modules themselves (tests/reliability/conftest.py belongs to
the convergence half of the suite).
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from click.testing import CliRunner, Result
from support import Servers

from keystate.cli import cli
from keystate.emulators.algolia import AlgoliaEmulator
from keystate.emulators.coveo import CoveoEmulator
from keystate.emulators.http import RunningServer

ALGOLIA_APP_ID = "RELIABLE1"
# Canary credentials: each must never appear in any output but the secrets sink.
ALGOLIA_ADMIN_KEY = "a1d3c9f27e5b40c8a61f9d2e7b3c5a90"
COVEO_ORG = "reliability"
COVEO_TOKEN = "xrel1ab1l1tyt0ken5ecretc4nary0042"


@dataclass
class Emulators:
    """One Algolia and one Coveo emulator on 127.0.0.1, each counting what reaches it."""

    algolia: AlgoliaEmulator
    coveo: CoveoEmulator
    algolia_server: RunningServer
    coveo_server: RunningServer

    def env(self) -> dict[str, str]:
        """The environment the corpus and the canary configurations expand."""
        return {
            "ALGOLIA_URL": self.algolia_server.url,
            "ALGOLIA_APPLICATION_ID": ALGOLIA_APP_ID,
            "ALGOLIA_ADMIN_API_KEY": ALGOLIA_ADMIN_KEY,
            "COVEO_URL": self.coveo_server.url,
            "COVEO_ORGANIZATION_ID": COVEO_ORG,
            "COVEO_ACCESS_TOKEN": COVEO_TOKEN,
        }

    def traffic(self) -> int:
        """Connections opened plus requests read, on both servers."""
        return sum(
            s.counters.connections + s.counters.total
            for s in (self.algolia_server, self.coveo_server)
        )

    def reset(self) -> None:
        self.algolia_server.counters.reset()
        self.coveo_server.counters.reset()

    def stored(self) -> str:
        """Everything both emulators hold, to compare before and after a run."""
        return json.dumps([self.algolia.snapshot(), self.coveo.snapshot()], sort_keys=True)


@contextmanager
def emulators() -> Iterator[Emulators]:
    algolia = AlgoliaEmulator(app_id=ALGOLIA_APP_ID, admin_key=ALGOLIA_ADMIN_KEY)
    coveo = CoveoEmulator(organization_id=COVEO_ORG, token=COVEO_TOKEN)
    with Servers() as servers:
        yield Emulators(algolia, coveo, servers.start(algolia), servers.start(coveo))


def invoke(args: list[str], env: Mapping[str, str], cwd: Path | None = None) -> Result:
    """The CLI in-process; the environment is exactly ``env`` for keystate's variables."""
    runner = CliRunner()
    full: dict[str, str | None] = {"GITHUB_ACTIONS": None, "NO_COLOR": "1"}
    full.update(env)
    if cwd is None:
        return runner.invoke(cli, args, env=full, catch_exceptions=False)
    old = Path.cwd()
    os.chdir(cwd)
    try:
        return runner.invoke(cli, args, env=full, catch_exceptions=False)
    finally:
        os.chdir(old)


@dataclass(frozen=True)
class Process:
    """A finished ``keystate`` process: exit code, output, wall time and peak memory."""

    exit_code: int
    stdout: str
    stderr: str
    seconds: float
    max_rss_mib: float


# Runs the real entry point and, on the way out (sys.exit included), writes the peak
# resident set size of the process (KiB) to the file named by KEYSTATE_RSS. VmHWM, not
# getrusage: Linux carries ru_maxrss over from the parent across fork and exec, so a child
# of a large pytest process would report the parent's peak.
_WRAPPER = """
import atexit, os, resource, sys
def _report():
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    try:
        with open("/proc/self/status") as status:
            peak = next(int(l.split()[1]) for l in status if l.startswith("VmHWM:"))
    except (OSError, StopIteration):
        pass
    with open(os.environ["KEYSTATE_RSS"], "w") as f:
        f.write(str(peak))
atexit.register(_report)
sys.argv[0] = "keystate"
from keystate.cli import main
main()
"""


def run_process(
    args: list[str], env: Mapping[str, str], rss_file: Path, timeout: float = 120.0
) -> Process:
    """keystate ARGS as a real process, with its wall time and its own peak memory."""
    full = {k: v for k, v in os.environ.items() if k != "GITHUB_ACTIONS"}
    full.update(env)
    full["NO_COLOR"] = "1"
    full["KEYSTATE_RSS"] = str(rss_file)
    started = time.monotonic()
    try:
        done = subprocess.run(
            [sys.executable, "-c", _WRAPPER, *args],
            capture_output=True,
            env=full,
            timeout=timeout,
            check=False,
        )
    except subprocess.TimeoutExpired:
        raise AssertionError(f"keystate {' '.join(args)} ran for more than {timeout}s") from None
    seconds = time.monotonic() - started
    rss_kib = int(rss_file.read_text())
    rss_file.unlink()
    return Process(
        done.returncode,
        done.stdout.decode("utf-8", "replace"),
        done.stderr.decode("utf-8", "replace"),
        seconds,
        rss_kib / 1024,
    )


def record_maxima(section: str, maxima: Mapping[str, float]) -> None:
    """Write the largest times and memory a section measured, beside the suite's figures
    (.pytest_cache/keystate-reliability/), for docs/reliability.md."""
    if not maxima:
        return
    directory = Path(__file__).resolve().parents[2] / ".pytest_cache" / "keystate-reliability"
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / f"maxima-{section}.json"
    path.write_text(json.dumps(dict(sorted(maxima.items())), indent=2) + "\n", encoding="utf-8")


_ERROR_LINE = re.compile(r"^(?P<where>.*?):(?P<line>\d+):(?P<col>\d+): error: (?P<msg>.*)$")


@dataclass(frozen=True)
class ErrorLine:
    path: str | None
    line: int | None
    message: str
    text: str


def error_lines(stderr: str) -> list[ErrorLine]:
    """The ``file:line:col: error: ...`` lines (and location-less ``error: ...`` ones)."""
    out: list[ErrorLine] = []
    for text in stderr.splitlines():
        m = _ERROR_LINE.match(text)
        if m:
            out.append(ErrorLine(m["where"], int(m["line"]), m["msg"], text))
        elif text.startswith("error: "):
            out.append(ErrorLine(None, None, text[len("error: ") :], text))
    return out


def tree_state(root: Path) -> dict[str, tuple[int, int, int]]:
    """(size, mtime_ns, mode) of every entry under root, without following links."""
    out: dict[str, tuple[int, int, int]] = {}
    for dirpath, dirnames, filenames in os.walk(root, followlinks=False):
        for name in dirnames + filenames:
            path = Path(dirpath) / name
            st = path.lstat()
            out[str(path.relative_to(root))] = (st.st_size, st.st_mtime_ns, st.st_mode)
    return out
