"""Group commit for inbound webhooks.

One writer task per gateway process takes every webhook waiting in its queue
and stores them all in one transaction, then wakes each waiting request with
its own result. A request still responds only after its event committed, so
every 2xx stays durable, while the database gets one commit per batch
instead of one per request.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from hub.persistence.database import UNREACHABLE_DATABASE_ERRORS
from hub.webhooks.intake import Received, Stored, store_webhooks

logger = logging.getLogger(__name__)

# The largest batch one transaction stores; beyond it the writer commits
# and starts the next batch at once.
MAX_BATCH = 256

# A batch not committed by then is abandoned, so a database connection that
# stalls without failing cannot hold every later webhook. Its requests get
# a TimeoutError and respond 503, and the provider sends them again.
# Cancelling the query can take about 5 s more (psycopg 3.3 waits that long
# for the server to confirm the cancel), which the gateway's request timeout
# allows for.
BATCH_TIMEOUT_SECONDS = 5.0

# Requests allowed to wait for the writer. Past this the gateway is too far
# behind, and a quick 503 lets the provider send again later.
MAX_WAITING = 10_000


class IntakeFullError(Exception):
    """More webhooks wait for the writer than ``MAX_WAITING``."""


@dataclass
class _Waiting:
    received: Received
    result: asyncio.Future[Stored]


class IntakeWriter:
    """Stores webhooks in batches; ``run`` is the writer task's body."""

    def __init__(self, sessions: async_sessionmaker[AsyncSession], max_attempts: int):
        self._sessions = sessions
        self._max_attempts = max_attempts
        self._queue: asyncio.Queue[_Waiting] = asyncio.Queue(MAX_WAITING)

    async def store(self, received: Received) -> Stored:
        """Return once ``received`` and its job have committed.

        Raises the database's error when the batch could not be stored, and
        ``IntakeFullError`` when too many requests already wait.
        """
        waiting = _Waiting(received, asyncio.get_running_loop().create_future())
        try:
            self._queue.put_nowait(waiting)
        except asyncio.QueueFull:
            raise IntakeFullError(f"{MAX_WAITING} webhooks already wait") from None
        return await waiting.result

    async def run(self) -> None:
        """Store batches until cancelled."""
        while True:
            batch = [await self._queue.get()]
            while len(batch) < MAX_BATCH and not self._queue.empty():
                batch.append(self._queue.get_nowait())
            try:
                await self._write(batch)
            except Exception as exc:
                # The writer must outlive any batch, or every later request
                # would wait for ever.
                logger.error("webhook writer failed on a batch", exc_info=True)
                self._fail(batch, exc)

    async def _write(self, batch: list[_Waiting]) -> None:
        try:
            results = await self._store([waiting.received for waiting in batch])
        except UNREACHABLE_DATABASE_ERRORS as exc:
            # Each waiting request decides how to respond to the error.
            self._fail(batch, exc)
            return
        except Exception as exc:
            if len(batch) == 1:
                self._fail(batch, exc)
                return
            # One event the database rejects must not fail the others, so
            # each is tried in a transaction of its own.
            logger.warning(
                "a batch of %d webhook(s) failed; storing them one by one",
                len(batch),
                exc_info=True,
            )
            for waiting in batch:
                await self._write_one(waiting)
            return
        logger.debug("stored a batch of %d webhook(s)", len(batch))
        for waiting, stored in zip(batch, results, strict=True):
            # A request whose client went away has a cancelled future; its
            # event is stored all the same.
            if not waiting.result.done():
                waiting.result.set_result(stored)

    async def _write_one(self, waiting: _Waiting) -> None:
        try:
            (stored,) = await self._store([waiting.received])
        except Exception as exc:
            self._fail([waiting], exc)
            return
        if not waiting.result.done():
            waiting.result.set_result(stored)

    async def _store(self, received: list[Received]) -> list[Stored]:
        async with asyncio.timeout(BATCH_TIMEOUT_SECONDS):
            async with self._sessions.begin() as session:
                return await store_webhooks(
                    session=session, received=received, max_attempts=self._max_attempts
                )

    @staticmethod
    def _fail(batch: list[_Waiting], exc: BaseException) -> None:
        for waiting in batch:
            if not waiting.result.done():
                waiting.result.set_exception(exc)
