"""Fixtures for the integration tests: one running stack per test session."""

from __future__ import annotations

from collections.abc import AsyncIterator, Generator, Iterator

import grpc
import pytest
import pytest_asyncio

from integrations.v1 import admin_pb2_grpc, hub_pb2_grpc
from tests.integration.stack import HubClients, SandboxControl, Stack


@pytest.fixture(scope="session")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    running = Stack(tmp_path_factory.mktemp("stack-logs"))
    try:
        running.start()
        yield running
    finally:
        running.stop()


@pytest_asyncio.fixture(autouse=True)
async def sandbox(stack: Stack) -> AsyncIterator[SandboxControl]:
    """The sandbox, with its faults reset before and after each test."""
    control = SandboxControl(stack.sandbox_url)
    await control.reset()
    yield control
    await control.reset()


@pytest_asyncio.fixture
async def clients(stack: Stack) -> AsyncIterator[HubClients]:
    channels = [grpc.aio.insecure_channel(address) for address in stack.hub_addresses]
    try:
        yield HubClients(
            hubs=[hub_pb2_grpc.IntegrationHubStub(channel) for channel in channels],
            admins=[
                admin_pb2_grpc.IntegrationAdminStub(channel) for channel in channels
            ],
        )
    finally:
        for channel in channels:
            await channel.close()


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(
    item: pytest.Item, call: pytest.CallInfo[None]
) -> Generator[None, pytest.TestReport, pytest.TestReport]:
    """Attach the tail of every process log to a failed test's report."""
    report = yield
    running = getattr(item, "funcargs", {}).get("stack")
    if report.failed and isinstance(running, Stack):
        report.sections.append(("stack process logs", running.log_tails()))
    return report
