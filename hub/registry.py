"""The provider registry: which provider serves an operation, and how.

Today one provider, Rapyd, serves payments in every country. The registry
is the single place that maps (operation type, country) to a provider and
builds its adapter and webhook verifier from the settings.
"""

from __future__ import annotations

from dataclasses import dataclass

import aiohttp

from adapters.base import PaymentAdapter, WebhookVerifier
from adapters.rapyd.client import RapydAdapter
from adapters.rapyd.config import RapydConfig
from adapters.rapyd.webhooks import RapydWebhookVerifier
from hub.config import RetryPolicy, Settings
from hub.errors import ConfigurationError
from hub.secrets import resolve_secret

RAPYD = "rapyd"


@dataclass(frozen=True)
class Route:
    provider: str
    timeout_seconds: float
    retry: RetryPolicy


class Registry:
    def __init__(self, settings: Settings):
        self._settings = settings

    def route(self, operation_type: str, country: str) -> Route:
        """Return the provider route for an operation type in a country."""
        if operation_type != "payment":
            raise ConfigurationError(f"no provider serves {operation_type} operations")
        return Route(
            provider=RAPYD,
            timeout_seconds=self._settings.rapyd.timeout_seconds,
            retry=self._settings.retry,
        )

    def rapyd_config(self) -> RapydConfig:
        """Build Rapyd's adapter configuration, resolving its secret now."""
        rapyd = self._settings.rapyd
        return RapydConfig(
            base_url=rapyd.base_url,
            access_key=rapyd.access_key,
            secret_key=resolve_secret(
                rapyd.secret_key_ref, setting="HUB_RAPYD_SECRET_KEY"
            ),
            webhook_url=rapyd.webhook_url,
            timeout_seconds=rapyd.timeout_seconds,
            webhook_tolerance_seconds=rapyd.webhook_tolerance_seconds,
        )

    def payment_adapter(
        self, provider: str, session: aiohttp.ClientSession
    ) -> PaymentAdapter:
        if provider != RAPYD:
            raise ConfigurationError(f"unknown payment provider {provider!r}")
        return RapydAdapter(self.rapyd_config(), session)

    def webhook_verifier(self, provider: str) -> WebhookVerifier | None:
        """Return the verifier for a provider's webhooks, or None if unknown."""
        if provider != RAPYD:
            return None
        return RapydWebhookVerifier(self.rapyd_config())

    @property
    def webhook_providers(self) -> tuple[str, ...]:
        return (RAPYD,)
