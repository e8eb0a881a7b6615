"""Binding a request to one transaction that carries the caller's role and GUCs.

Every data route and every hand-written route that uses `rls_session` goes
through `request_transaction`: borrow one pooled connection, BEGIN, run
auth.authenticate() as the first statement, hand the transaction to the
handler, COMMIT. All identity settings are transaction-local, so nothing
survives into the next request that borrows the connection.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import datetime
from typing import Annotated, Any, Protocol
from uuid import UUID

import asyncpg
from fastapi import Depends, Request
from sqlalchemy import exc as sa_exc
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession, AsyncTransaction
from starlette.requests import HTTPConnection

from app import role_guard
from app.cookies import token_hash
from app.dataapi.prelude import READ_ONLY, Prelude
from app.errors import ApiError, from_postgres
from app.gateway import Gateway, get_gateway
from app.leases import ConnectionLeases, PoolExhausted

log = logging.getLogger(__name__)

# asyncpg's own $n style, which SQLAlchemy's asyncpg dialect also speaks, so
# both ways of driving the transaction send the very same statement. The
# anonymous role and "pooled" are arguments, not the connection's settings,
# which any SQL on the connection could overwrite (sql/04_authenticate.sql).
# IDENTITY_SETTINGS is a constant expression, no request text.
_IDENTITY_COLUMNS = (
    "SELECT role, user_id, session_id, last_seen_at, "
    + role_guard.IDENTITY_SETTINGS
    + " AS identity"
)
_FROM_AUTHENTICATE = " FROM auth.authenticate($1, true, $2, true)"
_AUTHENTICATE = _IDENTITY_COLUMNS + _FROM_AUTHENTICATE
_AUTHENTICATE_READ_ONLY = f"{_IDENTITY_COLUMNS}, {READ_ONLY}{_FROM_AUTHENTICATE}"


@dataclass(frozen=True)
class Identity:
    """Who the database thinks the caller is, for this transaction."""

    role: str
    user_id: UUID | None
    session_id: UUID | None
    last_seen_at: datetime | None
    # role_guard.IDENTITY_SETTINGS right after authentication: the role and the
    # identity settings, which the request must still carry at its end.
    settings: str

    @property
    def anonymous(self) -> bool:
        """True when there is no live session."""
        return self.session_id is None


@dataclass(frozen=True)
class RequestTransaction:
    """An open transaction, already authenticated.

    `raw` is the asyncpg connection the transaction runs on; `connection` is
    SQLAlchemy's view of it when SQLAlchemy drives the transaction (`orm`).
    """

    raw: asyncpg.Connection
    identity: Identity
    connection: AsyncConnection | None = None
    # Filled by confirm_identity(); a dict because the dataclass is frozen.
    checks: dict[str, str] = field(default_factory=dict)

    def confirm_identity(self, settings: str) -> None:
        """Record role_guard.IDENTITY_SETTINGS as returned by the block's last statement.

        Only for a last statement that fires no AFTER triggers (a SELECT or
        a function call): the role guard then needs no query of its own.
        """
        self.checks["final_identity"] = settings

    async def driver(self) -> asyncpg.Connection:
        """The asyncpg connection underneath, for statements that return JSON text."""
        return self.raw


def presented_token_hash(gateway: Gateway, connection: HTTPConnection) -> bytes | None:
    """sha256 of the cookie's secret, or None without a validly signed cookie."""
    secret = gateway.cookie.read(connection)
    return None if secret is None else token_hash(secret)


@asynccontextmanager
async def request_transaction(
    gateway: Gateway,
    connection: HTTPConnection,
    *,
    readonly: bool = False,
    prelude: Prelude | None = None,
    rollback: bool = False,
    orm: bool = False,
) -> AsyncIterator[RequestTransaction]:
    """Open the request's transaction as the caller; commit when the block ends.

    An exception inside the block rolls everything back, authentication
    included. `readonly` starts the transaction READ ONLY. `prelude` adds
    settings and a function call to the authenticating statement (the data
    API's request.* settings and pre-request function). `rollback` ends the
    transaction with ROLLBACK instead of COMMIT (the data API's db_tx_end).

    The transaction is driven on the asyncpg connection itself: BEGIN,
    authenticate, the handler's statements and COMMIT each cost one round
    trip and nothing more (docs/benchmarks.md measures them), and while
    requests wait for a connection, one's COMMIT carries the next one's
    BEGIN (app/leases.py). With
    `orm`, SQLAlchemy drives it instead, so that an AsyncSession can join it
    (the `RlsSession` dependency); everything else is the same code.
    """
    hashed = presented_token_hash(gateway, connection)
    anonymous = gateway.settings.anonymous_role
    identity: Identity | None = None
    try:
        async with _borrow(gateway, orm=orm) as (conn, driver, begun):
            end: _End
            row: Any  # an asyncpg Record or a SQLAlchemy RowMapping; both index by name
            if orm:
                assert conn is not None  # _borrow gives SQLAlchemy's connection for orm
                if readonly:
                    await conn.execution_options(postgresql_readonly=True)
                end = _OrmEnd(await conn.begin())
                row = (
                    (await conn.exec_driver_sql(_AUTHENTICATE, (hashed, anonymous)))
                    .mappings()
                    .one()
                )
            else:
                end = _DriverEnd(driver, leases=gateway.leases, begun=begun)
                await end.start()
                try:
                    if prelude is None:
                        sql = _AUTHENTICATE_READ_ONLY if readonly else _AUTHENTICATE
                        row = await driver.fetchrow(sql, hashed, anonymous)
                    else:
                        sql, args = prelude.statement(hashed, read_only=readonly)
                        row = await driver.fetchrow(sql, *args)
                except BaseException:
                    await end.abandon()
                    raise
            try:
                assert row is not None
                identity = Identity(
                    row["role"],
                    row["user_id"],
                    row["session_id"],
                    row["last_seen_at"],
                    row["identity"],
                )
                if isinstance(connection, Request):
                    connection.state.identity = identity
                tx = RequestTransaction(driver, identity, conn)
                if prelude is not None and prelude.call is not None:
                    # Its own statement: EXECUTE is checked when a statement
                    # starts, so the call must start after the role switch.
                    await driver.execute(f"SELECT {prelude.call}()")
                yield tx
                # Last statement before COMMIT: still the authenticated caller?
                if tx.checks.get("final_identity") != identity.settings:
                    await role_guard.verify(tx, connection)
            except BaseException:
                await end.abandon()
                raise
            await (end.rollback() if rollback else end.commit())
    except (sa_exc.TimeoutError, PoolExhausted) as error:
        raise ApiError(
            503,
            "pool_exhausted",
            "No database connection available",
            hint="The service is overloaded; retry shortly.",
            headers={"Retry-After": "1"},
        ) from error
    except sa_exc.DBAPIError as error:
        # SQLAlchemy wraps asyncpg's errors; unwrap to map them like raw ones.
        cause = error.orig.__cause__ if error.orig is not None else None
        if isinstance(cause, asyncpg.PostgresError):
            raise from_postgres(cause, anonymous=identity is None or identity.anonymous) from error
        raise
    except asyncpg.PostgresError as error:
        raise from_postgres(error, anonymous=identity is None or identity.anonymous) from error
    if gateway.toucher.due(identity.session_id, identity.last_seen_at):
        assert identity.session_id is not None
        gateway.toucher.touch_later(identity.session_id)


async def _driver(conn: AsyncConnection) -> asyncpg.Connection:
    raw = await conn.get_raw_connection()
    driver: asyncpg.Connection = raw.driver_connection  # type: ignore[assignment]
    return driver


@asynccontextmanager
async def _borrow(
    gateway: Gateway, *, orm: bool
) -> AsyncIterator[tuple[AsyncConnection | None, asyncpg.Connection, bool]]:
    """One pooled connection for the request: the data API's leases, or SQLAlchemy's
    pool when SQLAlchemy must drive the transaction (or no asyncpg pool is open).

    The flag says whether the connection comes with its transaction begun.
    """
    leases = gateway.leases
    if orm or leases is None:
        async with gateway.engine.connect() as conn:
            yield conn, await _driver(conn), False
        return
    driver = await leases.take()
    begun = leases.begun(driver)
    clean = False
    try:
        yield None, driver, begun
        # Reached only when the request's block ended normally: its COMMIT
        # or ROLLBACK has run, so the connection is idle and can be kept.
        clean = True
    finally:
        await leases.give_back(driver, clean=clean)


class _End(Protocol):
    async def commit(self) -> None: ...
    async def rollback(self) -> None: ...
    async def abandon(self) -> None: ...


class _DriverEnd:
    """A transaction begun on the asyncpg connection itself.

    Plain BEGIN and COMMIT rather than asyncpg's Transaction object: this
    connection runs nothing else, so there is no nesting to track, and the
    statements are the same. (So code holding the connection must not open
    an asyncpg transaction on it: it is already in one.) With leases, the
    end goes through them, which may begin a waiting request's transaction
    in the same round trip; `begun` says this request's was begun so.
    """

    def __init__(
        self, driver: asyncpg.Connection, *, leases: ConnectionLeases | None, begun: bool
    ) -> None:
        self._driver = driver
        self._leases = leases
        self._begun = begun
        self._open = False

    async def start(self) -> None:
        if self._begun and self._driver.is_in_transaction():
            self._open = True
            return
        if self._driver.is_in_transaction():
            # BEGIN would only warn and carry on inside it, role and settings
            # included. The asyncpg pool ends stray transactions on release;
            # SQLAlchemy's (the CLI's) only ends the ones it began itself.
            log.warning("a borrowed connection was still in a transaction; rolled back")
            await self._driver.execute("ROLLBACK")
        await self._driver.execute("BEGIN")
        self._open = True

    async def commit(self) -> None:
        await self._end("COMMIT")

    async def rollback(self) -> None:
        await self._end("ROLLBACK")

    async def _end(self, statement: str) -> None:
        self._open = False
        if self._leases is None:
            await self._driver.execute(statement)
        else:
            await self._leases.end(self._driver, statement)

    async def abandon(self) -> None:
        # Roll back here rather than trust the pool's reset; a connection
        # that cannot even do that is closed rather than reused. Nothing is
        # begun for another request after a failure.
        if self._open:
            self._open = False
            try:
                await self._driver.execute("ROLLBACK")
            except Exception:
                self._driver.terminate()


class _OrmEnd:
    """A transaction SQLAlchemy began, so an AsyncSession can join it."""

    def __init__(self, transaction: AsyncTransaction) -> None:
        self._transaction = transaction

    async def commit(self) -> None:
        await self._transaction.commit()

    async def rollback(self) -> None:
        await self._transaction.rollback()

    async def abandon(self) -> None:
        if self._transaction.is_active:
            await self._transaction.rollback()


async def _rls_session(request: Request) -> AsyncIterator[AsyncSession]:
    gateway = get_gateway(request)
    async with request_transaction(gateway, request, orm=True) as tx:
        # rollback_only: the route may flush and even "commit"; the real
        # COMMIT is ours, after the route returns and before the response.
        assert tx.connection is not None
        session = AsyncSession(bind=tx.connection, join_transaction_mode="rollback_only")
        session.info["identity"] = tx.identity
        try:
            yield session
        finally:
            await session.close()


RlsSession = Annotated[AsyncSession, Depends(_rls_session, scope="function")]
"""A FastAPI dependency: an AsyncSession in the caller's RLS transaction.

    @router.get("/mine")
    async def mine(session: RlsSession) -> ...:
        rows = await session.execute(text("SELECT * FROM api.todos"))

The caller's Identity is in `session.info["identity"]`.
"""

rls_session = _rls_session
"""The dependency function itself, for `Depends(rls_session, scope="function")`."""
