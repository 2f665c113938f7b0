"""``hub-dev``: the whole hub in one process, with no configuration.

It runs the gRPC server, the webhook gateway, a Dramatiq worker on an
in-process broker, the outbox relay and the Rapyd sandbox, on a SQLite file
under ``.hub/``. With ``--demo`` it then sends one payment through the typed
stub and prints it until the sandbox's webhook settles it.

Dev mode accepts fixed, publicly known tokens, so it binds 127.0.0.1 only
by default and must never face a network.
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import logging
import os
import signal
import socket
import sys

import dramatiq
import grpc
from aiohttp import web
from dramatiq.brokers.stub import StubBroker
from dramatiq.middleware.asyncio import AsyncIO
from google.protobuf.json_format import MessageToJson

from adapters.rapyd.sandbox import create_sandbox_app
from hub.config import Settings, load_settings
from hub.errors import ConfigurationError
from hub.jobs.outbox import Dispatcher
from hub.logs import configure_logging
from hub.persistence.database import create_engine, create_session_factory
from hub.persistence.migrate import upgrade
from hub.rbac.tokens import TokenStore, hash_token
from hub.startup import exit_on_startup_error
from integrations.v1 import operations_pb2 as pb

logger = logging.getLogger(__name__)

DEV_SECRET_KEY = "sandbox-secret-key"
# Publicly known tokens, accepted only in dev mode: principal, roles, token.
DEV_TOKENS = (
    ("dev-service", "service", "dev-service-token"),
    ("dev-support", "support", "dev-support-token"),
    ("dev-ops", "ops", "dev-ops-token"),
    ("dev-admin", "admin", "dev-admin-token"),
)


def dev_settings() -> Settings:
    """Load the settings, adding the dev tokens unless HUB_TOKENS is set."""
    os.environ.setdefault("HUB_DEV_RAPYD_SECRET_KEY", DEV_SECRET_KEY)
    settings = load_settings()
    if not settings.dev_mode:
        raise ConfigurationError("hub-dev runs only with HUB_MODE=dev (the default)")
    if not settings.tokens:
        entries = ",".join(f"{p}:{r}:{hash_token(t)}" for p, r, t in DEV_TOKENS)
        settings = dataclasses.replace(settings, tokens=entries)
    return settings


def uses_dev_tokens(settings: Settings) -> bool:
    return settings.tokens.startswith(f"{DEV_TOKENS[0][0]}:")


def _listen(host: str, port: int, setting: str) -> socket.socket:
    """Bind a listening socket now, so the real port is known before start."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError as exc:
        sock.close()
        raise ConfigurationError(
            f"{setting}: cannot listen on {host}:{port} ({exc.strerror}); "
            "stop the other process or choose another port"
        ) from None
    sock.listen(128)
    sock.setblocking(False)
    return sock


async def _serve_app(app: web.Application, sock: socket.socket) -> web.AppRunner:
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    await web.SockSite(runner, sock).start()
    return runner


def _install_broker(settings: Settings) -> dramatiq.Broker:
    """Install an in-process broker, before the actors bind to one."""
    broker = StubBroker()
    broker.add_middleware(AsyncIO())
    dramatiq.set_broker(broker)
    from hub.jobs import actors

    actors.use_settings(settings)
    return broker


def _print_endpoints(settings: Settings, grpc_port: int, sandbox_url: str) -> None:
    host = settings.grpc_address.rsplit(":", 1)[0]
    lines = [
        "integration hub running in dev mode (one process, SQLite, in-process broker)",
        f"  gRPC API       {host}:{grpc_port}",
        f"  webhook edge   {settings.rapyd.webhook_url}",
        f"  Rapyd sandbox  {sandbox_url}",
        f"  database       {settings.database_url}",
        "  tokens         "
        + (
            ", ".join(f"{t} ({r})" for _, r, t in DEV_TOKENS)
            if uses_dev_tokens(settings)
            else "from HUB_TOKENS"
        ),
        "press Ctrl+C to stop",
    ]
    print("\n".join(lines), flush=True)


async def _run_demo_once(grpc_port: int) -> int:
    """Send the demo payment and print it; return 0 if it succeeded."""
    from hub.demo import run_demo

    token = os.environ.get("HUB_DEMO_TOKEN", DEV_TOKENS[0][2])
    if "HUB_DEMO_TOKEN" not in os.environ and os.environ.get("HUB_TOKENS"):
        print(
            "demo skipped: HUB_TOKENS replaces the dev tokens, so set HUB_DEMO_TOKEN "
            "to a token with the service role",
            flush=True,
        )
        return 1
    try:
        operation = await run_demo(f"127.0.0.1:{grpc_port}", token)
    except grpc.aio.AioRpcError as error:
        print(
            f"demo payment failed: {error.code().name}: {error.details()}", flush=True
        )
        return 1
    print(MessageToJson(operation, preserving_proto_field_name=True), flush=True)
    return 0 if operation.state == pb.OPERATION_STATE_SUCCEEDED else 1


async def run(settings: Settings, *, demo: bool) -> int:
    """Run every part of the hub until a signal arrives; return an exit code."""
    from gateway.app import create_gateway_app
    from hub.api.server import create_server
    from hub.api.servicers import HubServices
    from hub.jobs.relay import run_relay
    from hub.registry import Registry

    await asyncio.to_thread(upgrade, settings.database_url)
    gateway_sock = _listen(
        settings.gateway_host, settings.gateway_port, "HUB_GATEWAY_PORT"
    )
    sandbox_port = int(settings.rapyd.base_url.rsplit(":", 1)[1])
    sandbox_sock = _listen("127.0.0.1", sandbox_port, "HUB_SANDBOX_PORT")
    gateway_port = gateway_sock.getsockname()[1]
    sandbox_url = f"http://127.0.0.1:{sandbox_sock.getsockname()[1]}"
    settings = dataclasses.replace(
        settings,
        rapyd=dataclasses.replace(
            settings.rapyd,
            base_url=sandbox_url,
            webhook_url=f"http://{settings.gateway_host}:{gateway_port}/webhooks/rapyd",
        ),
    )

    broker = _install_broker(settings)
    from hub.jobs.actors import send_job

    engine = create_engine(settings.database_url)
    sessions = create_session_factory(engine)
    registry = Registry(settings)
    dispatcher = Dispatcher(send_job)
    # Bound before anything starts, so a taken port stops dev mode cleanly.
    hub_server = create_server(
        HubServices(settings, sessions, registry, dispatcher),
        TokenStore.parse(settings.tokens),
        settings.grpc_address,
    )
    worker = dramatiq.Worker(broker, worker_threads=4, worker_timeout=100)
    worker.start()
    runners = [
        await _serve_app(
            create_gateway_app(settings, sessions, registry, dispatcher), gateway_sock
        ),
        await _serve_app(
            create_sandbox_app(
                access_key=settings.rapyd.access_key,
                secret_key=registry.rapyd_config().secret_key,
                webhook_target_url=settings.rapyd.webhook_url,
            ),
            sandbox_sock,
        ),
    ]
    await hub_server.start()
    stop = asyncio.Event()
    relay = asyncio.create_task(run_relay(settings, sessions, dispatcher, stop))
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stop.set)
    _print_endpoints(settings, hub_server.port, sandbox_url)

    exit_code = 0
    try:
        if demo:
            exit_code = await _run_demo_once(hub_server.port)
        await stop.wait()
    finally:
        stop.set()
        logger.info("stopping dev mode")
        await hub_server.stop(5)
        for runner in runners:
            await runner.cleanup()
        await relay
        await dispatcher.close()
        await asyncio.to_thread(worker.stop)
        await engine.dispose()
    return exit_code


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--demo",
        action="store_true",
        help="after start, send one demo payment and print it until it settles",
    )
    options = parser.parse_args()
    settings = exit_on_startup_error(dev_settings)
    configure_logging(settings.log_level)
    sys.exit(
        exit_on_startup_error(lambda: asyncio.run(run(settings, demo=options.demo)))
    )
