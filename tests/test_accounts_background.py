"""Work the service does by itself: the periodic purge and the in-service mailer."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import asyncpg
import httpx

from app import housekeeping
from app.db import create_engine
from tests.accounts_support import SmtpServer, confirm_sign_up, link_in, log_in, smtp
from tests.conftest import TEST_PASSWORD, TestDatabase, make_client, make_settings, unique_email

__all__ = ["smtp"]


async def test_the_service_purges_ended_sessions_periodically(
    server_factory: Any, admin_db: asyncpg.Connection
) -> None:
    server = server_factory(session_purge_interval=1)
    async with make_client(server.url) as http:
        email = unique_email("purge")
        await http.post("/api/signup", json={"email": email, "password": TEST_PASSWORD})
        assert (await log_in(http, email)).status_code == 200
        assert (await http.post("/api/logout")).status_code == 204

    async def sessions_left() -> int:
        count: int = await admin_db.fetchval(
            "SELECT count(*) FROM auth.sessions s JOIN auth.users u ON u.id = s.user_id"
            " WHERE u.email = $1",
            email,
        )
        return count

    assert await sessions_left() == 1
    deadline = time.monotonic() + 15
    while await sessions_left():
        assert time.monotonic() < deadline, "the revoked session was never purged"
        await asyncio.sleep(0.1)


async def test_the_service_can_run_the_mailer_itself(server_factory: Any, smtp: SmtpServer) -> None:
    server = server_factory(
        mailer_in_service=True,
        mail_transport="smtp",
        smtp_host="127.0.0.1",
        smtp_port=smtp.port,
        smtp_tls="none",
        require_verified_email=True,
    )
    async with make_client(server.url) as http:
        email = unique_email("inservice")
        await http.post("/api/signup", json={"email": email, "password": TEST_PASSWORD})
        [message] = await smtp.inbox.wait_for(email)
        page, token = link_in(message)
        # The link points at the service's own public URL.
        assert page == f"{server.url}/verify"
        assert (await confirm_sign_up(http, token)).status_code == 200
        assert (await log_in(http, email)).status_code == 200


async def test_an_unsent_sign_up_s_password_hash_is_purged_once_its_link_would_have_expired(
    database: TestDatabase, client: httpx.AsyncClient, admin_db: asyncpg.Connection
) -> None:
    # No mailer runs: each address is signed up twice, and the second
    # sign-up's event waits in the outbox with that sign-up's password hash.
    stale, fresh = unique_email("unsent"), unique_email("unsent")
    for email in (stale, fresh):
        for password in (TEST_PASSWORD, "the second sign-up's password"):
            body = {"email": email, "password": password}
            assert (await client.post("/api/signup", json=body)).status_code == 201
    settings = make_settings(database)
    # The stale address's sign-ups are older than a link's lifetime
    # (moved back in time, not waited for).
    await admin_db.execute(
        "UPDATE auth.events SET created = now() - make_interval(secs => $2)"
        " WHERE payload->>'email' = $1",
        stale,
        settings.verify_token_lifetime + 60,
    )
    engine = create_engine(database.runtime_url, settings)
    try:
        purged = await housekeeping.purge(engine, settings)
    finally:
        await engine.dispose()
    assert purged.events >= 1
    pending = await admin_db.fetch(
        "SELECT payload->>'email' AS email, payload ? 'password_hash' AS with_hash"
        " FROM auth.events WHERE payload->>'email' = ANY($1::text[]) AND delivered IS NULL"
        " ORDER BY id",
        [stale, fresh],
    )
    assert [(row["email"], row["with_hash"]) for row in pending] == [
        # The stale first sign-up's mail holds no secret: it still waits for a mailer.
        (stale, False),
        # The fresh address's events are all kept, hash and all, until mailed.
        (fresh, False),
        (fresh, True),
    ]
