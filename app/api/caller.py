"""The signed-in caller of an account route, resolved from the session cookie."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any
from uuid import UUID

import asyncpg
import orjson
from sqlalchemy import exc as sa_exc
from sqlalchemy import text
from starlette.requests import Request
from starlette.responses import Response

from app.cookies import token_hash
from app.errors import JSON_TYPE, ApiError, from_postgres, not_authenticated
from app.gateway import Gateway

_RESOLVE = text("SELECT session_id, user_id, role, email FROM auth.resolve_session(:token_hash)")


@dataclass(frozen=True)
class Caller:
    """A live session and its user, as the database sees them right now."""

    session_id: UUID
    user_id: UUID
    role: str
    email: str
    secret: bytes

    @property
    def token_hash(self) -> bytes:
        """sha256 of the session secret: how SQL functions identify the acting session."""
        return token_hash(self.secret)


async def require_caller(gateway: Gateway, request: Request) -> Caller:
    """The caller's live session, or a 401."""
    secret = gateway.cookie.read(request)
    if secret is None:
        raise not_authenticated()
    async with gateway.engine.connect() as conn:
        row = (await conn.execute(_RESOLVE, {"token_hash": token_hash(secret)})).one_or_none()
    if row is None:
        raise not_authenticated()
    return Caller(row.session_id, row.user_id, row.role, row.email, secret)


def reply(payload: Any, status: int = 200) -> Response:
    """A JSON response that no cache keeps (account data is personal)."""
    return Response(
        orjson.dumps(payload),
        status_code=status,
        media_type=JSON_TYPE,
        headers={"Cache-Control": "no-store"},
    )


def postgres_cause(error: sa_exc.DBAPIError) -> asyncpg.PostgresError | None:
    """The asyncpg error SQLAlchemy wrapped, if any."""
    cause = error.orig.__cause__ if error.orig is not None else None
    return cause if isinstance(cause, asyncpg.PostgresError) else None


@asynccontextmanager
async def database_errors() -> AsyncIterator[None]:
    """Turn a PostgreSQL error raised by an auth.* function into its JSON error."""
    try:
        yield
    except sa_exc.DBAPIError as error:
        cause = postgres_cause(error)
        if cause is None:
            raise
        if isinstance(cause, asyncpg.UniqueViolationError):
            raise ApiError(
                409,
                "email_taken",
                "An account with this e-mail already exists",
                hint="Use another address.",
            ) from error
        raise from_postgres(cause) from error
