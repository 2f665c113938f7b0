"""The hub's error catalog.

Every error the hub raises on purpose derives from :class:`HubError`. Each
class carries its catalog entry: a stable ``reason`` (sent to callers as the
``google.rpc.ErrorInfo`` reason), the gRPC status code, the HTTP status used
at the webhook edge, and whether a retry of the same request can succeed.
Errors are turned into gRPC statuses in one place, ``hub.api.status``.

    HubError
    ├── InternalError                INTERNAL, an unexpected failure
    ├── ValidationError              INVALID_ARGUMENT, with field violations
    ├── NotFoundError                NOT_FOUND
    ├── IdempotencyError
    │   └── IdempotencyKeyReusedError ALREADY_EXISTS
    ├── AuthError
    │   ├── UnauthenticatedError     UNAUTHENTICATED
    │   └── PermissionDeniedError    PERMISSION_DENIED
    ├── WebhookError
    │   ├── WebhookSignatureError    401 at the edge
    │   └── WebhookPayloadError      400 at the edge
    ├── ConfigurationError           FAILED_PRECONDITION
    ├── StorageUnavailableError      UNAVAILABLE, 503 at the edge, retryable
    └── ProviderError
        ├── ProviderTimeoutError     retryable
        ├── ProviderUnavailableError retryable (connection failure, 5xx)
        ├── ProviderRateLimitedError retryable (429)
        ├── ProviderAuthError        permanent (the hub's credentials)
        └── ProviderRejectedError    permanent (validation, decline)
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import grpc

ERROR_DOMAIN = "integrations.hub"


@dataclass(frozen=True)
class FieldViolation:
    """One invalid request field, sent as a ``google.rpc.BadRequest`` entry."""

    field: str
    description: str


class HubError(Exception):
    """Root of every error the hub raises on purpose."""

    reason = "INTERNAL"
    grpc_code = grpc.StatusCode.INTERNAL
    http_status = 500
    retryable = False

    def __init__(self, message: str, *, metadata: dict[str, str] | None = None):
        super().__init__(message)
        self.message = message
        self.metadata = dict(metadata or {})


class InternalError(HubError):
    """An unexpected failure; retrying with the same idempotency key is safe."""

    reason = "INTERNAL"
    retryable = True


class ValidationError(HubError):
    reason = "INVALID_REQUEST"
    grpc_code = grpc.StatusCode.INVALID_ARGUMENT
    http_status = 400

    def __init__(self, violations: Sequence[FieldViolation]):
        summary = "; ".join(f"{v.field}: {v.description}" for v in violations)
        super().__init__(f"invalid request: {summary}")
        self.violations = list(violations)


class NotFoundError(HubError):
    reason = "NOT_FOUND"
    grpc_code = grpc.StatusCode.NOT_FOUND
    http_status = 404


class IdempotencyError(HubError):
    reason = "IDEMPOTENCY_ERROR"
    grpc_code = grpc.StatusCode.FAILED_PRECONDITION
    http_status = 409


class IdempotencyKeyReusedError(IdempotencyError):
    """The key was used before by the same caller for a different request."""

    reason = "IDEMPOTENCY_KEY_REUSED"
    grpc_code = grpc.StatusCode.ALREADY_EXISTS


class AuthError(HubError):
    reason = "AUTH_ERROR"
    grpc_code = grpc.StatusCode.UNAUTHENTICATED
    http_status = 401


class UnauthenticatedError(AuthError):
    reason = "UNAUTHENTICATED"


class PermissionDeniedError(AuthError):
    reason = "PERMISSION_DENIED"
    grpc_code = grpc.StatusCode.PERMISSION_DENIED
    http_status = 403


class WebhookError(HubError):
    reason = "WEBHOOK_ERROR"
    grpc_code = grpc.StatusCode.INVALID_ARGUMENT
    http_status = 400


class WebhookSignatureError(WebhookError):
    """The webhook's signature headers are missing, stale or do not match."""

    reason = "WEBHOOK_SIGNATURE_INVALID"
    grpc_code = grpc.StatusCode.UNAUTHENTICATED
    http_status = 401


class WebhookPayloadError(WebhookError):
    """The webhook is signed correctly but its body cannot be used."""

    reason = "WEBHOOK_PAYLOAD_INVALID"


class ConfigurationError(HubError):
    reason = "CONFIGURATION_ERROR"
    grpc_code = grpc.StatusCode.FAILED_PRECONDITION
    http_status = 500


class StorageUnavailableError(HubError):
    """The database could not be reached or did not respond in time."""

    reason = "STORAGE_UNAVAILABLE"
    grpc_code = grpc.StatusCode.UNAVAILABLE
    http_status = 503
    retryable = True


class ProviderError(HubError):
    """A provider call failed; ``provider_code`` is the provider's own code."""

    reason = "PROVIDER_ERROR"
    grpc_code = grpc.StatusCode.UNAVAILABLE
    http_status = 502

    def __init__(
        self,
        message: str,
        *,
        provider: str,
        http_status: int | None = None,
        provider_code: str | None = None,
        metadata: dict[str, str] | None = None,
    ):
        super().__init__(message, metadata=metadata)
        self.provider = provider
        self.provider_http_status = http_status
        self.provider_code = provider_code


class ProviderTimeoutError(ProviderError):
    reason = "PROVIDER_TIMEOUT"
    grpc_code = grpc.StatusCode.DEADLINE_EXCEEDED
    retryable = True


class ProviderUnavailableError(ProviderError):
    reason = "PROVIDER_UNAVAILABLE"
    retryable = True


class ProviderRateLimitedError(ProviderError):
    reason = "PROVIDER_RATE_LIMITED"
    grpc_code = grpc.StatusCode.RESOURCE_EXHAUSTED
    retryable = True

    def __init__(
        self,
        message: str,
        *,
        provider: str,
        retry_after: float | None = None,
        http_status: int | None = None,
        provider_code: str | None = None,
    ):
        super().__init__(
            message,
            provider=provider,
            http_status=http_status,
            provider_code=provider_code,
        )
        self.retry_after = retry_after


class ProviderAuthError(ProviderError):
    """The provider rejected the hub's credentials or signature."""

    reason = "PROVIDER_AUTH_FAILED"
    grpc_code = grpc.StatusCode.FAILED_PRECONDITION


class ProviderRejectedError(ProviderError):
    """The provider refused the request itself (validation, decline)."""

    reason = "PROVIDER_REJECTED"
    grpc_code = grpc.StatusCode.FAILED_PRECONDITION


CATALOG: tuple[type[HubError], ...] = (
    InternalError,
    ValidationError,
    NotFoundError,
    IdempotencyKeyReusedError,
    UnauthenticatedError,
    PermissionDeniedError,
    WebhookSignatureError,
    WebhookPayloadError,
    ConfigurationError,
    StorageUnavailableError,
    ProviderTimeoutError,
    ProviderUnavailableError,
    ProviderRateLimitedError,
    ProviderAuthError,
    ProviderRejectedError,
)
