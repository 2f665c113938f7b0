"""generated/ must be exactly what hub-codegen makes from protos/."""

from __future__ import annotations

from pathlib import Path

from hub.codegen import OUTPUT_ROOT, differences, generate


def test_generated_code_is_up_to_date(tmp_path: Path) -> None:
    generate(tmp_path)

    assert differences(tmp_path, OUTPUT_ROOT) == []


def test_generated_code_includes_type_stubs() -> None:
    stubs = {path.name for path in (OUTPUT_ROOT / "integrations" / "v1").glob("*.pyi")}

    assert {"hub_pb2.pyi", "hub_pb2_grpc.pyi", "admin_pb2_grpc.pyi"} <= stubs
