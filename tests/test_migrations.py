"""Upgrading a database in use: revision 0010 on top of 0009, data and old callers kept."""

from __future__ import annotations

import asyncio
import hashlib
import logging
import secrets

import asyncpg
import pytest
from sqlalchemy.engine import make_url

from alembic import command
from app.db import ensure_database, plain_dsn
from app.migrations import alembic_config
from tests.conftest import TestDatabase


async def test_revision_0010_upgrades_a_database_in_use(
    database: TestDatabase, caplog: pytest.LogCaptureFixture
) -> None:
    cluster = make_url(database.admin_url)
    name = f"sessiongate_upgrade_{secrets.token_hex(4)}"
    admin_url = cluster.set(database=name).render_as_string(hide_password=False)
    await ensure_database(admin_url)
    config = alembic_config(admin_url)
    try:
        await asyncio.to_thread(command.upgrade, config, "0009")
        admin = await asyncpg.connect(plain_dsn(admin_url))
        try:
            # What 0009 let an operator do: a user whose role is authenticator.
            user_id = await admin.fetchval(
                "INSERT INTO auth.users (email, password_hash, verified)"
                " VALUES ('kept@example.com', '$argon2id$x', true) RETURNING id"
            )
            await admin.execute("ALTER TABLE auth.users DISABLE TRIGGER users_check_role")
            await admin.execute("UPDATE auth.users SET role = 'authenticator'")
            await admin.execute("ALTER TABLE auth.users ENABLE TRIGGER users_check_role")
            hashed = hashlib.sha256(secrets.token_bytes(32)).digest()
            await admin.execute("SELECT auth.issue_session($1, $2, 3600, 7200)", user_id, hashed)

            with caplog.at_level(logging.WARNING):
                await asyncio.to_thread(command.upgrade, config, "contract@head")
            assert "1 user(s) have a role that is authenticator" in caplog.text

            # The data is still there, and the session is now refused.
            assert await admin.fetchval("SELECT email::text FROM auth.users") == "kept@example.com"
            runtime = await asyncpg.connect(
                plain_dsn(make_url(database.runtime_url).set(database=name).render_as_string(False))
            )
            try:
                async with runtime.transaction():
                    with pytest.raises(asyncpg.InsufficientPrivilegeError):
                        await runtime.fetchval("SELECT role FROM auth.authenticate($1)", hashed)
                # A process of the previous release still calls the one-argument form.
                assert await runtime.fetchval("SELECT auth.purge_events(3600)") == 0
            finally:
                await runtime.close()
        finally:
            await admin.close()
    finally:
        maintenance = await asyncpg.connect(
            plain_dsn(cluster.set(database="postgres").render_as_string(hide_password=False))
        )
        try:
            await maintenance.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        finally:
            await maintenance.close()
