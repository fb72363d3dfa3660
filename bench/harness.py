"""Measuring children: wall time and peak RSS of one process, medians of several runs."""

from __future__ import annotations

import os
import statistics
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent


@dataclass(frozen=True)
class Run:
    seconds: float
    rss_mb: float
    returncode: int


def _peak_rss_mb(pid: int) -> float:
    """VmHWM of the process's current memory map: its own peak, after exec."""
    try:
        with open(f"/proc/{pid}/status") as status:
            for line in status:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    return 0.0


def run_child(cmd: Sequence[str], env: dict[str, str] | None = None) -> Run:
    """Run a command to completion; its wall time and peak resident memory.

    Peak memory is the child's ``VmHWM``, polled every few milliseconds. (``wait4``'s
    ``ru_maxrss`` would include the forking parent's pages: Linux folds the pre-exec
    memory map's high-water mark into it, and this parent holds the emulators.)
    """
    merged = {**os.environ, **(env or {}), "NO_COLOR": "1"}
    started = time.perf_counter()
    proc = subprocess.Popen(
        list(cmd),
        env=merged,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        cwd=ROOT,
    )
    peak = [0.0]
    done = threading.Event()

    def watch() -> None:
        while not done.is_set():
            peak[0] = max(peak[0], _peak_rss_mb(proc.pid))
            done.wait(0.005)

    watcher = threading.Thread(target=watch, daemon=True)
    watcher.start()
    _, err = proc.communicate()
    seconds = time.perf_counter() - started
    done.set()
    watcher.join()
    if proc.returncode not in (0, 2):
        sys.stderr.write(err.decode(errors="replace")[-2000:])
        raise SystemExit(f"benchmark child failed ({proc.returncode}): {' '.join(cmd)}")
    return Run(seconds, peak[0], proc.returncode)


def median_of(
    runs: int, make: Callable[[], Run], before: Callable[[], None] | None = None
) -> tuple[float, float]:
    """Median wall time and the largest peak RSS over ``runs`` runs."""
    results = []
    for _ in range(runs):
        if before is not None:
            before()
        results.append(make())
    return statistics.median(r.seconds for r in results), max(r.rss_mb for r in results)


def keystate(*args: str) -> list[str]:
    return [str(BIN / "keystate"), *args]


def python(module: str, *args: str) -> list[str]:
    return [sys.executable, "-m", module, *args]
