from __future__ import annotations

from pathlib import Path

import pytest

from hub.errors import ConfigurationError
from hub.secrets import resolve_secret


def test_env_reference_resolves(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HUB_TEST_SECRET", "s3cret")

    assert resolve_secret("env:HUB_TEST_SECRET", setting="X") == "s3cret"


def test_file_reference_drops_trailing_newline(tmp_path: Path) -> None:
    secret_file = tmp_path / "secret"
    secret_file.write_text("s3cret\n")

    assert resolve_secret(f"file:{secret_file}", setting="X") == "s3cret"


def test_unset_env_reference_names_setting(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("HUB_TEST_SECRET", raising=False)

    with pytest.raises(ConfigurationError, match="HUB_RAPYD_SECRET_KEY"):
        resolve_secret("env:HUB_TEST_SECRET", setting="HUB_RAPYD_SECRET_KEY")


def test_missing_file_reference_rejected(tmp_path: Path) -> None:
    with pytest.raises(ConfigurationError, match="cannot read"):
        resolve_secret(f"file:{tmp_path / 'absent'}", setting="X")


def test_literal_secret_rejected() -> None:
    with pytest.raises(ConfigurationError) as caught:
        resolve_secret("plain-secret-value", setting="X")

    assert "plain-secret-value" not in str(caught.value)
