"""The gRPC server: the hub's API, health checking and reflection."""

from __future__ import annotations

import asyncio
import logging
import signal
from dataclasses import dataclass

from grpc import aio
from grpc_health.v1 import health, health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection

from hub.api.servicers import (
    HubServices,
    IntegrationAdminServicer,
    IntegrationHubServicer,
)
from hub.config import Settings
from hub.errors import ConfigurationError
from hub.jobs.outbox import Dispatcher
from hub.persistence.database import create_engine, create_session_factory
from hub.persistence.migrate import check_schema
from hub.rbac.interceptor import AuthorizationInterceptor
from hub.rbac.tokens import TokenStore
from hub.registry import Registry
from hub.startup import exit_on_startup_error, settings_or_exit
from integrations.v1 import admin_pb2, admin_pb2_grpc, hub_pb2, hub_pb2_grpc

logger = logging.getLogger(__name__)

GRACE_SECONDS = 10.0


SERVICE_NAMES = (
    hub_pb2.DESCRIPTOR.services_by_name["IntegrationHub"].full_name,
    admin_pb2.DESCRIPTOR.services_by_name["IntegrationAdmin"].full_name,
)


@dataclass
class HubServer:
    """The gRPC server with its health servicer and bound port."""

    server: aio.Server
    port: int
    health: health.aio.HealthServicer

    async def start(self) -> None:
        await self.server.start()
        for name in ("", *SERVICE_NAMES):
            await self.health.set(name, health_pb2.HealthCheckResponse.SERVING)

    async def stop(self, grace: float = GRACE_SECONDS) -> None:
        """Report NOT_SERVING, then give in-flight calls ``grace`` seconds."""
        await self.health.enter_graceful_shutdown()
        await self.server.stop(grace)


def create_server(services: HubServices, tokens: TokenStore, address: str) -> HubServer:
    """Build the server bound to ``address``; a port of 0 picks a free one."""
    # gRPC sets SO_REUSEPORT by default, which lets a second server bind the
    # same port and silently take half of the calls. An address in use must
    # be an error instead.
    server = aio.server(
        interceptors=[AuthorizationInterceptor(tokens)],
        options=[("grpc.so_reuseport", 0)],
    )
    hub_pb2_grpc.add_IntegrationHubServicer_to_server(
        IntegrationHubServicer(services), server
    )
    admin_pb2_grpc.add_IntegrationAdminServicer_to_server(
        IntegrationAdminServicer(services), server
    )
    health_servicer = health.aio.HealthServicer()
    health_pb2_grpc.add_HealthServicer_to_server(health_servicer, server)
    health_name = health_pb2.DESCRIPTOR.services_by_name["Health"].full_name
    reflection.enable_server_reflection(
        (*SERVICE_NAMES, health_name, reflection.SERVICE_NAME), server
    )

    try:
        port = server.add_insecure_port(address)
    except RuntimeError:
        port = 0
    if port == 0:
        raise ConfigurationError(
            f"HUB_GRPC_ADDRESS: cannot listen on {address}; the port is in use "
            "or the address is invalid"
        )
    return HubServer(server=server, port=port, health=health_servicer)


async def serve(settings: Settings) -> None:
    """Run the hub's gRPC server until SIGINT or SIGTERM."""
    from hub.jobs.actors import send_job

    engine = create_engine(settings.database_url)
    await check_schema(engine)
    services = HubServices(
        settings=settings,
        sessions=create_session_factory(engine),
        registry=Registry(settings),
        dispatcher=Dispatcher(send_job),
    )
    hub_server = create_server(
        services, TokenStore.parse(settings.tokens), settings.grpc_address
    )
    await hub_server.start()
    host = settings.grpc_address.rsplit(":", 1)[0]
    logger.info("hub gRPC server listening on %s:%d", host, hub_server.port)

    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stop.set)
    await stop.wait()
    logger.info("hub gRPC server stopping; in-flight calls get %.0f s", GRACE_SECONDS)
    await hub_server.stop()
    await services.dispatcher.close()
    await engine.dispose()


def main() -> None:
    settings = settings_or_exit()
    exit_on_startup_error(lambda: TokenStore.parse(settings.tokens))
    exit_on_startup_error(lambda: asyncio.run(serve(settings)))
