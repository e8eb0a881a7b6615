"""The two servers under test, each a uvicorn process with identical settings."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import httpx

from app.config import PROJECT_ROOT

# Both servers: one worker, warnings only, no access log (logging every
# request would be measured too).
UVICORN_FLAGS = ["--workers", "1", "--log-level", "warning", "--no-access-log"]
START_TIMEOUT = 60.0  # seconds


@dataclass(frozen=True)
class RunningServer:
    """A started server: its name and base URL."""

    name: str
    url: str
    pid: int


def free_port() -> int:
    """A loopback TCP port nobody listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def _wait_ready(process: subprocess.Popen[bytes], url: str, probe: str) -> None:
    deadline = time.monotonic() + START_TIMEOUT
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"{url}: the server exited with {process.returncode}")
        try:
            if httpx.get(url + probe, timeout=2).status_code < 500:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.1)
    raise RuntimeError(f"{url}: not ready after {START_TIMEOUT:g}s")


@contextmanager
def uvicorn_server(
    name: str, factory: str, env: dict[str, str], probe: str, port: int
) -> Iterator[RunningServer]:
    """Run `uvicorn --factory <factory>` on `port` until the block ends."""
    command = [sys.executable, "-m", "uvicorn", "--factory", factory]
    command += ["--host", "127.0.0.1", "--port", str(port), *UVICORN_FLAGS]
    process = subprocess.Popen(command, cwd=PROJECT_ROOT, env={**os.environ, **env})
    url = f"http://127.0.0.1:{port}"
    try:
        _wait_ready(process, url, probe)
        yield RunningServer(name=name, url=url, pid=process.pid)
    finally:
        process.send_signal(signal.SIGINT)
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def gate_env(runtime_url: str, admin_url: str, pool_size: int, port: int) -> dict[str, str]:
    """sessiongate's settings for the benchmark (no overflow: a fixed pool, like bare's)."""
    return {
        "PUBLIC_URL": f"http://127.0.0.1:{port}",
        "DATABASE_URL": runtime_url,
        "DATABASE_ADMIN_URL": admin_url,
        "SECRET_KEYS": "bench-" + os.urandom(24).hex(),
        "DEMO": "true",
        "POOL_SIZE": str(pool_size),
        "POOL_MAX_OVERFLOW": "0",
        "LOG_LEVEL": "warning",
    }


def bare_env(admin_dsn: str, pool_size: int) -> dict[str, str]:
    """The baseline's settings: a superuser DSN and the same pool size."""
    return {"BARE_DATABASE_URL": admin_dsn, "BARE_POOL_SIZE": str(pool_size)}
