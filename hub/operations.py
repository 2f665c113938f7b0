"""Operations: creation under an idempotency key, reads, and state changes.

Data functions take the session as a keyword argument and run inside the
caller's transaction.
"""

from __future__ import annotations

import enum
import logging
from dataclasses import dataclass
from typing import TypeVar

from sqlalchemy import Select, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from hub.errors import IdempotencyKeyReusedError, NotFoundError
from hub.jobs import outbox
from hub.payments import NewPayment
from hub.persistence.database import dialect_insert
from hub.persistence.models import (
    Attempt,
    HandlerRun,
    Job,
    Operation,
    WebhookEvent,
    utc_now,
)

logger = logging.getLogger(__name__)

T = TypeVar("T")


class OperationState(enum.StrEnum):
    PENDING = "pending"
    PROCESSING = "processing"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    DEAD_LETTERED = "dead_lettered"


FINAL_STATES = frozenset(
    {OperationState.SUCCEEDED, OperationState.FAILED, OperationState.DEAD_LETTERED}
)
OPEN_STATES = (OperationState.PENDING, OperationState.PROCESSING)


@dataclass(frozen=True)
class Created:
    """The result of an idempotent create: ``job`` is None for a repeat."""

    operation: Operation
    job: Job | None


async def create_payment_operation(
    *,
    session: AsyncSession,
    caller: str,
    payment: NewPayment,
    provider: str,
    max_attempts: int,
) -> Created:
    """Insert the operation and its job, or return the one stored for the key.

    The unique constraint on (caller, idempotency_key) decides between
    concurrent requests: the loser's insert does nothing and it reads the
    winner's row once that commits.
    """
    fingerprint = payment.fingerprint()
    now = utc_now()
    statement = (
        dialect_insert(session)(Operation)
        .values(
            id=outbox.new_id(),
            caller=caller,
            idempotency_key=payment.idempotency_key,
            request_fingerprint=fingerprint,
            type="payment",
            state=OperationState.PENDING,
            country=payment.country,
            provider=provider,
            amount_minor=payment.amount_minor,
            currency=payment.currency,
            payment_method_type=payment.payment_method_type,
            customer_id=payment.customer_id,
            description=payment.description,
            request_metadata=payment.metadata,
            attempt_count=0,
            created_at=now,
            updated_at=now,
        )
        .on_conflict_do_nothing(index_elements=["caller", "idempotency_key"])
        .returning(Operation.id)
    )
    inserted_id = (await session.execute(statement)).scalar_one_or_none()

    if inserted_id is not None:
        job = outbox.add_job(
            session=session,
            kind=outbox.JobKind.OPERATION,
            operation_id=inserted_id,
            max_attempts=max_attempts,
        )
        operation = await session.get_one(Operation, inserted_id)
        return Created(operation=operation, job=job)

    existing = (
        await session.execute(
            select(Operation).where(
                Operation.caller == caller,
                Operation.idempotency_key == payment.idempotency_key,
            )
        )
    ).scalar_one()
    if existing.request_fingerprint != fingerprint:
        raise IdempotencyKeyReusedError(
            "idempotency key was already used for a different request; "
            "send a new key for a new request",
            metadata={"operation_id": existing.id},
        )
    logger.debug(
        "repeat of operation %s for idempotency key from %s", existing.id, caller
    )
    return Created(operation=existing, job=None)


async def get_operation(
    *, session: AsyncSession, operation_id: str, caller: str | None = None
) -> Operation:
    """Load an operation; with ``caller``, only one that caller created."""
    operation = await session.get(Operation, operation_id)
    if operation is None or (caller is not None and operation.caller != caller):
        raise NotFoundError(f"operation {operation_id!r} not found")
    return operation


@dataclass(frozen=True)
class Evidence:
    """Everything stored about one operation, for ops and support."""

    operation: Operation
    attempts: list[Attempt]
    webhook_events: list[WebhookEvent]
    runs_by_event: dict[str, list[HandlerRun]]
    jobs: list[Job]


async def _rows(session: AsyncSession, statement: Select[T]) -> list[T]:
    return list((await session.execute(statement)).scalars())


async def load_evidence(*, session: AsyncSession, operation_id: str) -> Evidence:
    """Load an operation with its attempts, webhook events, handler runs and jobs."""
    operation = await get_operation(session=session, operation_id=operation_id)
    attempts = await _rows(
        session,
        select(Attempt)
        .where(Attempt.operation_id == operation_id)
        .order_by(Attempt.number),
    )
    events = await _rows(
        session,
        select(WebhookEvent)
        .where(WebhookEvent.operation_id == operation_id)
        .order_by(WebhookEvent.received_at),
    )
    event_ids = [event.id for event in events]
    runs = await _rows(
        session,
        select(HandlerRun)
        .where(HandlerRun.webhook_event_id.in_(event_ids))
        .order_by(HandlerRun.id),
    )
    jobs = await _rows(
        session,
        select(Job)
        .where(
            or_(Job.operation_id == operation_id, Job.webhook_event_id.in_(event_ids))
        )
        .order_by(Job.created_at),
    )
    runs_by_event: dict[str, list[HandlerRun]] = {
        event_id: [] for event_id in event_ids
    }
    for run in runs:
        runs_by_event[run.webhook_event_id].append(run)
    return Evidence(operation, attempts, events, runs_by_event, jobs)


async def change_state(
    *,
    session: AsyncSession,
    operation_id: str,
    to_state: OperationState,
    from_states: tuple[OperationState, ...] = OPEN_STATES,
    values: dict[str, object] | None = None,
) -> bool:
    """Move an operation to ``to_state`` if it is in one of ``from_states``.

    The condition is part of the UPDATE, so a late provider response cannot
    overwrite a final state set by a webhook, or the other way round.
    Returns whether the row changed.
    """
    result = await session.execute(
        update(Operation)
        .where(Operation.id == operation_id, Operation.state.in_(from_states))
        .values(state=to_state, updated_at=utc_now(), **(values or {}))
        .returning(Operation.id)
    )
    return result.scalar_one_or_none() is not None
