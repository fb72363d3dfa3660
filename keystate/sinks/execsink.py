"""The ``exec`` sink: a command (argument list, no shell) that reads the value on stdin.

The value is written to the command's standard input and nowhere else: not in its
arguments (visible to every user through ``ps``), not in its environment. The command
gets ``KEYSTATE_ACCOUNT``, ``KEYSTATE_KEY``, ``KEYSTATE_FINGERPRINT`` and
``KEYSTATE_ACTION`` on top of keystate's own environment (so ``gh``, ``vault`` or
``aws`` find their credentials). Its output is read and dropped (a command may echo what
it read); on failure the end of its standard error is shown, redacted.
"""

from __future__ import annotations

import os
import shutil
import subprocess

from keystate.sinks.base import Delivery, SinkFailed, scrub
from keystate.sinks.spec import ExecSinkSpec


class ExecSink:
    def __init__(self, name: str, spec: ExecSinkSpec) -> None:
        self.name = name
        self.spec = spec

    def deliver(self, delivery: Delivery) -> None:
        argv = [delivery.values.fill(arg) for arg in self.spec.argv]
        env = dict(os.environ)
        env.update(
            KEYSTATE_ACCOUNT=delivery.item.account,
            KEYSTATE_KEY=delivery.item.name,
            KEYSTATE_FINGERPRINT=delivery.values.fingerprint,
            KEYSTATE_ACTION=delivery.action,
        )
        what = f"sink '{self.name}': {argv[0]}"
        try:
            done = subprocess.run(
                argv,
                input=delivery.item.value.reveal().encode(),
                capture_output=True,
                env=env,
                timeout=self.spec.timeout,
                check=False,
            )
        except FileNotFoundError:
            raise SinkFailed(f"{what}: command not found") from None
        except PermissionError:
            raise SinkFailed(f"{what}: not executable") from None
        except subprocess.TimeoutExpired:
            raise SinkFailed(f"{what}: timed out after {self.spec.timeout:g}s") from None
        except OSError as exc:
            raise SinkFailed(f"{what}: cannot run it ({exc.strerror or exc})") from None
        if done.returncode != 0:
            stderr = scrub(done.stderr.decode("utf-8", "replace"))
            said = f": {stderr}" if stderr else ""
            raise SinkFailed(f"{what} exited with status {done.returncode}{said}")

    def check(self, live: bool) -> list[str]:
        command = self.spec.argv[0]
        if not live or "{" in command:
            return []
        if shutil.which(command) is None:
            return [f"sink '{self.name}': command {command!r} not found (on PATH or as given)"]
        return []

    def close(self) -> None:
        pass
