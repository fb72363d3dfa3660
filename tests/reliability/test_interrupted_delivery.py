"""SIGKILL during delivery (DESIGN §12): a real ``keystate apply`` is killed while an
exec sink holds a new value; the next apply must leave no duplicate and no pending key,
and every live managed key's value must have reached its sink or the rescue file.

Bounded and fast: three keys per provider, one kill in the middle of a delivery (the
sink command signals that it has the value, then hangs), then one apply to the end.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from ._convergence import Workdir, duplicates, running, workdir

SINK = r"""
import json, os, sys, time
here = sys.argv[1]
value = sys.stdin.read()
if os.path.exists(os.path.join(here, "hang")):
    with open(os.path.join(here, "started"), "w") as f:
        f.write(str(os.getpid()))
    time.sleep(60)
with open(os.path.join(here, "delivered.jsonl"), "a") as f:
    f.write(json.dumps({"name": os.environ["KEYSTATE_KEY"], "value": value}) + "\n")
"""


def config(text: str, work: Workdir) -> str:
    script = work.root / "sink.py"
    script.write_text(SINK, encoding="utf-8")
    argv = json.dumps([sys.executable, str(script), str(work.root)])
    secrets = (
        f"secrets:\n  default: hook\n  rescue_dir: '{work.root / 'rescue'}'\n"
        f"  sinks:\n    hook: {{exec: {argv}, timeout: 90}}\n"
    )
    return text.replace("version: 1\n", f"version: 1\n{secrets}", 1)


def apply(env: dict[str, str], path: Path) -> subprocess.Popen[str]:
    args = [sys.executable, "-m", "keystate", "-vv", "apply", "-c", str(path), "--auto-approve"]
    return subprocess.Popen(
        args, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )


def kill_during_delivery(env: dict[str, str], path: Path, root: Path) -> None:
    (root / "hang").touch()
    proc = apply(env, path)
    started = root / "started"
    deadline = time.monotonic() + 60
    while not started.exists() and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.01)
    assert started.exists(), proc.communicate(timeout=30)
    proc.kill()  # SIGKILL: the value is with the sink command, not yet stored
    proc.communicate(timeout=30)
    time.sleep(0.05)  # the pid is written before the sleep; let the write land
    os.kill(int(started.read_text()), signal.SIGKILL)  # the orphaned sink command
    (root / "hang").unlink()


@pytest.mark.parametrize("provider", ["algolia", "coveo"])
def test_sigkill_during_delivery_then_apply_loses_nothing(provider: str) -> None:
    with running(provider) as emu, workdir() as work:
        path = work.write(config(emu.config(["d0", "d1", "d2"], wait_timeout=10), work))
        env = {**os.environ, **emu.env, "NO_COLOR": "1"}
        env.pop("GITHUB_ACTIONS", None)
        kill_during_delivery(env, path, work.root)
        assert any(m.pending for m, _ in emu.managed())  # the kill did land mid-delivery

        proc = apply(env, path)
        out, err = proc.communicate(timeout=120)
        assert proc.returncode == 0, out + err

        managed = emu.managed()
        assert duplicates(emu) == {}
        assert sorted(m.name for m, _ in managed) == ["d0", "d1", "d2"]
        assert not any(m.pending for m, _ in managed)
        delivered = {
            (d["name"], d["value"])
            for d in map(json.loads, (work.root / "delivered.jsonl").read_text().splitlines())
        }
        rescue = work.root / "rescue"
        if rescue.exists():
            for file in rescue.iterdir():
                delivered |= {(d["name"], d["value"]) for d in map(json.loads, file.open())}
        for marker, key in managed:
            assert (marker.name, str(key["value"])) in delivered, marker.name
        for value in emu.values():
            assert value not in out + err
        assert work.plan(emu, "--detailed-exitcode").exit_code == 0
