"""Fallback load generator when wrk is missing: a closed-loop asyncio + httpx client.

Run as its own process (`python -m bench.pyload URL FILE`) so its CPU use is
not charged to the server under test. It is slower than wrk and saturates
sooner; the report names which generator ran, and ratios stay comparable
because both servers face the same client.
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import json
import statistics
import time
from pathlib import Path

import httpx
import uvloop

from bench.load import RESULT_PREFIX, PreparedRequest, read_requests


async def _worker(
    client: httpx.AsyncClient,
    turns: itertools.cycle[PreparedRequest],
    until: float,
    latencies: list[float],
    counts: dict[str, int],
) -> None:
    while time.perf_counter() < until:
        request = next(turns)
        started = time.perf_counter()
        try:
            response = await client.request(
                request.method,
                request.path,
                headers=request.headers,
                content=request.body.encode() if request.body else None,
            )
        except httpx.HTTPError:
            counts["socket_errors"] += 1
            continue
        latencies.append(time.perf_counter() - started)
        if response.status_code >= 400:
            counts["http_errors"] += 1


async def measure(
    base_url: str, requests: list[PreparedRequest], connections: int, seconds: float
) -> dict[str, int]:
    """Run `connections` closed-loop workers for `seconds`; wrk-shaped totals."""
    limits = httpx.Limits(max_connections=connections, max_keepalive_connections=connections)
    latencies: list[float] = []
    counts = {"http_errors": 0, "socket_errors": 0}
    turns = itertools.cycle(requests)
    async with httpx.AsyncClient(base_url=base_url, limits=limits, timeout=10) as client:
        started = time.perf_counter()
        until = started + seconds
        await asyncio.gather(
            *(_worker(client, turns, until, latencies, counts) for _ in range(connections))
        )
        elapsed = time.perf_counter() - started
    cuts = statistics.quantiles(latencies, n=100) if len(latencies) > 1 else [0.0] * 99
    return {
        "requests": len(latencies),
        "duration_us": int(elapsed * 1e6),
        "p50_us": int(cuts[49] * 1e6),
        "p99_us": int(cuts[98] * 1e6),
        **counts,
    }


def main() -> None:
    """Command line: base URL, requests file, --connections, --seconds."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("base_url")
    parser.add_argument("requests_file", type=Path)
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument("--seconds", type=float, default=8.0)
    args = parser.parse_args()
    requests = read_requests(args.requests_file)
    result = uvloop.run(measure(args.base_url, requests, args.connections, args.seconds))
    print(RESULT_PREFIX + json.dumps(result), flush=True)


if __name__ == "__main__":
    main()
