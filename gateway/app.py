"""The webhook edge: verifies provider webhooks and stores them durably.

``POST /webhooks/{provider}`` responds 2xx only after the event and its job
have committed, so a provider that got a 2xx never needs to send again. A
duplicate event id gets 200 and has no further effect. When the database is
unreachable the response is 503, and the provider sends the event again.
"""

from __future__ import annotations

import logging
import time
from collections.abc import AsyncIterator

from aiohttp import web
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from hub.config import Settings
from hub.errors import HubError
from hub.jobs.outbox import Dispatcher
from hub.persistence.database import create_engine, create_session_factory
from hub.persistence.migrate import check_schema
from hub.registry import Registry
from hub.startup import exit_on_startup_error, settings_or_exit
from hub.webhooks.intake import store_webhook

logger = logging.getLogger(__name__)

SETTINGS = web.AppKey("settings", Settings)
SESSIONS = web.AppKey("sessions", async_sessionmaker[AsyncSession])
REGISTRY = web.AppKey("registry", Registry)
DISPATCHER = web.AppKey("dispatcher", Dispatcher)

# Seconds a provider should wait before sending again after a 503.
RETRY_AFTER_SECONDS = 30


def error_response(status: int, code: str, message: str) -> web.Response:
    return web.json_response(
        {"error": {"code": code, "message": message}}, status=status
    )


async def receive_webhook(request: web.Request) -> web.Response:
    provider = request.match_info["provider"]
    registry = request.app[REGISTRY]
    verifier = registry.webhook_verifier(provider)
    if verifier is None:
        known = ", ".join(registry.webhook_providers)
        return error_response(
            404, "UNKNOWN_PROVIDER", f"no provider named {provider!r}; known: {known}"
        )

    body = await request.read()
    try:
        verifier.verify(request.headers, body, now=time.time())
        event = verifier.parse_event(body)
    except HubError as error:
        logger.warning(
            "%s webhook rejected with %d: %s", provider, error.http_status, error
        )
        return error_response(error.http_status, error.reason, error.message)

    settings = request.app[SETTINGS]
    try:
        async with request.app[SESSIONS].begin() as session:
            stored = await store_webhook(
                session=session,
                provider=provider,
                event=event,
                raw_body=body,
                headers=request.headers,
                max_attempts=settings.retry.max_attempts,
            )
    except (SQLAlchemyError, OSError):
        logger.error(
            "%s webhook %s not stored: database unavailable, responded 503",
            provider,
            event.event_id,
            exc_info=True,
        )
        response = error_response(
            503, "STORAGE_UNAVAILABLE", "the event was not stored; send it again later"
        )
        response.headers["Retry-After"] = str(RETRY_AFTER_SECONDS)
        return response

    if stored.job_id is None:
        logger.info(
            "%s webhook %s is a duplicate; no new effect", provider, event.event_id
        )
        return web.json_response({"status": "duplicate", "event_id": event.event_id})
    await request.app[DISPATCHER].dispatch([stored.job_id])
    logger.info(
        "%s webhook %s (%s) stored as %s, job %s",
        provider,
        event.event_id,
        event.event_type,
        stored.webhook_event_id,
        stored.job_id,
    )
    return web.json_response({"status": "accepted", "event_id": event.event_id})


async def health(request: web.Request) -> web.Response:
    return web.json_response({"status": "ok"})


def create_gateway_app(
    settings: Settings,
    sessions: async_sessionmaker[AsyncSession],
    registry: Registry,
    dispatcher: Dispatcher,
) -> web.Application:
    """Build the gateway; the caller owns the engine behind ``sessions``."""
    app = web.Application(client_max_size=settings.webhook_max_body_bytes)
    app[SETTINGS] = settings
    app[SESSIONS] = sessions
    app[REGISTRY] = registry
    app[DISPATCHER] = dispatcher
    app.router.add_post("/webhooks/{provider}", receive_webhook)
    app.router.add_get("/healthz", health)
    return app


def build_gateway(settings: Settings) -> web.Application:
    """Build the gateway with its own database engine, for ``hub-gateway``."""
    from hub.jobs.actors import send_job

    engine = create_engine(settings.database_url)
    app = create_gateway_app(
        settings,
        create_session_factory(engine),
        Registry(settings),
        Dispatcher(send_job),
    )

    async def engine_lifetime(app: web.Application) -> AsyncIterator[None]:
        await check_schema(engine)
        yield
        await engine.dispose()

    app.cleanup_ctx.append(engine_lifetime)
    return app


def main() -> None:
    settings = settings_or_exit()
    exit_on_startup_error(lambda: Registry(settings).rapyd_config())
    exit_on_startup_error(
        lambda: web.run_app(
            build_gateway(settings),
            host=settings.gateway_host,
            port=settings.gateway_port,
            print=lambda line: logger.info("%s", line),
        )
    )
