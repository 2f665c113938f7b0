"""The gRPC servicers. Authorization happens before these run, in
``hub.rbac.interceptor``; errors raised here are mapped there too."""

from __future__ import annotations

import logging
import uuid
from dataclasses import dataclass

import grpc
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from hub.api import convert
from hub.config import Settings
from hub.errors import FieldViolation, ValidationError
from hub.jobs.outbox import Dispatcher
from hub.operations import create_payment_operation, get_operation, load_evidence
from hub.payments import validate_create_payment
from hub.rbac.interceptor import current_principal
from hub.registry import Registry
from integrations.v1 import admin_pb2, admin_pb2_grpc, hub_pb2, hub_pb2_grpc
from integrations.v1 import operations_pb2 as pb

logger = logging.getLogger(__name__)


@dataclass
class HubServices:
    """Settings, database, registry and broker shared by the servicers."""

    settings: Settings
    sessions: async_sessionmaker[AsyncSession]
    registry: Registry
    dispatcher: Dispatcher


def canonical_operation_id(operation_id: str) -> str | None:
    """Return the id in the canonical UUID form, or None if it is no UUID."""
    if len(operation_id) != 36:
        return None
    try:
        return str(uuid.UUID(operation_id))
    except ValueError:
        return None


def _checked_operation_id(operation_id: str) -> str:
    canonical = canonical_operation_id(operation_id)
    if canonical is None:
        description = (
            "is required" if not operation_id else "must be an operation id (a UUID)"
        )
        raise ValidationError(
            [FieldViolation("id", f"{description}, as returned by CreatePayment")]
        )
    return canonical


class IntegrationHubServicer(hub_pb2_grpc.IntegrationHubServicer):
    def __init__(self, services: HubServices):
        self._services = services

    async def CreatePayment(
        self, request: hub_pb2.CreatePaymentRequest, context: grpc.aio.ServicerContext
    ) -> pb.Operation:
        caller = current_principal.get().name
        payment = validate_create_payment(request)
        route = self._services.registry.route("payment", payment.country)

        async with self._services.sessions.begin() as session:
            created = await create_payment_operation(
                session=session,
                caller=caller,
                payment=payment,
                provider=route.provider,
                max_attempts=route.retry.max_attempts,
            )

        if created.job is not None:
            self._services.dispatcher.dispatch_soon([created.job.id])
            logger.info(
                "operation %s created for %s (provider %s, job %s)",
                created.operation.id,
                caller,
                route.provider,
                created.job.id,
            )
        return convert.operation_message(created.operation)

    async def GetOperation(
        self, request: pb.GetOperationRequest, context: grpc.aio.ServicerContext
    ) -> pb.Operation:
        operation_id = _checked_operation_id(request.id)
        async with self._services.sessions() as session:
            operation = await get_operation(
                session=session,
                operation_id=operation_id,
                caller=current_principal.get().name,
            )
        return convert.operation_message(operation)


class IntegrationAdminServicer(admin_pb2_grpc.IntegrationAdminServicer):
    def __init__(self, services: HubServices):
        self._services = services

    async def GetOperation(
        self, request: pb.GetOperationRequest, context: grpc.aio.ServicerContext
    ) -> admin_pb2.OperationEvidence:
        operation_id = _checked_operation_id(request.id)
        async with self._services.sessions() as session:
            evidence = await load_evidence(session=session, operation_id=operation_id)

        return admin_pb2.OperationEvidence(
            operation=convert.operation_message(evidence.operation),
            attempts=[convert.attempt_message(a) for a in evidence.attempts],
            webhook_events=[
                convert.webhook_event_message(event, evidence.runs_by_event[event.id])
                for event in evidence.webhook_events
            ],
            jobs=[convert.job_message(job) for job in evidence.jobs],
            request_fingerprint=evidence.operation.request_fingerprint,
        )
