"""``hub-worker``: start Dramatiq worker processes for the hub's jobs."""

from __future__ import annotations

import argparse
import os
import sys

from hub.jobs.broker import QUEUE_NAME
from hub.registry import Registry
from hub.startup import exit_on_startup_error, settings_or_exit


def main() -> None:
    parser = argparse.ArgumentParser(
        description="Start Dramatiq workers that run the hub's jobs (needs REDIS_URL)."
    )
    parser.add_argument("--processes", type=int, default=2, help="worker processes")
    parser.add_argument("--threads", type=int, default=8, help="threads per process")
    options = parser.parse_args()
    settings = settings_or_exit()
    # The workers use the Rapyd secret on every job: check it before starting.
    exit_on_startup_error(lambda: Registry(settings).rapyd_config())
    if settings.redis_url is None:
        raise SystemExit(
            "configuration error: REDIS_URL is required for separate worker "
            "processes; use hub-dev to run everything in one process"
        )
    command = [
        sys.executable,
        "-m",
        "dramatiq",
        "hub.jobs.actors",
        "--queues",
        QUEUE_NAME,
        "--processes",
        str(options.processes),
        "--threads",
        str(options.threads),
    ]
    os.execv(sys.executable, command)
