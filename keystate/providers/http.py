"""The one HTTP policy every provider uses (DESIGN §6).

* Timeouts on every request, and a deadline on every attempt as a whole (connect + write
  + 10 x read), so an answer that trickles in a byte at a time cannot hold a run forever.
* Retries with exponential backoff and full jitter on 429, 5xx, timeouts and connection
  errors; ``Retry-After`` honoured (capped); a bounded number of attempts.
* Fewer requests in flight after a 429, more again after a while (AIMD,
  :mod:`keystate.providers.ratelimit`), per account.
* Host fallback: a :class:`HostPool` orders the hosts for reads and writes and keeps a
  host that failed at the network level (or with a 5xx) out of rotation for a while, the
  way Algolia's official clients do. A single-host provider simply has one host.
* Writes that are not idempotent (creates) are never retried blindly: a failure after
  the request may have reached the server (timeout, dropped connection, 5xx) raises
  :class:`AmbiguousWriteError`, so the caller can look before trying again. A failure
  before anything was sent (connection refused, DNS, 429) is retried as usual.

Log lines name the operation, never the URL path (Algolia puts key values in paths),
and never a header.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import random
import ssl
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Final

import httpx

from keystate import progress
from keystate.errors import (
    AmbiguousWriteError,
    NotFoundError,
    PermissionDeniedError,
    ProviderError,
)
from keystate.providers.policy import Host, HostPool, HttpPolicy, retry_after
from keystate.providers.ratelimit import AdaptiveLimit

log = logging.getLogger("keystate.http")

# The largest answer read: Algolia lists every key in one response (10,000 keys are ~5 MB).
MAX_RESPONSE_BYTES: Final = 64 * 2**20
MAX_CONNECTIONS: Final = 64
# A retry wait at least this long is announced (keystate.progress), not only logged.
RETRY_NOTE_SECONDS: Final = 2.0


class _TooLarge(Exception):
    """An answer longer than MAX_RESPONSE_BYTES."""


@dataclass(frozen=True)
class ApiError:
    """What a provider makes of an error response body."""

    message: str
    request_id: str | None = None


ErrorParser = Callable[[httpx.Response], ApiError]
# (method, path) -> what the operation needs of the credential, in the provider's words.
NeedsFn = Callable[[str, str], str]


@functools.cache
def tls_context() -> ssl.SSLContext:
    """The one TLS context of the run (certifi's CA bundle, like httpx's default).

    Loading the CA bundle takes tens of milliseconds and keystate opens one client per
    account: with a context per client, 60 accounts spent seconds before the first request.
    """
    return httpx.create_ssl_context(verify=True, trust_env=False)


class HttpClient:
    """Sends requests for one account under the shared policy."""

    def __init__(
        self,
        *,
        account: str,
        service: str,
        pool: HostPool,
        policy: HttpPolicy,
        headers: Mapping[str, str],
        parse_error: ErrorParser,
        transport: httpx.AsyncBaseTransport | None = None,
        rng: random.Random | None = None,
        sleep: Callable[[float], Awaitable[None]] | None = None,
        auth_hint: str = "",
        needs: NeedsFn | None = None,
    ) -> None:
        self.account = account
        self.service = service
        self.pool = pool
        self.policy = policy
        self.parse_error = parse_error
        self.auth_hint = auth_hint
        self.needs = needs
        self.rng = rng or random.Random()
        self._sleep = sleep or asyncio.sleep
        self._timeouts = {
            write: httpx.Timeout(
                connect=policy.connect_timeout,
                read=policy.answer_timeout(write),
                write=policy.write_timeout,
                pool=policy.answer_timeout(write),
            )
            for write in (False, True)
        }
        self.gate = AdaptiveLimit(MAX_CONNECTIONS) if policy.adaptive else None
        self.client = httpx.AsyncClient(
            headers=dict(headers),
            timeout=self._timeouts[False],
            transport=transport,
            limits=httpx.Limits(max_connections=MAX_CONNECTIONS, max_keepalive_connections=32),
            follow_redirects=False,
            verify=tls_context() if transport is None else True,
            trust_env=False,
        )

    async def aclose(self) -> None:
        await self.client.aclose()

    async def request(
        self,
        method: str,
        path: str,
        *,
        what: str,
        write: bool = False,
        idempotent: bool = True,
        json: object = None,
        params: Mapping[str, str] | None = None,
    ) -> httpx.Response:
        """Send with retries. ``what`` names the operation in logs and errors."""
        last = "no attempt made"
        attempt = 0
        while attempt < self.policy.max_attempts:
            for host in self.pool.candidates(write):
                if attempt >= self.policy.max_attempts:
                    break
                attempt += 1
                outcome = await self._attempt(
                    host, method, path, what, (write, idempotent), json, params
                )
                if isinstance(outcome, httpx.Response):
                    return outcome
                last, delay, next_host = outcome
                if attempt < self.policy.max_attempts:
                    await self._pause(delay, attempt, what, last)
                if not next_host:
                    break
        raise ProviderError(
            f"{what}: gave up after {attempt} attempt{'s' if attempt != 1 else ''} ({last})",
            account=self.account,
            retryable=True,
        )

    async def _pause(self, delay: float | None, attempt: int, what: str, last: str) -> None:
        wait = delay if delay is not None else self.policy.backoff(attempt - 1, self.rng)
        log.info("%s: %s: %s; retrying in %.2fs", self.account, what, last, wait)
        if wait >= RETRY_NOTE_SECONDS:
            progress.note(f"{self.account}: {what}: {last}; retrying in {wait:.0f}s")
        await self._sleep(wait)

    async def _attempt(
        self,
        host: Host,
        method: str,
        path: str,
        what: str,
        kind: tuple[bool, bool],
        json: object,
        params: Mapping[str, str] | None,
    ) -> httpx.Response | tuple[str, float | None, bool]:
        """One try. Returns the response, or (reason, delay, move to next host).
        ``kind`` is (a write, idempotent)."""
        write, idempotent = kind
        started = time.monotonic()
        try:
            response = await self._gated_send(method, host.url + path, json, params, write)
        except _TooLarge as exc:
            self._ambiguous(idempotent, what, str(exc))
            raise ProviderError(f"{what}: {exc}", account=self.account) from None
        except (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout) as exc:
            # Nothing reached the server: safe to retry anything, on another host.
            self.pool.mark_down(host)
            untrusted = _certificate_error(exc)
            if untrusted is not None:
                return (
                    f"the TLS certificate of {_hostname(host)} could not be verified "
                    f"({untrusted}); keystate always verifies TLS",
                    None,
                    True,
                )
            return f"cannot connect to {_hostname(host)} ({type(exc).__name__})", None, True
        except (httpx.TimeoutException, TimeoutError):  # TimeoutError: the deadline
            self._ambiguous(idempotent, what, f"timed out waiting for {_hostname(host)}")
            return f"timed out waiting for {_hostname(host)}", None, True
        except httpx.TransportError as exc:
            self.pool.mark_down(host)
            reason = f"connection to {_hostname(host)} failed ({type(exc).__name__})"
            self._ambiguous(idempotent, what, reason)
            return reason, None, True
        elapsed = (time.monotonic() - started) * 1000
        log.debug("%s: %s -> %d (%.0f ms)", self.account, what, response.status_code, elapsed)
        status = response.status_code
        if 200 <= status < 300:
            return response
        if status == 429:
            delay = retry_after(response, self.policy.max_retry_after)
            return "rate limited (429)", delay, False
        if status >= 500 or status < 200 or 300 <= status < 400:
            self.pool.mark_down(host)
            error = self._safe_error(response)
            reason = f"{self.service} answered {status}: {error.message}"
            self._ambiguous(idempotent, what, reason, error.request_id)
            return reason, None, True
        raise self._client_error(response, what, method, path)

    async def _gated_send(
        self,
        method: str,
        url: str,
        json: object,
        params: Mapping[str, str] | None,
        write: bool,
    ) -> httpx.Response:
        """One exchange holding a slot of the account's adaptive limit."""
        if self.gate is None:
            return await self._send(method, url, json, params, write)
        ticket = await self.gate.acquire()
        limited = False
        try:
            response = await self._send(method, url, json, params, write)
            limited = response.status_code == 429
            return response
        finally:
            self.gate.release(ticket, limited)

    async def _send(
        self,
        method: str,
        url: str,
        json: object,
        params: Mapping[str, str] | None,
        write: bool,
    ) -> httpx.Response:
        """One exchange; the body is read (decompressed) only up to MAX_RESPONSE_BYTES, so a
        huge or endless answer, or a compression bomb, cannot exhaust memory. A write
        waits for its answer up to the policy's write timeout, a read its read timeout."""
        request = self.client.build_request(
            method, url, json=json, params=params, timeout=self._timeouts[write]
        )
        chunks: list[bytes] = []
        async with asyncio.timeout(self.policy.deadline):
            response = await self.client.send(request, stream=True)
            try:
                size = 0
                async for chunk in response.aiter_bytes():
                    size += len(chunk)
                    if size > MAX_RESPONSE_BYTES:
                        raise _TooLarge(
                            f"{self.service} answered with more than "
                            f"{MAX_RESPONSE_BYTES // 2**20} MB; refusing to read it"
                        )
                    chunks.append(chunk)
            finally:
                await response.aclose()
        headers = [
            (k, v)
            for k, v in response.headers.multi_items()
            if k.lower() not in ("content-encoding", "content-length", "transfer-encoding")
        ]
        return httpx.Response(
            response.status_code, headers=headers, content=b"".join(chunks), request=request
        )

    def _ambiguous(
        self, idempotent: bool, what: str, reason: str, request_id: str | None = None
    ) -> None:
        if not idempotent:
            raise AmbiguousWriteError(
                f"{what}: {reason}; the write may or may not have happened",
                account=self.account,
                request_id=request_id,
            )

    def _safe_error(self, response: httpx.Response) -> ApiError:
        try:
            return self.parse_error(response)
        except Exception:  # a broken error body must not hide the status
            return ApiError(f"HTTP {response.status_code}")

    def _client_error(
        self, response: httpx.Response, what: str, method: str, path: str
    ) -> ProviderError:
        error = self._safe_error(response)
        status = response.status_code
        text = f"{what}: {self.service} answered {status}: {error.message}"
        if status in (401, 403):
            needs = self.needs(method, path) if self.needs else ""
            hint = "; ".join(
                part for part in (self.auth_hint, f"{what} needs {needs}" if needs else "") if part
            )
            return PermissionDeniedError(
                f"{text} ({hint})" if hint else text,
                needs=needs,
                account=self.account,
                status=status,
                request_id=error.request_id,
            )
        cls = NotFoundError if status == 404 else ProviderError
        return cls(text, account=self.account, status=status, request_id=error.request_id)


def _certificate_error(exc: BaseException) -> str | None:
    """The reason, when a connection failed because the server's certificate is not
    trusted (it is then no network glitch: the request was never sent)."""
    seen: BaseException | None = exc
    while seen is not None:
        if isinstance(seen, ssl.SSLCertVerificationError):
            return seen.verify_message or "certificate verify failed"
        seen = seen.__cause__ or seen.__context__
    return None


def _hostname(host: Host) -> str:
    return httpx.URL(host.url).host or host.url


def response_json(response: httpx.Response, account: str, what: str) -> object:
    """Parse a JSON body, turning garbage into a clear ProviderError."""
    try:
        return response.json()
    except ValueError:
        kind = response.headers.get("content-type", "unknown content type")
        raise ProviderError(
            f"{what}: expected JSON, got {kind} ({len(response.content)} bytes)",
            account=account,
        ) from None
