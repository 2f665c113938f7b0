"""The Dramatiq actors. Start workers with ``dramatiq hub.jobs.actors``.

Importing this module installs the broker from the settings (Redis when
``REDIS_URL`` is set). The worker's resources (database engine, HTTP client,
circuit breakers) are built on first use inside the worker's event loop and
closed when the worker shuts down.
"""

from __future__ import annotations

import asyncio
import logging

import aiohttp
import dramatiq
from dramatiq.middleware import Middleware
from dramatiq.middleware.asyncio import get_event_loop_thread

from hub.config import Settings, load_settings
from hub.jobs.breakers import Breakers
from hub.jobs.broker import QUEUE_NAME, install_broker
from hub.jobs.outbox import Dispatcher
from hub.jobs.runner import WorkerContext, execute_job
from hub.persistence.database import create_engine, create_session_factory
from hub.registry import Registry

logger = logging.getLogger(__name__)

broker = install_broker()

_context: WorkerContext | None = None
_context_lock = asyncio.Lock()
_settings: Settings | None = None


def use_settings(settings: Settings) -> None:
    """Make this process's workers use ``settings`` instead of the environment.

    Dev mode calls this after binding its ports.
    """
    global _settings
    _settings = settings


def send_job(job_id: str, delay_seconds: float = 0.0) -> None:
    """Send one job to the workers; the Dispatcher calls this off the loop."""
    if delay_seconds > 0:
        run_job.send_with_options(args=(job_id,), delay=int(delay_seconds * 1000))
    else:
        run_job.send(job_id)


async def worker_context() -> WorkerContext:
    """Return this process's worker context, building it on first use."""
    global _context
    async with _context_lock:
        if _context is None:
            settings = _settings or load_settings()
            engine = create_engine(settings.database_url)
            _context = WorkerContext(
                settings=settings,
                engine=engine,
                sessions=create_session_factory(engine),
                registry=Registry(settings),
                http=aiohttp.ClientSession(),
                breakers=Breakers(settings),
                dispatcher=Dispatcher(send_job),
            )
            logger.info(
                "worker context ready (database %s)", engine.url.render_as_string()
            )
        return _context


async def close_worker_context() -> None:
    global _context
    if _context is None:
        return
    await _context.http.close()
    await _context.engine.dispose()
    _context.breakers.close()
    _context = None


class WorkerResources(Middleware):
    """Closes the worker context before the event loop thread stops."""

    def before_worker_shutdown(
        self, broker: dramatiq.Broker, worker: dramatiq.Worker
    ) -> None:
        thread = get_event_loop_thread()
        if thread is not None:
            thread.run_coroutine(close_worker_context())


broker.add_middleware(WorkerResources())


@dramatiq.actor(queue_name=QUEUE_NAME, max_retries=0, time_limit=3_600_000)
async def run_job(job_id: str) -> None:
    """Run the job whose row in the database describes the work."""
    await execute_job(await worker_context(), job_id)
