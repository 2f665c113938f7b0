"""Schema migrations with Alembic.

``hub-migrate`` upgrades the database named by ``DATABASE_URL`` to the newest
revision. Production runs it once before starting new hub processes; the dev
mode runs it at start.
"""

from __future__ import annotations

import argparse
import logging
from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy.engine import Connection, make_url
from sqlalchemy.ext.asyncio import AsyncEngine

from hub.config import database_url_from_env, normalize_database_url
from hub.errors import ConfigurationError
from hub.logs import configure_logging
from hub.persistence.database import ensure_sqlite_directory
from hub.startup import exit_on_startup_error

MIGRATIONS = Path(__file__).resolve().parent / "migrations"

logger = logging.getLogger(__name__)


def sync_url(url: str) -> str:
    """Return ``url`` with a synchronous driver, which Alembic needs."""
    parsed = make_url(url)
    if parsed.drivername == "sqlite+aiosqlite":
        parsed = parsed.set(drivername="sqlite")
    return parsed.render_as_string(hide_password=False)


def alembic_config(url: str) -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    # Alembic reads options with ConfigParser interpolation; escape "%".
    config.set_main_option("sqlalchemy.url", sync_url(url).replace("%", "%%"))
    return config


def upgrade(url: str, revision: str = "head") -> None:
    """Upgrade the database at ``url`` to ``revision``."""
    url = normalize_database_url(url)
    ensure_sqlite_directory(url)
    command.upgrade(alembic_config(url), revision)


def main() -> None:
    parser = argparse.ArgumentParser(description="Upgrade the hub's database schema.")
    parser.add_argument("revision", nargs="?", default="head", help="target revision")
    options = parser.parse_args()
    configure_logging("INFO")
    url = exit_on_startup_error(database_url_from_env)
    exit_on_startup_error(lambda: upgrade(url, options.revision))
    logger.info("database schema is at revision %s", options.revision)


def head_revision() -> str:
    script = ScriptDirectory.from_config(alembic_config("sqlite://"))
    head = script.get_current_head()
    assert head is not None
    return head


async def check_schema(engine: AsyncEngine) -> None:
    """Raise ConfigurationError unless the database is at the newest revision."""

    def current(connection: Connection) -> str | None:
        return MigrationContext.configure(connection).get_current_revision()

    async with engine.connect() as connection:
        revision = await connection.run_sync(current)
    head = head_revision()
    if revision != head:
        raise ConfigurationError(
            f"database schema is at revision {revision or 'none'} but this hub "
            f"needs {head}; run 'hub-migrate' first"
        )
