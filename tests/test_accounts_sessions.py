"""The caller's own sessions over HTTP: list, end one, end all the others."""

from __future__ import annotations

import uuid

import httpx

from app.mailer import Mailer
from tests.accounts_support import (
    SmtpServer,
    accounts_server,
    http,
    log_in,
    mailer,
    sign_up_verified,
    smtp,
    start_mailer,
)
from tests.conftest import LiveServer, make_client

__all__ = ["accounts_server", "http", "mailer", "smtp", "start_mailer"]


async def test_sessions_need_a_session(http: httpx.AsyncClient) -> None:
    assert (await http.get("/api/sessions")).status_code == 401
    assert (await http.delete("/api/sessions")).status_code == 401
    assert (await http.delete(f"/api/sessions/{uuid.uuid4()}")).status_code == 401


async def test_list_shows_each_device_and_marks_this_one(
    accounts_server: LiveServer, http: httpx.AsyncClient, smtp: SmtpServer, mailer: Mailer
) -> None:
    user = await sign_up_verified(http, smtp.inbox)
    async with make_client(accounts_server.url) as phone:
        await log_in(phone, user["email"], **{"user-agent": "phone-browser/1.0"})
        await log_in(http, user["email"], **{"user-agent": "laptop-browser/2.0"})
        listed = await http.get("/api/sessions", headers={"user-agent": "laptop-browser/2.0"})
        assert listed.status_code == 200
        sessions = listed.json()
        assert len(sessions) == 2
        assert {s["user_agent"]: s["current"] for s in sessions} == {
            "phone-browser/1.0": False,
            "laptop-browser/2.0": True,
        }
        assert {s["ip"] for s in sessions} == {"127.0.0.1"}
        assert set(sessions[0]) == {
            "id",
            "created_at",
            "last_seen_at",
            "expires_at",
            "ip",
            "user_agent",
            "current",
        }
        # The phone sees the same two, with itself as current.
        mine = [s for s in (await phone.get("/api/sessions")).json() if s["current"]]
        assert [s["user_agent"] for s in mine] == ["phone-browser/1.0"]


async def test_ending_one_session_signs_that_device_out(
    accounts_server: LiveServer, http: httpx.AsyncClient, smtp: SmtpServer, mailer: Mailer
) -> None:
    user = await sign_up_verified(http, smtp.inbox)
    async with make_client(accounts_server.url) as stolen:
        await log_in(stolen, user["email"])
        await log_in(http, user["email"])
        other = next(s["id"] for s in (await http.get("/api/sessions")).json() if not s["current"])
        ended = await http.delete(f"/api/sessions/{other}")
        assert ended.status_code == 204
        assert (await stolen.get("/api/me")).status_code == 401
        assert (await http.get("/api/me")).status_code == 200
        again = await http.delete(f"/api/sessions/{other}")
        assert again.status_code == 404


async def test_nobody_ends_someone_elses_session(
    accounts_server: LiveServer, http: httpx.AsyncClient, smtp: SmtpServer, mailer: Mailer
) -> None:
    victim = await sign_up_verified(http, smtp.inbox)
    attacker = await sign_up_verified(http, smtp.inbox)
    async with make_client(accounts_server.url) as victim_browser:
        await log_in(victim_browser, victim["email"])
        victim_session = (await victim_browser.get("/api/sessions")).json()[0]["id"]
        await log_in(http, attacker["email"])
        response = await http.delete(f"/api/sessions/{victim_session}")
        assert response.status_code == 404
        assert response.json()["code"] == "not_found"
        assert (await victim_browser.get("/api/me")).status_code == 200


async def test_ending_the_current_session_deletes_the_cookie(
    http: httpx.AsyncClient, smtp: SmtpServer, mailer: Mailer
) -> None:
    user = await sign_up_verified(http, smtp.inbox)
    await log_in(http, user["email"])
    current = (await http.get("/api/sessions")).json()[0]["id"]
    response = await http.delete(f"/api/sessions/{current}")
    assert response.status_code == 204
    assert "max-age=0" in response.headers["set-cookie"].lower()
    assert (await http.get("/api/me")).status_code == 401


async def test_end_all_others_keeps_only_this_one(
    accounts_server: LiveServer, http: httpx.AsyncClient, smtp: SmtpServer, mailer: Mailer
) -> None:
    user = await sign_up_verified(http, smtp.inbox)
    others = [make_client(accounts_server.url) for _ in range(3)]
    try:
        for other in others:
            await log_in(other, user["email"])
        await log_in(http, user["email"])
        response = await http.delete("/api/sessions")
        assert response.status_code == 200
        assert response.json() == {"revoked": 3}
        for other in others:
            assert (await other.get("/api/me")).status_code == 401
        remaining = (await http.get("/api/sessions")).json()
        assert [s["current"] for s in remaining] == [True]
    finally:
        for other in others:
            await other.aclose()
