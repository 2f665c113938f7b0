"""Local HTTP servers for the Rapyd tests: the sandbox, a stub and a receiver."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field

from aiohttp import web

from adapters.rapyd.sandbox import (
    DEFAULT_ACCESS_KEY,
    DEFAULT_SECRET_KEY,
    SandboxState,
)

ACCESS_KEY = DEFAULT_ACCESS_KEY
SECRET_KEY = DEFAULT_SECRET_KEY


async def start_app(app: web.Application) -> tuple[web.AppRunner, str]:
    """Serve ``app`` on 127.0.0.1 at a free port and return the runner and URL."""
    runner = web.AppRunner(app, shutdown_timeout=1.0)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    host, port = runner.addresses[0][:2]
    return runner, f"http://{host}:{port}"


@dataclass
class ReceivedWebhook:
    path: str
    headers: dict[str, str]
    body: bytes


@dataclass
class Receiver:
    """A webhook endpoint that records every request it receives."""

    url: str = ""
    received: asyncio.Queue[ReceivedWebhook] = field(default_factory=asyncio.Queue)
    # Statuses returned to the next requests, in order, then 200.
    statuses: list[int] = field(default_factory=list)

    async def next(self) -> ReceivedWebhook:
        """Wait up to 5 s for the next webhook."""
        async with asyncio.timeout(5.0):
            return await self.received.get()


@dataclass
class Sandbox:
    url: str
    state: SandboxState


@dataclass
class CapturedRequest:
    method: str
    raw_path: str
    headers: dict[str, str]
    body: bytes


@dataclass
class StubRapyd:
    """A server that records requests and returns one configured response."""

    url: str = ""
    status: int = 200
    body: bytes = b""
    headers: dict[str, str] = field(default_factory=dict)
    requests: list[CapturedRequest] = field(default_factory=list)

    def reply(
        self, status: int, body: bytes, headers: dict[str, str] | None = None
    ) -> None:
        self.status = status
        self.body = body
        self.headers = dict(headers or {})
