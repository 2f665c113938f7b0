"""The transactional outbox: job rows written with the work they drive.

A job row commits in the same transaction as its operation or webhook
event. Only after that commit is the job sent to the broker, and the relay
sends again any job whose message was lost, so a crash between commit and
send loses nothing. Messages carry only the job id; workers read the rest
from the database.
"""

from __future__ import annotations

import asyncio
import enum
import logging
import uuid
from collections.abc import Callable, Iterable
from datetime import timedelta

from sqlalchemy.ext.asyncio import AsyncSession

from hub.persistence.models import Job, utc_now

logger = logging.getLogger(__name__)


class JobKind(enum.StrEnum):
    OPERATION = "operation"
    WEBHOOK = "webhook"


class JobState(enum.StrEnum):
    QUEUED = "queued"
    RUNNING = "running"
    RETRY_SCHEDULED = "retry_scheduled"
    DONE = "done"
    DEAD = "dead"


def new_id() -> str:
    return str(uuid.uuid4())


def add_job(
    *,
    session: AsyncSession,
    kind: JobKind,
    max_attempts: int,
    operation_id: str | None = None,
    webhook_event_id: str | None = None,
) -> Job:
    """Add a queued job to the session's transaction.

    ``enqueued_at`` is set now because the caller sends the job right after
    the commit. If that send is lost, the relay sends the job again once it
    is older than the grace period.
    """
    now = utc_now()
    job = Job(
        id=new_id(),
        kind=kind,
        operation_id=operation_id,
        webhook_event_id=webhook_event_id,
        state=JobState.QUEUED,
        attempts=0,
        max_attempts=max_attempts,
        run_after=now,
        enqueued_at=now,
        created_at=now,
        updated_at=now,
    )
    session.add(job)
    return job


# Sends one job id to the broker, optionally after a delay in seconds.
SendJob = Callable[[str, float], None]


class Dispatcher:
    """Sends committed jobs to the broker without blocking the event loop.

    ``dispatch_soon`` lets a request respond right after its commit. Job ids
    collect in a list that one flusher task, owned by this object, sends in a
    single worker thread, so a burst of requests costs one thread hand-off.
    """

    def __init__(self, send: SendJob):
        self._send = send
        self._pending: list[str] = []
        self._flusher: asyncio.Task[None] | None = None

    def dispatch_soon(self, job_ids: Iterable[str]) -> None:
        """Send jobs in the background; ``_send_all`` logs failures."""
        self._pending.extend(job_ids)
        if self._flusher is None or self._flusher.done():
            self._flusher = asyncio.get_running_loop().create_task(self._flush())

    async def _flush(self) -> None:
        while self._pending:
            batch, self._pending = self._pending, []
            await self.dispatch(batch)

    async def drain(self) -> None:
        """Wait until every background send has finished."""
        while self._flusher is not None and not self._flusher.done():
            await self._flusher

    async def close(self, wait_seconds: float = 10.0) -> None:
        """Wait for background sends, up to ``wait_seconds``.

        Jobs still unsent after that are committed, so the relay sends them.
        """
        try:
            await asyncio.wait_for(asyncio.shield(self.drain()), wait_seconds)
        except TimeoutError:
            logger.warning(
                "%d job send(s) still pending at shutdown; the relay will send them",
                len(self._pending),
            )

    async def dispatch(
        self, job_ids: Iterable[str], *, delay: timedelta | None = None
    ) -> None:
        """Send jobs; ``_send_all`` logs a failure and leaves it to the relay.

        The jobs are already committed, so the caller's request succeeded
        whether or not the broker is reachable right now.
        """
        seconds = delay.total_seconds() if delay else 0.0
        await asyncio.to_thread(self._send_all, list(job_ids), seconds)

    def _send_all(self, job_ids: list[str], delay_seconds: float) -> None:
        """Send jobs in order; after one failure, leave the rest to the relay.

        A failed send usually means the broker is down, and each further try
        could wait for the full socket timeout.
        """
        for position, job_id in enumerate(job_ids):
            try:
                self._send(job_id, delay_seconds)
            except Exception as exc:
                # One line without a traceback: while the broker is down this
                # repeats for every batch, and the cause is in the message.
                logger.warning(
                    "sending job %s to the broker failed (%s: %s); the relay will "
                    "send it and the %d job(s) after it",
                    job_id,
                    type(exc).__name__,
                    exc,
                    len(job_ids) - position - 1,
                )
                return
            logger.debug("job %s sent to the broker", job_id)
