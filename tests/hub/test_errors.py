from __future__ import annotations

from pathlib import Path

from hub.errors import CATALOG

ERRORS_DOC = Path(__file__).resolve().parents[2] / "docs" / "errors.md"


def documented_rows() -> set[str]:
    lines = ERRORS_DOC.read_text(encoding="utf-8").splitlines()
    return {line for line in lines if line.startswith("| `")}


def test_error_table_matches_catalog() -> None:
    expected = {
        f"| `{error.reason}` | `{error.__name__}` | {error.grpc_code.name} "
        f"| {error.http_status} | {'yes' if error.retryable else 'no'} |"
        for error in CATALOG
    }

    assert documented_rows() == expected


def test_catalog_reasons_are_unique() -> None:
    reasons = [error.reason for error in CATALOG]

    assert len(reasons) == len(set(reasons))
