"""The schema cache follows the catalog on NOTIFY pgrst and survives a failed reload."""

from __future__ import annotations

import asyncio
import secrets
from typing import Any

import asyncpg

from app.dataapi.reload import SchemaReloader
from app.dataapi.schema import SchemaCache
from tests.conftest import LiveServer, TestDatabase, make_client


async def test_notify_reload_schema_exposes_new_tables(
    server_factory: Any, admin_db: asyncpg.Connection
) -> None:
    schema = "reload_" + secrets.token_hex(3)
    await admin_db.execute(
        f"CREATE SCHEMA {schema}; GRANT USAGE ON SCHEMA {schema} TO anonymous;"
        f"CREATE TABLE {schema}.first (id int); GRANT SELECT ON {schema}.first TO anonymous;"
    )
    server: LiveServer = server_factory(db_schemas=[schema])
    async with make_client(server.url) as http:
        assert (await http.get("/api/second")).status_code == 404
        await admin_db.execute(
            f"CREATE TABLE {schema}.second (id int); GRANT SELECT ON {schema}.second TO anonymous;"
            "NOTIFY pgrst, 'reload schema'"
        )
        status = 404
        for _ in range(100):  # up to 10 s; the reload is debounced
            status = (await http.get("/api/second")).status_code
            if status == 200:
                break
            await asyncio.sleep(0.1)
        assert status == 200


async def test_failed_reload_keeps_the_previous_cache(database: TestDatabase) -> None:
    cache = SchemaCache(["api"])
    conn = await asyncpg.connect(database.runtime_dsn)
    await cache.load(conn)
    assert cache.find("api", "todos") is not None
    reloader = SchemaReloader(cache, database.runtime_dsn)
    await conn.close()
    await reloader.reload(conn)  # a closed connection: the load fails
    assert cache.find("api", "todos") is not None
    assert reloader.reloads == 0
