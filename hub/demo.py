"""``hub-demo``: create one payment through the typed stub and follow it.

It prints the operation each time its state changes, until the state is
final or the timeout passes.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
import time
import uuid

import grpc
from google.protobuf.json_format import MessageToJson

from integrations.v1 import hub_pb2, hub_pb2_grpc
from integrations.v1 import operations_pb2 as pb

# The service token that dev mode accepts; see hub.devmode.
DEV_SERVICE_TOKEN = "dev-service-token"

FINAL_STATES = {
    pb.OPERATION_STATE_SUCCEEDED,
    pb.OPERATION_STATE_FAILED,
    pb.OPERATION_STATE_DEAD_LETTERED,
}


def _show(operation: pb.Operation) -> None:
    state = pb.OperationState.Name(operation.state)
    print(f"operation {operation.id}: {state}", flush=True)


async def run_demo(
    target: str,
    token: str,
    *,
    amount: str = "12.50",
    currency: str = "EUR",
    country: str = "DE",
    wait_seconds: float = 30.0,
) -> pb.Operation:
    """Create a payment and poll it until its state is final."""
    metadata = (("authorization", f"Bearer {token}"),)
    async with grpc.aio.insecure_channel(target) as channel:
        stub = hub_pb2_grpc.IntegrationHubStub(channel)
        operation = await stub.CreatePayment(
            hub_pb2.CreatePaymentRequest(
                idempotency_key=f"demo-{uuid.uuid4()}",
                country=country,
                amount=amount,
                currency=currency,
                payment_method_type="de_visa_card",
                customer_id="cus_demo",
                description="hub demo payment",
                metadata={"source": "hub-demo"},
            ),
            metadata=metadata,
            timeout=10,
        )
        _show(operation)
        deadline = time.monotonic() + wait_seconds
        while operation.state not in FINAL_STATES and time.monotonic() < deadline:
            await asyncio.sleep(0.2)
            latest = await stub.GetOperation(
                pb.GetOperationRequest(id=operation.id), metadata=metadata, timeout=10
            )
            if latest.state != operation.state:
                _show(latest)
            operation = latest
    return operation


def main() -> None:
    parser = argparse.ArgumentParser(
        description="Create one payment through the typed stub and follow it.",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    parser.add_argument(
        "--target",
        default=os.environ.get("HUB_GRPC_ADDRESS", "127.0.0.1:50051"),
        help="hub gRPC address (from HUB_GRPC_ADDRESS when set)",
    )
    parser.add_argument(
        "--token",
        default=os.environ.get("HUB_DEMO_TOKEN", DEV_SERVICE_TOKEN),
        help="bearer token of a caller with the service role (from HUB_DEMO_TOKEN "
        "when set)",
    )
    parser.add_argument("--amount", default="12.50", help="decimal amount, e.g. 12.50")
    parser.add_argument("--currency", default="EUR", help="ISO 4217 code")
    parser.add_argument("--country", default="DE", help="ISO 3166-1 alpha-2 code")
    parser.add_argument("--timeout", type=float, default=30.0, help="seconds to wait")
    options = parser.parse_args()
    try:
        operation = asyncio.run(
            run_demo(
                options.target,
                options.token,
                amount=options.amount,
                currency=options.currency,
                country=options.country,
                wait_seconds=options.timeout,
            )
        )
    except grpc.aio.AioRpcError as error:
        hint = ""
        if error.code() == grpc.StatusCode.UNAVAILABLE:
            hint = (
                f"; is the hub running at {options.target}? Start it with "
                "'make dev', or pass --target"
            )
        sys.exit(f"hub-demo: {error.code().name}: {error.details()}{hint}")
    print(MessageToJson(operation, preserving_proto_field_name=True))
    if operation.state != pb.OPERATION_STATE_SUCCEEDED:
        sys.exit(1)
