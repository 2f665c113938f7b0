from __future__ import annotations

import pytest

from hub.errors import ConfigurationError
from hub.rbac.tokens import TokenStore, hash_token


def entry(name: str, roles: str, token: str) -> str:
    return f"{name}:{roles}:{hash_token(token)}"


def test_token_maps_to_principal() -> None:
    store = TokenStore.parse(entry("checkout", "service+support", "t1"))

    principal = store.authenticate("t1")

    assert principal is not None
    assert principal.name == "checkout"
    assert principal.roles == {"service", "support"}


def test_unknown_token_is_rejected() -> None:
    store = TokenStore.parse(entry("checkout", "service", "t1"))

    assert store.authenticate("t2") is None


def test_configuration_holds_no_clear_token() -> None:
    config = entry("checkout", "service", "very-secret-token")

    assert "very-secret-token" not in config


@pytest.mark.parametrize(
    ("config", "message"),
    [
        ("checkout:service", "expected"),
        ("checkout:wizard:" + "0" * 64, "unknown or missing role"),
        ("checkout::" + "0" * 64, "unknown or missing role"),
        ("check out:service:" + "0" * 64, "principal"),
        ("checkout:service:abc", "SHA-256"),
        ("checkout:service:" + "A" * 64, "SHA-256"),
    ],
)
def test_bad_entry_is_explained(config: str, message: str) -> None:
    with pytest.raises(ConfigurationError, match=message):
        TokenStore.parse(config)


def test_duplicate_token_hash_rejected() -> None:
    config = entry("a", "service", "same") + "," + entry("b", "ops", "same")

    with pytest.raises(ConfigurationError, match="twice"):
        TokenStore.parse(config)
