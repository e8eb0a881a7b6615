"""E-mail enumeration attempts through sign-up, login, forgot and resend: nothing to learn.

Each attack compares the answers for an address with an account and one
without: same status, same body (or, for sign-up, the same shape), no
cookie either way, and time of the same order (medians compared with each
other in one run, never against a fixed number). Forgot and resend write
only for an address with an account, so they answer before writing: the
tests hold the outbox locked and see the answer arrive while the write waits.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from statistics import median
from typing import Any

import asyncpg
import httpx
import pytest

from app.mailer import Mailer
from tests.accounts_support import (
    SmtpServer,
    accounts_server,
    body_of,
    confirm_sign_up,
    http,
    link_in,
    log_in,
    mailer,
    sign_up_verified,
    smtp,
    start_mailer,
)
from tests.conftest import TEST_PASSWORD, unique_email

__all__ = ["accounts_server", "http", "mailer", "smtp", "start_mailer"]


def _shape(body: dict[str, Any]) -> dict[str, str]:
    return {key: type(value).__name__ for key, value in body.items()}


async def _same_order_of_time(
    first: Callable[[], Awaitable[Any]], second: Callable[[], Awaitable[Any]], rounds: int = 5
) -> None:
    async def timed(call: Callable[[], Awaitable[Any]]) -> float:
        start = time.perf_counter()
        await call()
        return time.perf_counter() - start

    a = [await timed(first) for _ in range(rounds)]
    b = [await timed(second) for _ in range(rounds)]
    ratio = median(a) / median(b)
    assert 0.33 < ratio < 3, (a, b)


async def test_signup_for_a_taken_address_looks_like_a_new_account(
    http: httpx.AsyncClient, smtp: SmtpServer, mailer: Mailer
) -> None:
    owner = await sign_up_verified(http, smtp.inbox)
    fresh = unique_email("fresh")
    new = await http.post("/api/signup", json={"email": fresh, "password": TEST_PASSWORD})
    taken = await http.post(
        "/api/signup", json={"email": owner["email"], "password": "the attacker's password"}
    )
    assert new.status_code == taken.status_code == 201
    assert _shape(new.json()) == _shape(taken.json())
    comparable = {"email", "id", "created_at", "updated_at"}
    assert {k: v for k, v in new.json().items() if k not in comparable} == {
        k: v for k, v in taken.json().items() if k not in comparable
    }
    assert "set-cookie" not in new.headers
    assert "set-cookie" not in taken.headers
    # The owner is told, with no link; the account keeps its password.
    notices = await smtp.inbox.wait_for(owner["email"], 2)
    assert "already has an account" in body_of(notices[1])
    assert "#token=" not in body_of(notices[1])
    assert (await log_in(http, owner["email"])).status_code == 200
    assert (await log_in(http, owner["email"], "the attacker's password")).status_code == 401


async def test_a_pre_registered_address_goes_to_whoever_follows_their_own_link(
    http: httpx.AsyncClient,
    smtp: SmtpServer,
    mailer: Mailer,
    admin_db: asyncpg.Connection,
) -> None:
    # The attacker signs the victim's address up first and never verifies.
    email = unique_email("prehijack")
    squatter = await http.post(
        "/api/signup", json={"email": email, "password": "the attacker's password"}
    )
    assert squatter.status_code == 201
    # The owner signs up later, with their own password: the same answer.
    owner = await http.post("/api/signup", json={"email": email, "password": TEST_PASSWORD})
    assert owner.status_code == 201
    assert _shape(owner.json()) == _shape(squatter.json())
    messages = await smtp.inbox.wait_for(email, 2)
    _, first = link_in(messages[0])
    _, second = link_in(messages[1])
    # The owner's sign-up replaced the squatter's link.
    stale = await confirm_sign_up(http, first, "the attacker's password")
    assert (stale.status_code, stale.json()["code"]) == (400, "invalid_token")
    # The owner's link confirms the owner's password, and only with it.
    clicked = await http.post("/api/verify", json={"token": second})
    assert (clicked.status_code, clicked.json()["code"]) == (400, "password_required")
    guessed = await confirm_sign_up(http, second, "the attacker's password")
    assert (guessed.status_code, guessed.json()["code"]) == (403, "wrong_password")
    assert (await confirm_sign_up(http, second)).status_code == 200
    # Following their own link gave the owner the password they chose.
    assert (await log_in(http, email)).status_code == 200
    assert (await log_in(http, email, "the attacker's password")).status_code == 401
    # The outbox kept the chosen password's hash only until the mail went out.
    payloads = await admin_db.fetch(
        "SELECT payload FROM auth.events WHERE payload->>'email' = $1", email
    )
    assert all("password_hash" not in json.loads(r["payload"]) for r in payloads)


async def test_signing_up_again_while_the_owner_waits_hands_over_nothing(
    http: httpx.AsyncClient, smtp: SmtpServer, mailer: Mailer, admin_db: asyncpg.Connection
) -> None:
    email = unique_email("waiting")
    owner = await http.post("/api/signup", json={"email": email, "password": TEST_PASSWORD})
    assert owner.status_code == 201
    # Before the owner opens the mail, the attacker signs the address up again.
    attacker = await http.post(
        "/api/signup", json={"email": email, "password": "the attacker's password"}
    )
    assert attacker.status_code == 201
    messages = await smtp.inbox.wait_for(email, 2)
    _, own_link = link_in(messages[0])
    _, newest = link_in(messages[1])
    # The owner clicks the newest mail: it asks for the password of the
    # sign-up that sent it, which is not theirs; nothing changes.
    clicked = await http.post("/api/verify", json={"token": newest})
    assert (clicked.status_code, clicked.json()["code"]) == (400, "password_required")
    typed = await confirm_sign_up(http, newest)
    assert (typed.status_code, typed.json()["code"]) == (403, "wrong_password")
    verified = "SELECT verified FROM auth.users WHERE email = $1"
    assert await admin_db.fetchval(verified, email) is False
    # Only one link per account lives, so the owner's own is gone; a new
    # one (as the hint says) confirms the password the account already has.
    assert (await confirm_sign_up(http, own_link)).json()["code"] == "invalid_token"
    resent = await http.post("/api/verify/resend", json={"email": email})
    assert resent.status_code == 202
    _, fresh = link_in((await smtp.inbox.wait_for(email, 3))[2])
    assert (await confirm_sign_up(http, fresh)).status_code == 200
    assert (await log_in(http, email)).status_code == 200
    assert (await log_in(http, email, "the attacker's password")).status_code == 401
    # The attacker's link died with the new one.
    late = await confirm_sign_up(http, newest, "the attacker's password")
    assert (late.status_code, late.json()["code"]) == (400, "invalid_token")


async def test_signup_takes_as_long_for_a_taken_address(
    http: httpx.AsyncClient, smtp: SmtpServer, mailer: Mailer
) -> None:
    owner = await sign_up_verified(http, smtp.inbox)

    async def new() -> None:
        body = {"email": unique_email("timing"), "password": TEST_PASSWORD}
        assert (await http.post("/api/signup", json=body)).status_code == 201

    async def taken() -> None:
        body = {"email": owner["email"], "password": TEST_PASSWORD}
        assert (await http.post("/api/signup", json=body)).status_code == 201

    await _same_order_of_time(new, taken)


async def test_login_answers_alike_for_unknown_unverified_and_verified_addresses(
    http: httpx.AsyncClient, smtp: SmtpServer, mailer: Mailer
) -> None:
    verified = await sign_up_verified(http, smtp.inbox)
    unverified = unique_email("pending")
    await http.post("/api/signup", json={"email": unverified, "password": TEST_PASSWORD})
    answers = [
        await log_in(http, email, "not the password")
        for email in (verified["email"], unverified, unique_email("nobody"))
    ]
    assert {a.status_code for a in answers} == {401}
    assert len({a.content for a in answers}) == 1
    assert all("set-cookie" not in a.headers for a in answers)


async def test_forgot_answers_alike_whether_or_not_the_account_exists(
    http: httpx.AsyncClient, smtp: SmtpServer, mailer: Mailer
) -> None:
    user = await sign_up_verified(http, smtp.inbox)
    nobody = unique_email("nobody")
    known = await http.post("/api/password/forgot", json={"email": user["email"]})
    unknown = await http.post("/api/password/forgot", json={"email": nobody})
    assert known.status_code == unknown.status_code == 202
    assert known.content == unknown.content
    assert len(await smtp.inbox.wait_for(user["email"], 2)) == 2
    assert smtp.inbox.to(nobody) == []

    async def forgot(email: str) -> None:
        await http.post("/api/password/forgot", json={"email": email})

    await _same_order_of_time(lambda: forgot(user["email"]), lambda: forgot(nobody), rounds=7)


async def test_resend_answers_alike_for_every_kind_of_address(
    http: httpx.AsyncClient, smtp: SmtpServer, mailer: Mailer
) -> None:
    verified = await sign_up_verified(http, smtp.inbox)
    pending = unique_email("pending")
    await http.post("/api/signup", json={"email": pending, "password": TEST_PASSWORD})
    answers = [
        await http.post("/api/verify/resend", json={"email": email})
        for email in (verified["email"], pending, unique_email("nobody"))
    ]
    assert {a.status_code for a in answers} == {202}
    assert len({a.content for a in answers}) == 1
    # Only the account that is waiting for verification gets a new link.
    assert len(await smtp.inbox.wait_for(pending, 2)) == 2
    assert len(smtp.inbox.to(verified["email"])) == 1

    async def resend(email: str) -> None:
        await http.post("/api/verify/resend", json={"email": email})

    await _same_order_of_time(lambda: resend(pending), lambda: resend(unique_email()), rounds=7)


# The routes that queue a mail, for an address with an account only.
MAIL_REQUESTS = ["/api/password/forgot", "/api/verify/resend"]


@asynccontextmanager
async def _outbox_locked(admin_db: asyncpg.Connection) -> AsyncIterator[None]:
    """Hold auth.events against writes (reads go on) for the block."""
    async with admin_db.transaction():
        await admin_db.execute("LOCK TABLE auth.events IN EXCLUSIVE MODE")
        yield


async def _writer_waiting(admin_db: asyncpg.Connection) -> int:
    """The pid of a backend waiting to write to the locked outbox (the mailer only reads)."""
    waiting = (
        "SELECT pid FROM pg_locks WHERE relation = 'auth.events'::regclass"
        " AND mode = 'RowExclusiveLock' AND NOT granted"
    )
    for _ in range(1000):  # a bound, so a test that went wrong fails instead of hanging
        pid: int | None = await admin_db.fetchval(waiting)
        if pid is not None:
            return pid
        await asyncio.sleep(0.01)
    raise AssertionError("nothing tried to write to the locked outbox")


async def _logged_error(caplog: pytest.LogCaptureFixture, logger: str) -> logging.LogRecord:
    """The first error `logger` logs, waiting for it (the server runs in another thread)."""
    for _ in range(1000):
        for record in caplog.records:
            if record.name == logger and record.levelno >= logging.ERROR:
                return record
        await asyncio.sleep(0.01)
    raise AssertionError(f"{logger} logged no error")


async def _pending_account(http: httpx.AsyncClient, smtp: SmtpServer) -> str:
    """An unverified account whose sign-up mail has gone out: forgot and resend both write."""
    email = unique_email("queued")
    await http.post("/api/signup", json={"email": email, "password": TEST_PASSWORD})
    await smtp.inbox.wait_for(email)
    return email


@pytest.mark.parametrize("path", MAIL_REQUESTS)
async def test_forgot_and_resend_answer_before_they_write(
    http: httpx.AsyncClient,
    smtp: SmtpServer,
    mailer: Mailer,
    admin_db: asyncpg.Connection,
    path: str,
) -> None:
    email = await _pending_account(http, smtp)
    async with _outbox_locked(admin_db):
        request = asyncio.ensure_future(http.post(path, json={"email": email}))
        # The write for the account has begun, and waits for the outbox...
        writer = await _writer_waiting(admin_db)
        answer = await request
        # ...and still waits now that the answer is here. Had the route
        # written first, the answer could only have come once the write
        # had ended (here, by the statement timeout).
        still_waiting = await admin_db.fetchval(
            "SELECT EXISTS (SELECT FROM pg_locks WHERE pid = $1 AND NOT granted)", writer
        )
    assert still_waiting, "the answer waited for the account's write"
    assert answer.status_code == 202
    # The mail was queued all the same, once the outbox was free.
    [_, mail] = await smtp.inbox.wait_for(email, 2)
    assert "#token=" in body_of(mail)


@pytest.mark.parametrize("path", MAIL_REQUESTS)
async def test_a_mail_that_could_not_be_queued_after_its_202_is_logged(
    http: httpx.AsyncClient,
    smtp: SmtpServer,
    mailer: Mailer,
    admin_db: asyncpg.Connection,
    caplog: pytest.LogCaptureFixture,
    path: str,
) -> None:
    email = await _pending_account(http, smtp)
    async with _outbox_locked(admin_db):
        request = asyncio.ensure_future(http.post(path, json={"email": email}))
        writer = await _writer_waiting(admin_db)
        # The write fails after the answer: cancelled while it waits.
        await admin_db.execute("SELECT pg_cancel_backend($1)", writer)
        answer = await request
    assert answer.status_code == 202
    failure = await _logged_error(caplog, "app.api.routes.verification")
    assert "could not be queued" in failure.getMessage()
    assert "canceling statement" in failure.getMessage()
    # Logged like everything else here: without the address.
    assert email not in failure.getMessage()
    assert failure.exc_info is None
    # The cancelled write left nothing behind: only the sign-up's event.
    events = "SELECT count(*) FROM auth.events WHERE payload->>'email' = $1"
    assert await admin_db.fetchval(events, email) == 1
