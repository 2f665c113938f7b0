"""Logging set-up for the hub's entry points; library modules only log."""

from __future__ import annotations

import logging

LOG_FORMAT = "%(asctime)s %(levelname)s %(process)d %(name)s: %(message)s"


def configure_logging(level: str = "INFO") -> None:
    """Send log lines to standard error at ``level`` (a name such as INFO)."""
    logging.basicConfig(level=level, format=LOG_FORMAT)
    # One line per request from aiohttp's access log is enough at INFO.
    logging.getLogger("aiohttp.access").setLevel(
        max(logging.INFO, logging.getLevelName(level))
    )
