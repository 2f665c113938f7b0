"""Start-up of the hub's console scripts: settings, logging, clean exits.

A process that cannot start because of its configuration or an unreachable
database exits with one line naming the problem, not a traceback.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar

from sqlalchemy.exc import DBAPIError

from hub.config import Settings, load_settings
from hub.errors import ConfigurationError
from hub.logs import configure_logging

T = TypeVar("T")


def settings_or_exit() -> Settings:
    """Load and validate the settings, then configure logging from them."""
    try:
        settings = load_settings()
    except ConfigurationError as exc:
        raise SystemExit(f"configuration error: {exc}") from None
    configure_logging(settings.log_level)
    return settings


def exit_on_startup_error(run: Callable[[], T]) -> T:
    """Call ``run``; turn configuration and database errors into a clean exit."""
    try:
        return run()
    except ConfigurationError as exc:
        raise SystemExit(f"configuration error: {exc}") from None
    except DBAPIError as exc:
        # The driver's message names host, port and database, never the password.
        reason = str(exc.orig).strip().splitlines()[0] if exc.orig else str(exc)
        raise SystemExit(
            f"database error: {reason}; check DATABASE_URL and that the database "
            "exists and is running"
        ) from None
