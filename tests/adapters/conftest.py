"""Fixtures for the Rapyd adapter tests."""

from __future__ import annotations

from collections.abc import AsyncIterator

import aiohttp
import pytest_asyncio
from aiohttp import web

from adapters.rapyd.sandbox import SANDBOX_STATE, create_sandbox_app
from tests.adapters.rapyd_servers import (
    ACCESS_KEY,
    SECRET_KEY,
    CapturedRequest,
    ReceivedWebhook,
    Receiver,
    Sandbox,
    StubRapyd,
    start_app,
)


@pytest_asyncio.fixture
async def receiver() -> AsyncIterator[Receiver]:
    state = Receiver()

    async def handle(request: web.Request) -> web.Response:
        state.received.put_nowait(
            ReceivedWebhook(request.path, dict(request.headers), await request.read())
        )
        status = state.statuses.pop(0) if state.statuses else 200
        return web.Response(status=status)

    app = web.Application()
    app.router.add_post("/hooks/rapyd", handle)
    runner, base_url = await start_app(app)
    state.url = f"{base_url}/hooks/rapyd"
    yield state
    await runner.cleanup()


@pytest_asyncio.fixture
async def sandbox(receiver: Receiver) -> AsyncIterator[Sandbox]:
    app = create_sandbox_app(
        access_key=ACCESS_KEY,
        secret_key=SECRET_KEY,
        webhook_target_url=receiver.url,
        webhook_delay_seconds=0.01,
    )
    runner, base_url = await start_app(app)
    yield Sandbox(url=base_url, state=app[SANDBOX_STATE])
    await runner.cleanup()


@pytest_asyncio.fixture
async def http() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as session:
        yield session


@pytest_asyncio.fixture
async def stub_rapyd() -> AsyncIterator[StubRapyd]:
    stub = StubRapyd()

    async def handle(request: web.Request) -> web.Response:
        stub.requests.append(
            CapturedRequest(
                request.method,
                request.raw_path,
                dict(request.headers),
                await request.read(),
            )
        )
        return web.Response(status=stub.status, body=stub.body, headers=stub.headers)

    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", handle)
    runner, stub.url = await start_app(app)
    yield stub
    await runner.cleanup()
