"""E-mail verification over HTTP with a real mailer and SMTP server: links, tokens, attacks."""

from __future__ import annotations

import asyncio
import hashlib
import json

import asyncpg
import httpx

from app.mailer import Mailer
from tests.accounts_support import (
    MailerFactory,
    SmtpServer,
    accounts_server,
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


async def test_signup_mails_a_link_and_keeps_only_the_token_hash(
    http: httpx.AsyncClient, smtp: SmtpServer, mailer: Mailer, admin_db: asyncpg.Connection
) -> None:
    email = unique_email("verify")
    response = await http.post("/api/signup", json={"email": email, "password": TEST_PASSWORD})
    assert response.status_code == 201
    assert response.json()["verified"] is False

    [message] = await smtp.inbox.wait_for(email)
    assert message["To"] == email
    page, token = link_in(message)
    assert page == "https://accounts.example.test/verify"

    user_id = response.json()["id"]
    stored = await admin_db.fetch(
        "SELECT token_hash, purpose, expires_at - created_at AS lifetime FROM auth.tokens"
        " WHERE user_id = $1",
        user_id,
    )
    assert [bytes(r["token_hash"]) for r in stored] == [hashlib.sha256(token.encode()).digest()]
    assert stored[0]["purpose"] == "verify"
    assert stored[0]["lifetime"].total_seconds() == 24 * 60 * 60
    # The secret is nowhere in the database: not in tokens, not in the outbox.
    for table in ("auth.tokens", "auth.events", "auth.users"):
        dump = await admin_db.fetchval(
            f"SELECT coalesce(string_agg(t::text, ' '), '') FROM {table} t"
        )
        assert token not in dump
    event = await admin_db.fetchrow(
        "SELECT kind, payload, delivered FROM auth.events WHERE payload->>'user_id' = $1",
        user_id,
    )
    assert event is not None
    assert event["kind"] == "validate"
    assert json.loads(event["payload"]) == {"user_id": user_id, "email": email}
    assert event["delivered"] is not None


async def test_login_refuses_an_unverified_account_until_it_is_verified(
    http: httpx.AsyncClient, smtp: SmtpServer, mailer: Mailer
) -> None:
    email = unique_email("unverified")
    await http.post("/api/signup", json={"email": email, "password": TEST_PASSWORD})

    refused = await log_in(http, email)
    assert refused.status_code == 403
    assert refused.json()["code"] == "email_not_verified"
    assert "set-cookie" not in refused.headers
    # The distinct answer only comes after the password matched.
    wrong = await log_in(http, email, "not the password")
    unknown = await log_in(http, unique_email(), "not the password")
    assert wrong.status_code == unknown.status_code == 401
    assert wrong.content == unknown.content

    [message] = await smtp.inbox.wait_for(email)
    _, token = link_in(message)
    verified = await confirm_sign_up(http, token)
    assert verified.status_code == 200
    assert verified.json()["verified"] is True
    assert (await log_in(http, email)).status_code == 200
    assert (await http.get("/api/me")).json()["email"] == email


async def test_a_verification_link_works_once(
    http: httpx.AsyncClient, smtp: SmtpServer, mailer: Mailer
) -> None:
    email = unique_email("once")
    await http.post("/api/signup", json={"email": email, "password": TEST_PASSWORD})
    _, token = link_in((await smtp.inbox.wait_for(email))[0])
    assert (await confirm_sign_up(http, token)).status_code == 200
    again = await confirm_sign_up(http, token)
    assert again.status_code == 400
    assert again.json()["code"] == "invalid_token"


async def test_resend_replaces_the_previous_link(
    http: httpx.AsyncClient, smtp: SmtpServer, mailer: Mailer
) -> None:
    email = unique_email("resend")
    await http.post("/api/signup", json={"email": email, "password": TEST_PASSWORD})
    _, first = link_in((await smtp.inbox.wait_for(email))[0])
    response = await http.post("/api/verify/resend", json={"email": email})
    assert response.status_code == 202
    _, second = link_in((await smtp.inbox.wait_for(email, 2))[1])
    assert first != second
    stale = await confirm_sign_up(http, first)
    assert stale.status_code == 400
    assert (await confirm_sign_up(http, second)).status_code == 200


async def test_an_expired_link_is_refused(
    http: httpx.AsyncClient, smtp: SmtpServer, start_mailer: MailerFactory
) -> None:
    await start_mailer(verify_token_lifetime=1)
    email = unique_email("expired")
    await http.post("/api/signup", json={"email": email, "password": TEST_PASSWORD})
    _, token = link_in((await smtp.inbox.wait_for(email))[0])
    await asyncio.sleep(1.2)
    response = await confirm_sign_up(http, token)
    assert response.status_code == 400
    assert response.json()["code"] == "invalid_token"
    assert (await log_in(http, email)).json()["code"] == "email_not_verified"


async def test_a_token_only_works_for_its_purpose(
    http: httpx.AsyncClient, smtp: SmtpServer, mailer: Mailer
) -> None:
    email = unique_email("purpose")
    await http.post("/api/signup", json={"email": email, "password": TEST_PASSWORD})
    _, verify_token = link_in((await smtp.inbox.wait_for(email))[0])
    await http.post("/api/password/forgot", json={"email": email})
    page, reset_token = link_in((await smtp.inbox.wait_for(email, 2))[1])
    assert page.endswith("/reset")

    as_verify = await confirm_sign_up(http, reset_token)
    assert as_verify.status_code == 400
    as_reset = await http.post(
        "/api/password/reset", json={"token": verify_token, "password": "a whole new password"}
    )
    assert as_reset.status_code == 400
    # Neither attempt used the tokens up: each still works for its own purpose.
    assert (await confirm_sign_up(http, verify_token)).status_code == 200
    reset = await http.post(
        "/api/password/reset", json={"token": reset_token, "password": "a whole new password"}
    )
    assert reset.status_code == 204


async def test_another_users_token_verifies_only_its_owner(
    http: httpx.AsyncClient, smtp: SmtpServer, mailer: Mailer, admin_db: asyncpg.Connection
) -> None:
    victim = await sign_up_verified(http, smtp.inbox)
    attacker = unique_email("attacker")
    await http.post("/api/signup", json={"email": attacker, "password": TEST_PASSWORD})
    _, token = link_in((await smtp.inbox.wait_for(attacker))[0])
    await log_in(http, victim["email"])
    # Signed in as someone else, the token still verifies its own account only.
    result = await confirm_sign_up(http, token)
    assert result.json()["email"] == attacker
    rows = await admin_db.fetch(
        "SELECT email::text, verified FROM auth.users WHERE email IN ($1, $2)",
        victim["email"],
        attacker,
    )
    assert {r["email"]: r["verified"] for r in rows} == {victim["email"]: True, attacker: True}


async def test_garbage_tokens_get_the_same_clear_error(http: httpx.AsyncClient) -> None:
    for token in ("", "short", "x" * 43, "ä" * 43, "A" * 200):
        response = await confirm_sign_up(http, token)
        assert response.status_code == 400, token
        assert response.json()["code"] == "invalid_token"
        assert set(response.json()) == {"code", "message", "details", "hint"}
    missing = await http.post("/api/verify", json={})
    assert missing.status_code == 422


async def test_email_change_needs_the_password_and_the_new_address_verified(
    http: httpx.AsyncClient, smtp: SmtpServer, mailer: Mailer
) -> None:
    user = await sign_up_verified(http, smtp.inbox)
    await log_in(http, user["email"])
    new = unique_email("moved")

    wrong = await http.patch("/api/me", json={"email": new, "current_password": "wrong password"})
    assert wrong.status_code == 403
    assert wrong.json()["code"] == "wrong_password"

    asked = await http.patch("/api/me", json={"email": new, "current_password": TEST_PASSWORD})
    assert asked.status_code == 202
    assert (await http.get("/api/me")).json()["email"] == user["email"]
    _, token = link_in((await smtp.inbox.wait_for(new))[0])
    # The password was checked when the move was asked for: the link needs no more.
    moved = await http.post("/api/verify", json={"token": token})
    assert moved.status_code == 200
    assert moved.json()["email"] == new
    assert moved.json()["verified"] is True
    assert (await http.get("/api/me")).json()["email"] == new
    assert (await log_in(http, new)).status_code == 200
    assert (await log_in(http, user["email"])).status_code == 401


async def test_email_change_to_a_taken_address_answers_alike_and_warns_its_owner(
    http: httpx.AsyncClient, smtp: SmtpServer, mailer: Mailer
) -> None:
    owner = await sign_up_verified(http, smtp.inbox)
    mover = await sign_up_verified(http, smtp.inbox)
    free = unique_email("free")
    await log_in(http, mover["email"])

    taken = await http.patch(
        "/api/me", json={"email": owner["email"], "current_password": TEST_PASSWORD}
    )
    untaken = await http.patch("/api/me", json={"email": free, "current_password": TEST_PASSWORD})
    assert taken.status_code == untaken.status_code == 202
    assert set(taken.json()) == set(untaken.json())
    assert taken.json()["message"] == untaken.json()["message"]
    # The owner of the taken address hears about it, with no link to follow.
    notices = await smtp.inbox.wait_for(owner["email"], 2)
    assert "already has an account" in notices[1].get_content()
    assert "#token=" not in notices[1].get_content()
    assert (await http.get("/api/me")).json()["email"] == mover["email"]


async def test_a_move_to_a_new_address_kills_reset_links_in_the_old_mailbox(
    http: httpx.AsyncClient, smtp: SmtpServer, mailer: Mailer
) -> None:
    user = await sign_up_verified(http, smtp.inbox)
    old = user["email"]
    await http.post("/api/password/forgot", json={"email": old})
    _, reset_token = link_in((await smtp.inbox.wait_for(old, 2))[1])
    await log_in(http, old)
    new = unique_email("fled")
    body = {"email": new, "current_password": TEST_PASSWORD}
    assert (await http.patch("/api/me", json=body)).status_code == 202
    _, move_token = link_in((await smtp.inbox.wait_for(new))[0])
    assert (await http.post("/api/verify", json={"token": move_token})).status_code == 200
    # Whoever holds the old mailbox now cannot take the account back.
    taken = await http.post(
        "/api/password/reset", json={"token": reset_token, "password": "the old mailbox's"}
    )
    assert taken.status_code == 400, taken.text
    assert taken.json()["code"] == "invalid_token"
    assert (await log_in(http, new)).status_code == 200


async def test_the_demo_serves_the_pages_the_links_open(client: httpx.AsyncClient) -> None:
    for path in ("/verify", "/reset"):
        page = await client.get(path)
        assert page.status_code == 200
        assert page.headers["content-type"].startswith("text/html")
        assert '<script src="/static/account-link.js"' in page.text
    script = await client.get("/static/account-link.js")
    assert script.status_code == 200
    assert "/api/verify" in script.text
    assert "/api/password/reset" in script.text


async def test_addresses_match_whatever_their_case(
    http: httpx.AsyncClient, smtp: SmtpServer, mailer: Mailer
) -> None:
    email = unique_email("MiXeD")
    user = await sign_up_verified(http, smtp.inbox, email)
    assert (await log_in(http, email.lower())).status_code == 200
    assert (await log_in(http, email.upper())).status_code == 200
    await http.post("/api/password/forgot", json={"email": email.lower()})
    # The reset mail goes to the address as the account spells it.
    assert len(await smtp.inbox.wait_for(user["email"], 2)) == 2
