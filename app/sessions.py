"""The session lifecycle: issue, touch, rotate, revoke, purge. Each verb is one SQL call."""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any
from uuid import UUID

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from app.config import Settings
from app.cookies import new_secret, token_hash

log = logging.getLogger(__name__)

_ISSUE = text(
    "SELECT session_id, expires_at FROM auth.issue_session("
    ":user_id, :token_hash, :idle, :absolute, CAST(:ip AS inet), :user_agent)"
)
_ROTATE = text("SELECT session_id, user_id, expires_at FROM auth.rotate_session(:old, :new, :idle)")
_REVOKE = text("SELECT auth.revoke_session(:token_hash)")
_REVOKE_USER = text("SELECT auth.revoke_user_sessions(:user_id, :except_session)")
_TOUCH = text("SELECT auth.touch_session(:session_id, :idle)")
_PURGE = text("SELECT auth.purge_sessions(:grace)")
_CURRENT_USER = text(
    "SELECT p.id, p.email, p.role, p.verified, p.disabled, p.created_at, p.updated_at,"
    " s.session_id FROM auth.resolve_session(:token_hash) s"
    " CROSS JOIN LATERAL auth.get_user(s.user_id) p"
)


@dataclass(frozen=True)
class IssuedSession:
    """A session just created or rotated; `secret` goes into the cookie and nowhere else."""

    session_id: UUID
    secret: bytes
    expires_at: datetime


async def issue(
    conn: AsyncConnection,
    settings: Settings,
    user_id: UUID,
    *,
    ip: str | None,
    user_agent: str | None,
) -> IssuedSession:
    """Start a new session for `user_id`."""
    secret = new_secret()
    row = (
        await conn.execute(
            _ISSUE,
            {
                "user_id": user_id,
                "token_hash": token_hash(secret),
                "idle": settings.session_idle_timeout,
                "absolute": settings.session_absolute_timeout,
                "ip": ip,
                "user_agent": user_agent,
            },
        )
    ).one()
    return IssuedSession(session_id=row.session_id, secret=secret, expires_at=row.expires_at)


async def rotate(
    conn: AsyncConnection, settings: Settings, old_secret: bytes
) -> IssuedSession | None:
    """Give a live session a new secret; the old one stops working. None if not live."""
    secret = new_secret()
    row = (
        await conn.execute(
            _ROTATE,
            {
                "old": token_hash(old_secret),
                "new": token_hash(secret),
                "idle": settings.session_idle_timeout,
            },
        )
    ).one_or_none()
    if row is None:
        return None
    return IssuedSession(session_id=row.session_id, secret=secret, expires_at=row.expires_at)


async def revoke(conn: AsyncConnection, secret: bytes) -> UUID | None:
    """End the session holding `secret`; its id, or None if it was not live."""
    result: UUID | None = (await conn.execute(_REVOKE, {"token_hash": token_hash(secret)})).scalar()
    return result


async def revoke_user(conn: AsyncConnection, user_id: UUID, *, keep: UUID | None = None) -> int:
    """End every live session of a user except `keep`; how many ended."""
    result = await conn.execute(_REVOKE_USER, {"user_id": user_id, "except_session": keep})
    return int(result.scalar_one())


async def purge(conn: AsyncConnection, *, grace_seconds: int = 0) -> int:
    """Delete sessions that ended more than `grace_seconds` ago."""
    return int((await conn.execute(_PURGE, {"grace": grace_seconds})).scalar_one())


async def current_user(conn: AsyncConnection, secret: bytes) -> dict[str, Any] | None:
    """The profile of the user whose live session holds `secret`, or None."""
    row = (await conn.execute(_CURRENT_USER, {"token_hash": token_hash(secret)})).one_or_none()
    return None if row is None else dict(row._mapping)


class Toucher:
    """Slides idle expiries, at most once per interval per session, off the request path.

    A request transaction may be read-only, and a write per request would
    turn every GET into a disk write; so the request only notices that a
    session is due, and this writes it in a short transaction of its own.
    """

    def __init__(self, engine: AsyncEngine, settings: Settings) -> None:
        self._engine = engine
        self._idle = settings.session_idle_timeout
        self._interval = timedelta(seconds=settings.session_touch_interval)
        self._pending: dict[UUID, asyncio.Task[None]] = {}

    def due(self, session_id: UUID | None, last_seen_at: datetime | None) -> bool:
        """Whether a session seen at `last_seen_at` should be touched now."""
        if session_id is None or last_seen_at is None or session_id in self._pending:
            return False
        return datetime.now(UTC) - last_seen_at >= self._interval

    def touch_later(self, session_id: UUID) -> None:
        """Schedule the write; a failure is logged, never surfaced to the request."""
        task = asyncio.get_running_loop().create_task(self._touch(session_id))
        self._pending[session_id] = task
        task.add_done_callback(lambda _: self._pending.pop(session_id, None))

    async def _touch(self, session_id: UUID) -> None:
        try:
            async with self._engine.begin() as conn:
                await conn.execute(_TOUCH, {"session_id": session_id, "idle": self._idle})
        except Exception:
            log.warning("could not touch session", exc_info=True)

    async def drain(self) -> None:
        """Wait for scheduled writes (at shutdown)."""
        if self._pending:
            await asyncio.gather(*self._pending.values(), return_exceptions=True)
