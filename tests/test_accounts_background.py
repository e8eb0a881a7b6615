"""Work the service does by itself: the periodic purge and the in-service mailer."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import asyncpg

from tests.accounts_support import SmtpServer, confirm_sign_up, link_in, log_in, smtp
from tests.conftest import TEST_PASSWORD, make_client, unique_email

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
