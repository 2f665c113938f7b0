"""Fixtures for the end-to-end tests: a hub server on a scratch database."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.integration.stack import Stack


@pytest.fixture(scope="session")
def hub_stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    """One hub server; no worker runs, so operations stay pending."""
    running = Stack(
        tmp_path_factory.mktemp("e2e-logs"),
        hubs=1,
        gateways=0,
        workers=0,
        relay=False,
        sandbox=False,
    )
    try:
        running.start()
        yield running
    finally:
        running.stop()
