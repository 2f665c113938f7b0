"""The gRPC API in process, on a SQLite file, with a recording dispatcher."""

from __future__ import annotations

import dataclasses
from collections.abc import AsyncIterator
from pathlib import Path

import grpc
import pytest
import pytest_asyncio
from google.rpc import error_details_pb2
from grpc_status import rpc_status

from hub.api.server import HubServer, create_server
from hub.api.servicers import HubServices
from hub.config import load_settings
from hub.jobs.outbox import Dispatcher
from hub.persistence.database import create_engine, create_session_factory
from hub.persistence.migrate import upgrade
from hub.rbac.interceptor import AuthorizationInterceptor
from hub.rbac.permissions import declared_permissions
from hub.rbac.tokens import TokenStore, hash_token
from hub.registry import Registry
from integrations.v1 import admin_pb2_grpc, hub_pb2, hub_pb2_grpc
from integrations.v1 import operations_pb2 as pb

TOKENS = {
    "service": ("checkout", "service-token"),
    "other": ("billing", "other-service-token"),
    "support": ("helpdesk", "support-token"),
}


def auth(role: str) -> tuple[tuple[str, str], ...]:
    return (("authorization", f"Bearer {TOKENS[role][1]}"),)


def payment_request(**changes: object) -> hub_pb2.CreatePaymentRequest:
    fields: dict[str, object] = {
        "idempotency_key": "order-1",
        "country": "DE",
        "amount": "12.50",
        "currency": "EUR",
        "payment_method_type": "de_visa_card",
    }
    fields.update(changes)
    return hub_pb2.CreatePaymentRequest(**fields)


def error_info(error: grpc.aio.AioRpcError) -> error_details_pb2.ErrorInfo:
    status = rpc_status.from_call(error)
    assert status is not None
    for detail in status.details:
        if detail.Is(error_details_pb2.ErrorInfo.DESCRIPTOR):
            info = error_details_pb2.ErrorInfo()
            detail.Unpack(info)
            return info
    raise AssertionError("no ErrorInfo detail")


@dataclasses.dataclass
class Api:
    hub: hub_pb2_grpc.IntegrationHubStub
    admin: admin_pb2_grpc.IntegrationAdminStub
    sent: list[str]
    server: HubServer
    dispatcher: Dispatcher

    async def sent_jobs(self) -> list[str]:
        """Return the jobs sent once every background send has finished."""
        await self.dispatcher.drain()
        return self.sent


@pytest_asyncio.fixture
async def api(tmp_path: Path) -> AsyncIterator[Api]:
    url = f"sqlite+aiosqlite:///{tmp_path / 'hub.sqlite3'}"
    upgrade(url)
    entries = ",".join(
        f"{name}:{role if role != 'other' else 'service'}:{hash_token(token)}"
        for role, (name, token) in TOKENS.items()
    )
    settings = dataclasses.replace(load_settings({}), database_url=url, tokens=entries)
    engine = create_engine(url)
    sent: list[str] = []
    dispatcher = Dispatcher(lambda job_id, delay: sent.append(job_id))
    services = HubServices(
        settings=settings,
        sessions=create_session_factory(engine),
        registry=Registry(settings),
        dispatcher=dispatcher,
    )
    server = create_server(services, TokenStore.parse(entries), "127.0.0.1:0")
    await server.start()
    async with grpc.aio.insecure_channel(f"127.0.0.1:{server.port}") as channel:
        yield Api(
            hub=hub_pb2_grpc.IntegrationHubStub(channel),
            admin=admin_pb2_grpc.IntegrationAdminStub(channel),
            sent=sent,
            server=server,
            dispatcher=dispatcher,
        )
    await server.stop(0)
    await engine.dispose()


async def test_create_payment_returns_pending_operation(api: Api) -> None:
    operation = await api.hub.CreatePayment(payment_request(), metadata=auth("service"))

    assert operation.state == pb.OPERATION_STATE_PENDING
    assert operation.payment.amount == "12.50"
    assert operation.caller == "checkout"
    assert len(await api.sent_jobs()) == 1


async def test_repeat_returns_same_operation_and_sends_nothing(api: Api) -> None:
    first = await api.hub.CreatePayment(payment_request(), metadata=auth("service"))

    second = await api.hub.CreatePayment(payment_request(), metadata=auth("service"))

    assert second.id == first.id
    assert len(await api.sent_jobs()) == 1


async def test_reused_key_with_other_amount_is_rejected(api: Api) -> None:
    await api.hub.CreatePayment(payment_request(), metadata=auth("service"))

    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await api.hub.CreatePayment(
            payment_request(amount="13.00"), metadata=auth("service")
        )

    assert caught.value.code() == grpc.StatusCode.ALREADY_EXISTS
    assert error_info(caught.value).reason == "IDEMPOTENCY_KEY_REUSED"


async def test_same_key_from_two_callers_makes_two_operations(api: Api) -> None:
    first = await api.hub.CreatePayment(payment_request(), metadata=auth("service"))

    second = await api.hub.CreatePayment(payment_request(), metadata=auth("other"))

    assert first.id != second.id


async def test_invalid_request_names_field_and_stores_nothing(api: Api) -> None:
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await api.hub.CreatePayment(
            payment_request(amount="0"), metadata=auth("service")
        )

    status = rpc_status.from_call(caught.value)
    assert status is not None
    bad_request = error_details_pb2.BadRequest()
    assert any(
        d.Unpack(bad_request) for d in status.details if d.Is(bad_request.DESCRIPTOR)
    )
    assert [v.field for v in bad_request.field_violations] == ["amount"]
    assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert await api.sent_jobs() == []


async def test_missing_token_is_unauthenticated(api: Api) -> None:
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await api.hub.CreatePayment(payment_request())

    assert caught.value.code() == grpc.StatusCode.UNAUTHENTICATED


async def test_unknown_token_is_unauthenticated(api: Api) -> None:
    metadata = (("authorization", "Bearer not-a-token"),)

    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await api.hub.CreatePayment(payment_request(), metadata=metadata)

    assert caught.value.code() == grpc.StatusCode.UNAUTHENTICATED


async def test_wrong_role_is_permission_denied(api: Api) -> None:
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await api.hub.CreatePayment(payment_request(), metadata=auth("support"))

    assert caught.value.code() == grpc.StatusCode.PERMISSION_DENIED
    assert error_info(caught.value).metadata["permission"] == "operations.create"


async def test_service_cannot_read_evidence(api: Api) -> None:
    operation = await api.hub.CreatePayment(payment_request(), metadata=auth("service"))

    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await api.admin.GetOperation(
            pb.GetOperationRequest(id=operation.id), metadata=auth("service")
        )

    assert caught.value.code() == grpc.StatusCode.PERMISSION_DENIED


async def test_support_reads_evidence(api: Api) -> None:
    operation = await api.hub.CreatePayment(payment_request(), metadata=auth("service"))

    evidence = await api.admin.GetOperation(
        pb.GetOperationRequest(id=operation.id), metadata=auth("support")
    )

    assert evidence.operation.id == operation.id
    assert [job.state for job in evidence.jobs] == ["queued"]
    assert len(evidence.request_fingerprint) == 64


async def test_unknown_operation_is_not_found(api: Api) -> None:
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await api.hub.GetOperation(
            pb.GetOperationRequest(id="00000000-0000-4000-8000-000000000000"),
            metadata=auth("service"),
        )

    assert caught.value.code() == grpc.StatusCode.NOT_FOUND


async def test_other_callers_operation_is_not_found(api: Api) -> None:
    operation = await api.hub.CreatePayment(payment_request(), metadata=auth("service"))

    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await api.hub.GetOperation(
            pb.GetOperationRequest(id=operation.id), metadata=auth("other")
        )

    assert caught.value.code() == grpc.StatusCode.NOT_FOUND


@pytest.mark.parametrize("operation_id", ["", "not-a-uuid", "x" * 500])
async def test_malformed_operation_id_is_invalid(api: Api, operation_id: str) -> None:
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await api.hub.GetOperation(
            pb.GetOperationRequest(id=operation_id), metadata=auth("service")
        )

    assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT


async def test_rpc_without_permission_is_denied_by_default() -> None:
    permissions = declared_permissions()
    permissions["/integrations.v1.IntegrationHub/CreatePayment"] = None
    interceptor = AuthorizationInterceptor(TokenStore.parse(""), permissions)

    principal, denial = interceptor._decide(
        "/integrations.v1.IntegrationHub/CreatePayment",
        (("authorization", "Bearer anything"),),
    )

    assert principal is None
    assert denial is not None
    assert denial.reason == "PERMISSION_DENIED"


async def test_unexpected_error_is_internal_without_details(
    api: Api, monkeypatch: pytest.MonkeyPatch
) -> None:
    def explode(*args: object, **kwargs: object) -> None:
        raise RuntimeError("secret connection string postgres://user:pw@db")

    monkeypatch.setattr(Registry, "route", explode)

    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await api.hub.CreatePayment(payment_request(), metadata=auth("service"))

    assert caught.value.code() == grpc.StatusCode.INTERNAL
    assert "postgres://" not in (caught.value.details() or "")
    assert "error_id" in error_info(caught.value).metadata


async def test_unreachable_database_is_unavailable(
    api: Api, monkeypatch: pytest.MonkeyPatch
) -> None:
    async def connection_refused(*args: object, **kwargs: object) -> None:
        raise OSError("connection refused")

    monkeypatch.setattr(
        "hub.api.servicers.create_payment_operation", connection_refused
    )

    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await api.hub.CreatePayment(payment_request(), metadata=auth("service"))

    assert caught.value.code() == grpc.StatusCode.UNAVAILABLE
    assert error_info(caught.value).reason == "STORAGE_UNAVAILABLE"
    assert error_info(caught.value).metadata["retryable"] == "true"
