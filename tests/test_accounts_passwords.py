"""Forgotten password, reset by link and password change, over HTTP with a real mailer."""

from __future__ import annotations

import asyncpg
import httpx

from app.mailer import Mailer
from tests.accounts_support import (
    SmtpServer,
    accounts_server,
    http,
    link_in,
    log_in,
    mailer,
    sign_up_verified,
    smtp,
    start_mailer,
)
from tests.conftest import TEST_PASSWORD, LiveServer, cookie_header, make_client

__all__ = ["accounts_server", "http", "mailer", "smtp", "start_mailer"]

NEW_PASSWORD = "an entirely new passphrase"


async def _reset_token(http: httpx.AsyncClient, smtp: SmtpServer, email: str) -> str:
    before = len(smtp.inbox.to(email))
    response = await http.post("/api/password/forgot", json={"email": email})
    assert response.status_code == 202
    page, token = link_in((await smtp.inbox.wait_for(email, before + 1))[before])
    assert page == "https://accounts.example.test/reset"
    return token


async def test_reset_sets_the_password_and_ends_every_session(
    accounts_server: LiveServer, http: httpx.AsyncClient, smtp: SmtpServer, mailer: Mailer
) -> None:
    user = await sign_up_verified(http, smtp.inbox)
    cookies = []
    for _ in range(2):
        async with make_client(accounts_server.url) as device:
            assert (await log_in(device, user["email"])).status_code == 200
            cookies.append(device.cookies["sessiongate"])

    token = await _reset_token(http, smtp, user["email"])
    reset = await http.post("/api/password/reset", json={"token": token, "password": NEW_PASSWORD})
    assert reset.status_code == 204

    for cookie in cookies:
        assert (await http.get("/api/me", headers=cookie_header(cookie))).status_code == 401
    assert (await log_in(http, user["email"])).status_code == 401
    assert (await log_in(http, user["email"], NEW_PASSWORD)).status_code == 200
    # Single use.
    again = await http.post(
        "/api/password/reset", json={"token": token, "password": "yet another passphrase"}
    )
    assert again.status_code == 400
    assert again.json()["code"] == "invalid_token"


async def test_a_new_reset_request_kills_the_previous_link(
    http: httpx.AsyncClient, smtp: SmtpServer, mailer: Mailer
) -> None:
    user = await sign_up_verified(http, smtp.inbox)
    first = await _reset_token(http, smtp, user["email"])
    second = await _reset_token(http, smtp, user["email"])
    stale = await http.post("/api/password/reset", json={"token": first, "password": NEW_PASSWORD})
    assert stale.status_code == 400
    fresh = await http.post("/api/password/reset", json={"token": second, "password": NEW_PASSWORD})
    assert fresh.status_code == 204


async def test_a_reset_token_changes_only_its_owners_password(
    accounts_server: LiveServer,
    http: httpx.AsyncClient,
    smtp: SmtpServer,
    mailer: Mailer,
    admin_db: asyncpg.Connection,
) -> None:
    attacker = await sign_up_verified(http, smtp.inbox)
    victim = await sign_up_verified(http, smtp.inbox)
    async with make_client(accounts_server.url) as victim_browser:
        assert (await log_in(victim_browser, victim["email"])).status_code == 200
        token = await _reset_token(http, smtp, attacker["email"])
        # Signed in as the victim does not make the attacker's token the victim's.
        await log_in(http, victim["email"])
        reset = await http.post(
            "/api/password/reset", json={"token": token, "password": NEW_PASSWORD}
        )
        assert reset.status_code == 204
        assert (await victim_browser.get("/api/me")).status_code == 200
    assert (await log_in(http, victim["email"])).status_code == 200
    assert (await log_in(http, victim["email"], NEW_PASSWORD)).status_code == 401
    assert (await log_in(http, attacker["email"], NEW_PASSWORD)).status_code == 200


async def test_an_expired_reset_link_is_refused(
    http: httpx.AsyncClient, smtp: SmtpServer, mailer: Mailer, admin_db: asyncpg.Connection
) -> None:
    user = await sign_up_verified(http, smtp.inbox)
    token = await _reset_token(http, smtp, user["email"])
    lifetime = await admin_db.fetchval(
        "SELECT expires_at - created_at FROM auth.tokens WHERE user_id = $1 AND purpose = 'reset'",
        user["id"],
    )
    assert lifetime.total_seconds() == 60 * 60
    # Age the token past its expiry instead of sleeping an hour.
    await admin_db.execute(
        "UPDATE auth.tokens SET created_at = created_at - interval '2 hours',"
        " expires_at = expires_at - interval '2 hours' WHERE user_id = $1",
        user["id"],
    )
    response = await http.post(
        "/api/password/reset", json={"token": token, "password": NEW_PASSWORD}
    )
    assert response.status_code == 400
    assert (await log_in(http, user["email"])).status_code == 200


async def test_reset_refuses_a_weak_password_and_keeps_the_token(
    http: httpx.AsyncClient, smtp: SmtpServer, mailer: Mailer
) -> None:
    user = await sign_up_verified(http, smtp.inbox)
    token = await _reset_token(http, smtp, user["email"])
    weak = await http.post("/api/password/reset", json={"token": token, "password": "short"})
    assert weak.status_code == 422
    assert weak.json()["code"] == "weak_password"
    ok = await http.post("/api/password/reset", json={"token": token, "password": NEW_PASSWORD})
    assert ok.status_code == 204


async def test_password_change_keeps_this_session_rotated_and_ends_the_others(
    accounts_server: LiveServer, http: httpx.AsyncClient, smtp: SmtpServer, mailer: Mailer
) -> None:
    user = await sign_up_verified(http, smtp.inbox)
    async with make_client(accounts_server.url) as other:
        assert (await log_in(other, user["email"])).status_code == 200
        assert (await log_in(http, user["email"])).status_code == 200
        before = http.cookies["sessiongate"]
        session_id = next(s["id"] for s in (await http.get("/api/sessions")).json() if s["current"])

        changed = await http.post(
            "/api/password/change",
            json={"current_password": TEST_PASSWORD, "new_password": NEW_PASSWORD},
        )
        assert changed.status_code == 200
        assert changed.json()["session_id"] == session_id
        after = http.cookies["sessiongate"]
        assert after != before
        assert (await http.get("/api/me")).status_code == 200
        assert (await http.get("/api/me", headers=cookie_header(before))).status_code == 401
        assert (await other.get("/api/me")).status_code == 401
    assert (await log_in(http, user["email"], NEW_PASSWORD)).status_code == 200
    assert (await log_in(http, user["email"])).status_code == 401


async def test_password_change_needs_the_current_password_and_a_session(
    http: httpx.AsyncClient, smtp: SmtpServer, mailer: Mailer
) -> None:
    body = {"current_password": TEST_PASSWORD, "new_password": NEW_PASSWORD}
    assert (await http.post("/api/password/change", json=body)).status_code == 401
    user = await sign_up_verified(http, smtp.inbox)
    await log_in(http, user["email"])
    wrong = await http.post(
        "/api/password/change",
        json={"current_password": "not my password", "new_password": NEW_PASSWORD},
    )
    assert wrong.status_code == 403
    assert wrong.json()["code"] == "wrong_password"
    weak = await http.post(
        "/api/password/change", json={"current_password": TEST_PASSWORD, "new_password": "short"}
    )
    assert weak.status_code == 422
    assert (await log_in(http, user["email"])).status_code == 200


async def test_a_password_change_kills_pending_reset_links(
    http: httpx.AsyncClient, smtp: SmtpServer, mailer: Mailer
) -> None:
    user = await sign_up_verified(http, smtp.inbox)
    token = await _reset_token(http, smtp, user["email"])
    await log_in(http, user["email"])
    changed = await http.post(
        "/api/password/change",
        json={"current_password": TEST_PASSWORD, "new_password": NEW_PASSWORD},
    )
    assert changed.status_code == 200
    stale = await http.post(
        "/api/password/reset", json={"token": token, "password": "attacker's choice 123"}
    )
    assert stale.status_code == 400
