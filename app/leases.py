"""Request connections kept checked out of the asyncpg pool between requests.

asyncpg's `Pool.release()` is built to survive anything: it runs the reset
inside `asyncio.shield` (a task of its own, and a turn of the event loop
before the request can go on) under a timer, and `acquire()` makes a new
proxy and a future every time. On the data API's hot path that is ~40 µs of
Python per request, as much as one of the request's four statements
(docs/benchmarks.md).

A request that ended cleanly leaves nothing to reset: its last statement
was COMMIT or ROLLBACK, and every identity setting was transaction-local.
So such a connection stays checked out of the pool, in a queue here, and
the next request takes it from there; a request that waits for one waits
on the same queue. The queue is asyncio's own, whose `get()` loses no item
to a waiter that times out or is cancelled just as it is handed one.

Everything else stays asyncpg's work: making and replacing connections,
bounding their number, and taking back a connection after an error or a
cancellation, where its guarded release (rollback, waiting out a cancelled
query, or closing) is the point.

When requests are waiting for a connection, a request finishing on one ends
its transaction and begins a waiter's in the same round trip (`end()`:
`COMMIT; BEGIN`), and the waiter skips its own BEGIN: one round trip fewer
per request whenever the pool is the bottleneck. The transaction handed on
is empty: COMMIT ended the finishing request's role, settings and locks,
and BEGIN takes no snapshot, so the waiter's first statement is still its
own authentication. No connection is left idle in such a transaction: one
nobody comes for (its waiter gave up, or was served by another connection)
is rolled back (`_return`, `_settle`), so `now()` in a request is never the
time of a BEGIN made long before it.

A kept connection is handed on as the same proxy object, which asyncpg's
release would have detached (and with it any prepared statement, cursor or
listener made through it). So code given a request's connection must not
keep it, or anything made from it, past the request: it would run inside
the next request's transaction. Nothing in the service does.
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


async def _roll_back(proxy: PoolConnectionProxy) -> None:
    # Failing, it leaves the connection to whoever comes next: asyncpg's
    # release resets or closes it, and a request finding it still in a
    # transaction rolls it back before its own BEGIN (app/rls.py).
    try:
        await proxy.execute("ROLLBACK")
    except Exception:
        log.warning("rolling back an unused request transaction failed", exc_info=True)


class ConnectionLeases:
    """Hands out request connections; keeps up to `keep` of them idle between requests."""

    def __init__(
        self, pool: asyncpg.Pool, *, keep: int, timeout: float, return_every: int = 1000
    ) -> None:
        self._pool = pool
        self._keep = keep
        self._timeout = timeout
        # Connections taken from the pool and not given back to it: in use
        # by a request, or idle in the queue.
        self._leased = 0
        # A stack: the most recently used connection is the next one out, so
        # under light load the same few stay busy and warm.
        self._idle: asyncio.LifoQueue[PoolConnectionProxy] = asyncio.LifoQueue()
        self._waiting = 0
        self._closing = False
        # Every so often a clean connection goes back through the pool
        # anyway, so that asyncpg's own checks on release still apply to it:
        # recycling after `max_queries`, and expire_connections().
        self._return_every = return_every
        self._kept_since_return = 0
        self._refills: set[asyncio.Task[None]] = set()
        # Connections (by id) carrying a transaction end() began for a
        # waiting request: in the queue, or outside it (with the request
        # that began it, until it gives it back; or with the request that
        # took it, until it asks `begun()`).
        self._begun_queued: set[int] = set()
        self._begun_out: set[int] = set()
        self._settling: asyncio.Task[None] | None = None

    @property
    def pool(self) -> asyncpg.Pool:
        """The asyncpg pool underneath."""
        return self._pool

    @property
    def kept(self) -> int:
        """How many connections are held here, idle, between requests."""
        return self._idle.qsize()

    @property
    def leased(self) -> int:
        """How many connections are checked out of the pool: in use, or kept here."""
        return self._leased

    @property
    def waiting(self) -> int:
        """How many requests are waiting for a connection to come free."""
        return self._waiting

    async def take(self) -> asyncpg.Connection:
        """A connection for one request; PoolExhausted after POOL_TIMEOUT of waiting."""
        idle = self._idle
        while not idle.empty():
            # The common case, with no timer to arm and cancel.
            proxy = self._taken(idle.get_nowait())
            if _usable(proxy):
                return cast(asyncpg.Connection, proxy)
            # The server or the network ended it while it sat idle. asyncpg
            # has freed its slot already (release is then a no-op) or does
            # so now, and connects anew when asked.
            await self._return(proxy)
        try:
            # asyncio.timeout bounds the wait with a timer; acquire(timeout=...)
            # would wrap it in a task of its own.
            async with asyncio.timeout(self._timeout):
                while True:
                    proxy = await self._next()
                    if _usable(proxy):
                        return cast(asyncpg.Connection, proxy)
                    await self._return(proxy)
        except TimeoutError as error:
            raise PoolExhausted from error

    def begun(self, connection: asyncpg.Connection) -> bool:
        """Whether `connection`, just taken, comes in a transaction end() began for it.

        Ask once, right after take(): the request then skips its BEGIN.
        """
        key = id(connection)
        if key in self._begun_out:
            self._begun_out.discard(key)
            return True
        return False

    def _taken(self, proxy: PoolConnectionProxy) -> PoolConnectionProxy:
        key = id(proxy)
        if key in self._begun_queued:
            self._begun_queued.discard(key)
            self._begun_out.add(key)
        return proxy

    async def _next(self) -> PoolConnectionProxy:
        if not self._idle.empty():
            return self._taken(self._idle.get_nowait())
        if self._leased < self._pool.get_max_size():
            self._leased += 1
            try:
                return await self._pool.acquire()
            except BaseException:
                # A request may have started waiting on the queue because
                # this acquire held the last slot.
                self._free_slot()
                raise
        # Every connection the pool may have is out: the next one a request
        # gives back comes through the queue (or a refill, below).
        self._waiting += 1
        try:
            return self._taken(await self._idle.get())
        finally:
            self._waiting -= 1
            if not self._waiting and self._begun_queued and not self._closing:
                # The last waiter is gone, and a transaction begun for a
                # waiter is still in the queue.
                self._settle_later()

    async def end(self, connection: asyncpg.Connection, statement: str) -> None:
        """End a request's transaction with `statement` (COMMIT or ROLLBACK).

        If a request waits for a connection (and no other finishing request
        has begun a transaction for it already), BEGIN follows in the same
        round trip, for that request. An error in `statement` stops there,
        as always, and is the finishing request's: nothing is begun.
        """
        promised = len(self._begun_queued) + len(self._begun_out)
        if self._waiting > promised and not self._closing:
            # Promised before the round trip, so that requests finishing
            # meanwhile count it: at most one transaction begun per waiter.
            key = id(connection)
            self._begun_out.add(key)
            try:
                await connection.execute(f"{statement}; BEGIN")
            except BaseException:
                # Failed or cancelled: give_back(clean=False) follows, and
                # asyncpg's release ends whatever the server did.
                self._begun_out.discard(key)
                raise
        else:
            await connection.execute(statement)

    async def give_back(self, connection: asyncpg.Connection, *, clean: bool) -> None:
        """End a request's use of `connection`.

        `clean`: the request's own code finished normally, so its transaction
        is over. Anything else (an error, a cancellation) returns the
        connection through asyncpg's guarded release, which rolls back a
        stray transaction, waits out a cancelled query, or closes it.
        """
        proxy = cast(PoolConnectionProxy, connection)
        if clean and self._keep_idle(proxy):
            return
        await self._return(proxy)

    def _keep_idle(self, proxy: PoolConnectionProxy) -> bool:
        # Synchronous, so a cancellation cannot land between check and keep.
        key = id(proxy)
        begun = key in self._begun_out
        # In a transaction exactly when end() began one: anything else is
        # a transaction the request left open, for asyncpg to roll back.
        if self._closing or not _usable(proxy) or proxy.is_in_transaction() is not begun:
            return False
        # Counted whether or not anyone waits, so that recycling reaches a
        # pool that is never idle too (a waiter then gets a refill).
        self._kept_since_return += 1
        if self._kept_since_return >= self._return_every:
            self._kept_since_return = 0
            return False
        if begun:
            if not self._waiting:
                return False  # nobody to hand it to: _return rolls it back
            self._begun_out.discard(key)
            self._begun_queued.add(key)
        elif not self._waiting and self._idle.qsize() >= self._keep:
            return False
        self._idle.put_nowait(proxy)
        return True

    async def _return(self, proxy: PoolConnectionProxy) -> None:
        key = id(proxy)
        begun = key in self._begun_out or key in self._begun_queued
        self._begun_out.discard(key)
        self._begun_queued.discard(key)
        try:
            if begun and _usable(proxy):
                # asyncpg's release would roll it back too, but would report
                # it as a transaction some code left open.
                await _roll_back(proxy)
        finally:
            # A release that fails has already closed the connection, and
            # must not replace the request's own outcome.
            try:
                await self._pool.release(proxy, timeout=self._timeout)
            except Exception:
                log.warning("releasing a request connection failed", exc_info=True)
            finally:
                # Also when the caller is cancelled during the release, which
                # asyncpg's shield lets finish without it.
                self._free_slot()

    def _settle_later(self) -> None:
        if self._settling is None or self._settling.done():
            self._settling = asyncio.get_running_loop().create_task(self._settle())

    async def _settle(self) -> None:
        """Roll back the begun transactions left in the queue when no request waits."""
        # Nobody waits, so the queue's connections can be held for a moment:
        # a request arriving meanwhile waits for them, or takes a new one.
        # While it rolls back, a transaction may be begun and queued for a
        # request that then gives up too; _settle_later() does not start a
        # second run then, so this one goes round again.
        while not self._waiting and self._begun_queued and not self._closing:
            held: list[PoolConnectionProxy] = []
            while not self._idle.empty():
                held.append(self._idle.get_nowait())
            try:
                if not any(id(proxy) in self._begun_queued for proxy in held):
                    break  # none of them in the queue: nothing to roll back
                for proxy in held:
                    key = id(proxy)
                    if key in self._begun_queued:
                        self._begun_queued.discard(key)
                        if _usable(proxy):
                            await _roll_back(proxy)
            finally:
                for proxy in reversed(held):
                    self._idle.put_nowait(proxy)

    def _free_slot(self) -> None:
        self._leased -= 1
        if self._waiting and not self._closing:
            # A request waits on the queue, and only a clean return would
            # wake it: give it a connection from the pool instead.
            self._refill()

    def _refill(self) -> None:
        # A task of its own: the request returning a connection may itself
        # be cancelled, and the waiter must not depend on it.
        task = asyncio.get_running_loop().create_task(self._acquire_for_waiter())
        self._refills.add(task)
        task.add_done_callback(self._refills.discard)

    async def _acquire_for_waiter(self) -> None:
        if self._closing or not self._waiting or self._leased >= self._pool.get_max_size():
            return
        self._leased += 1
        try:
            async with asyncio.timeout(self._timeout):
                proxy = await self._pool.acquire()
        except Exception:
            self._leased -= 1
            # The waiter times out on its own, with a 503.
            log.warning("could not get a connection for a waiting request", exc_info=True)
            return
        except asyncio.CancelledError:
            self._leased -= 1
            raise
        self._idle.put_nowait(proxy)

    async def close(self) -> None:
        """Return the idle connections and close the pool (waits for requests in flight)."""
        self._closing = True
        tasks = [*self._refills, *([self._settling] if self._settling else [])]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        while not self._idle.empty():
            await self._return(self._idle.get_nowait())
        await self._pool.close()
