"""The request transaction starts clean even on a connection something left in a transaction."""

from __future__ import annotations

from starlette.requests import Request

from app.db import create_engine
from app.gateway import Gateway
from app.rls import request_transaction
from tests.conftest import TestDatabase, make_settings


def _anonymous_request() -> Request:
    return Request({"type": "http", "method": "GET", "path": "/", "headers": [], "app": None})


async def test_a_transaction_left_open_on_a_pooled_connection_is_rolled_back(
    database: TestDatabase,
) -> None:
    # SQLAlchemy's pool (the CLI's; no asyncpg pool) ends only the
    # transactions SQLAlchemy began, so leave one open behind its back.
    settings = make_settings(database, pool_size=1, pool_max_overflow=0)
    engine = create_engine(database.runtime_url, settings)
    gateway = Gateway.build(settings, engine)
    try:
        async with engine.connect() as conn:
            raw = (await conn.get_raw_connection()).driver_connection
            assert raw is not None
            await raw.execute("BEGIN")
            await raw.execute("SELECT set_config('sessiongate.left_over', 'stale', true)")
            await raw.execute("SET LOCAL ROLE webuser")
        async with request_transaction(gateway, _anonymous_request(), readonly=True) as tx:
            driver = await tx.driver()
            # The same (only) connection, inside a fresh transaction.
            assert await driver.fetchval("SELECT current_user") == "anonymous"
            assert await driver.fetchval("SELECT current_setting('transaction_read_only')") == "on"
            left = await driver.fetchval("SELECT current_setting('sessiongate.left_over', true)")
            assert left in (None, "")
    finally:
        await engine.dispose()
