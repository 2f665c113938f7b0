"""Logging set-up for the hub's entry points; library modules only log."""

from __future__ import annotations

import logging

LOG_FORMAT = "%(asctime)s %(levelname)s %(process)d %(name)s: %(message)s"


def configure_logging(level: str = "INFO") -> None:
    """Send log lines to standard error at ``level`` (a name such as INFO)."""
    logging.basicConfig(level=level, format=LOG_FORMAT)
    # At DEBUG these libraries log every statement or request with its
    # parameters, which buries the hub's own lines.
    quiet_level = max(logging.INFO, logging.getLevelName(level))
    for name in ("aiosqlite", "aiohttp.access"):
        logging.getLogger(name).setLevel(quiet_level)
