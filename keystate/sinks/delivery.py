"""Delivering one new value to every sink of its key (DESIGN §12), and ``sinks check``.

:class:`Deliveries` opens the configured sinks for one run. ``deliver`` tries every sink
of the key (one failure does not stop the others); if any failed, the value is written
to the rescue file and :class:`~keystate.errors.DeliveryError` says which sinks failed
and where the value is. The caller (``apply``) then reports the key failed and keeps its
``;pending`` marker, so the next apply delivers again (or replaces the key when its
value cannot be read back).

``--secrets-out`` overrides the default sink: the default sink's name then means that
file (or standard output); without a default sink, keys that name none use it.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from keystate.errors import DeliveryError
from keystate.secrets import DeliveredSecret, SecretsSink
from keystate.sinks.aws import AwsSink
from keystate.sinks.base import Delivery, Sink, SinkFailed
from keystate.sinks.execsink import ExecSink
from keystate.sinks.file import FileSink
from keystate.sinks.rescue import RescueFile
from keystate.sinks.spec import (
    SECRETS_OUT,
    AwsSinkSpec,
    ExecSinkSpec,
    FileSinkSpec,
    Placeholders,
    SecretsConfig,
    SinkSpec,
)


def open_sink(spec: SinkSpec) -> Sink:
    settings = spec.settings
    if isinstance(settings, FileSinkSpec):
        return FileSink(spec.name, settings)
    if isinstance(settings, ExecSinkSpec):
        return ExecSink(spec.name, settings)
    assert isinstance(settings, AwsSinkSpec)
    return AwsSink(spec.name, settings)


class Deliveries:
    """The sinks of one run, the default, and the rescue file."""

    def __init__(
        self,
        config: SecretsConfig,
        owner: str | None,
        secrets_out: tuple[str, SecretsSink] | None = None,
    ) -> None:
        self.owner = owner
        self.sinks: dict[str, Sink] = {name: open_sink(s) for name, s in config.sinks.items()}
        self.default: tuple[str, ...] = config.default_sinks
        if secrets_out is not None:
            dest, writer = secrets_out
            name = config.default or SECRETS_OUT
            self.sinks[name] = FileSink(name, FileSinkSpec(dest), opened=writer)
            self.default = (name,)
        self.rescue = RescueFile(config.rescue_dir)
        self.delivered = 0
        self.reached: set[str] = set()

    def targets(self, deliver_to: Sequence[str]) -> tuple[str, ...]:
        return tuple(deliver_to) or self.default

    def missing(self, names: Sequence[str]) -> list[str]:
        """Sink names a plan uses that this run cannot deliver to."""
        return sorted({n for n in names if n not in self.sinks})

    def deliver(self, item: DeliveredSecret, deliver_to: Sequence[str], action: str) -> None:
        """Deliver to every sink of the key; raise DeliveryError (the value rescued) if
        any failed."""
        names = self.targets(deliver_to)
        if not names:
            raise DeliveryError(
                f"{item.address}: created, but there is no secrets sink for its value",
                rescued=self._rescue(item, ["(none)"]),
            )
        values = Placeholders(item.account, item.name, self.owner, item.value.fingerprint)
        failures: list[tuple[str, str]] = []
        for name in names:
            sink = self.sinks.get(name)
            try:
                if sink is None:
                    raise SinkFailed(f"sink '{name}' is not configured for this run")
                sink.deliver(Delivery(item, values, action))
                self.reached.add(name)
            except SinkFailed as exc:
                failures.append((name, str(exc)))
        if not failures:
            self.delivered += 1
            return
        rescued = self._rescue(item, [name for name, _ in failures])
        reasons = "; ".join(message for _, message in failures)
        raise DeliveryError(
            f"{item.address}: the new value did not reach every sink ({reasons})",
            rescued=rescued,
        )

    def _rescue(self, item: DeliveredSecret, failed: list[str]) -> Path | None:
        try:
            return self.rescue.keep(item, failed)
        except OSError:
            return None

    def preflight(self, names: Sequence[str]) -> list[str]:
        """Before a run: why the sinks it will use cannot take values (offline checks)."""
        missing = self.missing(names)
        problems = [
            f"the plan delivers new values to sink '{n}', which is not configured here; "
            "apply a saved plan with -c CONFIG so its sinks can be read"
            for n in missing
        ]
        for name in sorted(set(names) - set(missing)):
            problems += self.sinks[name].check(live=False)
        return problems

    def check(self, live: bool) -> list[str]:
        return [problem for sink in self.sinks.values() for problem in sink.check(live)]

    def warnings(self) -> list[str]:
        found: list[str] = []
        for sink in self.sinks.values():
            if isinstance(sink, FileSink):
                found += sink.warnings
                sink.warnings.clear()
        return found

    def close(self) -> None:
        for sink in self.sinks.values():
            sink.close()
        self.rescue.close()
