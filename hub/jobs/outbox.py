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

    ``dispatch_soon`` lets a request respond right after its commit: the send
    runs in a task that this object owns and ``close`` awaits.
    """

    def __init__(self, send: SendJob):
        self._send = send
        self._tasks: set[asyncio.Task[None]] = set()

    def dispatch_soon(self, job_ids: Iterable[str]) -> None:
        """Send jobs in the background; failures are logged, never raised."""
        task = asyncio.get_running_loop().create_task(self.dispatch(list(job_ids)))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def drain(self) -> None:
        """Wait until every background send has finished."""
        while self._tasks:
            await asyncio.gather(*list(self._tasks))

    async def close(self, wait_seconds: float = 10.0) -> None:
        """Wait for background sends, up to ``wait_seconds``.

        A send still pending after that is cancelled; its job is committed,
        so the relay sends it later.
        """
        try:
            await asyncio.wait_for(self.drain(), wait_seconds)
        except TimeoutError:
            logger.warning(
                "%d job send(s) still pending at shutdown; the relay will send them",
                len(self._tasks),
            )

    async def dispatch(
        self, job_ids: Iterable[str], *, delay: timedelta | None = None
    ) -> None:
        """Send jobs; a failure is logged and left to the relay, never raised.

        The jobs are already committed, so the caller's request succeeded
        whether or not the broker is reachable right now.
        """
        seconds = delay.total_seconds() if delay else 0.0
        for job_id in job_ids:
            try:
                await asyncio.to_thread(self._send, job_id, seconds)
            except Exception:
                logger.warning(
                    "sending job %s to the broker failed; the relay will send it",
                    job_id,
                    exc_info=True,
                )
            else:
                logger.debug("job %s sent to the broker", job_id)
