"""The console script ends without the interpreter's teardown (keystate/cli/leave.py), and
nothing observable changes: atexit handlers still run (those registered before keystate
was imported too), everything written to stdout and stderr arrives, the status is the
command's, and a run with a thread still going takes Python's own exit."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

# Registers an atexit handler before keystate is imported, as a wrapper script would,
# writes more than a pipe buffer without a final newline, and leaves with STATUS.
SCRIPT = """
import atexit, sys
atexit.register(lambda: print("atexit ran", file=sys.stderr))
from keystate.cli.leave import leave
sys.stdout.write("x" * 200_000)
sys.stderr.write("partial line")
leave(SystemExit(STATUS))
"""

THREADED = """
import sys, threading, time
from keystate.cli.leave import leave
def late():
    time.sleep(0.3)
    print("thread finished")
threading.Thread(target=late).start()
leave(SystemExit(0))
"""


def run(code: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=False
    )


@pytest.mark.parametrize(("status", "expected"), [(None, 0), (0, 0), (1, 1), (2, 2), (3, 3)])
def test_handlers_run_streams_arrive_status_kept(status: int | None, expected: int) -> None:
    done = run(SCRIPT.replace("STATUS", repr(status)))
    assert done.returncode == expected
    assert done.stdout == "x" * 200_000
    assert done.stderr == "partial lineatexit ran\n"


def test_a_status_python_prints_takes_the_ordinary_exit() -> None:
    done = run(SCRIPT.replace("STATUS", repr("bye")))
    assert done.returncode == 1
    assert done.stderr == "partial linebye\natexit ran\n"  # as Python prints it


def test_a_running_thread_takes_the_ordinary_exit() -> None:
    done = run(THREADED)
    assert done.returncode == 0
    assert done.stdout == "thread finished\n"


def test_a_stream_that_cannot_be_flushed_takes_the_ordinary_exit() -> None:
    """stdout's reader is gone before the buffered text is flushed: Python reports the
    broken pipe and exits 120, with or without leave()."""
    code = (
        "import sys, time\n"
        "from keystate.cli.leave import leave\n"
        "time.sleep(0.5)\n"
        "sys.stdout.write('x' * 100)\n"
        "leave(SystemExit(0))\n"
    )
    env = {k: v for k, v in os.environ.items() if k != "PYTHONUNBUFFERED"}
    proc = subprocess.Popen(
        [sys.executable, "-c", code],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=env,
    )
    assert proc.stdout is not None
    proc.stdout.close()  # the reader goes away, as `keystate plan | head -0` would
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 120
    assert b"BrokenPipeError" in err


def test_the_console_script_leaves_this_way(tmp_path: Path) -> None:
    """`python -m keystate` ends through leave(): its atexit-registered check never runs
    the interpreter's teardown (a module-level object's finaliser would print)."""
    probe = tmp_path / "probe.py"
    probe.write_text(
        "import atexit, sys\n"
        "class Loud:\n"
        "    def __del__(self):\n"
        "        sys.stderr.write('teardown ran\\n')\n"
        "keep = Loud()\n"
        "atexit.register(lambda: sys.stderr.write('atexit ran\\n'))\n"
        "sys.argv = ['keystate', '--version']\n"
        "from keystate.cli import main\n"
        "main()\n"
    )
    done = subprocess.run(
        [sys.executable, str(probe)], capture_output=True, text=True, timeout=60, check=False
    )
    assert done.returncode == 0
    assert done.stdout.startswith("keystate, version ")
    assert done.stderr == "atexit ran\n"
