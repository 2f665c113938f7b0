"""The one place where hub errors become gRPC statuses.

Every error status carries a ``google.rpc.ErrorInfo`` detail with the
reason, the hub's domain, and ids as metadata. Validation errors add a
``google.rpc.BadRequest`` with one entry per invalid field.
"""

from __future__ import annotations

import grpc
from google.protobuf import any_pb2
from google.rpc import error_details_pb2, status_pb2
from grpc_status import rpc_status

from hub.errors import ERROR_DOMAIN, HubError, InternalError, ValidationError


def _packed(message: object) -> any_pb2.Any:
    detail = any_pb2.Any()
    detail.Pack(message)  # type: ignore[arg-type]
    return detail


def to_grpc_status(error: HubError) -> grpc.Status:
    """Build the rich gRPC status for a hub error."""
    metadata = {"retryable": str(error.retryable).lower(), **error.metadata}
    details = [
        _packed(
            error_details_pb2.ErrorInfo(
                reason=error.reason, domain=ERROR_DOMAIN, metadata=metadata
            )
        )
    ]
    if isinstance(error, ValidationError):
        details.append(
            _packed(
                error_details_pb2.BadRequest(
                    field_violations=[
                        error_details_pb2.BadRequest.FieldViolation(
                            field=violation.field, description=violation.description
                        )
                        for violation in error.violations
                    ]
                )
            )
        )
    status = status_pb2.Status(
        code=error.grpc_code.value[0],
        message=error.message,
        details=details,
    )
    return rpc_status.to_status(status)


def internal_status(error_id: str) -> grpc.Status:
    """Build the status of an unexpected failure, revealing nothing internal."""
    return to_grpc_status(
        InternalError(
            f"internal error; the hub logged it with error id {error_id}",
            metadata={"error_id": error_id},
        )
    )
