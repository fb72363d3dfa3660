"""Measuring children: wall time and peak RSS of one process, medians of several runs,
and several programs measured round-robin so that they share the machine's moods."""

from __future__ import annotations

import os
import statistics
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent


@dataclass(frozen=True)
class Run:
    seconds: float
    rss_mb: float
    returncode: int
    stdout: str = ""


@dataclass
class Measured:
    """Several runs of one program."""

    runs: list[Run] = field(default_factory=list)
    requests: list[int] = field(default_factory=list)  # per run, when a world counts them

    @property
    def seconds(self) -> float:
        return statistics.median(r.seconds for r in self.runs)

    @property
    def rss_mb(self) -> float:
        """The largest peak over the runs (the conservative figure)."""
        return max(r.rss_mb for r in self.runs)

    @property
    def request_count(self) -> int | None:
        """Requests per run; the largest if runs differed (they should not)."""
        return max(self.requests) if self.requests else None


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


def run_child(
    cmd: Sequence[str],
    env: Mapping[str, str] | None = None,
    ok: tuple[int, ...] = (0,),
    capture: bool = False,
) -> Run:
    """Run a command to completion; its wall time and peak resident memory.

    Peak memory is the child's ``VmHWM``, polled every 2 ms while it runs. (``wait4``'s
    ``ru_maxrss`` would include the forking parent's pages: Linux folds the pre-exec
    memory map's high-water mark into it, and this parent holds the emulators.)
    """
    merged = {**os.environ, **(env or {}), "NO_COLOR": "1"}
    started = time.perf_counter()
    proc = subprocess.Popen(
        list(cmd),
        env=merged,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE if capture else subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        cwd=ROOT,
    )
    peak = [0.0]
    done = threading.Event()

    def watch() -> None:
        while not done.is_set():
            peak[0] = max(peak[0], _peak_rss_mb(proc.pid))
            done.wait(0.002)

    watcher = threading.Thread(target=watch, daemon=True)
    watcher.start()
    out, err = proc.communicate()
    seconds = time.perf_counter() - started
    done.set()
    watcher.join()
    if proc.returncode not in ok:
        sys.stderr.write(err.decode(errors="replace")[-2000:])
        raise SystemExit(f"benchmark child failed ({proc.returncode}): {' '.join(cmd)}")
    return Run(seconds, peak[0], proc.returncode, (out or b"").decode())


def round_robin(
    runs: int,
    programs: Mapping[str, Callable[[], Run]],
    counter: tuple[Callable[[], None], Callable[[], int]] | None = None,
) -> dict[str, Measured]:
    """Run every program ``runs`` times, interleaved (a, b, c, a, b, c, ...), so that a
    slow spell of the shared machine hits them all alike. ``counter`` is (reset, read)
    for the requests a world receives."""
    results = {name: Measured() for name in programs}
    for _ in range(runs):
        for name, make in programs.items():
            if counter is not None:
                counter[0]()
            results[name].runs.append(make())
            if counter is not None:
                results[name].requests.append(counter[1]())
    return results


def keystate(*args: str) -> list[str]:
    """The console script, as users run it."""
    return [str(BIN / "keystate"), *args]


def python(module: str, *args: str) -> list[str]:
    return [sys.executable, "-m", module, *args]
