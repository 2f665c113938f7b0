"""Conversions from stored rows to API messages."""

from __future__ import annotations

from datetime import datetime

from google.protobuf.timestamp_pb2 import Timestamp

from hub import money
from hub.persistence.models import Attempt, HandlerRun, Job, Operation, WebhookEvent
from integrations.v1 import operations_pb2 as pb

STATES = {
    "pending": pb.OPERATION_STATE_PENDING,
    "processing": pb.OPERATION_STATE_PROCESSING,
    "succeeded": pb.OPERATION_STATE_SUCCEEDED,
    "failed": pb.OPERATION_STATE_FAILED,
    "dead_lettered": pb.OPERATION_STATE_DEAD_LETTERED,
}
TYPES = {"payment": pb.OPERATION_TYPE_PAYMENT}


def timestamp(value: datetime | None) -> Timestamp | None:
    if value is None:
        return None
    message = Timestamp()
    message.FromDatetime(value)
    return message


def operation_message(operation: Operation) -> pb.Operation:
    exponent = money.currency_exponent(operation.currency)
    message = pb.Operation(
        id=operation.id,
        idempotency_key=operation.idempotency_key,
        type=TYPES.get(operation.type, pb.OPERATION_TYPE_UNSPECIFIED),
        country=operation.country,
        provider=operation.provider,
        state=STATES.get(operation.state, pb.OPERATION_STATE_UNSPECIFIED),
        provider_reference=operation.provider_reference or "",
        attempt_count=operation.attempt_count,
        create_time=timestamp(operation.created_at),
        update_time=timestamp(operation.updated_at),
        caller=operation.caller,
        payment=pb.PaymentDetails(
            amount=money.format_amount(operation.amount_minor, exponent),
            currency=operation.currency,
            payment_method_type=operation.payment_method_type,
            customer_id=operation.customer_id,
            description=operation.description,
            metadata=operation.request_metadata,
        ),
    )
    if operation.error_code:
        message.error.CopyFrom(
            pb.OperationError(
                code=operation.error_code,
                message=operation.error_message or "",
                provider_code=operation.provider_error_code or "",
            )
        )
    return message


def attempt_message(attempt: Attempt) -> pb.Attempt:
    return pb.Attempt(
        number=attempt.number,
        start_time=timestamp(attempt.started_at),
        end_time=timestamp(attempt.finished_at),
        outcome=attempt.outcome or "",
        http_status=attempt.http_status or 0,
        provider_error_code=attempt.provider_error_code or "",
        error_message=attempt.error_message or "",
        provider_request_id=attempt.provider_request_id or "",
    )


def webhook_event_message(
    event: WebhookEvent, runs: list[HandlerRun]
) -> pb.WebhookEvent:
    return pb.WebhookEvent(
        id=event.id,
        provider=event.provider,
        provider_event_id=event.provider_event_id,
        event_type=event.event_type,
        receive_time=timestamp(event.received_at),
        raw_body=event.raw_body,
        headers=event.headers,
        handler_runs=[
            pb.HandlerRun(
                handler=run.handler,
                outcome=run.outcome,
                error_message=run.error_message or "",
                run_time=timestamp(run.created_at),
            )
            for run in runs
        ],
    )


def job_message(job: Job) -> pb.Job:
    return pb.Job(
        id=job.id,
        kind=job.kind,
        state=job.state,
        attempts=job.attempts,
        last_error=job.last_error or "",
        create_time=timestamp(job.created_at),
        update_time=timestamp(job.updated_at),
    )
