"""Benchmark the webhook edge against a bare aiohttp handler, in one run.

The gateway verifies each signed Rapyd webhook, stores it with its job in
PostgreSQL, commits, and sends the job id to Redis before it responds. The
bare handler only reads the body and responds 200. Both run as one process
each and get the same load from one aiohttp client process. It is a Python
client, so both figures share its limit. The report gives the gateway's
throughput as a ratio of the bare handler's. No worker runs, so jobs stay queued.

Run with PostgreSQL and Redis on 127.0.0.1:
    python bench/webhook_intake.py --seconds 10 --runs 3
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import secrets
import signal
import socket
import statistics
import subprocess
import sys
import time
from pathlib import Path

import aiohttp
import psycopg
import redis
from aiohttp import web

from adapters.rapyd.signing import webhook_signature

ACCESS_KEY = "bench-access-key"
SECRET_KEY = "bench-secret-key"
BODY_PADDING = 800  # brings each webhook body to about 1 KiB
ADMIN_DSN = "postgresql://postgres@127.0.0.1:5432/postgres"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def signed_requests(url: str, count: int) -> list[tuple[bytes, dict[str, str]]]:
    """Build ``count`` distinct signed webhooks before the clock starts."""
    timestamp = str(int(time.time()))
    requests = []
    for _ in range(count):
        event = {
            "id": f"wh_{secrets.token_hex(16)}",
            "type": "PAYMENT_COMPLETED",
            "data": {"id": f"payment_{secrets.token_hex(16)}", "status": "CLO"},
            "padding": "x" * BODY_PADDING,
        }
        body = json.dumps(event, separators=(",", ":")).encode()
        salt = secrets.token_hex(6)
        signature = webhook_signature(
            webhook_url=url,
            salt=salt,
            timestamp=timestamp,
            access_key=ACCESS_KEY,
            secret_key=SECRET_KEY,
            body=body,
        )
        requests.append(
            (body, {"salt": salt, "timestamp": timestamp, "signature": signature})
        )
    return requests


async def load(
    url: str, seconds: float, concurrency: int, limit: int
) -> dict[str, float]:
    """Post webhooks from ``concurrency`` tasks for ``seconds``; report rates."""
    requests = signed_requests(url, limit)
    latencies: list[float] = []
    failures = 0
    deadline = time.monotonic() + seconds

    async def sender(session: aiohttp.ClientSession) -> None:
        nonlocal failures
        while time.monotonic() < deadline and requests:
            body, headers = requests.pop()
            started = time.perf_counter()
            async with session.post(url, data=body, headers=headers) as response:
                await response.read()
                if response.status != 200:
                    failures += 1
            latencies.append(time.perf_counter() - started)

    connector = aiohttp.TCPConnector(limit=concurrency)
    async with aiohttp.ClientSession(connector=connector) as session:
        started = time.monotonic()
        await asyncio.gather(*(sender(session) for _ in range(concurrency)))
        elapsed = time.monotonic() - started
    latencies.sort()
    return {
        "requests": len(latencies),
        "failures": failures,
        "per_second": len(latencies) / elapsed,
        "p50_ms": 1000 * latencies[len(latencies) // 2],
        "p99_ms": 1000 * latencies[int(len(latencies) * 0.99)],
    }


def serve_bare(port: int) -> None:
    async def accept(request: web.Request) -> web.Response:
        await request.read()
        return web.Response(text="ok")

    app = web.Application()
    app.router.add_post("/webhooks/rapyd", accept)
    app.router.add_get("/healthz", lambda request: web.Response(text="ok"))  # type: ignore[arg-type, return-value]
    web.run_app(app, host="127.0.0.1", port=port, access_log=None, print=None)


def wait_ready(url: str, process: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise SystemExit(
                f"server exited with {process.returncode} before it was ready"
            )
        try:
            with socket.create_connection(
                ("127.0.0.1", int(url.rsplit(":", 1)[1].split("/")[0])), 0.2
            ):
                return
        except OSError:
            time.sleep(0.1)
    raise SystemExit(f"server at {url} not ready after 30 s")


def measure(url: str, options: argparse.Namespace) -> list[dict[str, float]]:
    results = []
    for _ in range(options.runs):
        output = subprocess.run(
            [
                sys.executable,
                __file__,
                "--load",
                url,
                "--seconds",
                str(options.seconds),
                "--concurrency",
                str(options.concurrency),
            ],
            check=True,
            capture_output=True,
            text=True,
        ).stdout
        results.append(json.loads(output))
    return results


def median(results: list[dict[str, float]], key: str) -> float:
    return statistics.median(result[key] for result in results)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=10.0, help="length of one run")
    parser.add_argument(
        "--runs", type=int, default=3, help="runs per target; medians are reported"
    )
    parser.add_argument(
        "--concurrency", type=int, default=64, help="requests in flight"
    )
    parser.add_argument("--load", help=argparse.SUPPRESS)
    parser.add_argument("--serve-bare", type=int, help=argparse.SUPPRESS)
    options = parser.parse_args()
    if options.serve_bare:
        serve_bare(options.serve_bare)
        return
    if options.load:
        # At most 4,000 requests a second for the run's length: a bound that
        # this machine's gateway does not reach, so the clock ends each run.
        limit = int(options.seconds * 4000)
        print(
            json.dumps(
                asyncio.run(
                    load(options.load, options.seconds, options.concurrency, limit)
                )
            )
        )
        return
    run_benchmark(options)


def run_benchmark(options: argparse.Namespace) -> None:
    database = f"hub_bench_{secrets.token_hex(4)}"
    namespace = f"hub-bench-{secrets.token_hex(4)}"
    bare_port, gateway_port = free_port(), free_port()
    gateway_url = f"http://127.0.0.1:{gateway_port}/webhooks/rapyd"
    env = {
        **os.environ,
        "HUB_MODE": "production",
        "DATABASE_URL": f"postgresql://postgres@127.0.0.1:5432/{database}",
        "REDIS_URL": "redis://127.0.0.1:6379/0",
        "HUB_BROKER_NAMESPACE": namespace,
        "HUB_TOKENS": "bench:service:" + "0" * 64,
        "HUB_GATEWAY_PORT": str(gateway_port),
        "HUB_RAPYD_BASE_URL": "http://127.0.0.1:9",
        "HUB_RAPYD_ACCESS_KEY": ACCESS_KEY,
        "HUB_RAPYD_SECRET_KEY": "env:BENCH_RAPYD_SECRET",
        "BENCH_RAPYD_SECRET": SECRET_KEY,
        "HUB_RAPYD_WEBHOOK_URL": gateway_url,
        "HUB_LOG_LEVEL": "WARNING",
    }
    bin_dir = Path(sys.executable).parent
    with psycopg.connect(ADMIN_DSN, autocommit=True) as admin:
        admin.execute(f'CREATE DATABASE "{database}"')
    processes: list[subprocess.Popen[bytes]] = []
    try:
        subprocess.run(
            [bin_dir / "hub-migrate"], env=env, check=True, capture_output=True
        )
        bare = subprocess.Popen(
            [sys.executable, __file__, "--serve-bare", str(bare_port)]
        )
        gateway = subprocess.Popen([bin_dir / "hub-gateway"], env=env)
        processes += [bare, gateway]
        bare_url = f"http://127.0.0.1:{bare_port}/webhooks/rapyd"
        wait_ready(bare_url, bare)
        wait_ready(gateway_url, gateway)

        bare_results = measure(bare_url, options)
        gateway_results = measure(gateway_url, options)
        report(options, bare_results, gateway_results)
    finally:
        for process in processes:
            process.send_signal(signal.SIGTERM)
            process.wait(timeout=15)
        client = redis.Redis.from_url("redis://127.0.0.1:6379/0")
        keys = list(client.scan_iter(f"{namespace}*"))
        if keys:
            client.delete(*keys)
        with psycopg.connect(ADMIN_DSN, autocommit=True) as admin:
            admin.execute(f'DROP DATABASE IF EXISTS "{database}" WITH (FORCE)')


def report(
    options: argparse.Namespace,
    bare: list[dict[str, float]],
    gateway: list[dict[str, float]],
) -> None:
    bare_rate, gateway_rate = median(bare, "per_second"), median(gateway, "per_second")
    failures = sum(result["failures"] for result in gateway)
    print(
        f"medians of {options.runs} runs of {options.seconds:g} s, "
        f"{options.concurrency} requests in flight, 1 KiB signed bodies\n"
    )
    print("| target | requests/s | p50 ms | p99 ms | ratio to bare |")
    print("| --- | ---: | ---: | ---: | ---: |")
    for name, results in (("bare aiohttp handler", bare), ("hub gateway", gateway)):
        rate = median(results, "per_second")
        print(
            f"| {name} | {rate:,.0f} | {median(results, 'p50_ms'):.1f} "
            f"| {median(results, 'p99_ms'):.1f} | {rate / bare_rate:.2f} |"
        )
    ratio = gateway_rate / bare_rate
    print(f"\ngateway non-200 responses: {failures:.0f}; ratio {ratio:.2f}")


if __name__ == "__main__":
    main()
