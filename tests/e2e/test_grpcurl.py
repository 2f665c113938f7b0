"""The hub through the real grpcurl binary, as ops and support reach it."""

from __future__ import annotations

import json
import subprocess

import grpc
import pytest

from integrations.v1 import hub_pb2_grpc
from tests.integration.stack import (
    CHECKOUT,
    OPS,
    Stack,
    bin_path,
    new_key,
    payment_request,
)

pytestmark = pytest.mark.integration

GRPCURL_TIMEOUT_SECONDS = 30


def grpcurl(*arguments: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(bin_path("grpcurl")), "-plaintext", *arguments],
        capture_output=True,
        text=True,
        timeout=GRPCURL_TIMEOUT_SECONDS,
        check=False,
    )


@pytest.fixture(scope="module")
def operation_id(hub_stack: Stack) -> str:
    with grpc.insecure_channel(hub_stack.hub_addresses[0]) as channel:
        hub = hub_pb2_grpc.IntegrationHubStub(channel)
        created = hub.CreatePayment(
            payment_request(new_key()), metadata=CHECKOUT.metadata, timeout=10
        )
    return str(created.id)


def test_list_shows_hub_services(hub_stack: Stack) -> None:
    result = grpcurl(hub_stack.hub_addresses[0], "list")

    assert result.returncode == 0, result.stderr
    services = result.stdout.split()
    assert "integrations.v1.IntegrationHub" in services
    assert "integrations.v1.IntegrationAdmin" in services


def test_admin_get_operation_returns_json(hub_stack: Stack, operation_id: str) -> None:
    result = grpcurl(
        "-H",
        f"authorization: Bearer {OPS.token}",
        "-d",
        json.dumps({"id": operation_id}),
        hub_stack.hub_addresses[0],
        "integrations.v1.IntegrationAdmin/GetOperation",
    )

    assert result.returncode == 0, result.stderr
    evidence = json.loads(result.stdout)
    assert evidence["operation"]["id"] == operation_id
    assert evidence["operation"]["caller"] == CHECKOUT.name
    assert evidence["operation"]["state"] == "OPERATION_STATE_PENDING"


def test_admin_get_operation_needs_token(hub_stack: Stack, operation_id: str) -> None:
    result = grpcurl(
        "-d",
        json.dumps({"id": operation_id}),
        hub_stack.hub_addresses[0],
        "integrations.v1.IntegrationAdmin/GetOperation",
    )

    assert result.returncode != 0
    assert "Unauthenticated" in result.stdout + result.stderr
