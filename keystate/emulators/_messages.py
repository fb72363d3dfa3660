"""The request/response types an emulator app exchanges with the server.

An emulator is a pure, synchronous function of :class:`EmuRequest` to
:class:`EmuResponse` (plus the two helpers of :class:`EmulatorApp`), so the same app
serves real HTTP (:mod:`keystate.emulators.http`) and in-process callers (the sandbox).
These types are re-exported by :mod:`keystate.emulators.http`, their public home.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Protocol


@dataclass(frozen=True)
class EmuRequest:
    """One HTTP request as an emulator sees it."""

    method: str
    """Upper-case."""
    path: str
    """Raw path as received, still percent-encoded, without the query string."""
    query: str
    """Raw query string, ``""`` if none."""
    headers: Mapping[str, str]
    """Header names lower-cased; repeated headers joined with ``", "``."""
    body: bytes = b""

    @classmethod
    def build(
        cls,
        method: str,
        target: str,
        headers: Iterable[tuple[str, str]] = (),
        body: bytes = b"",
    ) -> EmuRequest:
        """Build from a request target (``/path?query``) and raw header pairs."""
        path, _, query = target.partition("?")
        merged: dict[str, str] = {}
        for name, value in headers:
            key = name.lower()
            merged[key] = f"{merged[key]}, {value}" if key in merged else value
        return cls(method.upper(), path, query, MappingProxyType(merged), body)


@dataclass(frozen=True)
class EmuResponse:
    """One HTTP response; the server adds ``content-length`` and ``connection``."""

    status: int
    headers: tuple[tuple[str, str], ...]
    body: bytes

    def header(self, name: str) -> str | None:
        """The first header called ``name`` (case-insensitive), or None."""
        wanted = name.lower()
        return next((v for n, v in self.headers if n.lower() == wanted), None)


class EmulatorApp(Protocol):
    """What the server needs from an emulator."""

    def handle(self, request: EmuRequest) -> EmuResponse:
        """Answer one request; synchronous; the server serialises calls."""
        ...

    def fault_response(self, status: int, retry_after: float | None) -> EmuResponse:
        """An error response in the provider's format (injected faults, bad requests)."""
        ...

    def route_name(self, request: EmuRequest) -> str:
        """A short, low-cardinality label of the request's route, for counters."""
        ...
