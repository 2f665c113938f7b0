"""Settings of the Rapyd adapter and webhook verifier."""

from __future__ import annotations

from dataclasses import dataclass, field
from urllib.parse import urlsplit

from hub.errors import ConfigurationError


@dataclass(frozen=True)
class RapydConfig:
    """Rapyd credentials and limits.

    ``secret_key`` is the resolved secret, not an ``env:`` or ``file:``
    reference, and is left out of ``repr``. ``base_url`` is scheme and host
    only (``https://sandboxapi.rapyd.net``) because Rapyd signs the path from
    ``/v1`` on. ``webhook_url`` is the public URL registered with Rapyd and
    is used verbatim to verify webhook signatures.
    """

    base_url: str
    access_key: str
    secret_key: str = field(repr=False)
    webhook_url: str
    timeout_seconds: float = 10.0
    webhook_tolerance_seconds: int = 300

    def __post_init__(self) -> None:
        parts = urlsplit(self.base_url)
        if parts.scheme not in ("http", "https") or not parts.netloc:
            raise ConfigurationError(
                f"rapyd base_url {self.base_url!r} is invalid: "
                "expected http(s)://host[:port]"
            )
        if parts.path not in ("", "/") or parts.query:
            raise ConfigurationError(
                f"rapyd base_url {self.base_url!r} must not contain a path or "
                "query, because Rapyd signs the path starting at /v1"
            )
        if not self.access_key:
            raise ConfigurationError("rapyd access_key is empty")
        if not self.secret_key:
            raise ConfigurationError("rapyd secret_key is empty")
        if not self.webhook_url:
            raise ConfigurationError("rapyd webhook_url is empty")
        if self.timeout_seconds <= 0:
            raise ConfigurationError(
                f"rapyd timeout_seconds must be positive, got {self.timeout_seconds}"
            )
        if self.webhook_tolerance_seconds <= 0:
            raise ConfigurationError(
                "rapyd webhook_tolerance_seconds must be positive, "
                f"got {self.webhook_tolerance_seconds}"
            )
