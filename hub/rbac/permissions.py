"""Roles, permissions, and the permission each RPC declares in the proto.

Each RPC declares its permission with the ``integrations.v1.required_permission``
method option. The table below grants permissions to roles; the README shows
the same table. An RPC without a declared permission is denied to everyone.
"""

from __future__ import annotations

from google.protobuf.descriptor import ServiceDescriptor

from integrations.v1 import admin_pb2, hub_pb2, options_pb2

OPERATIONS_CREATE = "operations.create"
OPERATIONS_READ = "operations.read"
OPERATIONS_EVIDENCE_READ = "operations.evidence.read"
JOBS_RETRY = "integrations.jobs.retry"

ROLE_PERMISSIONS: dict[str, frozenset[str]] = {
    # Internal services create operations and read their own.
    "service": frozenset({OPERATIONS_CREATE, OPERATIONS_READ}),
    # Support reads any operation with its evidence, and changes nothing.
    "support": frozenset({OPERATIONS_EVIDENCE_READ}),
    # Ops also repairs: retrying jobs, requeueing dead letters.
    "ops": frozenset({OPERATIONS_EVIDENCE_READ, JOBS_RETRY}),
    "admin": frozenset(
        {OPERATIONS_CREATE, OPERATIONS_READ, OPERATIONS_EVIDENCE_READ, JOBS_RETRY}
    ),
}

# Standard services that carry no business data and must respond without a
# token, because load balancers probe health and grpcurl lists services
# through reflection before a caller picks a method.
PUBLIC_SERVICES = frozenset(
    {
        "grpc.health.v1.Health",
        "grpc.reflection.v1.ServerReflection",
        "grpc.reflection.v1alpha.ServerReflection",
    }
)

HUB_SERVICES: tuple[ServiceDescriptor, ...] = tuple(
    service
    for module in (hub_pb2, admin_pb2)
    for service in module.DESCRIPTOR.services_by_name.values()
)


def declared_permissions(
    services: tuple[ServiceDescriptor, ...] = HUB_SERVICES,
) -> dict[str, str | None]:
    """Map each RPC's full method path to its declared permission, or None."""
    extension = options_pb2.required_permission
    declared: dict[str, str | None] = {}
    for service in services:
        for method in service.methods:
            options = method.GetOptions()
            permission = (
                options.Extensions[extension]
                if options.HasExtension(extension)
                else None
            )
            declared[f"/{service.full_name}/{method.name}"] = permission or None
    return declared


def roles_grant(roles: frozenset[str], permission: str) -> bool:
    return any(permission in ROLE_PERMISSIONS.get(role, frozenset()) for role in roles)
