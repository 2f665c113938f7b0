from __future__ import annotations

import pytest

from hub.config import database_url_from_env, load_settings, normalize_database_url
from hub.errors import ConfigurationError

PRODUCTION = {
    "HUB_MODE": "production",
    "DATABASE_URL": "postgresql://postgres@127.0.0.1:5432/hub",
    "REDIS_URL": "redis://127.0.0.1:6379/0",
    "HUB_TOKENS": "svc:service:" + "0" * 64,
    "HUB_RAPYD_BASE_URL": "https://sandboxapi.rapyd.net",
    "HUB_RAPYD_ACCESS_KEY": "access",
    "HUB_RAPYD_SECRET_KEY": "env:RAPYD_SECRET_KEY",
    "HUB_RAPYD_WEBHOOK_URL": "https://hub.example.com/webhooks/rapyd",
}


def test_dev_mode_needs_no_configuration() -> None:
    settings = load_settings({})

    assert settings.dev_mode
    assert settings.database_url.startswith("sqlite+aiosqlite:///")
    assert settings.redis_url is None


def test_production_settings_load() -> None:
    settings = load_settings(PRODUCTION)

    assert settings.database_url == "postgresql+psycopg://postgres@127.0.0.1:5432/hub"


@pytest.mark.parametrize(
    "missing",
    [
        "DATABASE_URL",
        "REDIS_URL",
        "HUB_TOKENS",
        "HUB_RAPYD_BASE_URL",
        "HUB_RAPYD_ACCESS_KEY",
        "HUB_RAPYD_SECRET_KEY",
        "HUB_RAPYD_WEBHOOK_URL",
    ],
)
def test_production_requires_variable(missing: str) -> None:
    env = {k: v for k, v in PRODUCTION.items() if k != missing}

    with pytest.raises(ConfigurationError, match=missing):
        load_settings(env)


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("HUB_GATEWAY_PORT", "http"),
        ("HUB_GATEWAY_PORT", "70000"),
        ("HUB_JOB_MAX_ATTEMPTS", "0"),
        ("HUB_JOB_MAX_ATTEMPTS", "2.5"),
        ("HUB_RAPYD_TIMEOUT_SECONDS", "-1"),
        ("HUB_MODE", "prod"),
    ],
)
def test_bad_value_names_variable(name: str, value: str) -> None:
    with pytest.raises(ConfigurationError, match=name):
        load_settings({name: value})


def test_lease_must_outlast_provider_timeout() -> None:
    env = {"HUB_RAPYD_TIMEOUT_SECONDS": "30", "HUB_JOB_LEASE_SECONDS": "20"}

    with pytest.raises(ConfigurationError, match="HUB_JOB_LEASE_SECONDS"):
        load_settings(env)


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("postgres://u@h/db", "postgresql+psycopg://u@h/db"),
        ("postgresql://u@h/db", "postgresql+psycopg://u@h/db"),
        ("sqlite:///x.db", "sqlite+aiosqlite:///x.db"),
    ],
)
def test_database_url_gets_async_driver(url: str, expected: str) -> None:
    assert normalize_database_url(url) == expected


def test_unsupported_database_url_rejected() -> None:
    with pytest.raises(ConfigurationError, match="DATABASE_URL"):
        normalize_database_url("mysql://u@h/db")


def test_production_lists_every_missing_variable() -> None:
    with pytest.raises(ConfigurationError) as caught:
        load_settings({"HUB_MODE": "production"})

    for name in PRODUCTION:
        if name != "HUB_MODE":
            assert name in str(caught.value)


def test_unknown_log_level_rejected() -> None:
    with pytest.raises(ConfigurationError, match="HUB_LOG_LEVEL"):
        load_settings({"HUB_LOG_LEVEL": "LOUD"})


def test_log_level_is_case_insensitive() -> None:
    assert load_settings({"HUB_LOG_LEVEL": "debug"}).log_level == "DEBUG"


def test_production_rejects_sqlite() -> None:
    env = {**PRODUCTION, "DATABASE_URL": "sqlite:///hub.sqlite3"}

    with pytest.raises(ConfigurationError, match="PostgreSQL"):
        load_settings(env)


def test_literal_secret_key_rejected_at_start() -> None:
    env = {**PRODUCTION, "HUB_RAPYD_SECRET_KEY": "plain-secret"}

    with pytest.raises(ConfigurationError) as caught:
        load_settings(env)

    assert "HUB_RAPYD_SECRET_KEY" in str(caught.value)
    assert "plain-secret" not in str(caught.value)


def test_database_url_alone_for_migrations() -> None:
    env = {"HUB_MODE": "production", "DATABASE_URL": "postgresql://u@h/db"}

    assert database_url_from_env(env) == "postgresql+psycopg://u@h/db"


def test_database_url_required_in_production() -> None:
    with pytest.raises(ConfigurationError, match="DATABASE_URL"):
        database_url_from_env({"HUB_MODE": "production"})
