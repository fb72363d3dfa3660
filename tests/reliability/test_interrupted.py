"""Interrupted applies: SIGKILL a real ``keystate apply`` process mid-flight, then finish.

The emulator runs in this process (a thread, with latency so that the apply takes a
while); ``keystate apply`` runs as a subprocess on a large plan — 60 creates, 15
updates and 15 deletes — and is killed with SIGKILL once the emulator has served a
random number of its requests (drawn over the request count of an uninterrupted run of
the same plan, so kills land anywhere from the first list to the last delete). Up to
``KILLS`` runs in a row are killed; then apply runs to the end. The account must then
hold exactly the declared keys, with no duplicate and no pending key, every key created
since the start must have its value in the secrets sink (appended to by every run), the
next plan must be empty, and no output may hold a key value or a traceback.
"""

from __future__ import annotations

import os
import random
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from ._convergence import (
    Emu,
    Shape,
    converged_to,
    duplicates,
    knobs,
    leaks,
    lost_values,
    profile,
    rotated,
    running,
    seed_old,
    stored_description,
    with_rotation,
    workdir,
)

CREATES, UPDATES, DELETES = 60, 15, 15
ROUNDS = 12 if profile() == "long" else 3
KILLS = 3  # killed runs in a row before the run that may finish
LATENCY_MS = 8


def seed_world(emu: Emu) -> dict[str, Any]:
    """Seed updates and deletes; return the declared keys."""
    keys: dict[str, Any] = {}
    for i in range(UPDATES):
        emu.seed(stored_description(f"upd{i:02d}"), Shape(0, 0))
        keys[f"upd{i:02d}"] = (Shape(0, 1), False, None)
    for i in range(DELETES):
        emu.seed(stored_description(f"del{i:02d}"), Shape(0, 0))
    for i in range(CREATES):
        keys[f"new{i:02d}"] = (Shape(0, 0), False, None)
    return keys


def apply_process(emu: Emu, config: Path, sink: Path) -> subprocess.Popen[str]:
    env = {**os.environ, **emu.env, "NO_COLOR": "1"}
    env.pop("GITHUB_ACTIONS", None)
    args = [sys.executable, "-m", "keystate", "-vv", "apply", "-c", str(config), "--auto-approve"]
    args += ["--force", "--secrets-out", str(sink)]
    return subprocess.Popen(
        args, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )


def run_to_end(emu: Emu, config: Path, sink: Path) -> tuple[int, str]:
    proc = apply_process(emu, config, sink)
    out, err = proc.communicate(timeout=120)
    return proc.returncode, out + err


def run_and_kill(emu: Emu, config: Path, sink: Path, after_requests: int) -> tuple[bool, str]:
    """Start apply; SIGKILL it once the emulator served ``after_requests`` more requests.
    Returns (killed before it ended, its output)."""
    start = emu.server.counters.total
    proc = apply_process(emu, config, sink)
    deadline = time.monotonic() + 120
    while proc.poll() is None and time.monotonic() < deadline:
        if emu.server.counters.total - start >= after_requests:
            proc.kill()  # SIGKILL: no cleanup, no flush, no finally
            break
        time.sleep(0.002)
    out, err = proc.communicate(timeout=30)
    return proc.returncode == -9, out + err


def calibrate(provider: str) -> int:
    """Requests served by one uninterrupted apply of the plan (where kills may land)."""
    with running(provider, knobs(latency_ms=LATENCY_MS)) as emu, workdir() as work:
        config = work.write(emu.config(seed_world(emu), wait_timeout=10))
        start = emu.server.counters.total
        code, output = run_to_end(emu, config, work.sink)
        assert code == 0, output
        return emu.server.counters.total - start


@pytest.mark.parametrize("provider", ["algolia", "coveo"])
def test_sigkill_at_random_points_then_apply_finishes_the_job(provider: str, figures: Any) -> None:
    total = calibrate(provider)
    rng = random.Random(f"{provider}-{profile()}")
    killed_in_all = 0
    for _ in range(ROUNDS):
        with running(provider, knobs(latency_ms=LATENCY_MS)) as emu, workdir() as work:
            keys = seed_world(emu)
            config = work.write(emu.config(keys, wait_timeout=10))
            before = {emu.ident(k) for k in emu.stored()}
            outputs = []
            kills = 0
            for _ in range(KILLS):
                killed, output = run_and_kill(emu, config, work.sink, rng.randint(1, total))
                outputs.append(output)
                kills += killed
                if not killed:
                    break
            code, output = run_to_end(emu, config, work.sink)
            outputs.append(output)
            desired = {name: shape for name, (shape, _, _) in keys.items()}
            dups, lost = duplicates(emu), lost_values(emu, work, before)
            values = emu.values() | {d["value"] for d in work.delivered()}
            leaked = leaks(outputs, values)
            crashed = sum("Traceback" in o for o in outputs)
            figures.add(
                "interrupted",
                rounds=1,
                kills=kills,
                duplicates=len(dups),
                lost_values=len(lost),
                leaks=len(leaked),
                tracebacks=crashed,
            )
            assert code == 0, output
            assert converged_to(emu, desired) == []
            assert dups == {} and lost == [] and leaked == [] and crashed == 0
            work.outputs.clear()
            assert work.plan(emu, "--detailed-exitcode").exit_code == 0
            figures.add("interrupted", recovered=kills)
            killed_in_all += kills
    assert killed_in_all >= ROUNDS  # the kills did land mid-flight
    figures.add("interrupted", **{f"requests_per_apply_{provider}": total})


ROTATIONS = 20


def rotation_world(emu: Emu, overlap: str) -> tuple[str, dict[str, Shape]]:
    """ROTATIONS managed keys past their rotation age; the configuration rotating them."""
    desired = {f"rot{i:02d}": Shape(0, 0) for i in range(ROTATIONS)}
    for name, shape in desired.items():
        seed_old(emu, name, shape)
    config = emu.config({n: (shape, False, None) for n, shape in desired.items()}, wait_timeout=10)
    return with_rotation(config, overlap), desired


@pytest.mark.parametrize(
    ("provider", "overlap"),
    [("algolia", "0"), ("algolia", "7d"), ("coveo", "0"), ("coveo", "7d")],
)
def test_sigkill_during_rotations_then_apply_finishes_them(
    provider: str, overlap: str, figures: Any
) -> None:
    """Kill -9 anywhere in a plan of rotations, then apply again: every key has exactly
    one successor whose value is in the sink, every predecessor was retired exactly once
    (gone, or marked retiring once), no pending key, and the next plan is empty."""
    with running(provider, knobs(latency_ms=LATENCY_MS)) as emu, workdir() as work:
        config, _ = rotation_world(emu, overlap)
        start = emu.server.counters.total
        code, output = run_to_end(emu, work.write(config), work.sink)
        assert code == 0, output
        total = emu.server.counters.total - start
    rng = random.Random(f"rotate-{provider}-{overlap}-{profile()}")
    for _ in range(ROUNDS):
        with running(provider, knobs(latency_ms=LATENCY_MS)) as emu, workdir() as work:
            text, desired = rotation_world(emu, overlap)
            config = work.write(text)
            before = {emu.ident(k) for k in emu.stored()}
            outputs, kills = [], 0
            for _ in range(KILLS):
                killed, output = run_and_kill(emu, config, work.sink, rng.randint(1, total))
                outputs.append(output)
                kills += killed
                if not killed:
                    break
            code, output = run_to_end(emu, config, work.sink)
            outputs.append(output)
            lost = lost_values(emu, work, before)
            problems = rotated(emu, desired, before, overlap != "0")
            values = emu.values() | {d["value"] for d in work.delivered()}
            leaked = leaks(outputs, values)
            figures.add(
                "interrupted_rotations",
                rounds=1,
                kills=kills,
                duplicates=len(duplicates(emu)),
                lost_values=len(lost),
                leaks=len(leaked),
            )
            assert code == 0, output
            assert problems == [] and duplicates(emu) == {} and lost == [], (problems, lost)
            assert leaked == [] and not any("Traceback" in o for o in outputs)
            work.outputs.clear()
            assert work.plan(emu, "--detailed-exitcode").exit_code == 0
