"""Alembic environment: migrations run over asyncpg as the admin (owner) user."""

from __future__ import annotations

import asyncio

from sqlalchemy import text
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import create_async_engine
from sqlalchemy.pool import NullPool

from alembic import context
from app.config import get_settings
from app.db import resolve_urls

# The version table lives in auth, which the first migration owns; nothing of
# ours goes in public.
VERSION_SCHEMA = "auth"


def _admin_url() -> str:
    url = context.config.attributes.get("admin_url")
    if isinstance(url, str):
        return url
    return resolve_urls(get_settings()).admin


def _run(connection: Connection) -> None:
    connection.execute(text(f"CREATE SCHEMA IF NOT EXISTS {VERSION_SCHEMA}"))
    context.configure(
        connection=connection,
        target_metadata=None,
        version_table_schema=VERSION_SCHEMA,
        transaction_per_migration=True,
    )
    with context.begin_transaction():
        context.run_migrations()


async def _run_online() -> None:
    engine = create_async_engine(_admin_url(), poolclass=NullPool)
    try:
        async with engine.begin() as connection:
            await connection.run_sync(_run)
    finally:
        await engine.dispose()


if context.is_offline_mode():
    raise SystemExit("sessiongate migrations need a live database; offline mode is not supported")

asyncio.run(_run_online())
