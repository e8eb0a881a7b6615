"""Python CPU per request with no sockets: the gate and the bare baseline driven through ASGI.

The load benchmark (bench/run.py) measures what a client sees. This one
isolates what each service's own Python code costs per request, which is
most of the gate's cost on a 2-core machine: both apps run in this process,
are called through their ASGI interface, and the process's CPU time is
divided by the requests served. It needs no load generator, gives a steady
figure in about a minute, and is the quick check of a change to the request
path before `make bench`. PostgreSQL does the same work as under load; its
CPU is not counted here (bench/run.py's ratio includes it).

Same database and data as bench/run.py (bench/fixture.py); every request is
GET /api/todos for the next of the 100 users (bare: their id in x-user-id).
"""

from __future__ import annotations

import argparse
import asyncio
import importlib
import os
import statistics
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

import asyncpg
from starlette.applications import Starlette
from starlette.types import ASGIApp, Message

from app.cookies import SessionCookie, new_secret, token_hash
from bench import fixture, servers
from bench.fixture import BenchUser

POOL_SIZE = 10
WARMUP_REQUESTS = 300
Headers = list[tuple[bytes, bytes]]


@dataclass
class InProcessApp:
    """One ASGI app, started through its lifespan and called without sockets."""

    app: ASGIApp
    _inbox: asyncio.Queue[Message] = field(default_factory=asyncio.Queue)
    _outbox: asyncio.Queue[Message] = field(default_factory=asyncio.Queue)
    _lifespan: asyncio.Task[None] | None = None

    async def start(self) -> None:
        """Run the app's start-up (pools, schema cache) and wait for it."""

        async def receive() -> Message:
            return await self._inbox.get()

        async def send(message: Message) -> None:
            await self._outbox.put(message)

        async def lifespan() -> None:
            scope = {"type": "lifespan", "asgi": {"version": "3.0"}, "state": {}}
            await self.app(scope, receive, send)

        self._lifespan = asyncio.create_task(lifespan())
        await self._inbox.put({"type": "lifespan.startup"})
        started = await self._outbox.get()
        if started["type"] != "lifespan.startup.complete":
            raise RuntimeError(f"the app did not start: {started}")

    async def stop(self) -> None:
        """Run the app's shutdown."""
        await self._inbox.put({"type": "lifespan.shutdown"})
        await self._outbox.get()
        if self._lifespan is not None:
            await self._lifespan

    async def get(self, path: str, headers: Headers) -> int:
        """GET `path`; the response status (the body is read and dropped)."""
        status = 0

        async def receive() -> Message:
            return {"type": "http.request", "body": b"", "more_body": False}

        async def send(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]

        scope = {
            "type": "http",
            "asgi": {"version": "3.0"},
            "http_version": "1.1",
            "method": "GET",
            "scheme": "http",
            "path": path,
            "raw_path": path.encode(),
            "root_path": "",
            "query_string": b"",
            "headers": headers,
            "client": ("127.0.0.1", 40000),
            "server": ("127.0.0.1", 8000),
            "state": {},
        }
        await self.app(scope, receive, send)
        return status


async def cpu_per_request(
    app: InProcessApp, requests: list[tuple[str, Headers]], total: int, concurrency: int
) -> float:
    """Process CPU time per request, in microseconds, over `total` requests."""
    turn = iter(range(total))
    failures: list[int] = []

    async def worker() -> None:
        for index in turn:
            path, headers = requests[index % len(requests)]
            status = await app.get(path, headers)
            if status != 200:
                failures.append(status)

    started = time.process_time()
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    used = time.process_time() - started
    if failures:
        raise RuntimeError(f"{len(failures)} requests failed, e.g. with {failures[0]}")
    return used / total * 1e6


@contextmanager
def environment(values: dict[str, str]) -> Iterator[None]:
    """os.environ with `values` set, restored afterwards (the factories read it)."""
    saved = {name: os.environ.get(name) for name in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


def load_factory(spec: str) -> ASGIApp:
    """Call "module:function" and return the app it builds."""
    module, _, name = spec.partition(":")
    app: ASGIApp = getattr(importlib.import_module(module), name)()
    return app


async def gate_requests(
    database: fixture.BenchDatabase, gate: ASGIApp, users: list[BenchUser]
) -> list[tuple[str, Headers]]:
    """A live session per user, issued as the login route does, as request headers."""
    if not isinstance(gate, Starlette):
        raise TypeError("the gate factory must build a sessiongate app")
    cookies: SessionCookie = gate.state.gateway.cookie
    conn = await asyncpg.connect(database.admin_dsn)
    try:
        requests: list[tuple[str, Headers]] = []
        for user in users:
            secret = new_secret()
            await conn.execute(
                "SELECT auth.issue_session($1, $2, 3600, 7200)", user.user_id, token_hash(secret)
            )
            cookie = f"{cookies.name}={cookies.encode(secret)}"
            requests.append(("/api/todos", [(b"host", b"127.0.0.1"), (b"cookie", cookie.encode())]))
    finally:
        await conn.close()
    return requests


def bare_requests(users: list[BenchUser]) -> list[tuple[str, Headers]]:
    """The same users for the baseline, named by the x-user-id header."""
    return [
        ("/todos", [(b"host", b"127.0.0.1"), (b"x-user-id", str(user.user_id).encode())])
        for user in users
    ]


async def run(options: argparse.Namespace) -> None:
    """Set up, alternate bare and gate rounds, print the table."""
    async with fixture.fresh_database() as database:
        users, _ = await fixture.seed(database)
        gate_env = servers.gate_env(database.runtime_url, database.admin_url, POOL_SIZE, 8000)
        with environment(gate_env):
            gate = InProcessApp(load_factory(options.gate_factory))
        with environment(servers.bare_env(database.admin_dsn, POOL_SIZE)):
            bare = InProcessApp(load_factory("bench.bare:create_app"))
        await gate.start()
        await bare.start()
        try:
            apps = {"gate": gate, "bare": bare}
            requests = {
                "gate": await gate_requests(database, gate.app, users),
                "bare": bare_requests(users),
            }
            for name, app in apps.items():
                await cpu_per_request(app, requests[name], WARMUP_REQUESTS, options.concurrency)
            figures: dict[str, list[float]] = {"gate": [], "bare": []}
            for round_ in range(options.rounds):
                # Alternate the order so drift on the machine hits both.
                order = ("bare", "gate") if round_ % 2 == 0 else ("gate", "bare")
                for name in order:
                    figure = await cpu_per_request(
                        apps[name], requests[name], options.requests, options.concurrency
                    )
                    figures[name].append(figure)
                    print(f"  {name}  round {round_ + 1}: {figure:7.1f} us/request", flush=True)
        finally:
            await gate.stop()
            await bare.stop()
    bare_median = statistics.median(figures["bare"])
    gate_median = statistics.median(figures["gate"])
    print()
    print("Python CPU per GET /api/todos, in-process (median over rounds)")
    print(f"  bare  {bare_median:7.1f} us   (min {min(figures['bare']):.1f})")
    print(f"  gate  {gate_median:7.1f} us   (min {min(figures['gate']):.1f})")
    print(f"  ratio bare/gate: {bare_median / gate_median:.2f}")


def main() -> None:
    """Entry point: `python -m bench.inprocess`."""
    env = os.environ.get
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=int(env("BENCH_REQUESTS", "6000")))
    parser.add_argument("--rounds", type=int, default=int(env("BENCH_ROUNDS", "4")))
    parser.add_argument("--concurrency", type=int, default=int(env("BENCH_CONCURRENCY", "10")))
    parser.add_argument("--gate-factory", default=env("BENCH_GATE_FACTORY", "app.main:app_factory"))
    options = parser.parse_args()
    try:
        import uvloop
    except ImportError:  # uvicorn[standard] brings it; plain asyncio works too
        asyncio.run(run(options))
    else:
        uvloop.run(run(options))


if __name__ == "__main__":
    main()
