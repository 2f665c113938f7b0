"""The outbox relay: sends again every job whose message was lost.

A job needs sending again when it is due but no worker has started it
within the grace period (the send after commit failed, or Redis lost the
message), or when its lease ran out (its worker died mid-job). Several
relays may run at once: on PostgreSQL each takes different rows with
``SKIP LOCKED``, and a job sent twice is still run once because workers
claim jobs with a conditional UPDATE.
"""

from __future__ import annotations

import asyncio
import logging
import signal
from datetime import timedelta

from sqlalchemy import and_, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from hub.config import Settings
from hub.jobs.outbox import Dispatcher, JobState
from hub.persistence.database import create_engine, create_session_factory
from hub.persistence.models import Job, utc_now
from hub.startup import exit_on_startup_error, settings_or_exit

logger = logging.getLogger(__name__)

BATCH_SIZE = 500


async def relay_once(
    sessions: async_sessionmaker[AsyncSession],
    dispatcher: Dispatcher,
    *,
    grace: timedelta,
) -> int:
    """Send the jobs that need it once more; return how many were sent."""
    now = utc_now()
    cutoff = now - grace
    not_sent_recently = or_(Job.enqueued_at.is_(None), Job.enqueued_at <= cutoff)
    overdue = and_(
        Job.state.in_((JobState.QUEUED, JobState.RETRY_SCHEDULED)),
        Job.run_after <= cutoff,
    )
    abandoned = and_(Job.state == JobState.RUNNING, Job.lease_until < now)
    async with sessions.begin() as session:
        job_ids = list(
            (
                await session.execute(
                    select(Job.id)
                    .where(not_sent_recently, or_(overdue, abandoned))
                    .order_by(Job.run_after)
                    .limit(BATCH_SIZE)
                    .with_for_update(skip_locked=True)
                )
            ).scalars()
        )
        if job_ids:
            await session.execute(
                update(Job).where(Job.id.in_(job_ids)).values(enqueued_at=now)
            )
    if job_ids:
        logger.warning(
            "relay sending %d job(s) again, first ids: %s",
            len(job_ids),
            ", ".join(job_ids[:5]),
        )
        await dispatcher.dispatch(job_ids)
    return len(job_ids)


async def run_relay(
    settings: Settings,
    sessions: async_sessionmaker[AsyncSession],
    dispatcher: Dispatcher,
    stop: asyncio.Event,
) -> None:
    """Run ``relay_once`` every interval until ``stop`` is set."""
    grace = timedelta(seconds=settings.relay_grace_seconds)
    logger.info(
        "relay started: every %.1f s, grace %.1f s",
        settings.relay_interval_seconds,
        settings.relay_grace_seconds,
    )
    while not stop.is_set():
        try:
            await relay_once(sessions, dispatcher, grace=grace)
        except Exception:
            # The relay must outlive a database restart; it tries again later.
            logger.error("relay pass failed; retrying next interval", exc_info=True)
        try:
            await asyncio.wait_for(stop.wait(), timeout=settings.relay_interval_seconds)
        except TimeoutError:
            pass
    logger.info("relay stopped")


async def _main(settings: Settings) -> None:
    from hub.jobs.actors import send_job

    engine = create_engine(settings.database_url, pool_size=2)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stop.set)
    try:
        await run_relay(
            settings, create_session_factory(engine), Dispatcher(send_job), stop
        )
    finally:
        await engine.dispose()


def main() -> None:
    settings = settings_or_exit()
    exit_on_startup_error(lambda: asyncio.run(_main(settings)))
