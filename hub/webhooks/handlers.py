"""Handlers that act on stored provider webhooks.

Each handler's effect and its run record commit in one transaction, and the
run record is unique per (event, handler). A redelivered job therefore finds
the record and skips the handler instead of applying its effect twice.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from adapters.base import InboundEvent, ProviderOutcome
from hub.errors import WebhookPayloadError
from hub.jobs.runner import ClaimedJob, WorkerContext, complete_job
from hub.operations import OPEN_STATES, OperationState, change_state
from hub.persistence.database import dialect_insert
from hub.persistence.models import HandlerRun, Operation, WebhookEvent, utc_now

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class HandlerResult:
    outcome: str  # "applied", "ignored" or "conflict"
    detail: str | None = None


Handler = Callable[[AsyncSession, WebhookEvent, InboundEvent], Awaitable[HandlerResult]]


async def _find_operation(
    session: AsyncSession, provider: str, event: InboundEvent
) -> Operation | None:
    """Find the operation by the id the hub sent, else by the provider's id."""
    if event.merchant_reference:
        try:
            uuid.UUID(event.merchant_reference)
        except ValueError:
            pass
        else:
            operation = await session.get(Operation, event.merchant_reference)
            if operation is not None and operation.provider == provider:
                return operation
    if event.provider_reference:
        return (
            await session.execute(
                select(Operation).where(
                    Operation.provider == provider,
                    Operation.provider_reference == event.provider_reference,
                )
            )
        ).scalar_one_or_none()
    return None


async def update_operation_status(
    session: AsyncSession, stored: WebhookEvent, event: InboundEvent
) -> HandlerResult:
    """Settle the operation that a payment event reports on."""
    if event.outcome is None:
        return HandlerResult(
            "ignored", f"event type {event.event_type} changes no operation"
        )
    operation = await _find_operation(session, stored.provider, event)
    if operation is None:
        return HandlerResult("ignored", "no operation matches the event's references")

    await session.execute(
        update(WebhookEvent)
        .where(WebhookEvent.id == stored.id)
        .values(operation_id=operation.id)
    )
    previous_state = operation.state
    target, values = _target_state(event)
    if event.provider_reference and not operation.provider_reference:
        values["provider_reference"] = event.provider_reference
    # A dead-lettered operation has an unknown outcome, so the provider's
    # final word settles it. Other final states never change.
    changed = await change_state(
        session=session,
        operation_id=operation.id,
        to_state=target,
        from_states=SETTLEABLE_STATES,
        values=values,
    )
    if not changed:
        return await _keep_final_state(session, stored, event, operation, target)

    # The UPDATE refreshed the loaded row, so the earlier state was kept.
    dead_lettered = previous_state == OperationState.DEAD_LETTERED
    log = logger.warning if dead_lettered else logger.info
    log(
        "operation %s is now %s (was %s) after %s event %s",
        operation.id,
        target,
        previous_state,
        stored.provider,
        stored.provider_event_id,
    )
    return HandlerResult("applied")


SETTLEABLE_STATES = (*OPEN_STATES, OperationState.DEAD_LETTERED)


def _target_state(event: InboundEvent) -> tuple[OperationState, dict[str, object]]:
    """Return the state an event reports and the fields to store with it."""
    if event.outcome is ProviderOutcome.SUCCEEDED:
        # Clears an error left by dead-lettering: the payment went through.
        return OperationState.SUCCEEDED, {
            "error_code": None,
            "error_message": None,
            "provider_error_code": None,
        }
    if event.outcome is ProviderOutcome.FAILED:
        return OperationState.FAILED, {
            "error_code": "PROVIDER_DECLINED",
            "error_message": event.error_message
            or f"provider event {event.event_type}",
            "provider_error_code": (event.error_code or "")[:128] or None,
        }
    return OperationState.PROCESSING, {}


async def _keep_final_state(
    session: AsyncSession,
    stored: WebhookEvent,
    event: InboundEvent,
    operation: Operation,
    target: OperationState,
) -> HandlerResult:
    """Record what a late event proves without changing a final state."""
    if event.provider_reference and not operation.provider_reference:
        await session.execute(
            update(Operation)
            .where(Operation.id == operation.id)
            .values(provider_reference=event.provider_reference)
        )
    final_pair = {operation.state, target}
    if final_pair == {OperationState.SUCCEEDED, OperationState.FAILED}:
        # The provider contradicts a final state the hub already reported,
        # which a person must reconcile.
        logger.error(
            "operation %s is %s but %s event %s reports %s; state kept, "
            "reconcile with the provider",
            operation.id,
            operation.state,
            stored.provider,
            stored.provider_event_id,
            target,
        )
        return HandlerResult(
            "conflict", f"operation is {operation.state}, event says {target}"
        )
    return HandlerResult("ignored", f"operation is already {operation.state}")


HANDLERS: dict[str, Handler] = {"operation_status": update_operation_status}


async def _run_handler(
    context: WorkerContext,
    stored: WebhookEvent,
    event: InboundEvent,
    name: str,
    handler: Handler,
) -> None:
    async with context.sessions.begin() as session:
        claimed = (
            await session.execute(
                dialect_insert(session)(HandlerRun)
                .values(
                    webhook_event_id=stored.id,
                    handler=name,
                    outcome="running",
                    created_at=utc_now(),
                )
                .on_conflict_do_nothing(index_elements=["webhook_event_id", "handler"])
                .returning(HandlerRun.id)
            )
        ).scalar_one_or_none()
        if claimed is None:
            logger.info(
                "handler %s already ran for webhook event %s; skipped", name, stored.id
            )
            return
        result = await handler(session, stored, event)
        await session.execute(
            update(HandlerRun)
            .where(HandlerRun.id == claimed)
            .values(outcome=result.outcome, error_message=result.detail)
        )
    if result.outcome != "applied":
        logger.warning(
            "handler %s: %s for %s event %s (%s): %s",
            name,
            result.outcome,
            stored.provider,
            stored.provider_event_id,
            stored.event_type,
            result.detail,
        )


async def run_webhook_job(context: WorkerContext, job: ClaimedJob) -> None:
    assert job.webhook_event_id is not None
    async with context.sessions() as session:
        stored = await session.get_one(WebhookEvent, job.webhook_event_id)
    verifier = context.registry.webhook_verifier(stored.provider)
    if verifier is None:
        raise WebhookPayloadError(f"no verifier for provider {stored.provider!r}")
    # The stored bytes are the evidence, so the handlers act on their content.
    event = verifier.parse_event(stored.raw_body)

    for name, handler in HANDLERS.items():
        await _run_handler(context, stored, event, name, handler)
    async with context.sessions.begin() as session:
        await complete_job(session=session, job=job)
