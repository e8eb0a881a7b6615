"""Idle and absolute timeouts, and the sliding idle expiry written at most once per interval."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

import asyncpg
import httpx

from tests.conftest import make_client, sign_in

T = TypeVar("T")
Client = tuple[httpx.AsyncClient, dict[str, Any]]


async def test_idle_expired_session_is_refused(
    signed_in: Client, admin_db: asyncpg.Connection
) -> None:
    http, user = signed_in
    assert (await http.get("/api/me")).status_code == 200
    await admin_db.execute(
        "UPDATE auth.sessions SET idle_expires_at = now() - interval '1 second' WHERE user_id = $1",
        user["id"],
    )
    assert (await http.get("/api/me")).status_code == 401
    assert (await http.get("/demo/summary")).json()["role"] == "anonymous"


async def test_absolute_expiry_wins_over_activity(
    signed_in: Client, admin_db: asyncpg.Connection
) -> None:
    http, user = signed_in
    await admin_db.execute(
        "UPDATE auth.sessions SET expires_at = now() - interval '1 second' WHERE user_id = $1",
        user["id"],
    )
    assert (await http.get("/api/me")).status_code == 401
    assert (await http.post("/api/refresh")).status_code == 401


async def test_session_expiries_follow_the_settings(
    signed_in: Client, admin_db: asyncpg.Connection
) -> None:
    _, user = signed_in
    row = await admin_db.fetchrow(
        "SELECT extract(epoch FROM idle_expires_at - created_at) AS idle,"
        " extract(epoch FROM expires_at - created_at) AS absolute"
        " FROM auth.sessions WHERE user_id = $1",
        user["id"],
    )
    assert row is not None
    assert round(float(row["idle"])) == 3600
    assert round(float(row["absolute"])) == 86400


async def eventually(probe: Callable[[], Awaitable[T]], done: Callable[[T], bool]) -> T:
    """Poll `probe` until `done` holds (the touch runs after the response, in the
    background), for at most five seconds; the last value either way."""
    value = await probe()
    for _ in range(100):
        if done(value):
            break
        await asyncio.sleep(0.05)
        value = await probe()
    return value


async def _last_seen(admin_db: asyncpg.Connection, user_id: str) -> Any:
    return await admin_db.fetchrow(
        "SELECT last_seen_at, idle_expires_at FROM auth.sessions WHERE user_id = $1", user_id
    )


async def test_activity_slides_the_idle_expiry(
    server_factory: Any, admin_db: asyncpg.Connection
) -> None:
    server = server_factory(session_touch_interval=0)
    async with make_client(server.url) as http:
        user = await sign_in(http)
        before = await _last_seen(admin_db, user["id"])
        await admin_db.execute(
            "UPDATE auth.sessions SET last_seen_at = last_seen_at - interval '5 minutes',"
            " idle_expires_at = idle_expires_at - interval '5 minutes' WHERE user_id = $1",
            user["id"],
        )
        assert (await http.get("/api/todos")).status_code == 200
        after = await eventually(
            lambda: _last_seen(admin_db, user["id"]),
            lambda row: bool(row["idle_expires_at"] >= before["idle_expires_at"]),
        )
        assert after["idle_expires_at"] >= before["idle_expires_at"]
        assert after["last_seen_at"] >= before["last_seen_at"]


async def test_reads_within_the_interval_do_not_write(
    server_factory: Any, admin_db: asyncpg.Connection
) -> None:
    server = server_factory(session_touch_interval=3600)
    async with make_client(server.url) as http:
        user = await sign_in(http)
        before = await _last_seen(admin_db, user["id"])
        for _ in range(5):
            assert (await http.get("/api/todos")).status_code == 200
        await asyncio.sleep(0.2)
        assert await _last_seen(admin_db, user["id"]) == before


async def test_touch_never_extends_past_the_absolute_expiry(
    server_factory: Any, admin_db: asyncpg.Connection
) -> None:
    server = server_factory(session_touch_interval=0)
    async with make_client(server.url) as http:
        user = await sign_in(http)
        await admin_db.execute(
            "UPDATE auth.sessions SET expires_at = now() + interval '10 minutes',"
            " last_seen_at = now() - interval '1 minute' WHERE user_id = $1",
            user["id"],
        )
        assert (await http.get("/api/todos")).status_code == 200
        row = await eventually(
            lambda: admin_db.fetchrow(
                "SELECT last_seen_at > now() - interval '30 seconds' AS touched,"
                " idle_expires_at <= expires_at AS capped FROM auth.sessions WHERE user_id = $1",
                user["id"],
            ),
            lambda row: row is not None and bool(row["touched"]),
        )
        assert row is not None
        assert row["touched"]
        assert row["capped"]
