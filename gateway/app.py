"""The webhook edge: verifies provider webhooks and stores them durably.

``POST /webhooks/{provider}`` responds 2xx only after the event and its job
have committed, so a provider that got a 2xx never needs to send again. A
duplicate event id gets 200 and has no further effect. When the database is
unreachable the response is 503, and the provider sends the event again.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import AsyncIterator

from aiohttp import web
from aiohttp.typedefs import Handler
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from hub.config import Settings
from hub.errors import HubError, StorageUnavailableError
from hub.jobs.outbox import Dispatcher
from hub.persistence.database import (
    UNREACHABLE_DATABASE_ERRORS,
    create_engine,
    create_session_factory,
)
from hub.persistence.migrate import check_schema
from hub.registry import Registry
from hub.startup import exit_on_startup_error, settings_or_exit
from hub.webhooks.intake import Received
from hub.webhooks.writer import IntakeFullError, IntakeWriter

logger = logging.getLogger(__name__)

SETTINGS = web.AppKey("settings", Settings)
SESSIONS = web.AppKey("sessions", async_sessionmaker[AsyncSession])
REGISTRY = web.AppKey("registry", Registry)
DISPATCHER = web.AppKey("dispatcher", Dispatcher)
WRITER = web.AppKey("writer", IntakeWriter)

# Seconds a provider should wait before sending again after a 503.
RETRY_AFTER_SECONDS = 30

# A client that has not sent its whole body by then gets 408; this stops a
# slow sender from holding a connection, which costs it no signature.
BODY_READ_TIMEOUT_SECONDS = 10.0

# Maximum time a request waits for its event to commit, queueing included;
# past it the response is 503. It exceeds the writer's batch timeout plus
# the time psycopg takes to cancel a stalled query.
STORE_TIMEOUT_SECONDS = 12.0


def error_response(status: int, code: str, message: str) -> web.Response:
    return web.json_response(
        {"error": {"code": code, "message": message}}, status=status
    )


def _retry_later(message: str) -> web.Response:
    response = error_response(503, StorageUnavailableError.reason, message)
    response.headers["Retry-After"] = str(RETRY_AFTER_SECONDS)
    return response


async def receive_webhook(request: web.Request) -> web.Response:
    provider = request.match_info["provider"]
    registry = request.app[REGISTRY]
    verifier = registry.webhook_verifier(provider)
    if verifier is None:
        known = ", ".join(registry.webhook_providers)
        return error_response(
            404, "UNKNOWN_PROVIDER", f"no provider named {provider!r}; known: {known}"
        )

    try:
        async with asyncio.timeout(BODY_READ_TIMEOUT_SECONDS):
            body = await request.read()
    except TimeoutError:
        logger.warning(
            "%s webhook body not received within %.0f s",
            provider,
            BODY_READ_TIMEOUT_SECONDS,
        )
        return error_response(
            408, "REQUEST_TIMEOUT", "the request body did not arrive in time"
        )
    try:
        verifier.verify(request.headers, body, now=time.time())
        event = verifier.parse_event(body)
    except HubError as error:
        logger.warning(
            "%s webhook rejected with %d: %s", provider, error.http_status, error
        )
        return error_response(error.http_status, error.reason, error.message)

    try:
        async with asyncio.timeout(STORE_TIMEOUT_SECONDS):
            stored = await request.app[WRITER].store(
                Received(provider, event, body, request.headers)
            )
    except IntakeFullError:
        logger.error(
            "%s webhook %s not stored: too many webhooks wait, responded 503",
            provider,
            event.event_id,
        )
        return _retry_later("the gateway is busy; send the event again later")
    except UNREACHABLE_DATABASE_ERRORS as exc:
        # No traceback, because in an outage this repeats for every request
        # and the error's type and message name the failure.
        logger.error(
            "%s webhook %s not stored: database unavailable (%s: %s), responded 503",
            provider,
            event.event_id,
            type(exc).__name__,
            exc,
        )
        return _retry_later("the event was not stored; send it again later")
    except SQLAlchemyError:
        # The database rejected the statement: a bug or data the checks let
        # through. The event is not stored and the provider will send it again.
        logger.error(
            "%s webhook %s not stored: the database rejected it, responded 500",
            provider,
            event.event_id,
            exc_info=True,
        )
        return error_response(
            500, "INTERNAL", "the event was not stored because of an internal error"
        )

    if stored.job_id is None:
        logger.info(
            "%s webhook %s is a duplicate; no new effect", provider, event.event_id
        )
        return web.json_response({"status": "duplicate", "event_id": event.event_id})
    request.app[DISPATCHER].dispatch_soon([stored.job_id])
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


@web.middleware
async def json_errors(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Give every error response the JSON shape, and hide unexpected errors."""
    try:
        return await handler(request)
    except web.HTTPException as exc:
        if exc.status < 400:
            raise
        code = exc.reason.upper().replace(" ", "_")
        return error_response(exc.status, code, exc.reason.lower())
    except Exception:
        logger.error(
            "unexpected error handling %s %s",
            request.method,
            request.path,
            exc_info=True,
        )
        return error_response(500, "INTERNAL", "internal error; nothing was stored")


async def _run_writer(app: web.Application) -> AsyncIterator[None]:
    """Own the group-commit writer task for the app's lifetime."""
    task = asyncio.create_task(app[WRITER].run(), name="webhook-writer")
    yield
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task


def create_gateway_app(
    settings: Settings,
    sessions: async_sessionmaker[AsyncSession],
    registry: Registry,
    dispatcher: Dispatcher,
) -> web.Application:
    """Build the gateway; the caller owns the engine behind ``sessions``."""
    app = web.Application(
        client_max_size=settings.webhook_max_body_bytes, middlewares=[json_errors]
    )
    app[SETTINGS] = settings
    app[SESSIONS] = sessions
    app[REGISTRY] = registry
    app[DISPATCHER] = dispatcher
    app[WRITER] = IntakeWriter(sessions, settings.retry.max_attempts)
    app.cleanup_ctx.append(_run_writer)
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
        await app[DISPATCHER].close()
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
