"""Concurrent applies: two ``keystate apply`` processes, same config, same account, at once.

Both plan the same creates, so both create the same keys. keystate detects it after
each create (docs/apply.md, "Concurrent applies"): the younger key of a name yields to
the older one and is deleted by the run that made it, before its value is delivered, and
that change is reported ``failed`` with the reason. So after both runs:

* no name has two live keys (checked on the emulator, not through keystate);
* every live key created by either run has its value in that run's secrets sink, and no
  sink holds the value of a key that the yielding run deleted;
* reports are honest (``done`` only for what the emulator holds), and one more apply
  leaves nothing to do.

Each round starts both processes together against an emulator with latency, so their
requests interleave; rounds vary the latency and the mix of actions.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from keystate.secrets import fingerprint

from ._convergence import (
    Emu,
    Shape,
    converged_to,
    dishonest,
    duplicates,
    knobs,
    leaks,
    profile,
    running,
    stored_description,
    workdir,
)

ROUNDS = 10 if profile() == "long" else 3
CREATES, UPDATES, DELETES = 24, 4, 4


def start_apply(emu: Emu, config: Path, sink: Path, report: Path) -> subprocess.Popen[str]:
    env = {**os.environ, **emu.env, "NO_COLOR": "1"}
    env.pop("GITHUB_ACTIONS", None)
    args = [sys.executable, "-m", "keystate", "-vv", "apply", "-c", str(config), "--auto-approve"]
    args += ["--force", "--secrets-out", str(sink), "--report", str(report)]
    return subprocess.Popen(
        args, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )


def sink_values(path: Path) -> dict[str, str]:
    if not path.exists():
        return {}
    return {
        item["value"]: item["name"]
        for item in (json.loads(line) for line in path.read_text().splitlines() if line)
    }


@pytest.mark.parametrize("provider", ["algolia", "coveo"])
def test_two_applies_at_once_leave_no_duplicate_and_lose_no_value(
    provider: str, figures: Any
) -> None:
    for round_ in range(ROUNDS):
        latency = (2, 10, 25)[round_ % 3]
        with running(provider, knobs(latency_ms=latency)) as emu, workdir() as work:
            keys: dict[str, Any] = {
                f"new{i:02d}": (Shape(0, 0), False, None) for i in range(CREATES)
            }
            for i in range(UPDATES):
                emu.seed(stored_description(f"upd{i}"), Shape(0, 0))
                keys[f"upd{i}"] = (Shape(0, 1), False, None)
            for i in range(DELETES):
                emu.seed(stored_description(f"del{i}"), Shape(0, 0))
            config = work.write(emu.config(keys, wait_timeout=10))
            before = {emu.ident(k) for k in emu.stored()}
            sinks = [work.root / "a.jsonl", work.root / "b.jsonl"]
            reports = [work.root / "a.json", work.root / "b.json"]
            procs = [start_apply(emu, config, s, r) for s, r in zip(sinks, reports, strict=True)]
            outputs = ["".join(p.communicate(timeout=180)) for p in procs]
            codes = [p.returncode for p in procs]
            desired = {name: shape for name, (shape, _, _) in keys.items()}
            dups = duplicates(emu)
            delivered = [sink_values(s) for s in sinks]
            lost = []
            for marker, key in emu.managed():
                if emu.ident(key) in before:
                    continue
                owners = [d.get(str(key["value"])) for d in delivered]
                if marker.name not in owners:
                    lost.append(marker.name)
            live = {str(k["value"]) for k in emu.stored()}
            stale = [fingerprint(v)[:12] for d in delivered for v in d if v not in live]
            lies = [
                lie
                for r in reports
                if r.exists()
                for lie in dishonest(emu, json.loads(r.read_text()), desired)
            ]
            values = emu.values() | {v for d in delivered for v in d}
            leaked = leaks(outputs + [r.read_text() for r in reports if r.exists()], values)
            crashed = sum("Traceback" in o for o in outputs)
            figures.add(
                "concurrent",
                runs=2,
                duplicates=len(dups),
                lost_values=len(lost),
                stale_values=len(stale),
                dishonest_results=len(lies),
                leaks=len(leaked),
                tracebacks=crashed,
            )
            for code in codes:
                figures.add("concurrent", **{f"exit_{code}": 1})
            assert set(codes) <= {0, 1}, outputs
            assert dups == {}, (dups, outputs)
            assert (lost, stale, lies, leaked, crashed) == ([], [], [], [], 0), outputs
            again, _ = work.apply(emu)
            assert again.exit_code == 0, again.output
            assert converged_to(emu, desired) == []
            assert duplicates(emu) == {}
            figures.add("concurrent", pairs=1)
