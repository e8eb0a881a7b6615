"""Fixtures for the data API tests: the `dapi` schema and servers exposing it."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import asyncpg
import httpx
import pytest

from tests.conftest import LiveServer, TestDatabase, make_client, make_settings

FIXTURES = Path(__file__).with_name("fixtures.sql")


@pytest.fixture(scope="session")
async def dapi_schema(database: TestDatabase) -> str:
    """The test library schema, created once per test database."""
    conn = await asyncpg.connect(database.admin_dsn)
    try:
        exists = await conn.fetchval("SELECT true FROM pg_namespace WHERE nspname = 'dapi'")
        if not exists:
            await conn.execute(FIXTURES.read_text())
    finally:
        await conn.close()
    return "dapi"


@pytest.fixture(scope="session")
def dapi_server(database: TestDatabase, dapi_schema: str) -> Iterator[LiveServer]:
    """A server exposing dapi (default) and api, with a pre-request guard."""
    settings = make_settings(database, db_schemas=[dapi_schema, "api"], db_pre_request="dapi.guard")
    with LiveServer(settings) as server:
        yield server


@pytest.fixture(scope="session")
def dapi_rollback_server(database: TestDatabase, dapi_schema: str) -> Iterator[LiveServer]:
    """Like dapi_server, but every transaction rolls back: writes leave no trace."""
    settings = make_settings(database, db_schemas=[dapi_schema, "api"], db_tx_end="rollback")
    with LiveServer(settings) as server:
        yield server


@pytest.fixture
async def dapi(dapi_server: LiveServer) -> AsyncIterator[httpx.AsyncClient]:
    """A signed-out client of the dapi server."""
    async with make_client(dapi_server.url) as http:
        yield http
