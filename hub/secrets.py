"""Secret references, resolved at the moment of use.

Configuration names a secret by reference, never by value: ``env:NAME``
reads an environment variable and ``file:PATH`` reads a file (a trailing
newline is dropped, as mounted secrets usually end with one). The resolved
value is never stored in the database, logged or returned by an RPC.
"""

from __future__ import annotations

import os
from pathlib import Path

from hub.errors import ConfigurationError


def resolve_secret(reference: str, *, setting: str) -> str:
    """Return the secret that ``reference`` points to.

    ``setting`` names the configuration entry, so an error names the variable
    to fix without printing the secret.
    """
    scheme, _, target = reference.partition(":")
    if scheme == "env" and target:
        value = os.environ.get(target)
        if not value:
            raise ConfigurationError(
                f"{setting}: environment variable {target} is unset or empty"
            )
        return value
    if scheme == "file" and target:
        try:
            value = Path(target).read_text(encoding="utf-8").rstrip("\r\n")
        except OSError as exc:
            raise ConfigurationError(
                f"{setting}: cannot read secret file {target}: {exc.strerror}"
            ) from exc
        if not value:
            raise ConfigurationError(f"{setting}: secret file {target} is empty")
        return value
    raise ConfigurationError(
        f"{setting}: expected a secret reference 'env:NAME' or 'file:PATH'"
    )
