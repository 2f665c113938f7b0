"""``hub-worker``: start Dramatiq worker processes for the hub's jobs."""

from __future__ import annotations

import argparse
import os
import sys

from hub.config import load_settings
from hub.errors import ConfigurationError
from hub.jobs.broker import QUEUE_NAME


def main() -> None:
    parser = argparse.ArgumentParser(
        description="Start Dramatiq workers that run the hub's jobs (needs REDIS_URL)."
    )
    parser.add_argument("--processes", type=int, default=2, help="worker processes")
    parser.add_argument("--threads", type=int, default=8, help="threads per process")
    options = parser.parse_args()
    try:
        settings = load_settings()
    except ConfigurationError as exc:
        raise SystemExit(f"configuration error: {exc}") from None
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
