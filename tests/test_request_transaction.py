"""The request transaction starts clean even on a connection something left in a transaction."""

from __future__ import annotations

import asyncpg
import pytest
from starlette.requests import Request

from app.db import create_engine
from app.errors import ApiError
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


@pytest.mark.parametrize("orm", [False, True])
@pytest.mark.parametrize(
    ("statement", "code"),
    [
        ("SELECT set_config('auth.user_id', gen_random_uuid()::text, true)", "identity_changed"),
        ("""SELECT set_config('request.jwt.claims', '{"sub": "x"}', true)""", "identity_changed"),
        ("SELECT set_config('jwt.claims.user_id', 'someone', false)", "identity_changed"),
        ("SET LOCAL ROLE webuser", "role_changed"),
    ],
)
async def test_a_block_that_changes_who_it_runs_as_is_rolled_back(
    database: TestDatabase, statement: str, code: str, orm: bool
) -> None:
    # The role guard's own query (no statement of the block confirmed the
    # identity), on both ways of driving the transaction: hand-written
    # routes' RlsSession (orm) and the data API's driver path.
    settings = make_settings(database, pool_size=1, pool_max_overflow=0)
    engine = create_engine(database.runtime_url, settings)
    gateway = Gateway.build(settings, engine)
    try:

        async def change_and_write() -> None:
            async with request_transaction(gateway, _anonymous_request(), orm=orm) as tx:
                driver = await tx.driver()
                await driver.execute(statement)
                await driver.execute("CREATE TEMP TABLE written_before_the_check ()")

        with pytest.raises(ApiError) as raised:
            await change_and_write()
        assert raised.value.code == code
        # Rolled back: the block's write is gone.
        async with request_transaction(gateway, _anonymous_request()) as tx:
            driver = await tx.driver()
            assert await driver.fetchval("SELECT to_regclass('written_before_the_check')") is None
        # The control: the same block without the change commits.
        async with request_transaction(gateway, _anonymous_request(), orm=orm) as tx:
            driver = await tx.driver()
            assert await driver.fetchval("SELECT current_user") == "anonymous"
    finally:
        await engine.dispose()


async def test_a_request_role_an_operator_added_needs_no_extra_grant(
    database: TestDatabase,
) -> None:
    # The identity check is an expression, not a function that a new
    # role would need EXECUTE on.
    admin = await asyncpg.connect(database.admin_dsn)
    try:
        await admin.execute(
            "DO $$ BEGIN IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'sg_plain_anon')"
            " THEN CREATE ROLE sg_plain_anon NOLOGIN; END IF; END $$;"
            " GRANT sg_plain_anon TO authenticator"
        )
    finally:
        await admin.close()
    settings = make_settings(database, anonymous_role="sg_plain_anon")
    engine = create_engine(database.runtime_url, settings)
    gateway = Gateway.build(settings, engine)
    try:
        for orm in (False, True):
            async with request_transaction(gateway, _anonymous_request(), orm=orm) as tx:
                assert tx.identity.role == "sg_plain_anon"
    finally:
        await engine.dispose()
