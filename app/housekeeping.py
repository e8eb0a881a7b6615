"""Work the service does in the background: the periodic purge, and the in-service mailer."""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from app import sessions
from app.config import Settings
from app.db import plain_dsn
from app.mailer import Mailer
from app.tasks import cancel_and_wait

log = logging.getLogger(__name__)

_PURGE_TOKENS = text("SELECT auth.purge_tokens(0)")
# Delivered events past EVENT_RETENTION, and a repeated sign-up's event still
# unsent (with its password hash) once a verification link would have expired.
_PURGE_EVENTS = text("SELECT auth.purge_events(:retention, :sign_up_lifetime)")
# Brute-force counters quiet for a day, or for twice THROTTLE_WINDOW if that
# is longer: a counter still inside its window must never go, or an attempt
# under way could lose its count (sql/08_throttle_attempts.sql). Not reported.
_PURGE_THROTTLE = text("SELECT auth.purge_throttle(:idle)")
_THROTTLE_QUIET = 86400


@dataclass(frozen=True)
class Purged:
    """How many rows one purge deleted."""

    sessions: int
    tokens: int
    events: int


async def purge(engine: AsyncEngine, settings: Settings, *, grace_seconds: int = 0) -> Purged:
    """Delete ended sessions, spent tokens and stale mail events, in one transaction.

    Stale events: delivered longer than EVENT_RETENTION ago, or a repeated
    sign-up's, never delivered, older than VERIFY_TOKEN_LIFETIME (it holds
    a password hash; sql/06_accounts_lifecycle.sql).
    """
    async with engine.begin() as conn:
        ended = await sessions.purge(conn, grace_seconds=grace_seconds)
        tokens = int((await conn.execute(_PURGE_TOKENS)).scalar_one())
        ages = {
            "retention": settings.event_retention,
            "sign_up_lifetime": settings.verify_token_lifetime,
        }
        events = int((await conn.execute(_PURGE_EVENTS, ages)).scalar_one())
        idle = max(_THROTTLE_QUIET, 2 * settings.throttle_window)
        await conn.execute(_PURGE_THROTTLE, {"idle": idle})
    return Purged(ended, tokens, events)


async def purge_periodically(engine: AsyncEngine, settings: Settings) -> None:
    """Purge every SESSION_PURGE_INTERVAL seconds, starting one interval after start-up."""
    while True:
        await asyncio.sleep(settings.session_purge_interval)
        try:
            done = await purge(engine, settings)
            log.info("purged %s sessions, %s tokens, %s events", *vars(done).values())
        except Exception:
            # A database hiccup must not end the loop; the next run catches up.
            log.warning("periodic purge failed", exc_info=True)


def start(engine: AsyncEngine, settings: Settings, runtime_url: str) -> list[asyncio.Task[None]]:
    """Start what the settings ask for; hand the tasks to `stop` at shutdown."""
    tasks: list[asyncio.Task[None]] = []
    if settings.session_purge_interval > 0:
        tasks.append(asyncio.create_task(purge_periodically(engine, settings), name="purge"))
    if settings.mailer_in_service:
        mailer = Mailer(engine, settings, plain_dsn(runtime_url))
        tasks.append(asyncio.create_task(mailer.run(), name="mailer"))
    return tasks


async def stop(tasks: list[asyncio.Task[None]]) -> None:
    """Cancel the background tasks and wait for them to finish."""
    for task in tasks:
        await cancel_and_wait(task)
