"""Schema cache reloads on `NOTIFY pgrst, 'reload schema'`, debounced, like PostgREST.

'reload config' and an empty payload reload it too, and so does every
(re)connect of the listener, since a notification sent while it was away
is lost.

One dedicated connection LISTENs on the channel. A burst of notifications
(a migration that runs many DDL statements) becomes one reload after a
short quiet period; a reload that fails keeps the cache as it was.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

import asyncpg

from app.dataapi.schema import SchemaCache
from app.tasks import cancel_and_wait

log = logging.getLogger(__name__)

CHANNEL = "pgrst"


class SchemaReloader:
    """Owns the LISTEN connection and the debounced reload task."""

    def __init__(
        self,
        cache: SchemaCache,
        dsn: str,
        *,
        debounce: float = 0.2,  # seconds of quiet before reloading
        retry: float = 5.0,  # seconds between reconnect attempts
    ) -> None:
        self.cache = cache
        self.dsn = dsn
        self.debounce = debounce
        self.retry = retry
        self.reloads = 0  # successful reloads, for tests and logs
        self._pending = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        """Begin listening in the background."""
        self._task = asyncio.create_task(self._run(), name="schema-reload")

    async def stop(self) -> None:
        """Stop listening and close the connection."""
        if self._task is not None:
            await cancel_and_wait(self._task)

    def _notified(self, _conn: Any, _pid: int, _channel: str, payload: object) -> None:
        # PostgREST reloads on an empty payload too. 'reload config' is where
        # PostgREST re-reads role settings, and the cache holds the roles'
        # time limits, so an operator following PostgREST's docs reaches both.
        if payload in ("", "reload schema", "reload config"):
            self._pending.set()

    async def _run(self) -> None:
        while True:
            conn: asyncpg.Connection | None = None
            try:
                conn = await asyncpg.connect(self.dsn)
                await conn.add_listener(CHANNEL, self._notified)
                # A notification sent while nobody listened (before start-up
                # finished, or while reconnecting) is lost: reload once now.
                self._pending.set()
                await self._serve(conn)
            except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError):
                log.warning("schema reload listener lost; retrying", exc_info=True)
                await asyncio.sleep(self.retry)
            finally:
                if conn is not None and not conn.is_closed():
                    await conn.close()

    async def _serve(self, conn: asyncpg.Connection) -> None:
        while not conn.is_closed():
            # asyncio.timeout, not wait_for: on Python 3.11 wait_for can
            # swallow a cancellation racing with the wake-up (no clean stop).
            try:
                async with asyncio.timeout(self.retry):
                    await self._pending.wait()
            except TimeoutError:
                continue
            # Debounce: wait until notifications stop arriving.
            while True:
                self._pending.clear()
                await asyncio.sleep(self.debounce)
                if not self._pending.is_set():
                    break
            await self.reload(conn)

    async def reload(self, conn: asyncpg.Connection) -> None:
        """Re-read the catalog; on failure the old cache stays and the error is logged."""
        try:
            await self.cache.load(conn)
            self.reloads += 1
        except Exception:  # any failure: the service keeps serving the old cache
            log.exception("schema cache reload failed; keeping the previous cache")
