"""A command for the exec sink that records what it was given: argv, environment and
standard input, one JSON file per call; told to, it fails (optionally echoing what it
read on stderr, as a careless script might)."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

SCRIPT = r"""
import json, os, sys, time
out = sys.argv[-1]
data = sys.stdin.read()
record = {"argv": sys.argv[:-1], "env": dict(os.environ), "stdin": data}
n = len([p for p in os.listdir(out) if p.startswith("call-")])
with open(os.path.join(out, f"call-{n:04d}-{os.getpid()}.json"), "w") as f:
    json.dump(record, f)
if os.path.exists(os.path.join(out, "fail")):
    if os.path.exists(os.path.join(out, "echo")):
        sys.stderr.write("could not store " + data + "\n")
    sys.stderr.write("permission denied\n")
    sys.exit(3)
"""


class Recorder:
    def __init__(self, directory: Path) -> None:
        self.dir = directory
        self.dir.mkdir(parents=True, exist_ok=True)
        self.script = self.dir.parent / "record_sink.py"
        self.script.write_text(SCRIPT, encoding="utf-8")

    def argv(self) -> list[str]:
        return [sys.executable, str(self.script), "{name_upper}", "--account={account}"]

    def exec_yaml(self) -> str:
        args = ", ".join(json.dumps(a) for a in [*self.argv(), str(self.dir)])
        return f"{{exec: [{args}]}}"

    def fail(self, on: bool = True, echo_stdin: bool = False) -> None:
        for flag, wanted in (("fail", on), ("echo", on and echo_stdin)):
            path = self.dir / flag
            if wanted:
                path.touch()
            else:
                path.unlink(missing_ok=True)

    def calls(self) -> list[dict[str, Any]]:
        files = sorted(self.dir.glob("call-*.json"))
        return [json.loads(p.read_text()) for p in files]
