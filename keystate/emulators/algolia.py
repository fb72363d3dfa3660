"""A faithful local emulator of Algolia's API-key management REST API.

:class:`AlgoliaEmulator` is an :class:`~keystate.emulators.http.EmulatorApp`: serve it
with :func:`~keystate.emulators.http.start_in_thread` / ``serve_forever``, or call
:meth:`AlgoliaEmulator.handle` in-process (the sandbox). It implements the six routes of
``shared/providers/algolia-api.md`` §2 and the fidelity checklist of §9:

- ``GET/POST /1/keys``, ``GET/PUT/DELETE /1/keys/{key}``, ``POST /1/keys/{key}/restore``
  (``{key}`` percent-decoded after splitting the raw path); anything else is 404.
- Auth by ``x-algolia-application-id`` / ``x-algolia-api-key`` headers or query
  parameters. Wrong app id or unknown key: 403 ``Invalid Application-ID or API key``;
  a non-admin key may only GET itself (description ``<redacted>``), anything else is
  403 ``Method not allowed with this API key``. A key authenticates once it is visible.
- PUT replaces the whole object; validity is a lifetime on write and the remaining
  seconds on read; expired keys vanish; deletes go to a restorable store of 1,000.
- ``propagation_delay_ms``: writes land in the primary at once (and validate later
  deletes) but reads — GET one, GET list, auth, and restore's "still exists" check — see
  them only after the delay, measured on the injected ``clock``. A PUT is served like a
  read: on a key whose creation has not propagated yet it answers 404 ``Key does not
  exist`` (write after write).

Checks run in this order: route (404), credentials (403), rights (403), body (400),
existence (404). State lives in memory or, with ``state_path``, in a JSON file shared
safely by several processes (see :mod:`keystate.emulators._statefile`). Instances are
thread-safe. Unverified behaviours are knobs or documented choices (docs/emulators.md).
"""

from __future__ import annotations

import copy
import hmac
import secrets
import string
import threading
import time
from collections.abc import Callable
from http import HTTPStatus
from pathlib import Path
from typing import Any, Final
from urllib.parse import parse_qs, unquote

from keystate.emulators._algolia_state import AppState, StoredKey
from keystate.emulators._algolia_wire import (
    ACL_VALUES,
    ApiError,
    parse_key_body,
    render_admin_key,
    render_key,
    rfc3339,
)
from keystate.emulators._algolia_wire import error_response as _error
from keystate.emulators._algolia_wire import json_response as _ok
from keystate.emulators._statefile import StateStore
from keystate.emulators.http import EmuRequest, EmuResponse

__all__ = ["ACL_VALUES", "ROUTE_NAMES", "AlgoliaEmulator"]

INVALID_CREDENTIALS: Final = "Invalid Application-ID or API key"
METHOD_NOT_ALLOWED: Final = "Method not allowed with this API key"
KEY_DOES_NOT_EXIST: Final = "Key does not exist"
KEY_ALREADY_EXISTS: Final = "Key already exists"
ROUTE_NAMES: Final = ("list", "add", "get", "update", "delete", "restore", "unknown")

_APP_ID_HEADER: Final = "x-algolia-application-id"
_API_KEY_HEADER: Final = "x-algolia-api-key"
_ADMIN: Final = "admin"


def _match(request: EmuRequest) -> tuple[str, str]:
    """The route name and the percent-decoded ``{key}`` ("" when none)."""
    parts = request.path.split("/")
    if parts[:3] != ["", "1", "keys"]:
        return "unknown", ""
    rest, method = parts[3:], request.method
    if not rest:
        return {"GET": "list", "POST": "add"}.get(method, "unknown"), ""
    key = unquote(rest[0])
    if not key:
        return "unknown", ""
    if len(rest) == 1:
        return {"GET": "get", "PUT": "update", "DELETE": "delete"}.get(method, "unknown"), key
    if len(rest) == 2 and rest[1] == "restore" and method == "POST":
        return "restore", key
    return "unknown", ""


def _credential(request: EmuRequest, name: str) -> str:
    """A credential from its header, else from the query parameter of the same name."""
    if name in request.headers:
        return request.headers[name]
    values = parse_qs(request.query).get(name)
    return values[0] if values else ""


def _random_app_id() -> str:
    alphabet = string.ascii_uppercase + string.digits
    return "".join(secrets.choice(alphabet) for _ in range(10))


class AlgoliaEmulator:
    """Algolia's ``/1/keys`` API for one application (see the module docstring)."""

    def __init__(
        self,
        state_path: Path | None = None,
        *,
        app_id: str | None = None,
        admin_key: str | None = None,
        propagation_delay_ms: float = 0,
        clock: Callable[[], float] = time.time,
        list_admin_key: bool = False,
        reorder_lists: bool = False,
    ) -> None:
        if propagation_delay_ms < 0:
            raise ValueError("propagation_delay_ms must not be negative")
        self._lock = threading.RLock()
        default_app_id = app_id or _random_app_id()
        default_admin_key = admin_key or secrets.token_hex(16)
        overrides = {k: v for k, v in (("app_id", app_id), ("admin_key", admin_key)) if v}
        self._store = StateStore(
            state_path,
            lambda: AppState(default_app_id, default_admin_key),
            AppState.from_json,
            overrides,
        )
        self._delay_s = propagation_delay_ms / 1000
        self._clock = clock
        self._list_admin_key = list_admin_key
        self._reorder = reorder_lists

    @property
    def app_id(self) -> str:
        with self._lock:
            return self._store.read().app_id

    @property
    def admin_key(self) -> str:
        with self._lock:
            return self._store.read().admin_key

    def __repr__(self) -> str:  # never show the admin key
        return f"<AlgoliaEmulator app_id={self.app_id!r}>"

    def persist(self) -> None:
        """Write the state file now if it does not exist yet (under the file lock).

        Two processes opening the same new sandbox file at once then agree on one
        application id and admin key: the second one reloads what the first wrote.
        """
        with self._lock:
            self._store.write(lambda _state: None)

    # --- EmulatorApp --------------------------------------------------------------------

    def route_name(self, request: EmuRequest) -> str:
        """One of :data:`ROUTE_NAMES`."""
        return _match(request)[0]

    def fault_response(self, status: int, retry_after: float | None) -> EmuResponse:
        try:
            message = HTTPStatus(status).phrase
        except ValueError:
            message = "Error"
        return _error(status, message, retry_after)

    def handle(self, request: EmuRequest) -> EmuResponse:
        route, key = _match(request)
        if route == "unknown":
            return _error(404, "Not Found")
        try:
            with self._lock:
                return self._dispatch(route, key, request, self._clock())
        except ApiError as exc:
            return _error(exc.status, exc.message)

    # --- tests --------------------------------------------------------------------------

    def snapshot(self) -> list[dict[str, Any]]:
        """The primary's stored keys (incl. value, createdAt, expiresAt), deep-copied."""
        with self._lock:
            now = self._clock()
            state = self._store.read()
            return [copy.deepcopy(k.to_json()) for k in state.keys.values() if not k.expired(now)]

    # --- routes -------------------------------------------------------------------------

    def _dispatch(self, route: str, key: str, request: EmuRequest, now: float) -> EmuResponse:
        state = self._store.read()
        caller = self._authenticate(request, state, now)
        if route == "get":
            return self._get(state, key, caller, now)
        if caller != _ADMIN:
            raise ApiError(403, METHOD_NOT_ALLOWED)
        if route == "list":
            return self._list(state, now)
        if route in ("add", "update"):
            fields = parse_key_body(request.body)
            if route == "add":
                return self._store.write(lambda s: self._add(s, fields.to_key, now))
            return self._store.write(lambda s: self._update(s, key, fields.to_key, now))
        if route == "delete":
            return self._store.write(lambda s: self._delete(s, key, now))
        return self._store.write(lambda s: self._restore(s, key, now))

    def _authenticate(self, request: EmuRequest, state: AppState, now: float) -> StoredKey | str:
        """``_ADMIN``, or the caller's (visible) key; ApiError(403) otherwise."""
        app_id = _credential(request, _APP_ID_HEADER)
        api_key = _credential(request, _API_KEY_HEADER)
        if app_id == state.app_id and api_key:
            if hmac.compare_digest(api_key.encode(), state.admin_key.encode()):
                return _ADMIN
            caller = state.visible(api_key, now)
            if caller is not None:
                return caller
        raise ApiError(403, INVALID_CREDENTIALS)

    def _get(self, state: AppState, value: str, caller: StoredKey | str, now: float) -> EmuResponse:
        if caller != _ADMIN:
            if not isinstance(caller, StoredKey) or caller.value != value:
                raise ApiError(403, METHOD_NOT_ALLOWED)
            return _ok(render_key(caller, now, redact=True, reorder=self._reorder))
        if value == state.admin_key:
            return _ok(render_admin_key(value, reorder=self._reorder))
        key = state.visible(value, now)
        if key is None:
            raise ApiError(404, KEY_DOES_NOT_EXIST)
        return _ok(render_key(key, now, redact=False, reorder=self._reorder))

    def _list(self, state: AppState, now: float) -> EmuResponse:
        keys = [
            render_key(k, now, redact=False, reorder=self._reorder) for k in state.visible_all(now)
        ]
        if self._list_admin_key:
            keys.insert(0, render_admin_key(state.admin_key, reorder=self._reorder))
        return _ok({"keys": keys})

    def _add(
        self, state: AppState, build: Callable[[str, int, float], StoredKey], now: float
    ) -> EmuResponse:
        state.settle(now)
        value = secrets.token_hex(16)
        while state.is_known(value):  # pragma: no cover - 128 random bits
            value = secrets.token_hex(16)
        state.put(build(value, int(now), now), now, self._delay_s)
        return _ok({"key": value, "createdAt": rfc3339(now)})

    def _update(
        self, state: AppState, value: str, build: Callable[[str, int, float], StoredKey], now: float
    ) -> EmuResponse:
        state.settle(now)
        current = self._writable(state, value, now)
        if state.visible(value, now) is None:
            # Write after write: a PUT is served like a read, so a key whose creation
            # has not propagated yet is unknown to it (as restore sees only visible keys).
            raise ApiError(404, KEY_DOES_NOT_EXIST)
        state.put(build(value, current.created_at, now), now, self._delay_s)
        return _ok({"key": value, "updatedAt": rfc3339(now)})

    def _delete(self, state: AppState, value: str, now: float) -> EmuResponse:
        state.settle(now)
        self._writable(state, value, now)
        state.delete(value, now, self._delay_s)
        return _ok({"deletedAt": rfc3339(now)})

    def _restore(self, state: AppState, value: str, now: float) -> EmuResponse:
        state.settle(now)
        exists = state.live(value, now) or state.visible(value, now)
        if value == state.admin_key or exists is not None:
            raise ApiError(404, KEY_ALREADY_EXISTS)
        if state.restore(value, now, self._delay_s) is None:
            raise ApiError(404, KEY_DOES_NOT_EXIST)
        return _ok({"key": value, "createdAt": rfc3339(now)})

    @staticmethod
    def _writable(state: AppState, value: str, now: float) -> StoredKey:
        """The live key to change; the admin key itself cannot be changed (403)."""
        if value == state.admin_key:
            raise ApiError(403, METHOD_NOT_ALLOWED)
        current = state.live(value, now)
        if current is None:
            raise ApiError(404, KEY_DOES_NOT_EXIST)
        return current
