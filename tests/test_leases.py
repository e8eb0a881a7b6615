"""The data API's request connections: kept between clean requests, returned to
the pool after anything else, and never kept from a request waiting for one."""

from __future__ import annotations

import asyncio
import random
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import Any

import asyncpg
import pytest
from starlette.requests import Request

from app.db import create_engine, create_request_leases
from app.errors import ApiError
from app.gateway import Gateway
from app.leases import ConnectionLeases
from app.rls import request_transaction
from tests.conftest import TestDatabase, make_settings


def _anonymous_request() -> Request:
    return Request({"type": "http", "method": "GET", "path": "/", "headers": [], "app": None})


@asynccontextmanager
async def _gateway(database: TestDatabase, **overrides: Any) -> AsyncIterator[Gateway]:
    settings = make_settings(database, **overrides)
    engine = create_engine(database.runtime_url, settings)
    gateway = Gateway.build(settings, engine)
    gateway.leases = await create_request_leases(database.runtime_url, settings)
    try:
        yield gateway
    finally:
        await gateway.leases.close()
        await engine.dispose()


def _leases(gateway: Gateway) -> ConnectionLeases:
    assert gateway.leases is not None
    return gateway.leases


async def _backend_pid(gateway: Gateway) -> int:
    async with request_transaction(gateway, _anonymous_request()) as tx:
        pid: int = await (await tx.driver()).fetchval("SELECT pg_backend_pid()")
    return pid


async def _until(condition: Callable[[], Awaitable[bool]], what: str) -> None:
    # Waits for an event, with a generous bound so a bug fails instead of hanging.
    for _ in range(1000):
        if await condition():
            return
        await asyncio.sleep(0.01)
    raise AssertionError(f"never happened: {what}")


async def _hold(gateway: Gateway, held: asyncio.Event, go: asyncio.Event) -> int:
    """A request that has its connection and keeps it until `go`."""
    async with request_transaction(gateway, _anonymous_request()) as tx:
        pid: int = await (await tx.driver()).fetchval("SELECT pg_backend_pid()")
        held.set()
        await go.wait()
    return pid


async def _queued_request(gateway: Gateway) -> asyncio.Task[int]:
    """A request (its backend pid to come) that is waiting on the queue."""
    task = asyncio.create_task(_backend_pid(gateway))

    async def waiting() -> bool:
        return _leases(gateway).waiting == 1

    await _until(waiting, "a request waits for the pool")
    return task


async def test_a_clean_request_leaves_its_connection_for_the_next(
    database: TestDatabase,
) -> None:
    async with _gateway(database, pool_size=2) as gateway:
        leases = _leases(gateway)
        first = await _backend_pid(gateway)
        assert leases.kept == 1
        # Still checked out of asyncpg's pool: the next request skips it.
        assert leases.pool.get_idle_size() == 0
        assert await _backend_pid(gateway) == first
        assert leases.kept == 1


async def test_a_failed_request_returns_its_connection_to_the_pool(
    database: TestDatabase,
) -> None:
    async with _gateway(database, pool_size=2) as gateway:
        leases = _leases(gateway)

        async def divide_by_zero() -> None:
            async with request_transaction(gateway, _anonymous_request()) as tx:
                driver = await tx.driver()
                await driver.execute("SELECT 1 / 0")

        with pytest.raises(ApiError):
            await divide_by_zero()
        assert leases.kept == 0
        assert leases.pool.get_idle_size() == 1
        async with request_transaction(gateway, _anonymous_request()) as tx:
            driver = await tx.driver()
            assert await driver.fetchval("SELECT current_user") == "anonymous"


async def test_a_cancelled_request_leaves_nothing_behind(
    database: TestDatabase, admin_db: asyncpg.Connection
) -> None:
    async with _gateway(database, pool_size=2) as gateway:
        leases = _leases(gateway)
        pid: list[int] = []

        async def sleeper() -> None:
            async with request_transaction(gateway, _anonymous_request()) as tx:
                driver = await tx.driver()
                pid.append(await driver.fetchval("SELECT pg_backend_pid()"))
                await driver.execute("SELECT set_config('sessiongate.half_done', 'yes', true)")
                await driver.execute("SELECT pg_sleep(60)")

        async def sleeping() -> bool:
            if not pid:
                return False
            state = await admin_db.fetchval(
                "SELECT state FROM pg_stat_activity WHERE pid = $1 AND query LIKE '%pg_sleep%'",
                pid[0],
            )
            return bool(state == "active")

        task = asyncio.create_task(sleeper())
        await _until(sleeping, "the request's statement is running")
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        assert leases.kept == 0
        async with request_transaction(gateway, _anonymous_request()) as tx:
            driver = await tx.driver()
            assert await driver.fetchval("SELECT current_user") == "anonymous"
            half_done = await driver.fetchval(
                "SELECT current_setting('sessiongate.half_done', true)"
            )
            assert half_done in (None, "")


async def test_a_kept_connection_the_server_closed_is_replaced(
    database: TestDatabase, admin_db: asyncpg.Connection
) -> None:
    async with _gateway(database, pool_size=2) as gateway:
        leases = _leases(gateway)
        async with request_transaction(gateway, _anonymous_request()) as tx:
            kept = await tx.driver()
            first = await kept.fetchval("SELECT pg_backend_pid()")
        assert leases.kept == 1
        assert await admin_db.fetchval("SELECT pg_terminate_backend($1)", first)

        async def noticed() -> bool:
            try:
                return kept.is_closed()
            except asyncpg.InterfaceError:
                return True  # closed, and asyncpg has taken it back already

        await _until(noticed, "the client saw the connection close")
        second = await _backend_pid(gateway)
        assert second != first


async def test_a_waiting_request_gets_the_connection_a_finishing_one_returns(
    database: TestDatabase,
) -> None:
    # One connection in all. If a finishing request kept its connection
    # while another waited, the waiter would time out instead.
    async with _gateway(database, pool_size=1, pool_max_overflow=0, pool_timeout=30) as gateway:
        leases = _leases(gateway)
        held, go = asyncio.Event(), asyncio.Event()
        holder = asyncio.create_task(_hold(gateway, held, go))
        await held.wait()
        waiter = await _queued_request(gateway)
        go.set()
        assert await waiter == await holder
        # Nobody waits any more: the waiter's own connection is kept.
        assert leases.kept == 1
        assert leases.waiting == 0


async def test_a_waiting_request_gets_a_connection_when_the_holder_fails(
    database: TestDatabase,
) -> None:
    # The failed request's connection goes back to asyncpg, not to the
    # queue the waiter is on; the waiter must still be served.
    async with _gateway(database, pool_size=1, pool_max_overflow=0, pool_timeout=30) as gateway:
        leases = _leases(gateway)
        held, go = asyncio.Event(), asyncio.Event()

        async def fail_while_held() -> None:
            async with request_transaction(gateway, _anonymous_request()) as tx:
                await (await tx.driver()).execute("SELECT 1")
                held.set()
                await go.wait()
                raise LookupError("the request's own failure")

        holder = asyncio.create_task(fail_while_held())
        await held.wait()
        waiter = await _queued_request(gateway)
        go.set()
        with pytest.raises(LookupError):
            await holder
        assert await waiter > 0
        assert leases.waiting == 0


async def test_a_waiter_is_served_when_the_holder_is_cancelled_while_giving_back(
    database: TestDatabase,
) -> None:
    # asyncio.shield lets a cancelled request's release finish, but not the
    # request: whatever it was to do after the release (wake the waiter) is
    # skipped unless it happens whichever way the release ends.
    async with _gateway(database, pool_size=1, pool_max_overflow=0, pool_timeout=5) as gateway:
        leases = _leases(gateway)
        held, go = asyncio.Event(), asyncio.Event()
        holder = asyncio.create_task(_hold(gateway, held, go))
        await held.wait()
        waiter = await _queued_request(gateway)
        # Cancelled, and cancelled again at every step of its way out (as a
        # cancel scope does, or a shutdown cancelling it once more), the
        # release of its connection included.
        while not holder.done():
            holder.cancel()
            await asyncio.sleep(0)
        with pytest.raises(asyncio.CancelledError):
            await holder
        # Without a connection from the pool it would wait out POOL_TIMEOUT (a 503).
        assert await waiter > 0
        assert leases.waiting == 0


async def test_a_waiter_is_served_when_an_acquire_ahead_of_it_is_cancelled(
    database: TestDatabase,
) -> None:
    # The waiter queued because a request's acquire (a new connection,
    # under way) held the last slot; that request goes away.
    async with _gateway(database, pool_size=1, pool_max_overflow=1, pool_timeout=5) as gateway:
        leases = _leases(gateway)
        held, go = asyncio.Event(), asyncio.Event()
        holder = asyncio.create_task(_hold(gateway, held, go))
        try:
            await held.wait()
            # Keeps the pool's other connection, so the next acquire is still
            # under way when it is cancelled (as a slow connect would be).
            outside = await leases.pool.acquire()
            try:
                stuck = asyncio.create_task(_backend_pid(gateway))
                waiter = await _queued_request(gateway)
                stuck.cancel()
                with pytest.raises(asyncio.CancelledError):
                    await stuck
            finally:
                await leases.pool.release(outside)
            # Without a connection from the pool it would wait out POOL_TIMEOUT (a 503).
            assert await waiter > 0
            assert leases.waiting == 0
        finally:
            go.set()
            await holder


async def test_more_requests_than_connections_all_get_served(database: TestDatabase) -> None:
    # Two connections, twenty requests at once: each clean return goes to
    # the next waiter, none waits out the timeout.
    async with _gateway(database, pool_size=1, pool_max_overflow=1, pool_timeout=30) as gateway:
        leases = _leases(gateway)
        pids = await asyncio.gather(*(_backend_pid(gateway) for _ in range(20)))
        assert len(set(pids)) <= 2
        assert leases.waiting == 0
        # POOL_SIZE kept, the overflow one back in the pool.
        assert leases.kept == 1
        assert leases.pool.get_idle_size() == 1


async def test_no_connection_within_pool_timeout_is_a_503(database: TestDatabase) -> None:
    async with _gateway(database, pool_size=1, pool_max_overflow=0, pool_timeout=0.2) as gateway:
        leases = _leases(gateway)
        held, go = asyncio.Event(), asyncio.Event()
        holder = asyncio.create_task(_hold(gateway, held, go))
        await held.wait()
        with pytest.raises(ApiError) as raised:
            await _backend_pid(gateway)
        assert raised.value.status == 503
        assert raised.value.code == "pool_exhausted"
        assert raised.value.headers == {"Retry-After": "1"}
        assert leases.waiting == 0
        go.set()
        pid = await holder
        # The connection is usable again once it is back.
        assert await _backend_pid(gateway) == pid


async def test_overflow_connections_go_back_to_the_pool(database: TestDatabase) -> None:
    async with _gateway(database, pool_size=1, pool_max_overflow=1) as gateway:
        leases = _leases(gateway)
        go = asyncio.Event()
        held = [asyncio.Event(), asyncio.Event()]
        holders = [asyncio.create_task(_hold(gateway, event, go)) for event in held]
        for event in held:
            await event.wait()
        go.set()
        assert len(set(await asyncio.gather(*holders))) == 2
        # POOL_SIZE stay checked out; the overflow one is the pool's again,
        # which closes it once it has been idle long enough.
        assert leases.kept == 1
        assert leases.pool.get_idle_size() == 1


async def test_now_and_then_a_clean_connection_goes_back_through_the_pool(
    database: TestDatabase,
) -> None:
    # So that asyncpg's checks on release (recycling after max_queries,
    # expire_connections) still reach connections that never fail.
    settings = make_settings(database, pool_size=1)
    pool = (await create_request_leases(database.runtime_url, settings)).pool
    leases = ConnectionLeases(pool, keep=1, timeout=5, return_every=3)
    try:
        for kept in (1, 1, 0, 1):
            connection = await leases.take()
            await connection.execute("SELECT 1")
            await leases.give_back(connection, clean=True)
            assert leases.kept == kept
            assert pool.get_idle_size() == 1 - kept
    finally:
        await leases.close()


@asynccontextmanager
async def _own_leases(database: TestDatabase, size: int) -> AsyncIterator[ConnectionLeases]:
    """Leases on a pool of `size` connections, closed afterwards.

    A test that fails while it holds a connection terminates the pool
    instead: close() would wait for that connection forever.
    """
    settings = make_settings(database, pool_size=size, pool_max_overflow=0)
    pool = (await create_request_leases(database.runtime_url, settings)).pool
    leases = ConnectionLeases(pool, keep=size, timeout=5)
    try:
        yield leases
    except BaseException:
        pool.terminate()
        raise
    await leases.close()


async def _waiting_take(leases: ConnectionLeases) -> asyncio.Task[asyncpg.Connection]:
    task = asyncio.create_task(leases.take())

    async def waiting() -> bool:
        return leases.waiting == 1

    await _until(waiting, "a take() waits for the pool")
    return task


async def test_a_finishing_request_begins_the_waiters_transaction(
    database: TestDatabase, monkeypatch: pytest.MonkeyPatch
) -> None:
    async with _gateway(database, pool_size=1, pool_max_overflow=0, pool_timeout=30) as gateway:
        leases = _leases(gateway)
        handed: list[bool] = []
        begun = leases.begun

        def recording_begun(connection: asyncpg.Connection) -> bool:
            handed.append(begun(connection))
            return handed[-1]

        monkeypatch.setattr(leases, "begun", recording_begun)
        held, go = asyncio.Event(), asyncio.Event()
        finished_at: list[Any] = []

        async def holder() -> None:
            async with request_transaction(gateway, _anonymous_request()) as tx:
                driver = await tx.driver()
                # A setting and a transaction lock: neither may reach the waiter.
                await driver.execute("SELECT set_config('sessiongate.holder', 'yes', true)")
                await driver.execute("SELECT pg_advisory_xact_lock(4242)")
                held.set()
                await go.wait()
                finished_at.append(await driver.fetchval("SELECT clock_timestamp()"))

        async def waiter() -> dict[str, Any]:
            async with request_transaction(gateway, _anonymous_request(), readonly=True) as tx:
                driver = await tx.driver()
                row = await driver.fetchrow(
                    "SELECT current_user AS role, now() AS began,"
                    " current_setting('sessiongate.holder', true) AS holder,"
                    " current_setting('transaction_read_only') AS read_only,"
                    " (SELECT count(*) FROM pg_locks WHERE pid = pg_backend_pid()"
                    "  AND locktype = 'advisory') AS advisory_locks"
                )
                assert row is not None
                await driver.execute("SAVEPOINT escape")
                with pytest.raises(asyncpg.PostgresError) as refused:
                    await driver.execute("SET transaction_read_only = off")
                await driver.execute("ROLLBACK TO SAVEPOINT escape")
                return {**dict(row), "refused": refused.value.sqlstate}

        holding = asyncio.create_task(holder())
        await held.wait()
        waiting = asyncio.create_task(waiter())
        await _until(lambda: _true(leases.waiting == 1), "the waiter queues")
        go.set()
        await holding
        seen = await waiting
        # The holder began its own transaction; the waiter's came with the
        # holder's COMMIT.
        assert handed == [False, True]
        assert seen["role"] == "anonymous"
        assert seen["holder"] in (None, "")
        assert seen["advisory_locks"] == 0
        # Begun after the holder's last statement, not at some earlier BEGIN.
        assert seen["began"] >= finished_at[0]
        # Read only, as if it had begun with BEGIN READ ONLY, and for good.
        assert seen["read_only"] == "on"
        assert seen["refused"] == "25001"
        assert leases.waiting == 0
        assert leases.kept == 1


async def _true(value: bool) -> bool:
    return value


async def test_a_transaction_begun_for_a_waiter_that_gave_up_is_rolled_back(
    database: TestDatabase,
) -> None:
    async with _own_leases(database, 1) as leases:
        connection = await leases.take()
        waiter = await _waiting_take(leases)
        await connection.execute("BEGIN")
        await leases.end(connection, "COMMIT")
        assert connection.is_in_transaction()
        waiter.cancel()
        with pytest.raises(asyncio.CancelledError):
            await waiter
        # Nobody to hand it to: rolled back, and back to asyncpg.
        await leases.give_back(connection, clean=True)
        assert (leases.kept, leases.leased, leases.pool.get_idle_size()) == (0, 0, 1)
        again = await leases.take()
        assert not leases.begun(again)
        assert not again.is_in_transaction()
        await leases.give_back(again, clean=True)


async def test_a_transaction_begun_for_a_waiter_cancelled_as_it_was_handed_over_is_rolled_back(
    database: TestDatabase, admin_db: asyncpg.Connection
) -> None:
    async with _own_leases(database, 1) as leases:
        connection = await leases.take()
        pid = await connection.fetchval("SELECT pg_backend_pid()")
        waiter = await _waiting_take(leases)
        await connection.execute("BEGIN")
        await leases.end(connection, "COMMIT")
        await leases.give_back(connection, clean=True)
        # In the queue and promised to the waiter, which is cancelled
        # before it runs: the connection stays in the queue.
        waiter.cancel()
        with pytest.raises(asyncio.CancelledError):
            await waiter

        async def settled() -> bool:
            state = await admin_db.fetchval(
                "SELECT state FROM pg_stat_activity WHERE pid = $1", pid
            )
            return bool(state == "idle") and leases.kept == 1

        await _until(settled, "the unused transaction is rolled back")
        again = await leases.take()
        assert not leases.begun(again)
        assert not again.is_in_transaction()
        assert await again.fetchval("SELECT pg_backend_pid()") == pid
        await leases.give_back(again, clean=True)


async def test_nothing_is_begun_when_nobody_waits(database: TestDatabase) -> None:
    async with _own_leases(database, 1) as leases:
        connection = await leases.take()
        await connection.execute("BEGIN")
        await leases.end(connection, "COMMIT")
        assert not connection.is_in_transaction()
        await leases.give_back(connection, clean=True)
        assert leases.kept == 1


async def test_a_failed_commit_begins_nothing_for_the_waiter(database: TestDatabase) -> None:
    # The error is the finishing request's; the waiter gets a connection
    # outside any transaction, through asyncpg, and begins its own.
    async with _own_leases(database, 1) as leases:
        connection = await leases.take()
        waiter = await _waiting_take(leases)
        await connection.execute("BEGIN")
        await connection.execute(
            "CREATE TEMP TABLE deferred (id int UNIQUE DEFERRABLE INITIALLY DEFERRED)"
        )
        await connection.execute("INSERT INTO deferred VALUES (1), (1)")
        with pytest.raises(asyncpg.UniqueViolationError):
            await leases.end(connection, "COMMIT")
        assert not connection.is_in_transaction()
        await leases.give_back(connection, clean=False)
        served = await waiter
        assert not leases.begun(served)
        assert not served.is_in_transaction()
        await leases.give_back(served, clean=True)


async def test_a_transaction_begun_while_the_queue_is_being_settled_is_rolled_back_too(
    database: TestDatabase, admin_db: asyncpg.Connection
) -> None:
    # Three transactions begun for waiters that all give up: the last one
    # to leave starts rolling them back, one round trip each. Meanwhile a
    # fourth is begun and queued for a request that gives up as well. It
    # must not stay idle in its transaction, to be handed to some later
    # request with an old BEGIN's now().
    async with _own_leases(database, 4) as leases:
        connections = [await leases.take() for _ in range(4)]
        pids = [await c.fetchval("SELECT pg_backend_pid()") for c in connections]
        waiters = [asyncio.create_task(leases.take()) for _ in range(4)]
        await _until(lambda: _true(leases.waiting == 4), "four take() wait")
        for connection in connections:
            await connection.execute("BEGIN")
            await leases.end(connection, "COMMIT")
            assert connection.is_in_transaction()
        for connection in connections[:3]:
            await leases.give_back(connection, clean=True)
        for waiter in waiters:
            waiter.cancel()
        await asyncio.gather(*waiters, return_exceptions=True)
        settling = leases._settling
        assert settling is not None
        assert not settling.done()
        late = asyncio.create_task(leases.take())
        await asyncio.sleep(0)
        assert leases.waiting == 1
        await leases.give_back(connections[3], clean=True)
        late.cancel()
        with pytest.raises(asyncio.CancelledError):
            await late
        # The race this test is about: the rollbacks were still going on.
        assert not settling.done()
        await settling

        async def settled() -> bool:
            states = await admin_db.fetch(
                "SELECT state FROM pg_stat_activity WHERE pid = ANY($1::int[])", pids
            )
            return [row["state"] for row in states] == ["idle"] * 4 and leases.kept == 4

        await _until(settled, "every unused transaction is rolled back")
        again = [await leases.take() for _ in range(4)]
        assert not any(leases.begun(connection) for connection in again)
        assert not any(connection.is_in_transaction() for connection in again)
        for connection in again:
            await leases.give_back(connection, clean=True)


async def test_finishing_requests_begin_no_more_transactions_than_requests_wait(
    database: TestDatabase,
) -> None:
    # Two requests finish at the same moment with one request waiting:
    # only one of them begins a transaction for it. The other's would have
    # to be rolled back again: a round trip more, not one fewer.
    async with _own_leases(database, 2) as leases:
        connections = [await leases.take() for _ in range(2)]
        for connection in connections:
            await connection.execute("BEGIN")
        waiter = await _waiting_take(leases)
        await asyncio.gather(*(leases.end(c, "COMMIT") for c in connections))
        begun = [c.is_in_transaction() for c in connections]
        connections.sort(key=lambda c: not c.is_in_transaction())
        await leases.give_back(connections[0], clean=True)
        served = await waiter
        handed = leases.begun(served)
        await leases.end(served, "COMMIT")
        for connection in (served, connections[1]):
            await leases.give_back(connection, clean=True)
        assert begun.count(True) == 1
        assert handed
        assert (leases.kept, leases.leased) == (2, 2)


def _accounted_for(leases: ConnectionLeases) -> bool:
    """`leased` agrees with asyncpg: its checked-out holders, plus kept
    connections the server ended (asyncpg took those back at once)."""
    pool: Any = leases.pool
    in_use = sum(not holder.is_idle() for holder in pool._holders)
    idle: Any = leases._idle
    ended = sum(proxy._con is None for proxy in idle._queue)
    return leases.leased == in_use + ended


def _noticed_every_end(leases: ConnectionLeases, terminated: set[int]) -> bool:
    """The client has seen each of these server processes end."""
    pool: Any = leases.pool
    for holder in pool._holders:
        con = holder._con
        if con is not None and not con.is_closed() and con.get_server_pid() in terminated:
            return False
    return True


# A request of the storm below ends in one of these, or is cancelled.
_CLEAN_FAILURES = (
    ApiError,  # a statement error, a 503
    LookupError,  # the request's own
    asyncpg.PostgresError,
    asyncpg.InterfaceError,  # its connection was terminated
    asyncpg.InternalClientError,  # terminated between two statements
    OSError,
)


@pytest.mark.parametrize("seed", range(3))
async def test_a_storm_of_failures_leaves_every_connection_accounted_for(
    database: TestDatabase,
    admin_db: asyncpg.Connection,
    caplog: pytest.LogCaptureFixture,
    seed: int,
) -> None:
    # Hundreds of requests on four connections, some failing, some
    # cancelled (once or again and again), while an admin terminates
    # backends at random. Afterwards nothing waits, `leased` matches
    # asyncpg, and all four connections can be held at once.
    rng = random.Random(seed)
    # A generous timeout: the storm takes about a second, so a 503 means a
    # waiter was never woken while connections came free.
    async with _gateway(database, pool_size=2, pool_max_overflow=2, pool_timeout=10) as gateway:
        leases = _leases(gateway)
        carried: list[str] = []
        terminated: set[int] = set()

        async def request(number: int) -> None:
            kind = rng.choice(["ok", "ok", "ok", "error", "raise", "sleep", "sleep"])
            async with request_transaction(gateway, _anonymous_request()) as tx:
                driver = await tx.driver()
                row = await driver.fetchrow(
                    "SELECT current_user, current_setting('sessiongate.storm', true)"
                )
                assert row is not None
                if row[0] != "anonymous" or row[1] not in (None, ""):
                    carried.append(f"request {number} found {tuple(row)}")
                await driver.execute(
                    "SELECT set_config('sessiongate.storm', $1, true)", str(number)
                )
                if kind == "error":
                    await driver.execute("SELECT 1 / 0")
                elif kind == "raise":
                    raise LookupError("the request's own failure")
                elif kind == "sleep":
                    await driver.execute("SELECT pg_sleep($1)", rng.random() * 0.02)

        async def one(number: int) -> str:
            try:
                await request(number)
            except ApiError as error:
                return error.code
            except _CLEAN_FAILURES:
                return "failed"
            return "ok"

        async def terminate_at_random() -> None:
            pool: Any = leases.pool
            for _ in range(20):
                await asyncio.sleep(rng.random() * 0.03)
                # Only this pool's: other tests' servers share the database.
                pids = sorted(
                    holder._con.get_server_pid()
                    for holder in pool._holders
                    if holder._con is not None and not holder._con.is_closed()
                )
                if pids:
                    pid = rng.choice(pids)
                    terminated.add(pid)
                    await admin_db.execute("SELECT pg_terminate_backend($1)", pid)

        async def cancel_at_random(tasks: list[asyncio.Task[str]]) -> None:
            for _ in range(100):
                await asyncio.sleep(rng.random() * 0.005)
                running = [task for task in tasks if not task.done()]
                if not running:
                    return
                task = rng.choice(running)
                for _ in range(rng.choice([1, 1, 2, 5])):
                    task.cancel()
                    await asyncio.sleep(0)

        tasks: list[asyncio.Task[str]] = []
        for number in range(300):
            tasks.append(asyncio.create_task(one(number)))
            if rng.random() < 0.1:
                await asyncio.sleep(0)
        terminator = asyncio.create_task(terminate_at_random())
        canceller = asyncio.create_task(cancel_at_random(tasks))
        outcomes = await asyncio.gather(*tasks, return_exceptions=True)
        await terminator
        await canceller

        unexpected = [
            outcome
            for outcome in outcomes
            if isinstance(outcome, BaseException)
            and not isinstance(outcome, asyncio.CancelledError)
        ]
        assert not unexpected
        assert "pool_exhausted" not in outcomes
        assert "ok" in outcomes
        assert not carried
        assert "still in a transaction" not in caplog.text

        async def settled() -> bool:
            return (
                not leases._refills
                and _accounted_for(leases)
                and _noticed_every_end(leases, terminated)
            )

        await _until(settled, "the storm's releases and terminations have been seen")
        assert leases.waiting == 0

        go = asyncio.Event()
        held = [asyncio.Event() for _ in range(leases.pool.get_max_size())]
        holders = [asyncio.create_task(_hold(gateway, event, go)) for event in held]
        try:
            for event in held:
                # Fails rather than waits if a holder got no connection.
                this_one = asyncio.create_task(event.wait())
                await asyncio.wait([this_one, *holders], return_when=asyncio.FIRST_COMPLETED)
                this_one.cancel()
                for holder in holders:
                    if holder.done():
                        holder.result()
        finally:
            go.set()
        assert len(set(await asyncio.gather(*holders))) == len(held)
        assert leases.waiting == 0
        assert _accounted_for(leases)


async def test_close_returns_the_kept_connections_and_closes_the_pool(
    database: TestDatabase, admin_db: asyncpg.Connection
) -> None:
    settings = make_settings(database, pool_size=2)
    leases = await create_request_leases(database.runtime_url, settings)
    async with leases.pool.acquire() as conn:
        pid = await conn.fetchval("SELECT pg_backend_pid()")
    connection = await leases.take()
    assert await connection.fetchval("SELECT pg_backend_pid()") == pid
    await leases.give_back(connection, clean=True)
    assert leases.kept == 1
    await leases.close()
    assert leases.kept == 0
    assert leases.pool.is_closing()

    async def gone() -> bool:
        return not await admin_db.fetchval(
            "SELECT count(*) FROM pg_stat_activity WHERE pid = $1", pid
        )

    await _until(gone, "the server connection ended")
