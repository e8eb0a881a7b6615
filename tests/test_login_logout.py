"""Sign-up, login, logout, /api/me and refresh over real HTTP against a real database."""

from __future__ import annotations

import asyncio
import hashlib
import time
from statistics import median
from typing import Any

import asyncpg
import httpx

from tests.conftest import (
    TEST_PASSWORD,
    LiveServer,
    cookie_header,
    make_client,
    sign_in,
    sign_up,
    unique_email,
)


def _set_cookie(response: httpx.Response, name: str = "sessiongate") -> str:
    headers = [h for h in response.headers.get_list("set-cookie") if h.startswith(f"{name}=")]
    assert len(headers) == 1, response.headers.get_list("set-cookie")
    return headers[0]


async def test_signup_returns_the_user_without_secrets(client: httpx.AsyncClient) -> None:
    email = unique_email()
    response = await client.post("/api/signup", json={"email": email, "password": TEST_PASSWORD})
    assert response.status_code == 201
    body = response.json()
    assert body["email"] == email
    assert body["role"] == "webuser"
    # Sign-up creates an unverified account (issue 4); the demo lets it log in.
    assert body["verified"] is False
    assert "password" not in response.text
    assert "hash" not in response.text


async def test_password_is_stored_as_argon2id(
    client: httpx.AsyncClient, admin_db: asyncpg.Connection
) -> None:
    user = await sign_up(client)
    stored = await admin_db.fetchval(
        "SELECT password_hash FROM auth.users WHERE id = $1", user["id"]
    )
    assert stored.startswith("$argon2id$v=19$m=19456,t=2,p=1$")
    assert TEST_PASSWORD not in stored


async def test_login_sets_a_hardened_cookie(
    client: httpx.AsyncClient, live_server: LiveServer
) -> None:
    user = await sign_up(client)
    response = await client.post(
        "/api/login", json={"email": user["email"], "password": TEST_PASSWORD}
    )
    assert response.status_code == 200
    assert response.json()["id"] == user["id"]
    cookie = _set_cookie(response)
    assert cookie.startswith("sessiongate=")
    attributes = {part.strip().split("=")[0].lower() for part in cookie.split(";")[1:]}
    assert {"httponly", "path", "samesite", "max-age"} <= attributes
    assert "samesite=lax" in cookie.lower()
    assert "path=/" in cookie.lower()
    max_age = int(cookie.lower().split("max-age=")[1].split(";")[0])
    assert 0 < max_age <= live_server.settings.session_absolute_timeout
    assert response.headers["cache-control"] == "no-store"
    # And the device cookie the login throttle reads (docs/security.md).
    device = _set_cookie(response, "sessiongate-device").lower()
    assert "httponly" in device
    assert "samesite=strict" in device
    assert "path=/" in device
    assert f"max-age={live_server.settings.device_cookie_lifetime}" in device
    assert len(response.headers.get_list("set-cookie")) == 2


async def test_session_row_stores_only_the_hash(
    client: httpx.AsyncClient, admin_db: asyncpg.Connection, live_server: LiveServer
) -> None:
    user = await sign_in(client)
    value = client.cookies["sessiongate"]
    secret = live_server.app.state.gateway.cookie.decode(value)
    assert secret is not None
    rows = await admin_db.fetch(
        "SELECT token_hash FROM auth.sessions WHERE user_id = $1", user["id"]
    )
    assert [bytes(r["token_hash"]) for r in rows] == [hashlib.sha256(secret).digest()]
    dump = await admin_db.fetchval("SELECT string_agg(s::text, ' ') FROM auth.sessions s")
    assert secret.hex() not in dump
    assert value.split(".")[0] not in dump


async def test_me_needs_a_session(client: httpx.AsyncClient) -> None:
    response = await client.get("/api/me")
    assert response.status_code == 401
    assert response.json()["code"] == "not_authenticated"
    assert set(response.json()) == {"code", "message", "details", "hint"}


async def test_me_returns_the_signed_in_user(
    signed_in: tuple[httpx.AsyncClient, dict[str, Any]],
) -> None:
    http, user = signed_in
    response = await http.get("/api/me")
    assert response.status_code == 200
    assert response.json()["email"] == user["email"]
    assert "password_hash" not in response.json()


async def test_logout_revokes_the_session_and_deletes_the_cookie(
    client: httpx.AsyncClient, admin_db: asyncpg.Connection
) -> None:
    user = await sign_in(client)
    stolen = client.cookies["sessiongate"]
    response = await client.post("/api/logout")
    assert response.status_code == 204
    cookie = _set_cookie(response)
    assert "max-age=0" in cookie.lower()
    revoked = await admin_db.fetchval(
        "SELECT bool_and(revoked_at IS NOT NULL) FROM auth.sessions WHERE user_id = $1", user["id"]
    )
    assert revoked is True
    # The browser dropped the cookie; an attacker who copied it gets nothing.
    replay = await client.get("/api/me", headers=cookie_header(stolen))
    assert replay.status_code == 401


async def test_logout_without_a_session_is_harmless(client: httpx.AsyncClient) -> None:
    response = await client.post("/api/logout")
    assert response.status_code == 204


async def test_every_login_issues_a_new_session_and_revokes_the_presented_one(
    client: httpx.AsyncClient, admin_db: asyncpg.Connection
) -> None:
    user = await sign_in(client)
    first = client.cookies["sessiongate"]
    again = await client.post(
        "/api/login", json={"email": user["email"], "password": TEST_PASSWORD}
    )
    assert again.status_code == 200
    second = client.cookies["sessiongate"]
    assert first != second
    assert (await client.get("/api/me", headers=cookie_header(first))).status_code == 401
    assert (await client.get("/api/me", headers=cookie_header(second))).status_code == 200
    live = await admin_db.fetchval(
        "SELECT count(*) FROM auth.sessions WHERE user_id = $1 AND revoked_at IS NULL", user["id"]
    )
    assert live == 1


async def test_login_fixation_attempt_gets_a_fresh_secret(
    live_server: LiveServer, admin_db: asyncpg.Connection
) -> None:
    # An attacker plants their own valid session cookie in the victim's browser;
    # the victim's login must not keep it.
    async with make_client(live_server.url) as attacker:
        await sign_in(attacker)
        planted = attacker.cookies["sessiongate"]
    async with make_client(live_server.url) as victim:
        user = await sign_up(victim)
        response = await victim.post(
            "/api/login",
            json={"email": user["email"], "password": TEST_PASSWORD},
            headers=cookie_header(planted),
        )
        assert response.status_code == 200
        assert victim.cookies["sessiongate"] != planted
        assert (await victim.get("/api/me", headers=cookie_header(planted))).status_code == 401


async def test_refresh_rotates_the_secret(
    client: httpx.AsyncClient, admin_db: asyncpg.Connection
) -> None:
    user = await sign_in(client)
    old = client.cookies["sessiongate"]
    before = await admin_db.fetchrow(
        "SELECT id, expires_at FROM auth.sessions WHERE user_id = $1", user["id"]
    )
    response = await client.post("/api/refresh")
    assert response.status_code == 200
    new = client.cookies["sessiongate"]
    assert new != old
    after = await admin_db.fetchrow(
        "SELECT id, expires_at FROM auth.sessions WHERE user_id = $1", user["id"]
    )
    # Same session, same absolute expiry: a refresh never extends it.
    assert after == before
    assert (await client.get("/api/me", headers=cookie_header(old))).status_code == 401
    assert (await client.get("/api/me", headers=cookie_header(new))).status_code == 200


async def test_refresh_without_a_session_is_401(client: httpx.AsyncClient) -> None:
    assert (await client.post("/api/refresh")).status_code == 401


async def test_unknown_email_and_wrong_password_look_the_same(client: httpx.AsyncClient) -> None:
    user = await sign_up(client)
    wrong = await client.post(
        "/api/login", json={"email": user["email"], "password": "not the password"}
    )
    unknown = await client.post(
        "/api/login", json={"email": unique_email(), "password": "not the password"}
    )
    assert wrong.status_code == unknown.status_code == 401
    assert wrong.content == unknown.content
    assert "set-cookie" not in wrong.headers
    assert "set-cookie" not in unknown.headers


async def test_unknown_email_costs_a_password_hash(client: httpx.AsyncClient) -> None:
    # Not a timing assertion: compares the two paths' medians with each other,
    # in one run, and only checks they are of the same order.
    user = await sign_up(client)

    async def attempt(email: str) -> float:
        start = time.perf_counter()
        await client.post("/api/login", json={"email": email, "password": "not the password"})
        return time.perf_counter() - start

    known = [await attempt(user["email"]) for _ in range(7)]
    unknown = [await attempt(unique_email()) for _ in range(7)]
    ratio = median(unknown) / median(known)
    assert 0.33 < ratio < 3, (known, unknown)


async def test_signup_rejects_bad_input(client: httpx.AsyncClient) -> None:
    cases = [
        ({"email": "not-an-email", "password": TEST_PASSWORD}, 422, "invalid_email"),
        ({"email": unique_email(), "password": "short"}, 422, "weak_password"),
        ({"email": unique_email(), "password": "x" * 129}, 422, "password_too_long"),
        ({"email": unique_email()}, 422, "invalid_request"),
        (
            {"email": unique_email(), "password": TEST_PASSWORD, "role": "admin"},
            422,
            "invalid_request",
        ),
    ]
    for body, status, code in cases:
        response = await client.post("/api/signup", json=body)
        assert response.status_code == status, (body, response.text)
        assert response.json()["code"] == code
        assert set(response.json()) == {"code", "message", "details", "hint"}


async def test_sixty_four_character_passwords_work(client: httpx.AsyncClient) -> None:
    email = unique_email()
    password = "p" * 64
    assert (
        await client.post("/api/signup", json={"email": email, "password": password})
    ).status_code == 201
    assert (
        await client.post("/api/login", json={"email": email, "password": password})
    ).status_code == 200


async def test_duplicate_email_creates_nothing_and_answers_like_a_new_one(
    client: httpx.AsyncClient, admin_db: asyncpg.Connection
) -> None:
    # Issue 4: a 409 would tell anyone which addresses have accounts.
    user = await sign_up(client)
    again = await client.post(
        "/api/signup", json={"email": user["email"].upper(), "password": TEST_PASSWORD}
    )
    assert again.status_code == 201
    assert set(again.json()) == set(user)
    assert again.json()["id"] != user["id"]
    count = await admin_db.fetchval(
        "SELECT count(*) FROM auth.users WHERE lower(email::text) = lower($1)", user["email"]
    )
    assert count == 1


async def test_malformed_json_is_a_json_error(client: httpx.AsyncClient) -> None:
    response = await client.post(
        "/api/login", content=b"{not json", headers={"content-type": "application/json"}
    )
    assert 400 <= response.status_code < 500
    assert response.headers["content-type"].startswith("application/json")
    assert set(response.json()) == {"code", "message", "details", "hint"}


async def test_disabled_user_loses_access_at_once(
    signed_in: tuple[httpx.AsyncClient, dict[str, Any]], admin_db: asyncpg.Connection
) -> None:
    http, user = signed_in
    assert (await http.get("/api/me")).status_code == 200
    await admin_db.execute("UPDATE auth.users SET disabled = true WHERE id = $1", user["id"])
    assert (await http.get("/api/me")).status_code == 401
    mine = await http.get("/demo/summary")
    assert mine.json()["role"] == "anonymous"


async def test_concurrent_logins_each_get_their_own_session(
    live_server: LiveServer, admin_db: asyncpg.Connection
) -> None:
    async with make_client(live_server.url) as http:
        user = await sign_up(http)

    async def login() -> str:
        async with make_client(live_server.url) as http:
            response = await http.post(
                "/api/login", json={"email": user["email"], "password": TEST_PASSWORD}
            )
            assert response.status_code == 200
            return http.cookies["sessiongate"]

    cookies = await asyncio.gather(*(login() for _ in range(4)))
    assert len(set(cookies)) == 4
    count = await admin_db.fetchval(
        "SELECT count(*) FROM auth.sessions WHERE user_id = $1", user["id"]
    )
    assert count == 4
