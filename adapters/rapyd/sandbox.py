"""A local contract sandbox of Rapyd's payment API, for tests and demos.

It implements the part of Rapyd that the hub uses, over real HTTP:

* ``POST /v1/payments`` and ``GET /v1/payments/{payment_id}`` with Rapyd's
  request authentication (``access_key``, ``salt``, ``timestamp`` and
  ``signature`` over the method, the raw path and query, and the raw body),
  its response envelope and a few of its validation errors.
* The ``idempotency`` header of Create Payment, compared on key plus amount
  as Rapyd does, so a repeat with another currency still replays.
* A signed ``PAYMENT_COMPLETED`` webhook for every new payment, with retries.

It does not implement card or redirect flows, 3-D Secure, capture, refunds,
payouts, wallets, FX, customers, pagination, the 24-hour idempotency expiry
or any other Rapyd endpoint. Payments and idempotency records live in memory
for the lifetime of the app. Amounts are echoed as an int when whole and as a
decimal string otherwise, while real Rapyd returns JSON numbers.

Error codes other than ``UNAUTHENTICATED_API_CALL``,
``MISSING_AUTHENTICATION_HEADERS`` and ``ERROR_AMOUNT_MUST_BE_POSITIVE`` are
the sandbox's own, because Rapyd does not publish the exact codes for them.

Test controls, without authentication:

* ``GET /_sandbox/stats``: counters ``create_calls`` (Create Payment calls that
  passed authentication), ``charges`` (payments created), ``webhooks_sent``
  (deliveries that got a 2xx response) and ``webhooks_failed`` (deliveries that
  gave up after every retry).
* ``POST /_sandbox/faults`` with any of ``fail_next`` (respond to the next N
  Create Payment calls with ``fail_status``, default 503, and create nothing),
  ``delay_seconds`` (wait before every Create Payment call until reset),
  ``hang_next`` (wait ``hang_seconds``, default 300, before the next N calls)
  and ``webhooks`` (send webhooks or not). A delayed or hung call still
  creates its payment after the wait, even when the client gave up, which is
  the ambiguous case that the idempotency key protects against. A shutdown
  ends the wait early with a 503 and no payment.
* ``POST /_sandbox/reset`` restores the default faults.
* ``POST /_sandbox/webhooks/resend`` with ``payment_id`` sends a new webhook
  event for that payment, or with ``same_event_id`` sends an earlier event
  again unchanged, and returns the event body.
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import json
import logging
import math
import os
import re
import signal
import time
import uuid
from collections.abc import AsyncIterator, Callable, Coroutine, Sequence
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from typing import Any

import aiohttp
from aiohttp import web

from adapters.rapyd.client import rapyd_amount
from adapters.rapyd.signing import (
    new_salt,
    request_signature,
    verify_signature,
    webhook_signature,
)

logger = logging.getLogger(__name__)

DEFAULT_ACCESS_KEY = "sandbox-access-key"
DEFAULT_SECRET_KEY = "sandbox-secret-key"
DEFAULT_PORT = 8090

# Rapyd's docs require the request timestamp to be within 60 seconds of its
# clock and the salt to have 8 to 16 characters.
REQUEST_TIMESTAMP_TOLERANCE_SECONDS = 60
SALT_MIN_LENGTH = 8
SALT_MAX_LENGTH = 16

# A webhook delivery tries once, then retries after each of these delays.
WEBHOOK_RETRY_DELAYS_SECONDS = (0.2, 0.5, 1.0, 2.0, 4.0)
WEBHOOK_REQUEST_TIMEOUT_SECONDS = 5.0

AUTH_HEADERS = ("access_key", "salt", "timestamp", "signature")

_DECIMAL_PATTERN = re.compile(r"-?[0-9]+(\.[0-9]+)?")
_CURRENCY_PATTERN = re.compile(r"[A-Z]{3}")
_TIMESTAMP_PATTERN = re.compile(r"[0-9]{1,12}")
_COUNTRY_PREFIX_PATTERN = re.compile(r"([a-z]{2})_")


@dataclass
class Faults:
    """Injected failures, changed through ``POST /_sandbox/faults``."""

    fail_next: int = 0
    fail_status: int = 503
    delay_seconds: float = 0.0
    hang_next: int = 0
    hang_seconds: float = 300.0
    webhooks: bool = True


@dataclass
class Stats:
    """Counters returned by ``GET /_sandbox/stats``."""

    create_calls: int = 0
    charges: int = 0
    webhooks_sent: int = 0
    webhooks_failed: int = 0


@dataclass(frozen=True)
class StoredResponse:
    """The first response sent for an idempotency key, replayed verbatim."""

    amount: Decimal
    http_status: int
    body: bytes


@dataclass(frozen=True)
class StoredEvent:
    """A webhook event body that the sandbox built, kept for resends."""

    payment_id: str
    body: bytes


@dataclass
class SandboxState:
    """Everything the sandbox stores, kept in the app under ``SANDBOX_STATE``."""

    access_key: str
    secret_key: str
    webhook_target_url: str | None
    webhook_url: str | None
    webhook_delay_seconds: float
    faults: Faults = field(default_factory=Faults)
    stats: Stats = field(default_factory=Stats)
    payments: dict[str, dict[str, Any]] = field(default_factory=dict)
    responses_by_idempotency_key: dict[str, StoredResponse] = field(
        default_factory=dict
    )
    events: dict[str, StoredEvent] = field(default_factory=dict)
    tasks: set[asyncio.Task[None]] = field(default_factory=set)
    stopping: asyncio.Event = field(default_factory=asyncio.Event)
    http: aiohttp.ClientSession | None = None


SANDBOX_STATE = web.AppKey("rapyd_sandbox_state", SandboxState)


def create_sandbox_app(
    *,
    access_key: str,
    secret_key: str,
    webhook_target_url: str | None,
    webhook_url: str | None = None,
    webhook_delay_seconds: float = 0.05,
) -> web.Application:
    """Build the sandbox app.

    Webhooks are posted to ``webhook_target_url`` and signed with
    ``webhook_url``, which defaults to the target. Set them apart to mimic a
    proxy between Rapyd and the receiver. With no target, no webhook is sent.
    """
    app = web.Application()
    app[SANDBOX_STATE] = SandboxState(
        access_key=access_key,
        secret_key=secret_key,
        webhook_target_url=webhook_target_url,
        webhook_url=webhook_url or webhook_target_url,
        webhook_delay_seconds=webhook_delay_seconds,
    )
    app.cleanup_ctx.append(_run_background_work)
    app.on_shutdown.append(_wake_waiting_handlers)
    app.router.add_post("/v1/payments", create_payment)
    app.router.add_get("/v1/payments/{payment_id}", get_payment)
    app.router.add_get("/_sandbox/stats", get_stats)
    app.router.add_post("/_sandbox/faults", set_faults)
    app.router.add_post("/_sandbox/reset", reset_faults)
    app.router.add_post("/_sandbox/webhooks/resend", resend_webhook)
    return app


async def _run_background_work(app: web.Application) -> AsyncIterator[None]:
    """Own the webhook client session and tasks, and stop them on cleanup."""
    state = app[SANDBOX_STATE]
    timeout = aiohttp.ClientTimeout(total=WEBHOOK_REQUEST_TIMEOUT_SECONDS)
    state.http = aiohttp.ClientSession(timeout=timeout)
    yield
    state.stopping.set()
    for task in state.tasks:
        task.cancel()
    await asyncio.gather(*state.tasks, return_exceptions=True)
    await state.http.close()


async def _wake_waiting_handlers(app: web.Application) -> None:
    # Runs before aiohttp waits for open handlers, so a delayed or hung call
    # returns at once instead of holding up shutdown.
    app[SANDBOX_STATE].stopping.set()


def _spawn(state: SandboxState, work: Coroutine[Any, Any, None]) -> None:
    task = asyncio.create_task(work)
    state.tasks.add(task)
    task.add_done_callback(_forget_task(state))


def _forget_task(state: SandboxState) -> Callable[[asyncio.Task[None]], None]:
    def forget(task: asyncio.Task[None]) -> None:
        state.tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            logger.error("sandbox background task failed", exc_info=task.exception())

    return forget


# Responses


def _dump(payload: Any) -> bytes:
    # Compact like Rapyd. ``default=str`` writes a Decimal from a request body
    # as a string instead of failing.
    text = json.dumps(payload, separators=(",", ":"), ensure_ascii=False, default=str)
    return text.encode("utf-8")


def _envelope(
    data: Any, *, status: str = "SUCCESS", error_code: str = "", message: str = ""
) -> dict[str, Any]:
    return {
        "status": {
            "error_code": error_code,
            "status": status,
            "message": message,
            "response_code": error_code,
            "operation_id": str(uuid.uuid4()),
        },
        "data": data,
    }


def _json_response(http_status: int, payload: Any) -> web.Response:
    return web.Response(
        status=http_status, body=_dump(payload), content_type="application/json"
    )


def _error(http_status: int, error_code: str, message: str) -> web.Response:
    envelope = _envelope(None, status="ERROR", error_code=error_code, message=message)
    return _json_response(http_status, envelope)


# Authentication


def _authenticate(
    request: web.Request, state: SandboxState, raw: bytes
) -> web.Response | None:
    """Return an error response unless Rapyd's signature headers are valid."""
    headers = request.headers
    missing = [name for name in AUTH_HEADERS if not headers.get(name)]
    if missing:
        logger.info("sandbox rejected %s: missing %s", request.path, missing)
        return _error(
            400,
            "MISSING_AUTHENTICATION_HEADERS",
            f"The request is missing header(s): {', '.join(missing)}.",
        )

    problem = _authentication_problem(request, state, raw)
    if problem is None:
        return None
    logger.info("sandbox rejected %s: %s", request.path, problem)
    return _error(
        401,
        "UNAUTHENTICATED_API_CALL",
        f"The request was not authenticated: {problem}.",
    )


def _authentication_problem(
    request: web.Request, state: SandboxState, raw: bytes
) -> str | None:
    headers = request.headers
    if not verify_signature(state.access_key, headers["access_key"]):
        return "unknown access key"

    # NOTE: Rapyd documents the salt length and the 60 s window, but not
    # which error code it returns for them. The sandbox returns 401.
    salt = headers["salt"]
    if not SALT_MIN_LENGTH <= len(salt) <= SALT_MAX_LENGTH:
        return f"salt must have {SALT_MIN_LENGTH} to {SALT_MAX_LENGTH} characters"
    timestamp = headers["timestamp"]
    if not _TIMESTAMP_PATTERN.fullmatch(timestamp):
        return "timestamp is not an integer Unix time"
    if abs(time.time() - int(timestamp)) > REQUEST_TIMESTAMP_TOLERANCE_SECONDS:
        return (
            f"timestamp is more than {REQUEST_TIMESTAMP_TOLERANCE_SECONDS} s "
            "away from the sandbox clock"
        )

    expected = request_signature(
        method=request.method,
        url_path=request.raw_path,
        salt=salt,
        timestamp=timestamp,
        access_key=state.access_key,
        secret_key=state.secret_key,
        body=raw,
    )
    if not verify_signature(expected, headers["signature"]):
        return "signature does not match"
    return None


# Rapyd API


async def create_payment(request: web.Request) -> web.Response:
    """Handle ``POST /v1/payments``: faults first, then replay or create."""
    state = request.app[SANDBOX_STATE]
    raw = await request.read()
    failure = _authenticate(request, state, raw)
    if failure is not None:
        return failure
    state.stats.create_calls += 1

    faults = state.faults
    if faults.hang_next > 0:
        faults.hang_next -= 1
        logger.info("sandbox hangs a create call for %s s", faults.hang_seconds)
        await _wait_unless_stopping(state, faults.hang_seconds)
    if faults.fail_next > 0:
        faults.fail_next -= 1
        logger.info("sandbox fails a create call with HTTP %s", faults.fail_status)
        return _injected_failure(faults.fail_status)
    if faults.delay_seconds > 0:
        await _wait_unless_stopping(state, faults.delay_seconds)
    if state.stopping.is_set():
        return _error(503, "ERROR_SANDBOX_STOPPING", "The sandbox is shutting down.")

    # No await from here on, so an idempotency lookup and the store that
    # follows it cannot interleave with another call for the same key.
    return _replay_or_create(request, state, raw)


async def _wait_unless_stopping(state: SandboxState, seconds: float) -> None:
    try:
        await asyncio.wait_for(state.stopping.wait(), timeout=seconds)
    except TimeoutError:
        pass


def _injected_failure(http_status: int) -> web.Response:
    response = _error(
        http_status, "ERROR_SANDBOX_INJECTED_FAULT", "Failure injected by the sandbox."
    )
    if http_status == 429:
        response.headers["Retry-After"] = "1"
    return response


def _replay_or_create(
    request: web.Request, state: SandboxState, raw: bytes
) -> web.Response:
    parsed = _parse_payment_body(raw)
    if isinstance(parsed, web.Response):
        return parsed
    body, amount = parsed

    key = request.headers.get("idempotency")
    stored = state.responses_by_idempotency_key.get(key) if key else None
    if stored is not None:
        if stored.amount != amount:
            return _error(
                400,
                "ERROR_IDEMPOTENCY_KEY_REUSED",
                "The idempotency key was used before with a different amount.",
            )
        logger.info("sandbox replays the response for an idempotency key")
        return web.Response(
            status=stored.http_status,
            body=stored.body,
            content_type="application/json",
        )

    payment = _new_payment(body, amount)
    state.payments[payment["id"]] = payment
    state.stats.charges += 1
    response_body = _dump(_envelope(payment))
    if key:
        state.responses_by_idempotency_key[key] = StoredResponse(
            amount=amount, http_status=200, body=response_body
        )
    logger.info(
        "sandbox created payment %s merchant_reference_id=%s",
        payment["id"],
        payment["merchant_reference_id"],
    )
    _spawn(state, _complete_payment(state, payment["id"]))
    return web.Response(body=response_body, content_type="application/json")


def _parse_payment_body(raw: bytes) -> tuple[dict[str, Any], Decimal] | web.Response:
    """Validate a Create Payment body and return it with its amount, or an error."""
    try:
        body = json.loads(raw, parse_float=Decimal, parse_constant=_reject_constant)
    except ValueError:
        return _error(400, "ERROR_INVALID_JSON_BODY", "The body is not valid JSON.")
    if not isinstance(body, dict):
        return _error(400, "ERROR_INVALID_JSON_BODY", "The body is not an object.")

    amount = _parse_amount(body.get("amount"))
    if amount is None:
        return _error(
            400, "ERROR_INVALID_AMOUNT", "amount must be a number or decimal string."
        )
    if amount <= 0:
        return _error(
            400, "ERROR_AMOUNT_MUST_BE_POSITIVE", "The amount must be positive."
        )
    currency = body.get("currency")
    if not isinstance(currency, str) or not _CURRENCY_PATTERN.fullmatch(currency):
        return _error(
            400, "ERROR_INVALID_CURRENCY", "currency must be 3 uppercase letters."
        )
    method = body.get("payment_method")
    if not isinstance(method, dict) or not isinstance(method.get("type"), str):
        return _error(
            400, "ERROR_MISSING_PAYMENT_METHOD_TYPE", "payment_method.type is missing."
        )
    for name in ("merchant_reference_id", "description"):
        if not isinstance(body.get(name, ""), str):
            return _error(400, "ERROR_INVALID_FIELD", f"{name} must be a string.")
    if not isinstance(body.get("metadata", {}), dict):
        return _error(400, "ERROR_INVALID_FIELD", "metadata must be an object.")
    return body, amount


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not allowed")


def _parse_amount(value: Any) -> Decimal | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, (int, Decimal)):
        return Decimal(value)
    if isinstance(value, str) and _DECIMAL_PATTERN.fullmatch(value):
        try:
            return Decimal(value)
        except InvalidOperation:
            return None
    return None


def _new_payment(body: dict[str, Any], amount: Decimal) -> dict[str, Any]:
    method_type = body["payment_method"]["type"]
    prefix = _COUNTRY_PREFIX_PATTERN.match(method_type)
    return {
        "id": f"payment_{uuid.uuid4().hex}",
        "amount": rapyd_amount(amount),
        "original_amount": rapyd_amount(amount),
        "currency_code": body["currency"],
        "country_code": prefix.group(1).upper() if prefix else "",
        "status": "ACT",
        "paid": False,
        "paid_at": 0,
        "description": body.get("description", ""),
        "merchant_reference_id": body.get("merchant_reference_id", ""),
        "metadata": body.get("metadata", {}),
        "payment_method_type": method_type,
        "payment_method_data": {"type": method_type},
        "created_at": int(time.time()),
        "error_code": "",
        "failure_code": "",
        "failure_message": "",
    }


async def get_payment(request: web.Request) -> web.Response:
    """Handle ``GET /v1/payments/{payment_id}``."""
    state = request.app[SANDBOX_STATE]
    raw = await request.read()
    failure = _authenticate(request, state, raw)
    if failure is not None:
        return failure
    payment = state.payments.get(request.match_info["payment_id"])
    if payment is None:
        return _error(404, "ERROR_GET_PAYMENT", "The payment was not found.")
    return _json_response(200, _envelope(payment))


# Webhooks


async def _complete_payment(state: SandboxState, payment_id: str) -> None:
    """Close the payment after a short delay and announce it by webhook."""
    await asyncio.sleep(state.webhook_delay_seconds)
    payment = state.payments[payment_id]
    _mark_completed(payment)
    if not state.faults.webhooks or state.webhook_target_url is None:
        logger.debug("sandbox sends no webhook for payment %s", payment_id)
        return
    event_id = _new_event(state, payment)
    await _deliver_webhook(state, event_id)


def _mark_completed(payment: dict[str, Any]) -> None:
    payment["status"] = "CLO"
    payment["paid"] = True
    payment["paid_at"] = int(time.time())


def _new_event(state: SandboxState, payment: dict[str, Any]) -> str:
    """Store a new ``PAYMENT_COMPLETED`` event for ``payment`` and return its id."""
    now = time.time()
    event_id = f"wh_{uuid.uuid4().hex}"
    event = {
        "id": event_id,
        "type": "PAYMENT_COMPLETED",
        "data": payment,
        "trigger_operation_id": str(uuid.uuid4()),
        "status": "NEW",
        "created_at": int(now),
        "extended_timestamp": int(now * 1000),
    }
    state.events[event_id] = StoredEvent(payment_id=payment["id"], body=_dump(event))
    return event_id


async def _deliver_webhook(state: SandboxState, event_id: str) -> None:
    """Post one event, retrying on a non-2xx status or a connection error."""
    body = state.events[event_id].body
    delays: Sequence[float] = (0.0, *WEBHOOK_RETRY_DELAYS_SECONDS)
    for attempt, delay in enumerate(delays, start=1):
        if delay:
            await asyncio.sleep(delay)
        problem = await _post_webhook(state, body)
        if problem is None:
            state.stats.webhooks_sent += 1
            logger.info("sandbox delivered webhook %s (attempt %d)", event_id, attempt)
            return
        logger.info(
            "sandbox webhook %s attempt %d of %d failed: %s",
            event_id,
            attempt,
            len(delays),
            problem,
        )
    state.stats.webhooks_failed += 1
    logger.warning(
        "sandbox gave up on webhook %s after %d attempts", event_id, len(delays)
    )


async def _post_webhook(state: SandboxState, body: bytes) -> str | None:
    """Sign and post ``body`` once and return None on 2xx, else the problem."""
    assert state.http is not None and state.webhook_target_url is not None
    assert state.webhook_url is not None
    salt = new_salt()
    timestamp = str(int(time.time()))
    headers = {
        "Content-Type": "application/json",
        "salt": salt,
        "timestamp": timestamp,
        "signature": webhook_signature(
            webhook_url=state.webhook_url,
            salt=salt,
            timestamp=timestamp,
            access_key=state.access_key,
            secret_key=state.secret_key,
            body=body,
        ),
    }
    try:
        async with state.http.post(
            state.webhook_target_url, data=body, headers=headers
        ) as response:
            if 200 <= response.status < 300:
                return None
            return f"HTTP {response.status}"
    except (aiohttp.ClientError, TimeoutError) as exc:
        return f"{type(exc).__name__}: {exc}"


# Test controls


async def get_stats(request: web.Request) -> web.Response:
    """Handle ``GET /_sandbox/stats``."""
    return web.json_response(dataclasses.asdict(request.app[SANDBOX_STATE].stats))


async def set_faults(request: web.Request) -> web.Response:
    """Handle ``POST /_sandbox/faults``: change only the fields given."""
    state = request.app[SANDBOX_STATE]
    try:
        changes = await request.json()
    except ValueError:
        return web.json_response({"error": "body is not valid JSON"}, status=400)
    if not isinstance(changes, dict):
        return web.json_response({"error": "body is not a JSON object"}, status=400)

    problems = _fault_problems(changes)
    if problems:
        return web.json_response({"error": "; ".join(problems)}, status=400)
    state.faults = dataclasses.replace(state.faults, **changes)
    logger.info("sandbox faults set to %s", state.faults)
    return web.json_response(dataclasses.asdict(state.faults))


def _fault_problems(changes: dict[str, Any]) -> list[str]:
    known = {item.name for item in dataclasses.fields(Faults)}
    problems = [f"unknown fault {name!r}" for name in changes if name not in known]
    for name in ("fail_next", "hang_next"):
        value = changes.get(name, 0)
        if not _is_int(value) or value < 0:
            problems.append(f"{name} must be an integer >= 0")
    status = changes.get("fail_status", 503)
    if not _is_int(status) or not 400 <= status <= 599:
        problems.append("fail_status must be an HTTP status from 400 to 599")
    for name in ("delay_seconds", "hang_seconds"):
        value = changes.get(name, 0)
        if not _is_number(value) or value < 0:
            problems.append(f"{name} must be a number of seconds >= 0")
    if not isinstance(changes.get("webhooks", True), bool):
        problems.append("webhooks must be true or false")
    return problems


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_number(value: Any) -> bool:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return False
    return math.isfinite(value)


async def reset_faults(request: web.Request) -> web.Response:
    """Handle ``POST /_sandbox/reset``: restore the default faults."""
    state = request.app[SANDBOX_STATE]
    state.faults = Faults()
    logger.info("sandbox faults reset")
    return web.json_response(dataclasses.asdict(state.faults))


async def resend_webhook(request: web.Request) -> web.Response:
    """Handle ``POST /_sandbox/webhooks/resend`` and return the event body.

    The delivery runs in the background, so the response does not wait for
    the receiver. Resends are sent even while the ``webhooks`` fault is off.
    """
    state = request.app[SANDBOX_STATE]
    try:
        payload = await request.json()
    except ValueError:
        return web.json_response({"error": "body is not valid JSON"}, status=400)
    if not isinstance(payload, dict):
        return web.json_response({"error": "body is not a JSON object"}, status=400)
    if state.webhook_target_url is None:
        return web.json_response(
            {"error": "the sandbox was started without a webhook target URL"},
            status=409,
        )

    payment_id = payload.get("payment_id")
    payment = state.payments.get(payment_id) if isinstance(payment_id, str) else None
    if payment is None:
        return web.json_response({"error": "payment_id not found"}, status=404)
    same_event_id = payload.get("same_event_id")
    if same_event_id is None:
        _mark_completed(payment)
        event_id = _new_event(state, payment)
    else:
        stored = state.events.get(same_event_id)
        if stored is None or stored.payment_id != payment["id"]:
            return web.json_response(
                {"error": "same_event_id is not an event of this payment"},
                status=404,
            )
        event_id = same_event_id

    _spawn(state, _deliver_webhook(state, event_id))
    return web.Response(
        body=state.events[event_id].body, content_type="application/json"
    )


# Command line


def main(argv: Sequence[str] | None = None) -> None:
    """Run the sandbox until interrupted."""
    parser = argparse.ArgumentParser(description="Run the local Rapyd sandbox.")
    parser.add_argument("--host", default="127.0.0.1", help="address to bind")
    parser.add_argument(
        "--port", type=int, default=DEFAULT_PORT, help="port to bind, 0 for any free"
    )
    parser.add_argument(
        "--access-key",
        default=os.environ.get("RAPYD_ACCESS_KEY", DEFAULT_ACCESS_KEY),
        help="access key that clients must send (default: $RAPYD_ACCESS_KEY, "
        f"else {DEFAULT_ACCESS_KEY})",
    )
    parser.add_argument(
        "--secret-key",
        default=os.environ.get("RAPYD_SECRET_KEY", DEFAULT_SECRET_KEY),
        help="secret key for signatures (default: $RAPYD_SECRET_KEY, "
        f"else {DEFAULT_SECRET_KEY})",
    )
    parser.add_argument(
        "--webhook-target-url", help="URL that receives webhooks (default: none)"
    )
    parser.add_argument(
        "--webhook-url",
        help="URL string used to sign webhooks (default: the target URL)",
    )
    args = parser.parse_args(argv)

    logging.basicConfig(
        level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s %(message)s"
    )
    app = create_sandbox_app(
        access_key=args.access_key,
        secret_key=args.secret_key,
        webhook_target_url=args.webhook_target_url,
        webhook_url=args.webhook_url,
    )
    try:
        asyncio.run(_serve(app, args.host, args.port))
    except KeyboardInterrupt:
        # asyncio.run has already cancelled _serve, whose cleanup ran.
        pass


async def _serve(app: web.Application, host: str, port: int) -> None:
    runner = web.AppRunner(app)
    await runner.setup()
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    loop.add_signal_handler(signal.SIGTERM, stop.set)
    try:
        site = web.TCPSite(runner, host, port)
        await site.start()
        for address in runner.addresses:
            print(f"Rapyd sandbox listening on http://{address[0]}:{address[1]}")
        await stop.wait()
    finally:
        await runner.cleanup()
        logger.info("sandbox stopped")


if __name__ == "__main__":
    main()
