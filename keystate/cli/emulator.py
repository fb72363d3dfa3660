"""`keystate emulator algolia|coveo`: the emulators as local servers.

The emulator stack is imported only when one of these commands runs, so that the other
commands start without it. The docs give credentials through the KEYSTATE_EMULATOR_*
variables (or a state file) rather than the flags, which every user of the machine can
read in the process list.
"""

from __future__ import annotations

import contextlib
import errno
import functools
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import click

from keystate.cli.ui import Ui
from keystate.errors import EXIT_OK, UsageError


@click.group()
def emulator() -> None:
    """The commands of ``keystate emulator`` (the CLI's group loads them from here)."""


@dataclass(frozen=True)
class ServeOptions:
    """The knobs every emulator command takes (see docs/emulators.md)."""

    port: int
    state: Path | None
    latency_ms: float
    propagation_delay_ms: float
    faults: str
    fault_seed: int | None
    retry_after: float
    timeout_hold: float
    rate_limit: str | None


_SERVE_OPTIONS = (
    click.option("--port", type=click.IntRange(0, 65535), default=0, help="0 picks a free port."),
    click.option("--state", type=click.Path(path_type=Path), help="Persist keys in this file."),
    click.option("--latency-ms", type=click.FloatRange(0), default=0.0),
    click.option("--propagation-delay-ms", type=click.FloatRange(0), default=0.0),
    click.option("--faults", default="", metavar="KIND=RATE,...", help="e.g. 429=0.1,500=0.05"),
    click.option("--fault-seed", type=int),
    click.option("--retry-after", type=click.FloatRange(0), default=1.0, show_default=True),
    click.option("--timeout-hold", type=click.FloatRange(0), default=30.0, show_default=True),
    click.option(
        "--rate-limit",
        metavar="N/s",
        help="Serve at most N requests per second; past it, 429 with Retry-After.",
    ),
)


def _emulator_options(f: Callable[..., int]) -> Callable[..., int]:
    """Adds the shared knobs; the command receives them as one :class:`ServeOptions`."""

    @functools.wraps(f)
    def bundled(**kwargs: Any) -> int:
        names = ServeOptions.__dataclass_fields__
        serve = ServeOptions(**{name: kwargs.pop(name) for name in names})
        return f(serve, **kwargs)

    command: Callable[..., int] = bundled
    for option in reversed(_SERVE_OPTIONS):
        command = option(command)
    return command


@emulator.command("algolia")
@_emulator_options
@click.option("--app-id", envvar="KEYSTATE_EMULATOR_APP_ID", help="Application ID.")
@click.option(
    "--admin-key",
    envvar="KEYSTATE_EMULATOR_ADMIN_KEY",
    help="Admin API key (prefer the KEYSTATE_EMULATOR_ADMIN_KEY variable).",
)
@click.option("--list-admin-key", is_flag=True, help="GET /1/keys also lists the admin key.")
def emulator_algolia(
    serve: ServeOptions,
    app_id: str | None,
    admin_key: str | None,
    list_admin_key: bool,
) -> int:
    """Serve Algolia's /1/keys API on 127.0.0.1."""
    from keystate.emulators.algolia import AlgoliaEmulator

    state = serve.state
    if not admin_key and not (state and state.exists()):
        raise UsageError(
            "give the admin key with KEYSTATE_EMULATOR_ADMIN_KEY (or --admin-key), or a "
            "--state file that holds one: a generated key could not be shown to you"
        )
    with _state_file(state):
        app = AlgoliaEmulator(
            state,
            app_id=app_id,
            admin_key=admin_key,
            propagation_delay_ms=serve.propagation_delay_ms,
            list_admin_key=list_admin_key,
        )
    return _serve(app, serve, f"Algolia emulator for application {app.app_id}")


@emulator.command("coveo")
@_emulator_options
@click.option("--org", "organization_id", envvar="KEYSTATE_EMULATOR_ORG", help="Organization ID.")
@click.option(
    "--token",
    envvar="KEYSTATE_EMULATOR_TOKEN",
    help="Access token with every privilege (prefer the KEYSTATE_EMULATOR_TOKEN variable).",
)
@click.option("--region", type=click.Choice(["us", "eu", "au", "ca", "hipaa"]), default="us")
@click.option(
    "--allow-api-key-bearer",
    is_flag=True,
    help="Let API keys manage keys, each route needing its OAS privileges (docs say they cannot).",
)
@click.option(
    "--missing-privilege-status",
    type=click.Choice(["401", "403"]),
    default="401",
    show_default=True,
)
@click.option(
    "--default-lifetime", metavar="DURATION", help="e.g. P90D, for keys made without one."
)
def emulator_coveo(
    serve: ServeOptions,
    organization_id: str | None,
    token: str | None,
    region: str,
    allow_api_key_bearer: bool,
    missing_privilege_status: str,
    default_lifetime: str | None,
) -> int:
    """Serve Coveo's API-key endpoints (/rest/organizations/ORG/apikeys...) on 127.0.0.1."""
    from keystate.emulators.coveo import CoveoEmulator

    state = serve.state
    if not token and not (state and state.exists()):
        raise UsageError(
            "give the token with KEYSTATE_EMULATOR_TOKEN (or --token), or a --state file "
            "that holds one: a generated token could not be shown to you"
        )
    with _state_file(state):
        try:
            app = CoveoEmulator(
                state,
                organization_id=organization_id,
                token=token,
                region=region,
                propagation_delay_ms=serve.propagation_delay_ms,
                allow_api_key_bearer=allow_api_key_bearer,
                missing_privilege_status=int(missing_privilege_status),
                default_lifetime=default_lifetime,
            )
        except ValueError as exc:
            raise UsageError(str(exc)) from None
    title = f"Coveo emulator for organization {app.organization_id} ({region})"
    return _serve(app, serve, title)


def _serve(app: Any, serve: ServeOptions, title: str) -> int:
    from keystate.emulators.faults import FaultSpec, Knobs, parse_rate
    from keystate.emulators.http import serve_forever

    try:
        spec = FaultSpec.parse(serve.faults)
    except ValueError as exc:
        raise UsageError(f"--faults: {exc}") from None
    try:
        rate = parse_rate(serve.rate_limit) if serve.rate_limit is not None else 0.0
    except ValueError as exc:
        raise UsageError(f"--rate-limit: {exc}") from None
    knobs = Knobs(
        rate_limit=rate,
        latency_ms=serve.latency_ms,
        faults=spec,
        fault_seed=serve.fault_seed,
        retry_after=serve.retry_after,
        timeout_hold_s=serve.timeout_hold,
    )
    ui = click.get_current_context().obj
    assert isinstance(ui, Ui)

    def ready(bound: int) -> None:
        ui.out(f"{title} listening on http://127.0.0.1:{bound}")
        sys.stdout.flush()

    try:
        serve_forever(app, knobs, "127.0.0.1", serve.port, ready)
    except OSError as exc:
        if exc.errno == errno.EADDRINUSE:
            raise UsageError(
                f"--port {serve.port} is already in use on 127.0.0.1; choose another "
                "port, or --port 0 for a free one"
            ) from None
        reason = exc.strerror or exc
        raise UsageError(f"cannot listen on 127.0.0.1:{serve.port}: {reason}") from None
    return EXIT_OK


@contextlib.contextmanager
def _state_file(state: Path | None) -> Iterator[None]:
    """A --state file that cannot be used is the user's mistake, not a bug."""
    try:
        yield
    except (OSError, ValueError) as exc:
        if state is None:
            raise
        reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
        raise UsageError(
            f"--state {state}: {reason.replace(f'{state}: ', '')}; give this emulator's own "
            "state file, or a new path"
        ) from None
