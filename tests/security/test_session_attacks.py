"""Attacks on the session cookie and on sessions that should be dead."""

from __future__ import annotations

import base64
from collections.abc import AsyncIterator
from typing import Any

import asyncpg
import httpx
import pytest

from app.cookies import SessionCookie, new_secret, token_hash
from tests.conftest import LiveServer, cookie_header, make_client, sign_in


@pytest.fixture
async def victim(
    live_server: LiveServer,
) -> AsyncIterator[tuple[httpx.AsyncClient, dict[str, Any], str]]:
    """A signed-in user with one private todo; the client, the user, the cookie value."""
    async with make_client(live_server.url) as http:
        user = await sign_in(http)
        created = await http.post("/api/todos", json={"description": "victim's secret todo"})
        assert created.status_code == 201
        yield http, user, http.cookies["sessiongate"]


async def _assert_anonymous(live_server: LiveServer, value: str) -> None:
    """The cookie `value` gets no session: /api/me is 401 and private rows stay hidden."""
    async with httpx.AsyncClient(base_url=live_server.url) as attacker:
        me = await attacker.get("/api/me", headers=cookie_header(value))
        assert me.status_code == 401, value
        todos = await attacker.get("/api/todos", headers=cookie_header(value))
        assert todos.status_code == 200
        assert "victim's secret todo" not in todos.text
        summary = await attacker.get("/demo/summary", headers=cookie_header(value))
        assert summary.json()["role"] == "anonymous"


def _codec(live_server: LiveServer) -> SessionCookie:
    codec: SessionCookie = live_server.app.state.gateway.cookie
    return codec


async def test_the_victims_own_cookie_works(
    victim: tuple[httpx.AsyncClient, dict[str, Any], str], live_server: LiveServer
) -> None:
    # The control: without it every "refused" below could be a broken fixture.
    _, user, value = victim
    async with httpx.AsyncClient(base_url=live_server.url) as other:
        me = await other.get("/api/me", headers=cookie_header(value))
        assert me.json()["id"] == user["id"]
        assert (
            "victim's secret todo"
            in (await other.get("/api/todos", headers=cookie_header(value))).text
        )


async def test_forged_cookies_are_refused(live_server: LiveServer) -> None:
    codec = _codec(live_server)
    wrong_key = SessionCookie(
        keys=("attacker-chosen-key-" + "x" * 30,), name=codec.name, secure=False
    )
    unsigned = base64.urlsafe_b64encode(new_secret()).rstrip(b"=").decode()
    for value in (
        wrong_key.encode(new_secret()),
        unsigned,
        unsigned + ".",
        codec.encode(new_secret()),  # well signed, but no such session
        "' OR 1=1 --",
        "a" * 300,
    ):
        await _assert_anonymous(live_server, value)


async def test_tampered_and_truncated_cookies_are_refused(
    victim: tuple[httpx.AsyncClient, dict[str, Any], str], live_server: LiveServer
) -> None:
    _, _, value = victim
    secret_part, signature = value.split(".", 1)
    flipped = ("A" if secret_part[5] != "A" else "B").join([secret_part[:5], secret_part[6:]])
    for forged in (
        f"{flipped}.{signature}",
        f"{secret_part}.{signature[:-1]}",
        # Not the last character: it carries two unused bits, and changing
        # only those decodes to the very same signature bytes.
        f"{secret_part}.{signature[:10]}{'A' if signature[10] != 'A' else 'B'}{signature[11:]}",
        f"{secret_part[:-1]}.{signature}",
        secret_part,
        f"{secret_part}.",
        value[: len(value) // 2],
        value + "A",
    ):
        await _assert_anonymous(live_server, forged)


async def test_cookie_replayed_after_logout_is_refused(
    victim: tuple[httpx.AsyncClient, dict[str, Any], str], live_server: LiveServer
) -> None:
    http, _, value = victim
    assert (await http.post("/api/logout")).status_code == 204
    await _assert_anonymous(live_server, value)


async def test_cookie_replayed_after_refresh_is_refused(
    victim: tuple[httpx.AsyncClient, dict[str, Any], str], live_server: LiveServer
) -> None:
    http, user, value = victim
    assert (await http.post("/api/refresh")).status_code == 200
    await _assert_anonymous(live_server, value)
    assert (await http.get("/api/me")).json()["id"] == user["id"]


async def _session_id(live_server: LiveServer, admin_db: asyncpg.Connection, value: str) -> Any:
    secret = _codec(live_server).decode(value)
    assert secret is not None
    return await admin_db.fetchval(
        "SELECT id FROM auth.sessions WHERE token_hash = $1", token_hash(secret)
    )


async def test_cookie_of_a_revoked_session_is_refused(
    victim: tuple[httpx.AsyncClient, dict[str, Any], str],
    live_server: LiveServer,
    admin_db: asyncpg.Connection,
) -> None:
    _, user, value = victim
    session_id = await _session_id(live_server, admin_db, value)
    # The user revokes it from another device.
    async with make_client(live_server.url) as laptop:
        response = await laptop.post(
            "/api/login", json={"email": user["email"], "password": "correct horse battery staple"}
        )
        assert response.status_code == 200
        ended = await laptop.delete(f"/api/sessions/{session_id}")
        assert ended.status_code == 204, ended.text
    await _assert_anonymous(live_server, value)


@pytest.mark.parametrize("column", ["expires_at", "idle_expires_at"])
async def test_cookie_of_an_expired_session_is_refused(
    victim: tuple[httpx.AsyncClient, dict[str, Any], str],
    live_server: LiveServer,
    admin_db: asyncpg.Connection,
    column: str,
) -> None:
    _, _, value = victim
    session_id = await _session_id(live_server, admin_db, value)
    await admin_db.execute(
        f"UPDATE auth.sessions SET {column} = now() - interval '1 second' WHERE id = $1",
        session_id,
    )
    await _assert_anonymous(live_server, value)
    # A refresh cannot resurrect it either.
    async with httpx.AsyncClient(base_url=live_server.url) as attacker:
        refreshed = await attacker.post(
            "/api/refresh", headers={**cookie_header(value), "Content-Type": "application/json"}
        )
        assert refreshed.status_code == 401


async def test_cookie_of_a_disabled_user_is_refused_at_once(
    victim: tuple[httpx.AsyncClient, dict[str, Any], str],
    live_server: LiveServer,
    admin_db: asyncpg.Connection,
) -> None:
    _, user, value = victim
    await admin_db.execute("UPDATE auth.users SET disabled = true WHERE id = $1", user["id"])
    await _assert_anonymous(live_server, value)


async def test_role_change_takes_effect_on_the_next_request(
    victim: tuple[httpx.AsyncClient, dict[str, Any], str], admin_db: asyncpg.Connection
) -> None:
    http, user, _ = victim
    assert (await http.get("/demo/summary")).json()["role"] == "webuser"
    await admin_db.execute("UPDATE auth.users SET role = 'admin' WHERE id = $1", user["id"])
    assert (await http.get("/demo/summary")).json()["role"] == "admin"
    assert (await http.get("/api/me")).json()["role"] == "admin"
    await admin_db.execute("UPDATE auth.users SET role = 'webuser' WHERE id = $1", user["id"])
    assert (await http.get("/demo/summary")).json()["role"] == "webuser"


async def test_session_store_holds_no_usable_secret(
    victim: tuple[httpx.AsyncClient, dict[str, Any], str],
    live_server: LiveServer,
    admin_db: asyncpg.Connection,
) -> None:
    # Someone with a copy of auth.sessions presents what is stored there.
    _, _, value = victim
    session_id = await _session_id(live_server, admin_db, value)
    stored: bytes = await admin_db.fetchval(
        "SELECT token_hash FROM auth.sessions WHERE id = $1", session_id
    )
    await _assert_anonymous(live_server, _codec(live_server).encode(stored))
