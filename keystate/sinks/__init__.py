"""Secret sinks (DESIGN §12): where each new key value is delivered.

* :mod:`.spec` — the configuration model (``secrets:``), placeholders; pure, cheap to import.
* :mod:`.file`, :mod:`.execsink`, :mod:`.aws` — one sink kind each (boto3 imported lazily).
* :mod:`.rescue` — the 0600 rescue file a value goes to when a sink fails.
* :mod:`.delivery` — fan-out of one value to every sink of its key, and ``sinks check``.

Only :mod:`.spec` is imported by the configuration loader; the rest is imported by
``apply`` and the CLI when they deliver or check.
"""

from keystate.sinks.spec import (
    PLACEHOLDERS,
    SECRETS_OUT,
    AwsSinkSpec,
    ExecSinkSpec,
    FileSinkSpec,
    SecretsConfig,
    SinkSpec,
)

__all__ = [
    "PLACEHOLDERS",
    "SECRETS_OUT",
    "AwsSinkSpec",
    "ExecSinkSpec",
    "FileSinkSpec",
    "SecretsConfig",
    "SinkSpec",
]
