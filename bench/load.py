"""Driving load: wrk with bench/rotate.lua when available, else bench/pyload.py."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from dataclasses import asdict, dataclass
from pathlib import Path

LUA_SCRIPT = Path(__file__).with_name("rotate.lua")
RESULT_PREFIX = "BENCH_RESULT "


@dataclass(frozen=True)
class PreparedRequest:
    """One request the load generator sends, in turn with the others."""

    method: str
    path: str
    headers: dict[str, str]
    body: str = ""

    def line(self) -> str:
        """The tab-separated line rotate.lua and pyload.py read."""
        fields = [self.method, self.path, self.body]
        fields += [f"{name}: {value}" for name, value in self.headers.items()]
        if any("\t" in field or "\n" in field for field in fields):
            raise ValueError("requests may not contain tabs or newlines")
        return "\t".join(fields)


def write_requests(path: Path, requests: list[PreparedRequest]) -> Path:
    """Write the requests file; returns its path."""
    path.write_text("".join(request.line() + "\n" for request in requests), encoding="utf-8")
    return path


def read_requests(path: Path) -> list[PreparedRequest]:
    """Parse a requests file back (for the Python load generator)."""
    requests = []
    for line in path.read_text(encoding="utf-8").splitlines():
        if not line:
            continue
        method, target, body, *header_fields = line.split("\t")
        headers = {}
        for field in header_fields:
            name, _, value = field.partition(":")
            headers[name] = value.strip()
        requests.append(PreparedRequest(method, target, headers, body))
    return requests


@dataclass(frozen=True)
class Measurement:
    """One load run against one server."""

    requests: int
    seconds: float
    p50_ms: float
    p99_ms: float
    http_errors: int  # responses with status >= 400
    socket_errors: int

    @property
    def rps(self) -> float:
        """Requests per second over the run."""
        return self.requests / self.seconds if self.seconds > 0 else 0.0

    def as_dict(self) -> dict[str, float | int]:
        """JSON-ready fields, with the rate included."""
        return {**asdict(self), "rps": round(self.rps, 1)}


@dataclass(frozen=True)
class LoadSettings:
    """How hard to push: the same for every server and scenario."""

    connections: int = 32
    threads: int = 2  # wrk threads; the Python fallback uses one process
    seconds: int = 6  # per run; whole seconds, as wrk takes them


def parse_result(output: str) -> Measurement:
    """The Measurement from a generator's BENCH_RESULT line."""
    for line in output.splitlines():
        if line.startswith(RESULT_PREFIX):
            data = json.loads(line[len(RESULT_PREFIX) :])
            return Measurement(
                requests=int(data["requests"]),
                seconds=float(data["duration_us"]) / 1e6,
                p50_ms=float(data["p50_us"]) / 1000,
                p99_ms=float(data["p99_us"]) / 1000,
                http_errors=int(data["http_errors"]),
                socket_errors=int(data["socket_errors"]),
            )
    raise RuntimeError(f"the load generator printed no result:\n{output}")


def find_wrk() -> str | None:
    """wrk's path; installs Debian's package first when running as root with apt."""
    if os.environ.get("BENCH_NO_WRK"):  # force the Python fallback
        return None
    found = shutil.which("wrk")
    if found:
        return found
    if os.geteuid() == 0 and shutil.which("apt-get"):
        print("wrk not found; installing it with apt-get ...", flush=True)
        # Another apt run may hold the lock (CI, other engineers); wait for it.
        install = ["apt-get", "-o", "DPkg::Lock::Timeout=120", "install", "-y", "-q", "wrk"]
        result = subprocess.run(install, capture_output=True, text=True, check=False)
        if result.returncode != 0:
            update = ["apt-get", "-o", "DPkg::Lock::Timeout=120", "update", "-q"]
            subprocess.run(update, capture_output=True, check=False)
            subprocess.run(install, capture_output=True, check=False)
    return shutil.which("wrk")


def generator_name(wrk: str | None) -> str:
    """A label for the report: which load generator ran."""
    if wrk is None:
        return "bench.pyload (asyncio + httpx, closed loop)"
    version = subprocess.run([wrk, "-v"], capture_output=True, text=True, check=False)
    first = (version.stdout or version.stderr).strip().splitlines()
    return first[0] if first else "wrk"


def run_load(
    wrk: str | None, base_url: str, requests_file: Path, settings: LoadSettings
) -> Measurement:
    """One closed-loop run of `settings.seconds` against `base_url`."""
    if wrk is not None:
        command = [
            wrk,
            f"-t{settings.threads}",
            f"-c{settings.connections}",
            f"-d{settings.seconds}s",
            "--timeout",
            "10s",
            "-s",
            str(LUA_SCRIPT),
            base_url,
            "--",
            str(requests_file),
        ]
    else:
        command = [
            sys.executable,
            "-m",
            "bench.pyload",
            base_url,
            str(requests_file),
            "--connections",
            str(settings.connections),
            "--seconds",
            str(settings.seconds),
        ]
    result = subprocess.run(
        command, capture_output=True, text=True, check=False, timeout=settings.seconds + 60
    )
    if result.returncode != 0:
        raise RuntimeError(f"load generator failed:\n{result.stdout}\n{result.stderr}")
    return parse_result(result.stdout)
