"""The webhook gateway in process, on a SQLite file."""

from __future__ import annotations

import asyncio
import dataclasses
import json
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest
import pytest_asyncio
from aiohttp.test_utils import TestClient, TestServer
from sqlalchemy import func, select

from adapters.rapyd.signing import webhook_signature
from gateway.app import SESSIONS, create_gateway_app
from hub.config import Settings, load_settings
from hub.jobs.outbox import Dispatcher
from hub.persistence.database import create_engine, create_session_factory
from hub.persistence.migrate import upgrade
from hub.persistence.models import Job, WebhookEvent
from hub.registry import Registry
from hub.webhooks.intake import storable_headers

SECRET = "gateway-test-secret"


def signed_headers(settings: Settings, body: bytes, timestamp: int) -> dict[str, str]:
    salt = "abcdefgh1234"
    signature = webhook_signature(
        webhook_url=settings.rapyd.webhook_url,
        salt=salt,
        timestamp=str(timestamp),
        access_key=settings.rapyd.access_key,
        secret_key=SECRET,
        body=body,
    )
    return {"salt": salt, "timestamp": str(timestamp), "signature": signature}


def event_body(event_id: str = "wh_1") -> bytes:
    event = {
        "id": event_id,
        "type": "PAYMENT_COMPLETED",
        "data": {"id": "payment_1", "status": "CLO"},
    }
    return json.dumps(event, separators=(",", ":")).encode()


@dataclasses.dataclass
class Gateway:
    client: TestClient
    settings: Settings
    sent: list[str]
    count: Callable[[type], Awaitable[int]]
    dispatcher: Dispatcher

    async def sent_jobs(self) -> list[str]:
        """Return the jobs sent once every background send has finished."""
        await self.dispatcher.drain()
        return self.sent

    async def post(self, body: bytes) -> tuple[int, dict[str, Any]]:
        headers = signed_headers(self.settings, body, int(time.time()))
        response = await self.client.post("/webhooks/rapyd", data=body, headers=headers)
        return response.status, await response.json()


@pytest_asyncio.fixture
async def gateway(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> AsyncIterator[Gateway]:
    monkeypatch.setenv("GATEWAY_TEST_SECRET", SECRET)
    url = f"sqlite+aiosqlite:///{tmp_path / 'hub.sqlite3'}"
    upgrade(url)
    settings = dataclasses.replace(
        load_settings({"HUB_RAPYD_SECRET_KEY": "env:GATEWAY_TEST_SECRET"}),
        database_url=url,
    )
    engine = create_engine(url)
    sessions = create_session_factory(engine)
    sent: list[str] = []
    dispatcher = Dispatcher(lambda job_id, delay: sent.append(job_id))
    app = create_gateway_app(settings, sessions, Registry(settings), dispatcher)

    async def count(model: type) -> int:
        async with sessions() as session:
            return (
                await session.execute(select(func.count()).select_from(model))
            ).scalar_one()

    async with TestClient(TestServer(app)) as client:
        yield Gateway(client, settings, sent, count, dispatcher)
    await engine.dispose()


async def test_signed_webhook_is_stored_with_job(gateway: Gateway) -> None:
    status, payload = await gateway.post(event_body())

    assert status == 200
    assert payload["status"] == "accepted"
    assert await gateway.count(WebhookEvent) == 1
    assert await gateway.count(Job) == 1
    assert len(await gateway.sent_jobs()) == 1


async def test_exact_bytes_are_stored(gateway: Gateway) -> None:
    body = event_body()[:-1] + ',"note":"Zürich café"}'.encode()

    await gateway.post(body)

    assert gateway.client.app is not None
    async with gateway.client.app[SESSIONS]() as session:
        stored = (await session.execute(select(WebhookEvent))).scalar_one()
    assert stored.raw_body == body


async def test_duplicate_event_has_no_new_effect(gateway: Gateway) -> None:
    await gateway.post(event_body())

    status, payload = await gateway.post(event_body())

    assert status == 200
    assert payload["status"] == "duplicate"
    assert await gateway.count(WebhookEvent) == 1
    assert len(await gateway.sent_jobs()) == 1


async def test_tampered_body_is_rejected(gateway: Gateway) -> None:
    headers = signed_headers(gateway.settings, event_body("wh_1"), int(time.time()))

    response = await gateway.client.post(
        "/webhooks/rapyd", data=event_body("wh_2"), headers=headers
    )

    assert response.status == 401
    assert await gateway.count(WebhookEvent) == 0


async def test_missing_signature_is_rejected(gateway: Gateway) -> None:
    response = await gateway.client.post("/webhooks/rapyd", data=event_body())

    assert response.status == 401
    assert await gateway.count(WebhookEvent) == 0


async def test_stale_timestamp_is_rejected(gateway: Gateway) -> None:
    body = event_body()
    headers = signed_headers(gateway.settings, body, int(time.time()) - 3600)

    response = await gateway.client.post("/webhooks/rapyd", data=body, headers=headers)

    assert response.status == 401
    assert await gateway.count(WebhookEvent) == 0


async def test_signed_event_without_id_is_bad_request(gateway: Gateway) -> None:
    status, payload = await gateway.post(b'{"type":"PAYMENT_COMPLETED"}')

    assert status == 400
    assert payload["error"]["code"] == "WEBHOOK_PAYLOAD_INVALID"
    assert await gateway.count(WebhookEvent) == 0


async def test_unknown_provider_is_not_found(gateway: Gateway) -> None:
    response = await gateway.client.post("/webhooks/acme", data=event_body())

    assert response.status == 404
    assert await gateway.count(WebhookEvent) == 0


async def test_get_is_not_allowed(gateway: Gateway) -> None:
    response = await gateway.client.get("/webhooks/rapyd")

    assert response.status == 405


async def test_oversized_body_is_rejected(gateway: Gateway) -> None:
    body = b"x" * (gateway.settings.webhook_max_body_bytes + 1)

    response = await gateway.client.post("/webhooks/rapyd", data=body)

    assert response.status == 413
    assert await gateway.count(WebhookEvent) == 0


async def test_unreachable_database_answers_503(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("GATEWAY_TEST_SECRET", SECRET)
    settings = load_settings({"HUB_RAPYD_SECRET_KEY": "env:GATEWAY_TEST_SECRET"})
    # Port 9 (discard) on loopback has no PostgreSQL, so connecting fails.
    engine = create_engine("postgresql+psycopg://postgres@127.0.0.1:9/none")
    app = create_gateway_app(
        settings,
        create_session_factory(engine),
        Registry(settings),
        Dispatcher(lambda job_id, delay: None),
    )
    body = event_body()
    headers = signed_headers(settings, body, int(time.time()))

    async with TestClient(TestServer(app)) as client:
        response = await client.post("/webhooks/rapyd", data=body, headers=headers)

    assert response.status == 503
    assert response.headers["Retry-After"] == "30"
    await engine.dispose()


async def test_slow_body_times_out(
    gateway: Gateway, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("gateway.app.BODY_READ_TIMEOUT_SECONDS", 0.3)

    async def trickle() -> AsyncIterator[bytes]:
        for _ in range(20):
            yield b"x"
            await asyncio.sleep(0.1)

    response = await gateway.client.post("/webhooks/rapyd", data=trickle())

    assert response.status == 408
    assert await gateway.count(WebhookEvent) == 0


async def test_error_responses_are_json(gateway: Gateway) -> None:
    body = b"x" * (gateway.settings.webhook_max_body_bytes + 1)

    response = await gateway.client.post("/webhooks/rapyd", data=body)

    payload = await response.json()
    assert payload["error"]["code"] == "REQUEST_ENTITY_TOO_LARGE"


async def test_deeply_nested_body_is_bad_request(gateway: Gateway) -> None:
    status, payload = await gateway.post(b"[" * 100_000 + b"]" * 100_000)

    assert status == 400
    assert payload["error"]["code"] == "WEBHOOK_PAYLOAD_INVALID"


async def test_undecodable_header_is_dropped_not_fatal(gateway: Gateway) -> None:
    body = event_body()
    headers = signed_headers(gateway.settings, body, int(time.time()))
    headers["X-Odd"] = "caf\udcff"

    stored = storable_headers(headers)

    assert "x-odd" not in stored
    assert stored["signature"] == headers["signature"]


async def test_concurrent_webhooks_are_each_stored(gateway: Gateway) -> None:
    bodies = [event_body(f"wh_{i}") for i in range(50)]

    results = await asyncio.gather(*(gateway.post(body) for body in bodies))

    assert {status for status, _ in results} == {200}
    assert await gateway.count(WebhookEvent) == 50
    assert await gateway.count(Job) == 50


async def test_concurrent_duplicates_store_one_event(gateway: Gateway) -> None:
    results = await asyncio.gather(*(gateway.post(event_body()) for _ in range(20)))

    statuses = sorted(payload["status"] for _, payload in results)
    assert statuses == ["accepted"] + ["duplicate"] * 19
    assert await gateway.count(WebhookEvent) == 1
    assert await gateway.count(Job) == 1
