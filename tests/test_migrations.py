"""Upgrading a database in use: revision 0010 on top of 0009, data and old callers kept."""

from __future__ import annotations

import asyncio
import hashlib
import logging
import secrets

import asyncpg
import pytest
from alembic.config import Config
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


async def _at_0009(database: TestDatabase) -> tuple[str, str, Config]:
    """A fresh database migrated to 0009: (its name, its admin URL, alembic config)."""
    name = f"sessiongate_upgrade_{secrets.token_hex(4)}"
    admin_url = make_url(database.admin_url).set(database=name).render_as_string(False)
    await ensure_database(admin_url)
    config = alembic_config(admin_url)
    await asyncio.to_thread(command.upgrade, config, "0009")
    return name, admin_url, config


async def _drop(database: TestDatabase, name: str) -> None:
    maintenance = await asyncpg.connect(
        plain_dsn(make_url(database.admin_url).set(database="postgres").render_as_string(False))
    )
    try:
        await maintenance.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        await maintenance.close()


async def test_revision_0010_upgrades_a_database_whose_user_has_a_dropped_role(
    database: TestDatabase,
) -> None:
    # A role can be dropped after users were given it (nothing in the
    # catalog ties auth.users.role to pg_authid); the warning's query must
    # not make the upgrade fail with "role does not exist".
    name, admin_url, config = await _at_0009(database)
    role = f"sg_gone_{secrets.token_hex(4)}"
    try:
        admin = await asyncpg.connect(plain_dsn(admin_url))
        try:
            await admin.execute(f"CREATE ROLE {role} NOLOGIN; GRANT {role} TO authenticator")
            await admin.execute(
                "INSERT INTO auth.users (email, password_hash, role)"
                " VALUES ('gone@example.com', '$argon2id$x', $1)",
                role,
            )
            await admin.execute(f"DROP ROLE {role}")
            await asyncio.to_thread(command.upgrade, config, "contract@head")
            assert await admin.fetchval("SELECT role FROM auth.users") == role
        finally:
            await admin.close()
    finally:
        await _drop(database, name)


async def test_revision_0010_warns_about_an_anonymous_role_authenticator_does_not_read(
    database: TestDatabase, caplog: pytest.LogCaptureFixture
) -> None:
    # Stored for the migrating role, not for authenticator: the migration
    # sees the value live, PostgREST's form of authenticate() does not.
    name, admin_url, config = await _at_0009(database)
    try:
        admin = await asyncpg.connect(plain_dsn(admin_url))
        try:
            await admin.execute(
                f'ALTER ROLE CURRENT_USER IN DATABASE "{name}"'
                " SET sessiongate.anonymous_role = 'webuser'"
            )
            with caplog.at_level(logging.WARNING):
                await asyncio.to_thread(command.upgrade, config, "contract@head")
            assert "sessiongate.anonymous_role is 'webuser' here" in caplog.text
            runtime = await asyncpg.connect(
                plain_dsn(make_url(database.runtime_url).set(database=name).render_as_string(False))
            )
            try:
                assert await runtime.fetchval("SELECT auth.anonymous_role()") == "anonymous"
            finally:
                await runtime.close()
        finally:
            await admin.close()
    finally:
        await _drop(database, name)
