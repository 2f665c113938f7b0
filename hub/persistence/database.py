"""Engines and sessions for PostgreSQL (psycopg 3) and the dev SQLite file."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from sqlalchemy import event
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import make_url
from sqlalchemy.exc import InterfaceError, OperationalError
from sqlalchemy.exc import TimeoutError as PoolTimeoutError
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker
from sqlalchemy.ext.asyncio import create_async_engine as _create_async_engine

# Errors that mean the database could not be reached or did not respond,
# as opposed to a statement it rejected.
UNREACHABLE_DATABASE_ERRORS = (
    TimeoutError,
    OperationalError,
    InterfaceError,
    PoolTimeoutError,
    OSError,
)

# Connecting to an unreachable database fails after this long, so the
# gateway can respond 503 while the provider still waits for a response.
CONNECT_TIMEOUT_SECONDS = 5


def create_engine(url: str, *, pool_size: int = 10) -> AsyncEngine:
    """Create an async engine for ``url`` with the hub's connection settings."""
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite":
        return _create_sqlite_engine(url)
    return _create_async_engine(
        url,
        pool_size=pool_size,
        max_overflow=pool_size,
        pool_pre_ping=True,
        pool_timeout=CONNECT_TIMEOUT_SECONDS,
        connect_args={"connect_timeout": CONNECT_TIMEOUT_SECONDS},
    )


def ensure_sqlite_directory(url: str) -> None:
    """Create the folder of a SQLite database file, which SQLite will not."""
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite" and parsed.database not in (
        None,
        "",
        ":memory:",
    ):
        Path(parsed.database).parent.mkdir(parents=True, exist_ok=True)


def _create_sqlite_engine(url: str) -> AsyncEngine:
    ensure_sqlite_directory(url)
    engine = _create_async_engine(url, connect_args={"timeout": 30})

    # WAL lets the dev worker read while the hub writes; foreign keys are off
    # by default in SQLite.
    @event.listens_for(engine.sync_engine, "connect")
    def _configure(dbapi_connection: Any, _record: Any) -> None:
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute("PRAGMA busy_timeout=30000")
        cursor.close()

    return engine


def create_session_factory(engine: AsyncEngine) -> async_sessionmaker[AsyncSession]:
    return async_sessionmaker(engine, expire_on_commit=False)


def dialect_insert(session: AsyncSession) -> Any:
    """Return the INSERT construct of the session's dialect.

    Both PostgreSQL's and SQLite's support ``on_conflict_do_nothing``, which
    lets a unique constraint decide between concurrent writers.
    """
    if session.get_bind().dialect.name == "postgresql":
        return postgresql.insert
    return sqlite.insert
