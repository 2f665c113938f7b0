"""Runs one job: claims it, does its work, then completes, retries or
dead-letters it.

A job is claimed with one conditional UPDATE, so when the broker or the
relay delivers the same job twice, only one worker runs it. A claim is a
lease: if the worker dies, the lease runs out and the relay sends the job
again.
"""

from __future__ import annotations

import logging
import random
from dataclasses import dataclass
from datetime import datetime, timedelta

import aiohttp
from sqlalchemy import or_, update
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from hub.config import RetryPolicy, Settings
from hub.errors import HubError
from hub.jobs.breakers import Breakers
from hub.jobs.outbox import Dispatcher, JobKind, JobState
from hub.operations import OperationState, change_state
from hub.persistence.models import Job, utc_now
from hub.registry import Registry

logger = logging.getLogger(__name__)


@dataclass
class WorkerContext:
    """Resources a worker process needs to run jobs, built once per process."""

    settings: Settings
    engine: AsyncEngine
    sessions: async_sessionmaker[AsyncSession]
    registry: Registry
    http: aiohttp.ClientSession
    breakers: Breakers
    dispatcher: Dispatcher


@dataclass(frozen=True)
class ClaimedJob:
    """A job this worker holds; ``lease_until`` also identifies the claim."""

    id: str
    lease_until: datetime
    kind: str
    operation_id: str | None
    webhook_event_id: str | None
    attempts: int
    max_attempts: int


class LeaseLostError(Exception):
    """The job's lease ran out and another worker claimed it.

    The transaction that found this rolls back, so this worker's results
    are discarded and the new owner's stand.
    """


def lease_seconds(settings: Settings) -> float:
    # load_settings() rejects a lease shorter than the provider timeout plus
    # one second, so a live worker keeps its job until the call returns.
    return settings.job_lease_seconds


def backoff_seconds(
    policy: RetryPolicy, attempt: int, retry_after: float | None = None
) -> float:
    """Exponential backoff with jitter; ``attempt`` counts from 1."""
    ceiling = min(
        policy.max_backoff_seconds, policy.min_backoff_seconds * 2 ** (attempt - 1)
    )
    delay = random.uniform(ceiling / 2, ceiling)
    if retry_after is not None:
        delay = max(delay, min(retry_after, policy.max_backoff_seconds))
    return delay


async def claim_job(context: WorkerContext, job_id: str) -> ClaimedJob | None:
    """Take the lease on a job, or return None if it is not ours to run."""
    now = utc_now()
    lease_until = now + timedelta(seconds=lease_seconds(context.settings))
    claimable = or_(
        (Job.state.in_((JobState.QUEUED, JobState.RETRY_SCHEDULED)))
        & (Job.run_after <= now),
        (Job.state == JobState.RUNNING) & (Job.lease_until < now),
    )
    async with context.sessions.begin() as session:
        row = (
            await session.execute(
                update(Job)
                .where(Job.id == job_id, claimable)
                .values(
                    state=JobState.RUNNING,
                    attempts=Job.attempts + 1,
                    lease_until=lease_until,
                    updated_at=now,
                )
                .returning(
                    Job.kind,
                    Job.operation_id,
                    Job.webhook_event_id,
                    Job.attempts,
                    Job.max_attempts,
                )
            )
        ).one_or_none()
    if row is None:
        logger.debug("job %s is done, running elsewhere or not due; skipped", job_id)
        return None
    return ClaimedJob(job_id, lease_until, *row)


async def _update_held_job(
    session: AsyncSession, job: ClaimedJob, **values: object
) -> None:
    """Update the job only while this worker's claim is still current."""
    result = await session.execute(
        update(Job)
        .where(
            Job.id == job.id,
            Job.state == JobState.RUNNING,
            Job.lease_until == job.lease_until,
        )
        .values(updated_at=utc_now(), **values)
        .returning(Job.id)
    )
    if result.scalar_one_or_none() is None:
        raise LeaseLostError(f"job {job.id} is no longer held by this worker")


async def complete_job(
    *, session: AsyncSession, job: ClaimedJob, last_error: str | None = None
) -> None:
    await _update_held_job(
        session, job, state=JobState.DONE, lease_until=None, last_error=last_error
    )


async def retry_or_bury(
    *,
    session: AsyncSession,
    context: WorkerContext,
    job: ClaimedJob,
    error: str,
    retry_after: float | None = None,
) -> timedelta | None:
    """Schedule the job's next attempt, or mark it dead when none is left.

    Returns the retry delay, or None when the job went to the dead letters;
    the caller sends the delayed message after its transaction commits.
    """
    if job.attempts >= job.max_attempts:
        await _update_held_job(
            session, job, state=JobState.DEAD, lease_until=None, last_error=error
        )
        return None

    delay = timedelta(
        seconds=backoff_seconds(context.settings.retry, job.attempts, retry_after)
    )
    now = utc_now()
    await _update_held_job(
        session,
        job,
        state=JobState.RETRY_SCHEDULED,
        run_after=now + delay,
        enqueued_at=now,
        lease_until=None,
        last_error=error,
    )
    return delay


async def postpone_job(
    *, session: AsyncSession, job: ClaimedJob, delay: timedelta, reason: str
) -> None:
    """Schedule the job again without counting this run as an attempt."""
    now = utc_now()
    await _update_held_job(
        session,
        job,
        state=JobState.RETRY_SCHEDULED,
        attempts=Job.attempts - 1,
        run_after=now + delay,
        enqueued_at=now,
        lease_until=None,
        last_error=reason,
    )


async def execute_job(context: WorkerContext, job_id: str) -> None:
    """Run one job end to end; every error is logged and turned into a retry."""
    job = await claim_job(context, job_id)
    if job is None:
        return
    logger.debug("job %s (%s) claimed, attempt %d", job.id, job.kind, job.attempts)

    # Imported here because both modules import this one for its helpers.
    from hub.jobs.payment_calls import run_operation_job
    from hub.webhooks.handlers import run_webhook_job

    try:
        if job.kind == JobKind.OPERATION:
            await run_operation_job(context, job)
        elif job.kind == JobKind.WEBHOOK:
            await run_webhook_job(context, job)
        else:
            raise ValueError(f"unknown job kind {job.kind!r}")
    except LeaseLostError:
        _log_lease_lost(job)
    except Exception as exc:
        # The isolation boundary of a job: nothing escapes to Dramatiq, whose
        # own retries are off, and the job row decides what happens next.
        # A hub error carries its own explanation, so only other errors get
        # a traceback.
        logger.error(
            "job %s (%s) failed on attempt %d: %s",
            job.id,
            job.kind,
            job.attempts,
            exc,
            exc_info=not isinstance(exc, HubError),
        )
        try:
            await handle_unexpected_failure(context, job, exc)
        except LeaseLostError:
            _log_lease_lost(job)


def _log_lease_lost(job: ClaimedJob) -> None:
    logger.warning(
        "job %s (%s): lease ran out and another worker took the job; "
        "this run's results were discarded",
        job.id,
        job.kind,
    )


async def handle_unexpected_failure(
    context: WorkerContext, job: ClaimedJob, exc: Exception
) -> None:
    """Retry the job later; when no attempt is left, bury it and, for an
    operation job, mark the operation DEAD_LETTERED so callers stop waiting."""
    error = f"{type(exc).__name__}: {exc}"
    async with context.sessions.begin() as session:
        delay = await retry_or_bury(
            session=session, context=context, job=job, error=error
        )
        if delay is None and job.operation_id is not None:
            await change_state(
                session=session,
                operation_id=job.operation_id,
                to_state=OperationState.DEAD_LETTERED,
                from_states=(OperationState.PENDING,),
                values={
                    "error_code": exc.reason
                    if isinstance(exc, HubError)
                    else "INTERNAL",
                    "error_message": str(exc) if isinstance(exc, HubError) else error,
                },
            )
    if delay is None:
        logger.error(
            "job %s (%s, operation %s) dead-lettered after %d attempts: %s",
            job.id,
            job.kind,
            job.operation_id or "-",
            job.attempts,
            error,
        )
        return
    logger.info("job %s retries in %.1f s", job.id, delay.total_seconds())
    await context.dispatcher.dispatch([job.id], delay=delay)
