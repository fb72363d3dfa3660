"""The reliability suite's figures: what it ran and what it found, measured, not claimed.

Tests add counts with the ``figures`` fixture (``figures.add("faults", scenarios=1)``).
At the end of the session the totals are printed in the terminal summary and written to
``.pytest_cache/keystate-reliability/figures.json`` (merged per section with what other
runs of the same session wrote), so docs/reliability.md can be written from a real run.

``KEYSTATE_RELIABILITY_PROFILE`` picks the size of the run: ``ci`` (default, bounded for
``make test``) or ``long`` (``make reliability-long``).
"""

from __future__ import annotations

import json
import os
import platform
import threading
import time
from collections import Counter
from pathlib import Path

import pytest

PROFILE = os.environ.get("KEYSTATE_RELIABILITY_PROFILE", "ci")
if PROFILE not in ("ci", "long"):
    raise pytest.UsageError(f"KEYSTATE_RELIABILITY_PROFILE must be 'ci' or 'long', not {PROFILE!r}")


class Figures:
    """Counters per section, thread-safe; seconds per section too."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.sections: dict[str, Counter[str]] = {}
        self.seconds: Counter[str] = Counter()

    def add(self, section: str, **counts: int) -> None:
        with self._lock:
            bucket = self.sections.setdefault(section, Counter())
            for name, value in counts.items():
                bucket[name] += value
                if value == 0:
                    bucket.setdefault(name, 0)

    def time(self, section: str, seconds: float) -> None:
        with self._lock:
            self.seconds[section] += seconds

    def to_json(self) -> dict[str, object]:
        with self._lock:
            return {
                "profile": PROFILE,
                "python": platform.python_version(),
                "cpus": os.cpu_count(),
                "finished_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
                "sections": {
                    name: {**dict(sorted(c.items())), "seconds": round(self.seconds[name], 1)}
                    for name, c in sorted(self.sections.items())
                },
            }


FIGURES = Figures()


@pytest.fixture
def figures(request: pytest.FixtureRequest) -> Figures:
    """Record counts; the test's wall time is added to the sections it touched."""
    started = time.monotonic()
    touched: set[str] = set()
    original = FIGURES.add

    class Recorder:
        def add(self, section: str, **counts: int) -> None:
            touched.add(section)
            original(section, **counts)

    def finish() -> None:
        for section in touched:
            FIGURES.time(section, (time.monotonic() - started) / len(touched))

    request.addfinalizer(finish)
    return Recorder()  # type: ignore[return-value]


def _figures_path(config: pytest.Config) -> Path:
    return Path(str(config.rootpath)) / ".pytest_cache" / "keystate-reliability" / "figures.json"


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    if not FIGURES.sections:
        return
    data = FIGURES.to_json()
    path = _figures_path(terminalreporter.config)
    path.parent.mkdir(parents=True, exist_ok=True)
    previous: dict[str, object] = {}
    if path.exists():
        try:
            previous = json.loads(path.read_text(encoding="utf-8")).get("sections", {})
        except (ValueError, AttributeError):
            previous = {}
    merged = {**previous, **data["sections"]}  # type: ignore[dict-item]
    path.write_text(json.dumps({**data, "sections": merged}, indent=2) + "\n", encoding="utf-8")
    terminalreporter.section(f"keystate reliability figures (profile {PROFILE})")
    for name, counts in data["sections"].items():  # type: ignore[attr-defined]
        text = ", ".join(f"{k}={v}" for k, v in counts.items())
        terminalreporter.line(f"{name}: {text}")
    terminalreporter.line(f"written to {path}")
