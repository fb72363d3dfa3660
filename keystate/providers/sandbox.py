"""``sandbox: PATH`` accounts: the real provider code, served in-process by an emulator.

The provider builds its usual requests for its usual hosts; this httpx transport hands
them to the emulator instead of the network. No credentials and no network are needed:
the emulator's state file (PATH) holds the application and its keys.
"""

from __future__ import annotations

import httpx

from keystate.emulators.http import EmulatorApp, EmuRequest


class SandboxTransport(httpx.AsyncBaseTransport):
    """An httpx transport that answers from an in-process emulator app."""

    def __init__(self, app: EmulatorApp) -> None:
        self.app = app

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        body = await request.aread()
        emu_request = EmuRequest(
            method=request.method.upper(),
            path=request.url.raw_path.split(b"?", 1)[0].decode("ascii"),
            query=request.url.query.decode("ascii"),
            headers={k.lower(): v for k, v in request.headers.items()},
            body=body,
        )
        reply = self.app.handle(emu_request)
        return httpx.Response(
            status_code=reply.status,
            headers=list(reply.headers),
            content=reply.body,
            request=request,
        )
