"""The hub's processes on real PostgreSQL and Redis, for integration tests.

``Stack`` creates a scratch database and a Redis namespace, then runs the
Rapyd sandbox, hub servers, gateways, the relay and Dramatiq workers as
subprocesses on 127.0.0.1, each in its own process group with its output in
a log file. ``Stack.stop`` ends every process and removes the database and
the Redis keys. The conftest files of ``tests/integration`` and
``tests/e2e`` build their fixtures on it.
"""

from __future__ import annotations

import asyncio
import functools
import os
import secrets
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Awaitable, Callable, Coroutine
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import aiohttp
import grpc
import psycopg
import redis
from google.protobuf.message import Message
from google.rpc import error_details_pb2
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_status import rpc_status

from adapters.rapyd.signing import compact_json, new_salt, webhook_signature
from hub.config import normalize_database_url
from hub.persistence.migrate import upgrade
from hub.rbac.tokens import hash_token
from integrations.v1 import admin_pb2, admin_pb2_grpc, hub_pb2, hub_pb2_grpc
from integrations.v1 import operations_pb2 as pb

HOST = "127.0.0.1"
POSTGRES_ADMIN_URL = "postgresql://postgres@127.0.0.1:5432/postgres"
POSTGRES_PORT = 5432
REDIS_URL = "redis://127.0.0.1:6379/0"

# Seconds a process gets to become ready, and to exit after SIGTERM.
READY_TIMEOUT_SECONDS = 30.0
STOP_TIMEOUT_SECONDS = 10.0
# Seconds a test waits for a condition that the stack brings about.
CONDITION_TIMEOUT_SECONDS = 30.0

MAX_JOB_ATTEMPTS = 3
WORKER_READY_LINE = "Worker process is ready for action."

T = TypeVar("T")
MessageT = TypeVar("MessageT", bound=Message)

FINAL_STATES = frozenset(
    {
        pb.OPERATION_STATE_SUCCEEDED,
        pb.OPERATION_STATE_FAILED,
        pb.OPERATION_STATE_DEAD_LETTERED,
    }
)


def bin_path(name: str) -> Path:
    """Return a console script of the virtualenv that runs the tests."""
    return Path(sys.executable).parent / name


def free_port() -> int:
    """Return a TCP port on 127.0.0.1 that was free a moment ago."""
    with socket.socket() as sock:
        sock.bind((HOST, 0))
        return int(sock.getsockname()[1])


@dataclass(frozen=True)
class Caller:
    """A principal configured in ``HUB_TOKENS`` with its bearer token."""

    name: str
    roles: str
    token: str = field(default_factory=lambda: secrets.token_urlsafe(32))

    @property
    def metadata(self) -> tuple[tuple[str, str], ...]:
        return (("authorization", f"Bearer {self.token}"),)

    @property
    def tokens_entry(self) -> str:
        return f"{self.name}:{self.roles}:{hash_token(self.token)}"


CHECKOUT = Caller("checkout", "service")
BILLING = Caller("billing", "service")
SUPPORT = Caller("helpdesk", "support")
OPS = Caller("oncall", "ops")
CALLERS = (CHECKOUT, BILLING, SUPPORT, OPS)


class ServerProcess:
    """A subprocess in its own process group, logging to a file."""

    def __init__(
        self, name: str, command: list[str], env: dict[str, str], log_dir: Path
    ):
        self.name = name
        self.command = command
        self.env = env
        self.log_path = log_dir / f"{name}.log"
        self._popen: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        with self.log_path.open("ab") as log:
            self._popen = subprocess.Popen(
                self.command,
                env=self.env,
                cwd=self.log_path.parent,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )

    @property
    def pid(self) -> int:
        assert self._popen is not None, f"{self.name} was never started"
        return self._popen.pid

    def is_running(self) -> bool:
        return self._popen is not None and self._popen.poll() is None

    def stop(self) -> None:
        """Send SIGTERM to the leader, then SIGKILL to the whole group.

        Only the leader gets SIGTERM because Dramatiq's main process passes
        it on to its worker processes, and a worker that gets it twice exits
        without waiting for its threads and hangs.
        """
        if self._popen is None:
            return
        if self._popen.poll() is None:
            self._popen.terminate()
            try:
                self._popen.wait(timeout=STOP_TIMEOUT_SECONDS)
            except subprocess.TimeoutExpired:
                pass
        # Children such as Dramatiq's worker processes may outlive the leader.
        self._signal_group(signal.SIGKILL)
        self._popen.wait(timeout=STOP_TIMEOUT_SECONDS)

    def kill(self) -> None:
        """Send SIGKILL to the whole process group and reap the leader."""
        if self._popen is None:
            return
        self._signal_group(signal.SIGKILL)
        self._popen.wait(timeout=STOP_TIMEOUT_SECONDS)

    def _signal_group(self, signum: int) -> None:
        try:
            os.killpg(self.pid, signum)
        except ProcessLookupError:
            pass

    def log_text(self) -> str:
        try:
            return self.log_path.read_text(encoding="utf-8", errors="replace")
        except FileNotFoundError:
            return ""

    def logged(self, text: str) -> bool:
        """Whether the log contains ``text``."""
        return text in self.log_text()

    def log_tail(self, lines: int = 30) -> str:
        tail = "\n".join(self.log_text().splitlines()[-lines:])
        return f"--- last {lines} lines of {self.log_path} ---\n{tail}"


class ScratchDatabase:
    """A PostgreSQL database made for one test session and dropped after it."""

    def __init__(self) -> None:
        self.name = f"hub_test_{uuid.uuid4().hex[:12]}"
        self.url = f"postgresql://postgres@{HOST}:{POSTGRES_PORT}/{self.name}"

    def create(self) -> None:
        with psycopg.connect(POSTGRES_ADMIN_URL, autocommit=True) as connection:
            connection.execute(f'CREATE DATABASE "{self.name}"')
        upgrade(normalize_database_url(self.url))

    def drop(self) -> None:
        with psycopg.connect(POSTGRES_ADMIN_URL, autocommit=True) as connection:
            connection.execute(f'DROP DATABASE IF EXISTS "{self.name}" WITH (FORCE)')

    async def rows(self, query: str, *params: Any) -> list[tuple[Any, ...]]:
        async with await psycopg.AsyncConnection.connect(
            self.url, autocommit=True
        ) as connection:
            cursor = await connection.execute(query, params)
            return await cursor.fetchall()

    async def value(self, query: str, *params: Any) -> Any:
        """Return the first column of the first row of ``query``."""
        rows = await self.rows(query, *params)
        assert rows, f"query returned no rows: {query}"
        return rows[0][0]


def wait_until_ready(
    process: ServerProcess, probe: Callable[[], bool], what: str
) -> None:
    """Poll ``probe`` until it returns True, else raise with the log tail."""
    deadline = time.monotonic() + READY_TIMEOUT_SECONDS
    while time.monotonic() < deadline:
        if not process.is_running():
            raise RuntimeError(
                f"{process.name} exited before {what}\n{process.log_tail()}"
            )
        if probe():
            return
        time.sleep(0.1)
    raise RuntimeError(
        f"{process.name}: no {what} within {READY_TIMEOUT_SECONDS:.0f} s\n"
        f"{process.log_tail()}"
    )


def http_ok(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=1) as response:
            return bool(response.status == 200)
    except (urllib.error.URLError, OSError):
        return False


def grpc_serving(address: str) -> bool:
    with grpc.insecure_channel(address) as channel:
        stub = health_pb2_grpc.HealthStub(channel)
        try:
            response = stub.Check(health_pb2.HealthCheckRequest(), timeout=1)
        except grpc.RpcError:
            return False
    return bool(response.status == health_pb2.HealthCheckResponse.SERVING)


class Stack:
    """The hub's processes around one scratch database and Redis namespace."""

    def __init__(
        self,
        log_dir: Path,
        *,
        hubs: int = 2,
        gateways: int = 2,
        workers: int = 2,
        relay: bool = True,
        sandbox: bool = True,
    ):
        self.log_dir = log_dir
        self.counts = {"hub": hubs, "gateway": gateways, "worker": workers}
        self.with_relay = relay
        self.with_sandbox = sandbox
        self.database = ScratchDatabase()
        self.namespace = f"hubtest-{uuid.uuid4().hex[:12]}"
        self.access_key = f"access-{uuid.uuid4().hex[:8]}"
        self.secret_key = secrets.token_hex(24)
        self.sandbox_url = f"http://{HOST}:{free_port()}"
        self.hub_addresses = [f"{HOST}:{free_port()}" for _ in range(hubs)]
        self.gateway_ports = [free_port() for _ in range(gateways or 1)]
        self.gateway_urls = [f"http://{HOST}:{port}" for port in self.gateway_ports]
        # Rapyd signs webhooks with this registered URL, which is gateway 0.
        self.webhook_url = f"{self.gateway_urls[0]}/webhooks/rapyd"
        self.processes: list[ServerProcess] = []
        self.workers: list[ServerProcess] = []
        self._worker_generation = 0
        self._database_created = False

    @property
    def env(self) -> dict[str, str]:
        """The environment every hub process starts with."""
        inherited = {
            name: value
            for name, value in os.environ.items()
            if not name.startswith(("HUB_", "DATABASE_URL", "REDIS_URL", "RAPYD_"))
        }
        return inherited | {
            "HUB_MODE": "production",
            "DATABASE_URL": self.database.url,
            "REDIS_URL": REDIS_URL,
            "HUB_BROKER_NAMESPACE": self.namespace,
            "HUB_TOKENS": ",".join(caller.tokens_entry for caller in CALLERS),
            "HUB_GRPC_ADDRESS": self.hub_addresses[0] if self.hub_addresses else "",
            "HUB_GATEWAY_HOST": HOST,
            "HUB_GATEWAY_PORT": str(self.gateway_ports[0]),
            "HUB_RAPYD_BASE_URL": self.sandbox_url,
            "HUB_RAPYD_ACCESS_KEY": self.access_key,
            "HUB_RAPYD_SECRET_KEY": "env:TEST_RAPYD_SECRET",
            "TEST_RAPYD_SECRET": self.secret_key,
            "HUB_RAPYD_WEBHOOK_URL": self.webhook_url,
            "HUB_RAPYD_TIMEOUT_SECONDS": "2",
            "HUB_JOB_LEASE_SECONDS": "4",
            "HUB_JOB_MAX_ATTEMPTS": str(MAX_JOB_ATTEMPTS),
            "HUB_RELAY_INTERVAL_SECONDS": "0.5",
            "HUB_RELAY_GRACE_SECONDS": "2",
            "HUB_RETRY_MIN_BACKOFF_SECONDS": "0.2",
            "HUB_RETRY_MAX_BACKOFF_SECONDS": "1",
            # Tests inject provider failures one after another, so a breaker
            # opened by one test would reject the calls of the next.
            "HUB_BREAKER_FAIL_MAX": "1000",
            "HUB_LOG_LEVEL": "INFO",
            "PYTHONUNBUFFERED": "1",
        }

    def start(self) -> None:
        self._database_created = True
        self.database.create()
        if self.with_sandbox:
            self._start_sandbox()
        for index, address in enumerate(self.hub_addresses):
            self._start_hub(index, address)
        for index in range(self.counts["gateway"]):
            self.start_gateway(f"gateway-{index}", self.gateway_ports[index])
        if self.with_relay:
            relay = self._spawn("relay", [str(bin_path("hub-relay"))], self.env)
            started = functools.partial(relay.logged, "relay started")
            wait_until_ready(relay, started, "its start line")
        self.start_workers()

    def _spawn(
        self, name: str, command: list[str], env: dict[str, str]
    ) -> ServerProcess:
        process = ServerProcess(name, command, env, self.log_dir)
        self.processes.append(process)
        process.start()
        return process

    def _start_sandbox(self) -> None:
        port = self.sandbox_url.rsplit(":", 1)[1]
        env = self.env | {
            "RAPYD_ACCESS_KEY": self.access_key,
            "RAPYD_SECRET_KEY": self.secret_key,
        }
        command = [
            str(bin_path("hub-rapyd-sandbox")),
            "--host",
            HOST,
            "--port",
            port,
            "--webhook-target-url",
            self.webhook_url,
        ]
        sandbox = self._spawn("sandbox", command, env)
        stats_url = f"{self.sandbox_url}/_sandbox/stats"
        wait_until_ready(
            sandbox, lambda: http_ok(stats_url), "answer on /_sandbox/stats"
        )

    def _start_hub(self, index: int, address: str) -> None:
        env = self.env | {"HUB_GRPC_ADDRESS": address}
        hub = self._spawn(f"hub-{index}", [str(bin_path("hub-server"))], env)
        wait_until_ready(hub, lambda: grpc_serving(address), "SERVING health status")

    def start_gateway(
        self, name: str, port: int, *, database_url: str | None = None
    ) -> ServerProcess:
        """Start a gateway on ``port``, optionally on another database URL."""
        env = self.env | {"HUB_GATEWAY_PORT": str(port)}
        if database_url is not None:
            env["DATABASE_URL"] = database_url
        gateway = self._spawn(name, [str(bin_path("hub-gateway"))], env)
        health_url = f"http://{HOST}:{port}/healthz"
        wait_until_ready(gateway, lambda: http_ok(health_url), "answer on /healthz")
        return gateway

    def start_workers(self) -> None:
        """Start the configured number of Dramatiq worker processes."""
        self._worker_generation += 1
        command = [
            sys.executable,
            "-m",
            "dramatiq",
            "hub.jobs.actors",
            "--processes",
            "1",
            "--threads",
            "4",
            "--queues",
            "hub-jobs",
        ]
        started = []
        for index in range(self.counts["worker"]):
            name = f"worker-{self._worker_generation}-{index}"
            worker = self._spawn(name, command, self.env)
            self.workers.append(worker)
            started.append(worker)
        for worker in started:
            wait_until_ready(
                worker,
                functools.partial(worker.logged, WORKER_READY_LINE),
                "ready line",
            )

    def kill_workers(self) -> None:
        """SIGKILL every running worker's process group."""
        for worker in self.workers:
            if worker.is_running():
                worker.kill()

    def ensure_workers(self) -> None:
        """Start workers again if none is running."""
        if not any(worker.is_running() for worker in self.workers):
            self.start_workers()

    def process(self, name: str) -> ServerProcess:
        """Return the process started under ``name``, such as "sandbox"."""
        matches = [process for process in self.processes if process.name == name]
        assert matches, f"no process named {name!r}"
        return matches[-1]

    def worker_logs(self) -> str:
        return "\n".join(worker.log_text() for worker in self.workers)

    def log_tails(self, lines: int = 20) -> str:
        return "\n".join(process.log_tail(lines) for process in self.processes)

    def stop(self) -> None:
        """Stop every process, then drop the database and the Redis keys."""
        errors: list[str] = []
        for process in reversed(self.processes):
            try:
                process.stop()
            except (OSError, subprocess.SubprocessError) as exc:
                errors.append(f"stopping {process.name} failed: {exc}")
        try:
            if self._database_created:
                self.database.drop()
        finally:
            self._delete_redis_keys()
        if errors:
            raise RuntimeError("; ".join(errors))

    def _delete_redis_keys(self) -> None:
        client = redis.Redis.from_url(REDIS_URL)
        try:
            keys = list(client.scan_iter(f"{self.namespace}*", count=500))
            if keys:
                client.delete(*keys)
        finally:
            client.close()


@dataclass
class HubClients:
    """Stubs for each hub server process, indexed like ``Stack.hub_addresses``."""

    hubs: list[hub_pb2_grpc.IntegrationHubStub]
    admins: list[admin_pb2_grpc.IntegrationAdminStub]


# Rapyd sandbox controls


class SandboxControl:
    """The sandbox's unauthenticated test endpoints."""

    def __init__(self, url: str):
        self.url = url

    async def _call(self, method: str, path: str, body: Any = None) -> Any:
        timeout = aiohttp.ClientTimeout(total=10)
        async with (
            aiohttp.ClientSession(timeout=timeout) as session,
            session.request(method, self.url + path, json=body) as response,
        ):
            payload = await response.json()
            assert response.status == 200, f"{method} {path}: {payload}"
            return payload

    async def stats(self) -> dict[str, int]:
        result: dict[str, int] = await self._call("GET", "/_sandbox/stats")
        return result

    async def set_faults(self, **faults: Any) -> None:
        await self._call("POST", "/_sandbox/faults", faults)

    async def reset(self) -> None:
        await self._call("POST", "/_sandbox/reset")

    async def resend_webhook(self, payment_id: str) -> None:
        await self._call(
            "POST", "/_sandbox/webhooks/resend", {"payment_id": payment_id}
        )


def counter_deltas(before: dict[str, int], after: dict[str, int]) -> dict[str, int]:
    return {name: after[name] - before[name] for name in before}


# gRPC requests and errors


def new_key() -> str:
    """Return an idempotency key no other test uses."""
    return f"key-{uuid.uuid4().hex}"


def payment_request(key: str, **fields: str) -> hub_pb2.CreatePaymentRequest:
    """Build a valid card payment of 12.50 EUR in DE, overridden by ``fields``."""
    values = {
        "idempotency_key": key,
        "country": "DE",
        "amount": "12.50",
        "currency": "EUR",
        "payment_method_type": "de_visa_card",
        "customer_id": "cus_integration",
        "description": "integration test payment",
    }
    return hub_pb2.CreatePaymentRequest(**(values | fields))


def error_info(error: grpc.aio.AioRpcError) -> error_details_pb2.ErrorInfo | None:
    return _detail(error, error_details_pb2.ErrorInfo)


def bad_request(error: grpc.aio.AioRpcError) -> error_details_pb2.BadRequest | None:
    return _detail(error, error_details_pb2.BadRequest)


def _detail(error: grpc.aio.AioRpcError, kind: type[MessageT]) -> MessageT | None:
    status = rpc_status.from_call(error)
    if status is None:
        return None
    for detail in status.details:
        message = kind()
        if detail.Unpack(message):
            return message
    return None


def state_name(state: int) -> str:
    return str(pb.OperationState.Name(state))


async def get_evidence(
    admin: admin_pb2_grpc.IntegrationAdminStub, operation_id: str
) -> admin_pb2.OperationEvidence:
    """Read an operation with its evidence, as the ops caller."""
    return await admin.GetOperation(
        pb.GetOperationRequest(id=operation_id), metadata=OPS.metadata, timeout=10
    )


def is_settled(evidence: admin_pb2.OperationEvidence) -> bool:
    """Whether the operation is final and its jobs and last attempt are over.

    An earlier attempt may stay unfinished when its worker died during the
    call.
    """
    attempts = evidence.attempts
    return (
        evidence.operation.state in FINAL_STATES
        and (not attempts or attempts[-1].HasField("end_time"))
        and all(job.state in ("done", "dead") for job in evidence.jobs)
    )


async def wait_for_evidence(
    admin: admin_pb2_grpc.IntegrationAdminStub,
    operation_id: str,
    condition: Callable[[admin_pb2.OperationEvidence], bool],
    description: str,
) -> admin_pb2.OperationEvidence:
    """Poll the operation's evidence until ``condition`` holds for it."""
    latest: list[admin_pb2.OperationEvidence] = []

    async def check() -> admin_pb2.OperationEvidence | None:
        evidence = await get_evidence(admin, operation_id)
        latest[:] = [evidence]
        return evidence if condition(evidence) else None

    try:
        return await eventually(check, f"operation {operation_id}: {description}")
    except AssertionError as error:
        last = latest[0] if latest else None
        raise AssertionError(f"{error}; last evidence:\n{last}") from None


async def wait_for_state(
    admin: admin_pb2_grpc.IntegrationAdminStub, operation_id: str, state: int
) -> admin_pb2.OperationEvidence:
    """Wait until the operation is in ``state`` with no attempt or job open."""
    return await wait_for_evidence(
        admin,
        operation_id,
        lambda evidence: (
            evidence.operation.state == state
            and (state not in FINAL_STATES or is_settled(evidence))
        ),
        f"state {state_name(state)} with its jobs and last attempt finished",
    )


# Webhooks


def payment_completed_body(
    provider_reference: str, operation_id: str, event_id: str | None = None
) -> bytes:
    """Build a compact Rapyd PAYMENT_COMPLETED event body."""
    return payment_event_body(
        "PAYMENT_COMPLETED",
        {"id": provider_reference, "merchant_reference_id": operation_id},
        event_id,
    )


def payment_event_body(
    event_type: str, data: dict[str, Any], event_id: str | None = None
) -> bytes:
    """Build a compact Rapyd payment event whose ``data`` overrides defaults."""
    now = time.time()
    closed = event_type == "PAYMENT_COMPLETED"
    payment = {
        "status": "CLO" if closed else "ERR",
        "paid": closed,
        "amount": "12.50",
        "currency_code": "EUR",
    }
    event = {
        "id": event_id or f"wh_{uuid.uuid4().hex}",
        "type": event_type,
        "data": payment | data,
        "trigger_operation_id": str(uuid.uuid4()),
        "status": "NEW",
        "created_at": int(now),
    }
    return compact_json(event)


def webhook_headers(
    stack: Stack, body: bytes, *, timestamp: int | None = None
) -> dict[str, str]:
    """Sign ``body`` as Rapyd signs a webhook to the stack's webhook URL."""
    salt = new_salt()
    stamp = str(int(time.time()) if timestamp is None else timestamp)
    signature = webhook_signature(
        webhook_url=stack.webhook_url,
        salt=salt,
        timestamp=stamp,
        access_key=stack.access_key,
        secret_key=stack.secret_key,
        body=body,
    )
    return {
        "Content-Type": "application/json",
        "salt": salt,
        "timestamp": stamp,
        "signature": signature,
    }


async def post_webhook(
    url: str,
    body: bytes,
    headers: dict[str, str],
    *,
    method: str = "POST",
    wait_seconds: float = 20.0,
) -> tuple[int, dict[str, str], str]:
    """Send one request and return its status, headers and body text.

    Raises TimeoutError when no response arrives within ``wait_seconds``.
    """
    client_timeout = aiohttp.ClientTimeout(total=wait_seconds)
    async with (
        aiohttp.ClientSession(timeout=client_timeout) as session,
        session.request(method, url, data=body, headers=headers) as response,
    ):
        return response.status, dict(response.headers), await response.text()


# Waiting


async def eventually(
    check: Callable[[], Awaitable[T | None]],
    description: str,
    *,
    wait_seconds: float = CONDITION_TIMEOUT_SECONDS,
    interval: float = 0.1,
) -> T:
    """Poll ``check`` until it returns a true value, and return that value.

    Raises AssertionError naming ``description`` after ``wait_seconds``.
    """
    deadline = time.monotonic() + wait_seconds
    while True:
        result = await check()
        if result:
            return result
        if time.monotonic() >= deadline:
            raise AssertionError(f"timed out after {wait_seconds:.0f} s: {description}")
        await asyncio.sleep(interval)


# A TCP proxy that a test can stop and start again


class TcpProxy:
    """Forwards 127.0.0.1:``port`` to a target, on its own thread and loop.

    The thread keeps the proxy serving while the test blocks, for example
    while it waits for a process to start.
    """

    def __init__(self, target_port: int, port: int = 0):
        self.target_port = target_port
        self.port = port
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True)
        self._thread.start()
        self._server: asyncio.Server | None = None
        self._writers: set[asyncio.StreamWriter] = set()
        self._tasks: set[asyncio.Task[None]] = set()
        # Cleared while paused, when connections stay open but carry no bytes.
        self._flowing = asyncio.Event()
        self._flowing.set()

    def _run(self, coroutine: Coroutine[Any, Any, None]) -> None:
        future = asyncio.run_coroutine_threadsafe(coroutine, self._loop)
        future.result(timeout=10)

    def start(self) -> None:
        """Listen on ``port``, or on a free port the first time if it is 0."""
        self._run(self._listen())

    def stop(self) -> None:
        """Stop listening and close every open connection."""
        self._run(self._shut())

    def pause(self) -> None:
        """Hold every byte in both directions, keeping connections open."""
        self._loop.call_soon_threadsafe(self._flowing.clear)

    def resume(self) -> None:
        """Forward the held bytes and every byte after them."""
        self._loop.call_soon_threadsafe(self._flowing.set)

    def close(self) -> None:
        self.resume()
        self.stop()
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(timeout=10)
        self._loop.close()

    async def _listen(self) -> None:
        self._server = await asyncio.start_server(
            self._accept, HOST, self.port, reuse_address=True
        )
        self.port = self._server.sockets[0].getsockname()[1]

    async def _shut(self) -> None:
        if self._server is not None:
            self._server.close()
        for writer in list(self._writers):
            writer.close()
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        if self._server is not None:
            await asyncio.wait_for(self._server.wait_closed(), timeout=5)
            self._server = None

    async def _accept(
        self, client_reader: asyncio.StreamReader, client_writer: asyncio.StreamWriter
    ) -> None:
        try:
            target_reader, target_writer = await asyncio.open_connection(
                HOST, self.target_port
            )
        except OSError:
            client_writer.close()
            return
        self._writers.update((client_writer, target_writer))
        for reader, writer in (
            (client_reader, target_writer),
            (target_reader, client_writer),
        ):
            task = asyncio.create_task(self._pipe(reader, writer))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)

    async def _pipe(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> None:
        try:
            while data := await reader.read(65536):
                await self._flowing.wait()
                writer.write(data)
                await writer.drain()
        except (ConnectionError, OSError):
            pass
        finally:
            writer.close()
            self._writers.discard(writer)
