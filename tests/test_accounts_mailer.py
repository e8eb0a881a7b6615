"""The outbox and the mailer against real SMTP: outages lose nothing, nothing is sent twice."""

from __future__ import annotations

import asyncio
import io
import json
import re
import time
from typing import Any

import asyncpg
import httpx

from app.config import Settings
from app.db import create_engine, plain_dsn
from app.mailer import Mailer, StdoutTransport
from tests.accounts_support import (
    Inbox,
    MailerFactory,
    SmtpServer,
    accounts_server,
    confirm_sign_up,
    http,
    link_in,
    smtp,
    start_mailer,
)
from tests.conftest import TEST_PASSWORD, TestDatabase, free_port, make_settings, unique_email

__all__ = ["accounts_server", "http", "smtp", "start_mailer"]


async def _undelivered(admin_db: asyncpg.Connection, emails: list[str]) -> list[asyncpg.Record]:
    rows: list[asyncpg.Record] = await admin_db.fetch(
        "SELECT id, kind, attempts, last_error FROM auth.events"
        " WHERE payload->>'email' = ANY($1::text[]) AND delivered IS NULL ORDER BY id",
        emails,
    )
    return rows


async def _undelivered_at_least(
    admin_db: asyncpg.Connection, emails: list[str], count: int
) -> bool:
    return len(await _undelivered(admin_db, emails)) >= count


async def _poll(check: Any, within: float = 15) -> None:
    deadline = time.monotonic() + within
    while not await check():
        assert time.monotonic() < deadline, "condition not reached in time"
        await asyncio.sleep(0.05)


async def test_events_written_while_no_mailer_runs_are_each_sent_once(
    http: httpx.AsyncClient,
    smtp: SmtpServer,
    start_mailer: MailerFactory,
    admin_db: asyncpg.Connection,
) -> None:
    emails = [unique_email("outage") for _ in range(3)]
    for email in emails:
        assert (
            await http.post("/api/signup", json={"email": email, "password": TEST_PASSWORD})
        ).status_code == 201
    assert (await http.post("/api/password/forgot", json={"email": emails[0]})).status_code == 202
    # The reset is queued just after its 202 went out (docs/accounts.md).
    await _poll(lambda: _undelivered_at_least(admin_db, emails, 4))
    # Nobody listened: the NOTIFYs are gone, the rows are not.
    pending = await _undelivered(admin_db, emails)
    assert sorted(r["kind"] for r in pending) == ["reset", "validate", "validate", "validate"]
    assert all(not smtp.inbox.to(email) for email in emails)

    await start_mailer()  # drains on start
    assert len(await smtp.inbox.wait_for(emails[0], 2)) == 2
    for email in emails[1:]:
        await smtp.inbox.wait_for(email, 1)
    assert await _undelivered(admin_db, emails) == []

    # A second mailer (a restart) finds nothing left to send.
    second = await start_mailer()
    assert await second.drain() == 0
    await asyncio.sleep(0.3)
    assert [len(smtp.inbox.to(email)) for email in emails] == [2, 1, 1]


async def test_a_failed_send_is_retried_with_backoff_until_smtp_is_back(
    http: httpx.AsyncClient, start_mailer: MailerFactory, admin_db: asyncpg.Connection
) -> None:
    port = free_port()  # nothing listens here yet
    mailer = await start_mailer(smtp_port=port, mailer_retry_base=0.3, mailer_retry_max=0.6)
    email = unique_email("retry")
    await http.post("/api/signup", json={"email": email, "password": TEST_PASSWORD})

    async def failed_twice() -> bool:
        rows = await _undelivered(admin_db, [email])
        return bool(rows) and rows[0]["attempts"] >= 2

    await _poll(failed_twice)
    [row] = await _undelivered(admin_db, [email])
    assert row["last_error"]
    assert mailer.backoff(1) == 0.3
    assert mailer.backoff(2) == 0.6
    assert mailer.backoff(10) == 0.6
    # SMTP comes back on the same port: the next retry goes through, once.
    inbox = Inbox()
    server = SmtpServer(inbox, port).start()
    try:
        [message] = await inbox.wait_for(email)
        await asyncio.sleep(0.8)
        assert len(inbox.to(email)) == 1
    finally:
        server.stop()
    assert await _undelivered(admin_db, [email]) == []
    # The link from the one mail that went out works; the unsent tokens were replaced.
    _, token = link_in(message)
    assert (await confirm_sign_up(http, token)).status_code == 200


async def test_two_mailers_share_the_queue_without_sending_twice(
    http: httpx.AsyncClient, smtp: SmtpServer, start_mailer: MailerFactory
) -> None:
    await start_mailer()
    await start_mailer()
    emails = [unique_email("pair") for _ in range(6)]
    await asyncio.gather(
        *(http.post("/api/signup", json={"email": e, "password": TEST_PASSWORD}) for e in emails)
    )
    for email in emails:
        await smtp.inbox.wait_for(email)
    await asyncio.sleep(0.3)
    assert [len(smtp.inbox.to(email)) for email in emails] == [1] * 6


async def test_notify_carries_only_the_event_id_and_kind(
    http: httpx.AsyncClient, database: TestDatabase, admin_db: asyncpg.Connection
) -> None:
    listener = await asyncpg.connect(database.runtime_dsn)
    heard: list[tuple[str, str]] = []
    try:
        for channel in ("validate", "reset"):
            await listener.add_listener(
                channel, lambda _c, _p, ch, payload: heard.append((ch, payload))
            )
        email = unique_email("notify")
        await http.post("/api/signup", json={"email": email, "password": TEST_PASSWORD})
        await http.post("/api/password/forgot", json={"email": email})
        await _poll(lambda: _async(len(heard) >= 2))
    finally:
        await listener.close()
    ids = await admin_db.fetch(
        "SELECT id, kind FROM auth.events WHERE payload->>'email' = $1 ORDER BY id", email
    )
    mine = [(ch, json.loads(p)) for ch, p in heard if json.loads(p)["id"] in {r["id"] for r in ids}]
    assert mine == [
        ("validate", {"id": ids[0]["id"], "kind": "validate"}),
        ("reset", {"id": ids[1]["id"], "kind": "reset"}),
    ]


async def _async(value: bool) -> bool:
    return value


async def test_the_demo_mailer_prints_the_link(
    http: httpx.AsyncClient, database: TestDatabase, admin_db: asyncpg.Connection
) -> None:
    settings: Settings = make_settings(database, public_url="http://127.0.0.1:8000")
    assert settings.mailer_transport == "stdout"  # demo mode's default
    out = io.StringIO()
    engine = create_engine(database.runtime_url, settings)
    try:
        email = unique_email("demo")
        await http.post("/api/signup", json={"email": email, "password": TEST_PASSWORD})
        await Mailer(
            engine, settings, plain_dsn(database.runtime_url), StdoutTransport(out)
        ).drain()
    finally:
        await engine.dispose()
    printed = out.getvalue()
    assert f"----- mail to {email} -----" in printed
    # The link is printed whole, on one line, ready to open.
    assert re.search(r"^http://127\.0\.0\.1:8000/verify#token=[A-Za-z0-9_-]{43}$", printed, re.M)
    assert "=3D" not in printed
    assert await _undelivered(admin_db, [email]) == []
