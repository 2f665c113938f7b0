"""The README's first command: hub-dev --demo, as a new user runs it."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

HUB_DEV = Path(sys.executable).parent / "hub-dev"
DEMO_WAIT_SECONDS = 60
STOP_WAIT_SECONDS = 20


def dev_environment(**changes: str) -> dict[str, str]:
    """Return the environment of a user with no hub configuration."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("HUB_", "REDIS_"))}
    env.pop("DATABASE_URL", None)
    # Port 0 lets the system pick free ports, so runs never clash.
    env.update(
        HUB_GRPC_ADDRESS="127.0.0.1:0", HUB_GATEWAY_PORT="0", HUB_SANDBOX_PORT="0"
    )
    env.update(changes)
    return env


def read_until(process: subprocess.Popen[str], marker: str, seconds: float) -> str:
    """Collect output lines until one contains ``marker`` or time runs out."""
    assert process.stdout is not None
    lines: list[str] = []
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        line = process.stdout.readline()
        if not line:
            break
        lines.append(line)
        if marker in line:
            break
    return "".join(lines)


def test_dev_demo_reaches_succeeded(tmp_path: Path) -> None:
    process = subprocess.Popen(
        [HUB_DEV, "--demo"],
        cwd=tmp_path,
        env=dev_environment(),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
    )
    try:
        output = read_until(
            process, '"state": "OPERATION_STATE_SUCCEEDED"', DEMO_WAIT_SECONDS
        )

        process.send_signal(signal.SIGINT)
        exit_code = process.wait(timeout=STOP_WAIT_SECONDS)
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()

    assert "OPERATION_STATE_PENDING" in output, output
    assert '"state": "OPERATION_STATE_SUCCEEDED"' in output, output
    assert exit_code == 0
    assert (tmp_path / ".hub" / "dev.sqlite3").exists()


def test_dev_mode_exits_when_grpc_port_is_taken(tmp_path: Path) -> None:
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", 0))
        holder.listen()
        occupied_address = f"127.0.0.1:{holder.getsockname()[1]}"

        result = subprocess.run(
            [HUB_DEV],
            cwd=tmp_path,
            env=dev_environment(HUB_GRPC_ADDRESS=occupied_address),
            capture_output=True,
            text=True,
            timeout=60,
        )

    assert result.returncode == 1
    assert "configuration error: HUB_GRPC_ADDRESS" in result.stderr
    assert "Traceback" not in result.stderr
