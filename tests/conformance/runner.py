"""Running every case against sessiongate: one live server per distinct configuration."""

from __future__ import annotations

import asyncio
import secrets
from collections import defaultdict
from dataclasses import dataclass, field
from typing import Any

import httpx
from pydantic import ValidationError

from tests.conformance.assertions import UnknownAssertion, check
from tests.conformance.cases import Case, config_key, server_options
from tests.conformance.client import send
from tests.conformance.database import FixtureDatabase
from tests.conftest import LiveServer, TestDatabase, make_settings

# Reads run side by side; writes one at a time, in id order, so that even a
# server that does not yet roll back (db_tx_end) gives the same result each run.
READ_CONCURRENCY = 8
REQUEST_TIMEOUT = 15.0
VARIANT_UNSUPPORTED = "variant config not supported"


@dataclass
class Outcome:
    """The verdict on one case."""

    case: Case
    failures: list[str] = field(default_factory=list)
    status: int | None = None
    body: str = ""

    @property
    def passed(self) -> bool:
        """True when every expectation held."""
        return not self.failures


@dataclass
class _Server:
    options: dict[str, Any]
    live: LiveServer | None = None
    error: str | None = None


def _settings_overrides(options: dict[str, Any]) -> dict[str, Any]:
    # Settings ignores fields it does not have yet, so every harness option
    # goes through; the data API picks them up as it implements them.
    # Not demo mode (no demo app in this database), so a real random key.
    return {
        "demo": False,
        "secret_keys": [secrets.token_urlsafe(48)],
        "pool_size": 4,
        "pool_max_overflow": 4,
        **options,
    }


def _start(database: FixtureDatabase, server: _Server) -> None:
    target = TestDatabase(admin_url=database.admin_url, runtime_url=database.runtime_url)
    try:
        settings = make_settings(target, **_settings_overrides(server.options))
    except ValidationError as error:
        first = error.errors()[0]
        server.error = f"{VARIANT_UNSUPPORTED}: {first['loc']}: {first['msg']}"
        return
    try:
        server.live = LiveServer(settings).start()
    except Exception as error:  # the reason goes into every case's report
        server.error = f"server did not start: {error!r}"


async def _run_case(http: httpx.AsyncClient, case: Case) -> Outcome:
    outcome = Outcome(case)
    if case.request.get("kind") == "cli":
        outcome.failures.append("CLI case: sessiongate has no PostgREST command line")
        return outcome
    try:
        response = await send(http, case)
    except httpx.HTTPError as error:
        outcome.failures.append(f"request failed: {error!r}")
        return outcome
    outcome.status = response.status
    outcome.body = response.text[:2000]
    try:
        outcome.failures = check(case.expect, response)
    except UnknownAssertion as error:
        outcome.failures.append(f"runner cannot judge the case: {error}")
    return outcome


async def run(database: FixtureDatabase, cases: list[Case]) -> list[Outcome]:
    """Start the servers the cases need, run every case, stop the servers."""
    servers: dict[str, _Server] = {}
    route: dict[int, str] = {}
    for case in cases:
        options = server_options(case)
        key = config_key(options)
        servers.setdefault(key, _Server(options))
        route[case.id] = key
    await asyncio.gather(*(asyncio.to_thread(_start, database, s) for s in servers.values()))
    clients: dict[str, httpx.AsyncClient] = {
        key: httpx.AsyncClient(base_url=server.live.url, timeout=REQUEST_TIMEOUT)
        for key, server in servers.items()
        if server.live is not None
    }
    outcomes: dict[int, Outcome] = {}
    try:
        runnable: dict[bool, list[Case]] = defaultdict(list)
        for case in cases:
            server = servers[route[case.id]]
            if server.error is not None:
                outcomes[case.id] = Outcome(case, [server.error])
            else:
                runnable[case.is_write].append(case)
        limit = asyncio.Semaphore(READ_CONCURRENCY)

        async def read(case: Case) -> None:
            async with limit:
                outcomes[case.id] = await _run_case(clients[route[case.id]], case)

        await asyncio.gather(*(read(case) for case in runnable[False]))
        for case in runnable[True]:
            outcomes[case.id] = await _run_case(clients[route[case.id]], case)
    finally:
        for http in clients.values():
            await http.aclose()
        await asyncio.gather(
            *(asyncio.to_thread(s.live.stop) for s in servers.values() if s.live is not None)
        )
    return [outcomes[case.id] for case in cases]
