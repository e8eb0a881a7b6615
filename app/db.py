"""Database URLs, engines and the one-off admin tasks that need a superuser."""

from __future__ import annotations

from dataclasses import dataclass

import asyncpg
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

from app import embedded
from app.config import Settings
from app.leases import ConnectionLeases


@dataclass(frozen=True)
class DatabaseUrls:
    """SQLAlchemy URLs: `runtime` as authenticator, `admin` for migrations."""

    runtime: str
    admin: str


def asyncpg_url(url: str) -> str:
    """Normalise a libpq-style URL to SQLAlchemy's asyncpg dialect."""
    parsed = make_url(url)
    return parsed.set(drivername="postgresql+asyncpg").render_as_string(hide_password=False)


def plain_dsn(url: str) -> str:
    """The libpq-style DSN asyncpg.connect() takes, from a SQLAlchemy URL."""
    parsed = make_url(url)
    return parsed.set(drivername="postgresql").render_as_string(hide_password=False)


def resolve_urls(settings: Settings) -> DatabaseUrls:
    """Where to connect, starting the embedded server if DATABASE_URL is unset."""
    if settings.database_url is not None:
        runtime = asyncpg_url(settings.database_url)
        admin = asyncpg_url(settings.database_admin_url or settings.database_url)
        return DatabaseUrls(runtime=runtime, admin=admin)
    server = embedded.start(settings.data_dir)
    return DatabaseUrls(
        runtime=server.url(settings.authenticator_role, settings.database_name),
        admin=server.url(server.superuser, settings.database_name),
    )


async def ensure_database(admin_url: str) -> None:
    """Create the admin URL's database if it does not exist (embedded and tests)."""
    target = make_url(admin_url)
    name = target.database
    if not name:
        raise ValueError("the admin database URL names no database")
    maintenance = plain_dsn(target.set(database="postgres").render_as_string(hide_password=False))
    conn = await asyncpg.connect(maintenance)
    try:
        exists = await conn.fetchval("SELECT 1 FROM pg_database WHERE datname = $1", name)
        if not exists:
            # Identifiers cannot be bind parameters; quote_ident is PostgreSQL's own.
            quoted = await conn.fetchval("SELECT quote_ident($1)", name)
            await conn.execute(f"CREATE DATABASE {quoted}")
    finally:
        await conn.close()


_SERVER_SETTINGS = {
    "application_name": "sessiongate",
    # auth.authenticate()'s fallback for a caller that does not pass
    # `pooled` (SQL an operator runs on the service's connections). The
    # service passes it, and the anonymous role, as arguments: any SQL on
    # the connection could overwrite a setting (sql/04_authenticate.sql).
    "sessiongate.pooled": "on",
}


async def _end_stray_transaction(connection: asyncpg.Connection) -> None:
    # asyncpg's default reset (RESET ALL, UNLISTEN, ...) costs a round trip
    # on every release. Request transactions always end themselves and keep
    # every identity setting transaction-local, so only a transaction left
    # open by a failure needs ending here.
    if connection.is_in_transaction():
        await connection.execute("ROLLBACK")


async def create_request_leases(url: str, settings: Settings) -> ConnectionLeases:
    """The data API's request connections (its hot path): an asyncpg pool, of
    which up to POOL_SIZE connections stay checked out between requests."""
    pool = await asyncpg.create_pool(
        plain_dsn(url),
        min_size=1,
        max_size=settings.pool_size + settings.pool_max_overflow,
        statement_cache_size=settings.statement_cache_size,
        server_settings=dict(_SERVER_SETTINGS),
        reset=_end_stray_transaction,
    )
    assert pool is not None
    return ConnectionLeases(pool, keep=settings.pool_size, timeout=settings.pool_timeout)


def create_engine(url: str, settings: Settings) -> AsyncEngine:
    """The SQLAlchemy engine: account routes, `RlsSession` routes, the CLI."""
    return create_async_engine(
        url,
        pool_size=settings.pool_size,
        max_overflow=settings.pool_max_overflow,
        pool_timeout=settings.pool_timeout,
        pool_pre_ping=False,
        connect_args={
            "statement_cache_size": settings.statement_cache_size,
            "server_settings": dict(_SERVER_SETTINGS),
        },
        # asyncpg's own cache does the work; SQLAlchemy's adapter cache sits on top.
        query_cache_size=1200,
    )
