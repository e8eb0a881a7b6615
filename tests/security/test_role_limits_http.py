"""Data requests run under their role's time limits, taken from the schema cache.

PostgreSQL applies ALTER ROLE ... SET only at login, never on a role switch,
so each request transaction sets the limits of the role its session resolves
to. sessiongate sends them with the request's settings, read when the schema
cache loads, so a change takes effect on NOTIFY pgrst, 'reload config' (as
with PostgREST 11.1+) or 'reload schema'.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import asyncpg
import httpx
import pytest

from tests.conftest import (
    LiveServer,
    create_api_functions,
    make_client,
    make_settings,
    role_setting_in_database,
    sign_in,
)
from tests.conftest import TestDatabase as Database

FUNCTIONS = {
    "sg_limits": (
        "json_build_object('statement_timeout', current_setting('statement_timeout'),"
        " 'lock_timeout', current_setting('lock_timeout'), 'role', current_user)"
    ),
    "sg_slow": "(SELECT json_build_object('slept', pg_sleep(1)::text))",
}


@pytest.fixture(scope="module")
async def limits_server(database: Database) -> AsyncIterator[LiveServer]:
    """A server whose schema cache was loaded after the functions existed."""
    await create_api_functions(
        database,
        {
            name: f"RETURNS json LANGUAGE sql VOLATILE AS $$ SELECT {body} $$"
            for name, body in FUNCTIONS.items()
        },
    )
    with LiveServer(make_settings(database)) as server:
        yield server


async def _limits(http: httpx.AsyncClient) -> dict[str, str]:
    response = await http.post("/api/rpc/sg_limits", json={})
    assert response.status_code == 200, response.text
    body: dict[str, str] = response.json()
    return body


async def test_each_role_gets_its_own_limits(limits_server: LiveServer) -> None:
    async with make_client(limits_server.url) as http:
        assert await _limits(http) == {
            "statement_timeout": "3s",
            "lock_timeout": "1s",
            "role": "anonymous",
        }
        await sign_in(http)
        assert await _limits(http) == {
            "statement_timeout": "10s",
            "lock_timeout": "2s",
            "role": "webuser",
        }


@pytest.fixture
async def short_anonymous_timeout(
    admin_db: asyncpg.Connection, limits_server: LiveServer
) -> AsyncIterator[None]:
    """anonymous limited to 200 ms in this database, until the test ends."""
    try:
        async with role_setting_in_database(admin_db, "anonymous", "statement_timeout", "200ms"):
            yield
    finally:
        # Every running server reloads; wait for ours, so later tests see 3 s.
        async with make_client(limits_server.url) as http:
            await _reload_until(admin_db, http, "3s")


async def _reload_until(admin_db: asyncpg.Connection, http: httpx.AsyncClient, value: str) -> str:
    """Ask for a reload until anonymous requests run with statement_timeout `value`."""
    seen = ""
    for _ in range(50):  # up to 10 s; the reload is debounced
        # Again each time: one sent before the listener was up would be lost.
        await admin_db.execute("NOTIFY pgrst, 'reload config'")
        seen = (await _limits(http))["statement_timeout"]
        if seen == value:
            break
        await asyncio.sleep(0.2)
    return seen


async def test_a_changed_limit_applies_after_reload_and_cancels_slow_sql(
    limits_server: LiveServer, admin_db: asyncpg.Connection, short_anonymous_timeout: None
) -> None:
    async with make_client(limits_server.url) as http:
        assert await _reload_until(admin_db, http, "200ms") == "200ms"
        # Enforced, not only shown: the one-second sleep is cancelled.
        response = await http.post("/api/rpc/sg_slow", json={})
        assert response.status_code == 500, response.text
        assert response.json()["code"] == "57014"
        # A signed-in caller keeps webuser's own limit.
        await sign_in(http)
        assert (await _limits(http))["statement_timeout"] == "10s"
        assert (await http.post("/api/rpc/sg_slow", json={})).status_code == 200
