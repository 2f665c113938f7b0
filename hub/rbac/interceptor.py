"""The server interceptor that authenticates and authorizes every RPC.

It also wraps every handler so that hub errors become rich gRPC statuses
and unexpected errors become INTERNAL without internal details. The
authenticated principal reaches the servicers through ``current_principal``.
"""

from __future__ import annotations

import contextvars
import logging
import uuid
from collections.abc import Awaitable, Callable
from typing import Any

import grpc
from grpc import aio

from hub.api.status import internal_status, to_grpc_status
from hub.errors import (
    HubError,
    PermissionDeniedError,
    StorageUnavailableError,
    UnauthenticatedError,
)
from hub.persistence.database import UNREACHABLE_DATABASE_ERRORS
from hub.rbac.permissions import (
    PUBLIC_SERVICES,
    ROLE_PERMISSIONS,
    declared_permissions,
    roles_grant,
)
from hub.rbac.tokens import Principal, TokenStore

logger = logging.getLogger(__name__)

current_principal: contextvars.ContextVar[Principal] = contextvars.ContextVar(
    "current_principal"
)

Behaviour = Callable[..., Any]


async def _abort(context: aio.ServicerContext, status: grpc.Status) -> None:
    await context.abort(status.code, status.details, status.trailing_metadata)


def _guard(
    behaviour: Behaviour,
    method: str,
    principal: Principal | None,
    streaming_response: bool,
) -> Behaviour:
    """Wrap a handler behaviour with the principal and the error mapping."""

    async def run_unary(request: Any, context: aio.ServicerContext) -> Any:
        token = current_principal.set(principal) if principal else None
        try:
            return await behaviour(request, context)
        except HubError as error:
            await _abort(context, to_grpc_status(error))
        except aio.AbortError:
            raise
        except UNREACHABLE_DATABASE_ERRORS:
            logger.error(
                "RPC %s failed: database unavailable (caller %s)",
                method,
                principal.name if principal else "-",
                exc_info=True,
            )
            unavailable = StorageUnavailableError(
                "the database is unavailable; retry with the same idempotency key"
            )
            await _abort(context, to_grpc_status(unavailable))
        except Exception:
            error_id = str(uuid.uuid4())
            logger.error(
                "RPC %s failed unexpectedly (error id %s, caller %s)",
                method,
                error_id,
                principal.name if principal else "-",
                exc_info=True,
            )
            await _abort(context, internal_status(error_id))
        finally:
            if token is not None:
                current_principal.reset(token)

    async def run_streaming(request: Any, context: aio.ServicerContext) -> Any:
        token = current_principal.set(principal) if principal else None
        try:
            async for response in behaviour(request, context):
                yield response
        except HubError as error:
            await _abort(context, to_grpc_status(error))
        finally:
            if token is not None:
                current_principal.reset(token)

    return run_streaming if streaming_response else run_unary


def _rewrap(
    handler: grpc.RpcMethodHandler,
    method: str,
    principal: Principal | None,
    denial: HubError | None = None,
) -> grpc.RpcMethodHandler:
    """Return ``handler`` with every behaviour guarded, or denying the call."""
    if handler.unary_unary:
        kind, behaviour, factory = (
            "unary",
            handler.unary_unary,
            grpc.unary_unary_rpc_method_handler,
        )
    elif handler.unary_stream:
        kind, behaviour, factory = (
            "stream",
            handler.unary_stream,
            grpc.unary_stream_rpc_method_handler,
        )
    elif handler.stream_unary:
        kind, behaviour, factory = (
            "unary",
            handler.stream_unary,
            grpc.stream_unary_rpc_method_handler,
        )
    else:
        kind, behaviour, factory = (
            "stream",
            handler.stream_stream,
            grpc.stream_stream_rpc_method_handler,
        )

    if denial is not None:
        status = to_grpc_status(denial)

        async def deny(request: Any, context: aio.ServicerContext) -> Any:
            await _abort(context, status)

        async def deny_streaming(request: Any, context: aio.ServicerContext) -> Any:
            await _abort(context, status)
            yield  # pragma: no cover - makes this an async generator

        guarded: Behaviour = deny_streaming if kind == "stream" else deny
    else:
        guarded = _guard(behaviour, method, principal, kind == "stream")
    return factory(
        guarded,
        request_deserializer=handler.request_deserializer,
        response_serializer=handler.response_serializer,
    )


def bearer_token(metadata: tuple[tuple[str, str | bytes], ...] | None) -> str | None:
    for key, value in metadata or ():
        if key.lower() == "authorization" and isinstance(value, str):
            scheme, _, token = value.partition(" ")
            if scheme.lower() == "bearer" and token.strip():
                return token.strip()
    return None


class AuthorizationInterceptor(aio.ServerInterceptor):
    """Denies by default: an RPC needs a declared permission and a caller
    whose roles grant it."""

    def __init__(
        self, tokens: TokenStore, permissions: dict[str, str | None] | None = None
    ):
        self._tokens = tokens
        self._permissions = (
            declared_permissions() if permissions is None else permissions
        )

    async def intercept_service(
        self,
        continuation: Callable[
            [grpc.HandlerCallDetails], Awaitable[grpc.RpcMethodHandler]
        ],
        handler_call_details: grpc.HandlerCallDetails,
    ) -> grpc.RpcMethodHandler:
        method = handler_call_details.method
        handler = await continuation(handler_call_details)
        if handler is None:
            return handler
        service = method.lstrip("/").partition("/")[0]
        if service in PUBLIC_SERVICES:
            return handler

        principal, denial = self._decide(
            method, handler_call_details.invocation_metadata
        )
        return _rewrap(handler, method, principal, denial)

    def _decide(
        self, method: str, metadata: Any
    ) -> tuple[Principal | None, HubError | None]:
        permission = self._permissions.get(method)
        if permission is None:
            logger.error(
                "RPC %s declares no permission; denied to every caller", method
            )
            return None, PermissionDeniedError(
                f"{method} declares no permission, so no caller may use it"
            )
        token = bearer_token(metadata)
        if token is None:
            logger.info("RPC %s denied: no bearer token", method)
            return None, UnauthenticatedError(
                "missing bearer token; send metadata 'authorization: Bearer <token>'"
            )
        principal = self._tokens.authenticate(token)
        if principal is None:
            logger.info("RPC %s denied: unknown bearer token", method)
            return None, UnauthenticatedError("the bearer token is not valid")
        if not roles_grant(principal.roles, permission):
            logger.info(
                "RPC %s denied to %s: roles %s lack %s",
                method,
                principal.name,
                "+".join(sorted(principal.roles)),
                permission,
            )
            granting = sorted(
                role
                for role, granted in ROLE_PERMISSIONS.items()
                if permission in granted
            )
            return principal, PermissionDeniedError(
                f"caller {principal.name} lacks permission {permission}, which "
                f"roles {', '.join(granting)} grant",
                metadata={"permission": permission},
            )
        return principal, None
