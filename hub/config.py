"""Settings read from environment variables.

Every variable, its default and its meaning is listed in the README's
configuration table. ``load_settings()`` validates all of them at start so a
process with a bad value stops with a message naming the variable, instead
of failing on the first request.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from hub.errors import ConfigurationError

DEV_DATABASE_PATH = Path(".hub") / "dev.sqlite3"


@dataclass(frozen=True)
class RetryPolicy:
    """Attempt limit and backoff bounds for failing jobs."""

    max_attempts: int = 6
    min_backoff_seconds: float = 1.0
    max_backoff_seconds: float = 300.0


@dataclass(frozen=True)
class RapydSettings:
    base_url: str
    access_key: str
    # A reference such as "env:RAPYD_SECRET_KEY"; resolved at use.
    secret_key_ref: str
    webhook_url: str
    timeout_seconds: float = 10.0
    webhook_tolerance_seconds: int = 300


@dataclass(frozen=True)
class Settings:
    dev_mode: bool
    database_url: str
    redis_url: str | None
    broker_namespace: str
    grpc_address: str
    gateway_host: str
    gateway_port: int
    tokens: str
    rapyd: RapydSettings
    retry: RetryPolicy = field(default_factory=RetryPolicy)
    job_lease_seconds: float = 60.0
    relay_interval_seconds: float = 5.0
    relay_grace_seconds: float = 30.0
    webhook_max_body_bytes: int = 1024 * 1024
    breaker_fail_max: int = 5
    breaker_reset_seconds: float = 30.0
    log_level: str = "INFO"


def normalize_database_url(url: str) -> str:
    """Return ``url`` with the async drivers the hub uses: psycopg 3 and aiosqlite."""
    for prefix in ("postgresql+psycopg://", "sqlite+aiosqlite://"):
        if url.startswith(prefix):
            return url
    for prefix in ("postgresql://", "postgres://"):
        if url.startswith(prefix):
            return "postgresql+psycopg://" + url[len(prefix) :]
    if url.startswith("sqlite://"):
        return "sqlite+aiosqlite://" + url[len("sqlite://") :]
    raise ConfigurationError(
        "DATABASE_URL: expected a postgresql:// or sqlite:// URL, "
        f"got one starting with {url.split(':', 1)[0]!r}"
    )


def _number(
    env: Mapping[str, str], name: str, default: float, *, minimum: float
) -> float:
    raw = env.get(name)
    if raw is None or raw == "":
        return default
    try:
        value = float(raw)
    except ValueError:
        raise ConfigurationError(f"{name}: expected a number, got {raw!r}") from None
    if value < minimum:
        raise ConfigurationError(f"{name}: must be at least {minimum}, got {raw!r}")
    return value


def _integer(env: Mapping[str, str], name: str, default: int, *, minimum: int) -> int:
    value = _number(env, name, default, minimum=minimum)
    if value != int(value):
        raise ConfigurationError(f"{name}: expected a whole number, got {value}")
    return int(value)


def _port(env: Mapping[str, str], name: str, default: int) -> int:
    port = _integer(env, name, default, minimum=0)
    if port > 65535:
        raise ConfigurationError(f"{name}: expected a port up to 65535, got {port}")
    return port


LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")


def _required(
    env: Mapping[str, str],
    name: str,
    dev_mode: bool,
    dev_default: str,
    missing: list[str],
) -> str:
    """Return the variable or its dev default; in production, add it to ``missing``."""
    value = env.get(name, "")
    if value:
        return value
    if not dev_mode:
        missing.append(name)
    return dev_default


def database_url_from_env(env: Mapping[str, str] | None = None) -> str:
    """Return the database URL alone, for tools that need nothing else."""
    env = os.environ if env is None else env
    url = env.get("DATABASE_URL", "")
    if not url:
        if env.get("HUB_MODE", "dev") != "dev":
            raise ConfigurationError(
                "DATABASE_URL is required when HUB_MODE=production"
            )
        url = f"sqlite:///{DEV_DATABASE_PATH}"
    return normalize_database_url(url)


def load_settings(env: Mapping[str, str] | None = None) -> Settings:
    """Build the settings from ``env`` (the process environment by default)."""
    env = os.environ if env is None else env
    mode = env.get("HUB_MODE", "dev")
    if mode not in ("dev", "production"):
        raise ConfigurationError(
            f"HUB_MODE: expected 'dev' or 'production', got {mode!r}"
        )
    dev = mode == "dev"
    missing: list[str] = []

    gateway_host = env.get("HUB_GATEWAY_HOST", "127.0.0.1")
    gateway_port = _port(env, "HUB_GATEWAY_PORT", 8080)
    sandbox_port = _port(env, "HUB_SANDBOX_PORT", 8090)
    dev_webhook_url = f"http://{gateway_host}:{gateway_port}/webhooks/rapyd"
    rapyd = RapydSettings(
        base_url=_required(
            env, "HUB_RAPYD_BASE_URL", dev, f"http://127.0.0.1:{sandbox_port}", missing
        ).rstrip("/"),
        access_key=_required(
            env, "HUB_RAPYD_ACCESS_KEY", dev, "sandbox-access-key", missing
        ),
        secret_key_ref=_required(
            env, "HUB_RAPYD_SECRET_KEY", dev, "env:HUB_DEV_RAPYD_SECRET_KEY", missing
        ),
        webhook_url=_required(
            env, "HUB_RAPYD_WEBHOOK_URL", dev, dev_webhook_url, missing
        ),
        timeout_seconds=_number(env, "HUB_RAPYD_TIMEOUT_SECONDS", 10.0, minimum=0.1),
        webhook_tolerance_seconds=_integer(
            env, "HUB_RAPYD_WEBHOOK_TOLERANCE_SECONDS", 300, minimum=1
        ),
    )
    retry = RetryPolicy(
        max_attempts=_integer(env, "HUB_JOB_MAX_ATTEMPTS", 6, minimum=1),
        min_backoff_seconds=_number(
            env, "HUB_RETRY_MIN_BACKOFF_SECONDS", 1.0, minimum=0
        ),
        max_backoff_seconds=_number(
            env, "HUB_RETRY_MAX_BACKOFF_SECONDS", 300.0, minimum=0
        ),
    )
    lease = _number(env, "HUB_JOB_LEASE_SECONDS", 60.0, minimum=1)
    if lease < rapyd.timeout_seconds + 1:
        raise ConfigurationError(
            f"HUB_JOB_LEASE_SECONDS ({lease:g}) must exceed HUB_RAPYD_TIMEOUT_SECONDS "
            f"({rapyd.timeout_seconds:g}) by at least 1 s, or a live worker's job "
            "would be handed to another"
        )
    redis_url = env.get("REDIS_URL") or None
    if not dev and redis_url is None:
        missing.append("REDIS_URL")
    database_url = _required(
        env, "DATABASE_URL", dev, f"sqlite:///{DEV_DATABASE_PATH}", missing
    )
    tokens = _required(env, "HUB_TOKENS", dev, "", missing)
    if missing:
        raise ConfigurationError(
            "HUB_MODE=production needs these variables, which are unset: "
            + ", ".join(sorted(missing))
        )
    if not rapyd.secret_key_ref.startswith(("env:", "file:")):
        raise ConfigurationError(
            "HUB_RAPYD_SECRET_KEY: expected a secret reference 'env:NAME' or "
            "'file:PATH', never the key itself"
        )
    if not dev and not database_url.startswith(
        ("postgresql://", "postgres://", "postgresql+psycopg://")
    ):
        raise ConfigurationError(
            "DATABASE_URL: production needs PostgreSQL (postgresql://...); "
            "SQLite is for dev mode only"
        )
    log_level = env.get("HUB_LOG_LEVEL", "INFO").upper()
    if log_level not in LOG_LEVELS:
        raise ConfigurationError(
            f"HUB_LOG_LEVEL: expected one of {', '.join(LOG_LEVELS)}, got {log_level!r}"
        )

    return Settings(
        dev_mode=dev,
        database_url=normalize_database_url(database_url),
        redis_url=redis_url,
        broker_namespace=env.get("HUB_BROKER_NAMESPACE", "hub"),
        grpc_address=env.get("HUB_GRPC_ADDRESS", "127.0.0.1:50051"),
        gateway_host=gateway_host,
        gateway_port=gateway_port,
        tokens=tokens,
        rapyd=rapyd,
        retry=retry,
        job_lease_seconds=lease,
        relay_interval_seconds=_number(
            env, "HUB_RELAY_INTERVAL_SECONDS", 5.0, minimum=0.05
        ),
        relay_grace_seconds=_number(env, "HUB_RELAY_GRACE_SECONDS", 30.0, minimum=0),
        webhook_max_body_bytes=_integer(
            env, "HUB_WEBHOOK_MAX_BODY_BYTES", 1024 * 1024, minimum=1024
        ),
        breaker_fail_max=_integer(env, "HUB_BREAKER_FAIL_MAX", 5, minimum=1),
        breaker_reset_seconds=_number(
            env, "HUB_BREAKER_RESET_SECONDS", 30.0, minimum=1
        ),
        log_level=log_level,
    )
