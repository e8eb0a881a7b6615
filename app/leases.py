"""Request connections kept checked out of the asyncpg pool between requests.

asyncpg's `Pool.release()` is built to survive anything: it runs the reset
inside `asyncio.shield` (a task of its own, and a turn of the event loop
before the request can go on) under a timer, and `acquire()` makes a new
proxy and a future every time. On the data API's hot path that is ~40 µs of
Python per request, as much as one of the request's four statements
(docs/benchmarks.md).

A request that ended cleanly leaves nothing to reset: its last statement
was COMMIT or ROLLBACK, and every identity setting was transaction-local.
So such a connection is kept here, still checked out of the pool, and the
next request takes it back with a list pop. Everything else stays asyncpg's
work: making and replacing connections, the size bound, waiting with a
timeout, and returning a connection after an error or a cancellation,
where the guarded release is the point. This module never hands a
connection to a waiter itself; while any request waits for the pool,
returned connections go back to the pool, whose queue wakes the waiter.
"""

from __future__ import annotations

import asyncio
import logging
from typing import cast

import asyncpg
from asyncpg.pool import PoolConnectionProxy

log = logging.getLogger(__name__)


class PoolExhausted(Exception):
    """No pooled connection became free within POOL_TIMEOUT."""


def _usable(proxy: PoolConnectionProxy) -> bool:
    try:
        return not proxy.is_closed()
    except asyncpg.InterfaceError:
        # When a connection closes, asyncpg gives it back to the pool at
        # once and detaches the proxy, whose every call then raises this.
        return False


class ConnectionLeases:
    """Hands out request connections; keeps up to `keep` of them warm between requests."""

    def __init__(
        self, pool: asyncpg.Pool, *, keep: int, timeout: float, return_every: int = 1000
    ) -> None:
        self._pool = pool
        self._keep = keep
        self._timeout = timeout
        # Every so often a clean connection goes back through the pool
        # anyway, so that asyncpg's own checks on release still apply to it:
        # recycling after `max_queries`, and expire_connections().
        self._return_every = return_every
        self._kept_since_return = 0
        # A stack: the most recently used connection is the next one out, so
        # under light load the same few stay busy and warm.
        self._free: list[PoolConnectionProxy] = []
        self._waiting = 0
        self._closing = False

    @property
    def pool(self) -> asyncpg.Pool:
        """The asyncpg pool underneath."""
        return self._pool

    @property
    def kept(self) -> int:
        """How many connections are held here, idle, between requests."""
        return len(self._free)

    @property
    def waiting(self) -> int:
        """How many requests are waiting for the pool to free a connection."""
        return self._waiting

    async def take(self) -> asyncpg.Connection:
        """A connection for one request; PoolExhausted after POOL_TIMEOUT of waiting."""
        free = self._free
        while free:
            proxy = free.pop()
            if _usable(proxy):
                return cast(asyncpg.Connection, proxy)
            # The server or the network ended it while it sat here. asyncpg
            # has freed its slot already (release is then a no-op) or does
            # so now, and makes a new connection when next asked.
            await self._release(proxy)
        self._waiting += 1
        try:
            # asyncio.timeout bounds the wait with a timer; acquire(timeout=...)
            # would wrap it in a task of its own.
            async with asyncio.timeout(self._timeout):
                proxy = await self._pool.acquire()
        except TimeoutError as error:
            raise PoolExhausted from error
        finally:
            self._waiting -= 1
        return cast(asyncpg.Connection, proxy)

    def keep(self, connection: asyncpg.Connection) -> bool:
        """Keep a connection whose request ended cleanly; False if it must go back instead.

        Synchronous, so a cancellation cannot land between the check and the keep.
        """
        proxy = cast(PoolConnectionProxy, connection)
        if (
            self._waiting
            or self._closing
            or len(self._free) >= self._keep
            or not _usable(proxy)
            or proxy.is_in_transaction()
        ):
            return False
        self._kept_since_return += 1
        if self._kept_since_return >= self._return_every:
            self._kept_since_return = 0
            return False
        self._free.append(proxy)
        return True

    async def give_back(self, connection: asyncpg.Connection, *, clean: bool) -> None:
        """End a request's use of `connection`.

        `clean`: the request's own code finished normally, so its transaction
        is over. Anything else (an error, a cancellation) returns the
        connection through asyncpg's guarded release, which rolls back a
        stray transaction, waits out a cancelled query, or closes it.
        """
        if clean and self.keep(connection):
            return
        await self._release(cast(PoolConnectionProxy, connection))

    async def _release(self, proxy: PoolConnectionProxy) -> None:
        # A release that fails has already closed the connection, and must
        # not replace the request's own outcome.
        try:
            await self._pool.release(proxy, timeout=self._timeout)
        except Exception:
            log.warning("releasing a request connection failed", exc_info=True)

    async def close(self) -> None:
        """Return the kept connections and close the pool (waits for requests in flight)."""
        self._closing = True
        while self._free:
            await self._release(self._free.pop())
        await self._pool.close()
