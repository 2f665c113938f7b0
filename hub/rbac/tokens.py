"""Bearer tokens, configured as SHA-256 hashes and mapped to principals.

``HUB_TOKENS`` lists entries separated by commas, each
``principal:role[+role...]:sha256hex``, for example
``checkout:service:9f86d0...``. Only hashes are configured, so the
configuration never contains a usable token. Tokens are random values of at
least 32 bytes (``hub-token`` makes one), which is why a plain SHA-256 is
enough and no password hash is needed.
"""

from __future__ import annotations

import argparse
import hashlib
import hmac
import re
import secrets
from dataclasses import dataclass

from hub.errors import ConfigurationError
from hub.rbac.permissions import ROLE_PERMISSIONS

PRINCIPAL_PATTERN = re.compile(r"^[A-Za-z0-9_.\-]{1,128}$")
HASH_PATTERN = re.compile(r"^[0-9a-f]{64}$")


@dataclass(frozen=True)
class Principal:
    """An authenticated caller."""

    name: str
    roles: frozenset[str]


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def _parse_entry(entry: str, position: int) -> tuple[str, Principal]:
    parts = entry.split(":")
    if len(parts) != 3:
        raise ConfigurationError(
            f"HUB_TOKENS entry {position}: expected 'principal:role[+role]:sha256hex'"
        )
    name, roles_text, token_hash = (part.strip() for part in parts)
    if not PRINCIPAL_PATTERN.fullmatch(name):
        raise ConfigurationError(
            f"HUB_TOKENS entry {position}: principal must be 1 to 128 letters, "
            "digits, '.', '_' or '-'"
        )
    roles = frozenset(role for role in roles_text.split("+") if role)
    unknown = sorted(roles - ROLE_PERMISSIONS.keys())
    if not roles or unknown:
        raise ConfigurationError(
            f"HUB_TOKENS entry {position} ({name}): unknown or missing role "
            f"{', '.join(unknown) or '(none)'}; known roles: "
            f"{', '.join(sorted(ROLE_PERMISSIONS))}"
        )
    if not HASH_PATTERN.fullmatch(token_hash):
        raise ConfigurationError(
            f"HUB_TOKENS entry {position} ({name}): expected the token's SHA-256 "
            "as 64 lower-case hex digits; 'hub-token' prints one"
        )
    return token_hash, Principal(name=name, roles=roles)


class TokenStore:
    """Looks up the principal of a bearer token by the token's hash."""

    def __init__(self, principals: dict[str, Principal]):
        self._principals = principals

    @classmethod
    def parse(cls, config: str) -> TokenStore:
        principals: dict[str, Principal] = {}
        entries = [entry for entry in config.split(",") if entry.strip()]
        for position, entry in enumerate(entries, start=1):
            token_hash, principal = _parse_entry(entry, position)
            if token_hash in principals:
                raise ConfigurationError(
                    f"HUB_TOKENS entry {position} ({principal.name}): the same token "
                    "hash is configured twice"
                )
            principals[token_hash] = principal
        return cls(principals)

    def authenticate(self, token: str) -> Principal | None:
        presented = hash_token(token)
        for token_hash, principal in self._principals.items():
            if hmac.compare_digest(presented, token_hash):
                return principal
        return None

    def __len__(self) -> int:
        return len(self._principals)


def main() -> None:
    parser = argparse.ArgumentParser(
        description="Make a new random bearer token and its HUB_TOKENS entry."
    )
    parser.add_argument("principal", help="the caller's name, e.g. checkout")
    parser.add_argument(
        "roles", help=f"roles joined by '+', from: {', '.join(ROLE_PERMISSIONS)}"
    )
    options = parser.parse_args()
    if not PRINCIPAL_PATTERN.fullmatch(options.principal):
        raise SystemExit(
            "hub-token: invalid principal: use 1 to 128 letters, digits, '.', '_' "
            "or '-'"
        )
    token = secrets.token_urlsafe(32)
    entry = f"{options.principal}:{options.roles}:{hash_token(token)}"
    try:
        TokenStore.parse(entry)
    except ConfigurationError as exc:
        # The message speaks of HUB_TOKENS entries; here the input is argv.
        reason = str(exc).split(": ", 1)[-1]
        raise SystemExit(f"hub-token: invalid principal or roles: {reason}") from None
    print(f"token (give to the caller, store nowhere else): {token}")
    print(f"HUB_TOKENS entry: {entry}")
