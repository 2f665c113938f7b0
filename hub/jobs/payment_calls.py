"""The job that sends an operation to its provider.

Each provider call is an attempt row, committed before the call starts and
finished after it, so even a worker killed mid-call leaves evidence. The
provider idempotency key is derived from the operation id, so every retry of
one operation sends the same key and the provider charges at most once.
"""

from __future__ import annotations

import logging
import random
from datetime import timedelta

import pybreaker
from sqlalchemy import update
from sqlalchemy.ext.asyncio import AsyncSession

from adapters.base import PaymentRequest, PaymentResult, ProviderOutcome
from hub import money
from hub.errors import ProviderError, ProviderRateLimitedError
from hub.jobs.runner import (
    ClaimedJob,
    WorkerContext,
    complete_job,
    postpone_job,
    retry_or_bury,
)
from hub.operations import OperationState, change_state
from hub.persistence.models import Attempt, Operation, utc_now

logger = logging.getLogger(__name__)


# Provider error codes are short; a longer one is cut to fit its column
# instead of failing the write that records the outcome.
PROVIDER_CODE_LENGTH = 128


def _column_text(code: str | None) -> str | None:
    return code[:PROVIDER_CODE_LENGTH] if code else None


def provider_idempotency_key(operation_id: str) -> str:
    """Return the key sent to the provider on every attempt of one operation."""
    return f"hub-{operation_id}"


def payment_request(operation: Operation) -> PaymentRequest:
    exponent = money.currency_exponent(operation.currency)
    return PaymentRequest(
        operation_id=operation.id,
        idempotency_key=provider_idempotency_key(operation.id),
        amount=money.to_decimal(operation.amount_minor, exponent),
        currency=operation.currency,
        country=operation.country,
        payment_method_type=operation.payment_method_type,
        description=operation.description,
        customer_id=operation.customer_id,
        metadata=operation.request_metadata,
    )


async def close_abandoned_attempts(session: AsyncSession, operation_id: str) -> None:
    """Close attempts left open by a worker that died during the call.

    Only the holder of the operation's job calls this, and a job changes
    hands only after its lease ran out, so an open attempt is a dead one.
    """
    await session.execute(
        update(Attempt)
        .where(Attempt.operation_id == operation_id, Attempt.finished_at.is_(None))
        .values(
            finished_at=utc_now(),
            outcome="abandoned",
            error_message="the worker stopped before the call returned",
        )
    )


async def start_attempt(context: WorkerContext, operation_id: str, job_id: str) -> int:
    """Record the start of a provider call and return its attempt number.

    An earlier attempt still without an end belonged to a worker that died
    during the call, because this job's lease ran out. It is closed as
    abandoned. Whether the provider received it is unknown, and the provider
    idempotency key makes a repeat harmless.
    """
    async with context.sessions.begin() as session:
        await close_abandoned_attempts(session, operation_id)
        number = (
            await session.execute(
                update(Operation)
                .where(Operation.id == operation_id)
                .values(attempt_count=Operation.attempt_count + 1, updated_at=utc_now())
                .returning(Operation.attempt_count)
            )
        ).scalar_one()
        session.add(Attempt(operation_id=operation_id, job_id=job_id, number=number))
    return number


async def run_operation_job(context: WorkerContext, job: ClaimedJob) -> None:
    assert job.operation_id is not None
    async with context.sessions() as session:
        operation = await session.get_one(Operation, job.operation_id)
    if operation.state != OperationState.PENDING:
        # An earlier attempt got a response, or a webhook settled the
        # operation while this retry waited, so another call would be wrong.
        async with context.sessions.begin() as session:
            await close_abandoned_attempts(session, operation.id)
            await complete_job(session=session, job=job)
        logger.info(
            "operation %s is already %s; job %s completed without a provider call",
            operation.id,
            operation.state,
            job.id,
        )
        return

    breaker = context.breakers.for_provider(operation.provider)
    adapter = context.registry.payment_adapter(operation.provider, context.http)
    number: int | None = None
    try:
        # The breaker decides before the attempt starts: while it is open no
        # call is made, and after its reset timeout it lets one trial through.
        with breaker.calling():
            number = await start_attempt(context, operation.id, job.id)
            logger.info(
                "operation %s: calling %s, attempt %d (job %s)",
                operation.id,
                operation.provider,
                number,
                job.id,
            )
            result = await adapter.create_payment(payment_request(operation))
    except pybreaker.CircuitBreakerError:
        await _wait_for_breaker(context, job, operation)
        return
    except ProviderError as error:
        await _record_failure(context, job, operation, number, error)
        return
    except Exception as exc:
        # Not a provider error: a bug or a database failure. The job's
        # boundary retries it; the attempt records what is known.
        if number is not None:
            await _close_attempt_after_error(context, operation.id, number, exc)
        raise
    assert number is not None
    await _record_success(context, job, operation, number, result)


async def _wait_for_breaker(
    context: WorkerContext, job: ClaimedJob, operation: Operation
) -> None:
    """Postpone the job past the breaker's reset time, keeping its attempts.

    No call was made, so the outcome is known (nothing happened) and an
    outage of any length must not use up the retry policy.
    """
    seconds = context.settings.breaker_reset_seconds * random.uniform(1.0, 1.5)
    delay = timedelta(seconds=seconds)
    async with context.sessions.begin() as session:
        await postpone_job(
            session=session,
            job=job,
            delay=delay,
            reason=f"circuit breaker for {operation.provider} is open",
        )
    logger.info(
        "operation %s: circuit breaker for %s is open; job %s waits %.1f s",
        operation.id,
        operation.provider,
        job.id,
        seconds,
    )
    await context.dispatcher.dispatch([job.id], delay=delay)


async def _close_attempt_after_error(
    context: WorkerContext, operation_id: str, number: int, exc: Exception
) -> None:
    try:
        async with context.sessions.begin() as session:
            await _finish_attempt(
                session,
                operation_id,
                number,
                outcome="error",
                error_message=f"{type(exc).__name__}: {exc}",
            )
    except Exception:
        logger.warning(
            "operation %s: could not record the end of attempt %d",
            operation_id,
            number,
            exc_info=True,
        )


async def _finish_attempt(
    session: AsyncSession, operation_id: str, number: int, **values: object
) -> None:
    await session.execute(
        update(Attempt)
        .where(Attempt.operation_id == operation_id, Attempt.number == number)
        .values(finished_at=utc_now(), **values)
    )


async def _record_success(
    context: WorkerContext,
    job: ClaimedJob,
    operation: Operation,
    number: int,
    result: PaymentResult,
) -> None:
    values: dict[str, object] = {"provider_reference": result.provider_reference}
    # TODO: poll the provider for operations left PROCESSING past a deadline;
    # until that exists, a lost webhook leaves the operation PROCESSING.
    target = OperationState.PROCESSING
    if result.outcome is ProviderOutcome.SUCCEEDED:
        target = OperationState.SUCCEEDED
    elif result.outcome is ProviderOutcome.FAILED:
        target = OperationState.FAILED
        values |= {
            "error_code": "PROVIDER_DECLINED",
            "error_message": result.error_message
            or f"provider status {result.provider_status}",
            "provider_error_code": _column_text(result.error_code),
        }

    async with context.sessions.begin() as session:
        await _finish_attempt(
            session,
            operation.id,
            number,
            outcome="succeeded",
            http_status=result.http_status,
            provider_request_id=result.provider_request_id,
            provider_error_code=_column_text(result.error_code),
        )
        # PENDING only: a webhook may already have settled the operation.
        changed = await change_state(
            session=session,
            operation_id=operation.id,
            to_state=target,
            from_states=(OperationState.PENDING,),
            values=values,
        )
        await complete_job(session=session, job=job)
    logger.info(
        "operation %s: %s returned status %s (reference %s)%s",
        operation.id,
        operation.provider,
        result.provider_status,
        result.provider_reference,
        "" if changed else "; state already changed by a webhook",
    )


async def _record_failure(
    context: WorkerContext,
    job: ClaimedJob,
    operation: Operation,
    number: int | None,
    error: ProviderError,
) -> None:
    outcome = "retryable_error" if error.retryable else "permanent_error"
    retry_after = (
        error.retry_after if isinstance(error, ProviderRateLimitedError) else None
    )
    delay: timedelta | None = None
    async with context.sessions.begin() as session:
        if number is not None:
            await _finish_attempt(
                session,
                operation.id,
                number,
                outcome=outcome,
                http_status=error.provider_http_status,
                provider_error_code=_column_text(error.provider_code),
                error_message=error.message,
            )
        if error.retryable:
            delay = await retry_or_bury(
                session=session,
                context=context,
                job=job,
                error=error.message,
                retry_after=retry_after,
            )
        if not error.retryable or delay is None:
            final_state = (
                OperationState.FAILED
                if not error.retryable
                else OperationState.DEAD_LETTERED
            )
            await change_state(
                session=session,
                operation_id=operation.id,
                to_state=final_state,
                from_states=(OperationState.PENDING,),
                values={
                    "error_code": error.reason,
                    "error_message": error.message,
                    "provider_error_code": _column_text(error.provider_code),
                },
            )
        if not error.retryable:
            await complete_job(session=session, job=job, last_error=error.message)

    _log_failure(job, operation, error, delay)
    if delay is not None:
        await context.dispatcher.dispatch([job.id], delay=delay)


def _log_failure(
    job: ClaimedJob, operation: Operation, error: ProviderError, delay: timedelta | None
) -> None:
    if not error.retryable:
        logger.warning(
            "operation %s failed permanently at %s: %s (provider code %s)",
            operation.id,
            operation.provider,
            error.reason,
            error.provider_code,
        )
    elif delay is not None:
        logger.info(
            "operation %s: %s on attempt %d; retrying in %.1f s (job %s)",
            operation.id,
            error.reason,
            job.attempts,
            delay.total_seconds(),
            job.id,
        )
    else:
        # The alert: retries are exhausted and the outcome at the provider is
        # unknown, so a person must look at the evidence.
        # TODO: also count dead letters in a metric and call the alert webhook.
        logger.error(
            "operation %s dead-lettered after %d attempts at %s: %s (job %s)",
            operation.id,
            job.attempts,
            operation.provider,
            error.message,
            job.id,
        )
