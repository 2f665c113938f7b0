from __future__ import annotations

import importlib
from pathlib import Path

import pytest
from google.protobuf.descriptor import ServiceDescriptor

from hub.codegen import OUTPUT_ROOT
from hub.rbac.permissions import ROLE_PERMISSIONS, declared_permissions


def every_service_in_generated_code() -> list[ServiceDescriptor]:
    """Every service of every generated module, found by file, not by name."""
    services: list[ServiceDescriptor] = []
    for path in sorted((OUTPUT_ROOT / "integrations" / "v1").glob("*_pb2.py")):
        module = importlib.import_module(f"integrations.v1.{Path(path).stem}")
        services.extend(module.DESCRIPTOR.services_by_name.values())
    return services


ALL_SERVICES = every_service_in_generated_code()
ALL_METHODS = [
    f"/{service.full_name}/{method.name}"
    for service in ALL_SERVICES
    for method in service.methods
]


def test_generated_code_has_rpcs() -> None:
    assert len(ALL_METHODS) >= 3


@pytest.mark.parametrize("method", ALL_METHODS)
def test_every_rpc_declares_permission(method: str) -> None:
    permissions = declared_permissions(tuple(ALL_SERVICES))

    assert permissions[method], f"{method} has no required_permission option"


@pytest.mark.parametrize("method", ALL_METHODS)
def test_every_permission_is_granted_to_a_role(method: str) -> None:
    permission = declared_permissions(tuple(ALL_SERVICES))[method]

    assert any(permission in granted for granted in ROLE_PERMISSIONS.values())


def test_interceptor_covers_every_generated_service() -> None:
    assert set(declared_permissions()) == set(ALL_METHODS)


def test_admin_holds_every_permission() -> None:
    every = set().union(*ROLE_PERMISSIONS.values())

    assert ROLE_PERMISSIONS["admin"] == every
