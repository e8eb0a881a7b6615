"""CSRF: cross-site, form, text/plain and login-CSRF requests are refused, same-origin ones pass."""

from __future__ import annotations

from typing import Any

import asyncpg
import httpx
import pytest

from app.csrf import CsrfRefusal, check
from tests.conftest import TEST_PASSWORD, LiveServer, sign_in, sign_up, unique_email
from tests.security.conftest import raw_client

EVIL = "http://evil.example"


def _session_cookie(http: httpx.AsyncClient) -> dict[str, str]:
    return {"cookie": f"sessiongate={http.cookies['sessiongate']}"}


async def _todo_count(admin_db: asyncpg.Connection, user_id: str) -> int:
    count: int = await admin_db.fetchval(
        "SELECT count(*) FROM app.todos WHERE user_id = $1", user_id
    )
    return count


async def test_cross_site_post_with_the_victims_cookie_is_refused(
    signed_in: tuple[httpx.AsyncClient, dict[str, Any]],
    live_server: LiveServer,
    admin_db: asyncpg.Connection,
) -> None:
    http, user = signed_in
    before = await _todo_count(admin_db, user["id"])
    async with raw_client(live_server.url) as attacker:
        # What a fetch(..., {credentials: "include"}) from evil.example sends.
        response = await attacker.post(
            "/api/todos",
            json={"description": "planted"},
            headers={**_session_cookie(http), "Sec-Fetch-Site": "cross-site", "Origin": EVIL},
        )
    assert response.status_code == 403
    body = response.json()
    assert set(body) == {"code", "message", "details", "hint"}
    assert body["code"] == "csrf_cross_site"
    assert "Origin" in response.headers["vary"]
    assert "Sec-Fetch-Site" in response.headers["vary"]
    assert response.headers["cache-control"] == "no-store"
    assert await _todo_count(admin_db, user["id"]) == before


async def test_cross_origin_request_without_fetch_metadata_is_refused_by_origin(
    signed_in: tuple[httpx.AsyncClient, dict[str, Any]],
    live_server: LiveServer,
    admin_db: asyncpg.Connection,
) -> None:
    http, user = signed_in
    before = await _todo_count(admin_db, user["id"])
    async with raw_client(live_server.url) as attacker:
        for origin in (EVIL, "null", live_server.url.replace("127.0.0.1", "localhost")):
            response = await attacker.post(
                "/api/todos",
                json={"description": "planted"},
                headers={**_session_cookie(http), "Origin": origin},
            )
            assert response.status_code == 403, origin
            assert response.json()["code"] == "csrf_origin"
    assert await _todo_count(admin_db, user["id"]) == before


@pytest.mark.parametrize(
    ("content_type", "body"),
    [
        ("application/x-www-form-urlencoded", b"description=planted"),
        ("multipart/form-data; boundary=x", b'--x\r\nContent-Disposition: form-data; name="a"\r\n'),
        ("text/plain", b'{"description": "planted"}'),
        ("text/plain; charset=utf-8", b'{"description": "planted"}'),
    ],
)
async def test_form_and_text_plain_bodies_are_refused(
    signed_in: tuple[httpx.AsyncClient, dict[str, Any]],
    live_server: LiveServer,
    admin_db: asyncpg.Connection,
    content_type: str,
    body: bytes,
) -> None:
    # A <form> post, or a no-preflight fetch: even "same-origin" never passes
    # with these types, so a missed origin check could not be exploited either.
    http, user = signed_in
    before = await _todo_count(admin_db, user["id"])
    async with raw_client(live_server.url) as attacker:
        for extra in ({}, {"Sec-Fetch-Site": "same-origin"}):
            response = await attacker.post(
                "/api/todos",
                content=body,
                headers={**_session_cookie(http), "Content-Type": content_type, **extra},
            )
            assert response.status_code == 403
            assert response.json()["code"] == "csrf_content_type"
    assert await _todo_count(admin_db, user["id"]) == before


async def test_cookie_bearing_unsafe_request_must_declare_json(
    signed_in: tuple[httpx.AsyncClient, dict[str, Any]], live_server: LiveServer
) -> None:
    http, _ = signed_in
    async with raw_client(live_server.url) as attacker:
        response = await attacker.post("/api/logout", headers=_session_cookie(http))
        assert response.status_code == 403
        assert response.json()["code"] == "csrf_content_type"
        # The session survived the refused logout.
        assert (await http.get("/api/me")).status_code == 200
        for method in ("PUT", "PATCH", "DELETE"):
            response = await attacker.request(
                method,
                "/api/todos",
                headers={**_session_cookie(http), "Sec-Fetch-Site": "cross-site", "Origin": EVIL},
            )
            assert response.status_code == 403, method


async def test_login_csrf_is_refused(live_server: LiveServer) -> None:
    # Login CSRF: evil.example signs the victim into the attacker's account.
    async with raw_client(live_server.url) as setup:
        attacker_account = await sign_up(setup)
    credentials = {"email": attacker_account["email"], "password": TEST_PASSWORD}
    async with raw_client(live_server.url) as victim:
        cross_site = await victim.post(
            "/api/login", json=credentials, headers={"Sec-Fetch-Site": "cross-site", "Origin": EVIL}
        )
        assert cross_site.status_code == 403
        form = await victim.post(
            "/api/login",
            content=f"email={credentials['email']}&password=x".encode(),
            headers={"Content-Type": "application/x-www-form-urlencoded"},
        )
        assert form.status_code == 403
        no_type = await victim.post(
            "/api/login", content=b'{"email": "a@example.com", "password": "x"}'
        )
        assert no_type.status_code == 403
        assert "set-cookie" not in cross_site.headers
        assert "set-cookie" not in form.headers
        assert "sessiongate" not in victim.cookies
        signup = await victim.post(
            "/api/signup",
            json={"email": unique_email(), "password": TEST_PASSWORD},
            headers={"Sec-Fetch-Site": "same-site", "Origin": "http://sub.127.0.0.1"},
        )
        assert signup.status_code == 403


async def test_same_origin_requests_pass(live_server: LiveServer) -> None:
    async with raw_client(live_server.url) as page:
        await sign_up(page)
    async with raw_client(live_server.url) as page:
        user = await sign_up(page)
        login = await page.post(
            "/api/login",
            json={"email": user["email"], "password": TEST_PASSWORD},
            headers={"Sec-Fetch-Site": "same-origin", "Origin": live_server.url},
        )
        assert login.status_code == 200
        created = await page.post(
            "/api/todos",
            json={"description": "mine"},
            headers={"Origin": live_server.url},  # an older browser: Origin only
        )
        assert created.status_code == 201
        logout = await page.post(
            "/api/logout",
            headers={"Sec-Fetch-Site": "same-origin", "Content-Type": "application/json"},
        )
        assert logout.status_code == 204


async def test_trusted_origin_may_post_cross_origin(server_factory: Any) -> None:
    trusted = "http://app.example.test:3000"
    server: LiveServer = server_factory(trusted_origins=[trusted])
    async with raw_client(server.url) as page:
        await sign_in(page)
        ok = await page.post(
            "/api/todos",
            json={"description": "from the trusted front end"},
            headers={"Sec-Fetch-Site": "cross-site", "Origin": trusted},
        )
        assert ok.status_code == 201
        refused = await page.post(
            "/api/todos",
            json={"description": "x"},
            headers={"Sec-Fetch-Site": "cross-site", "Origin": "http://app.example.test:3001"},
        )
        assert refused.status_code == 403


async def test_non_browser_clients_without_origin_headers_still_work(
    live_server: LiveServer,
) -> None:
    # curl and server-to-server callers send no Origin or Sec-Fetch-Site.
    async with raw_client(live_server.url) as script:
        user = await sign_up(script)
        response = await script.post(
            "/api/login", json={"email": user["email"], "password": TEST_PASSWORD}
        )
        assert response.status_code == 200


def _check(**overrides: Any) -> None:
    values: dict[str, Any] = {
        "method": "POST",
        "path": "/api/todos",
        "sec_fetch_site": None,
        "origin": None,
        "content_type": "application/json",
        "carries_session": True,
        "allowed_origins": frozenset({"https://app.example"}),
    }
    values.update(overrides)
    check(**values)


@pytest.mark.parametrize(
    "overrides",
    [
        {"sec_fetch_site": "cross-site"},
        {"sec_fetch_site": "same-site", "origin": "https://other.example"},
        {"sec_fetch_site": "none"},
        {"origin": "null"},
        {"origin": "https://app.example.evil"},
        {"content_type": None},
        {"content_type": "text/plain;charset=UTF-8"},
        {"content_type": "APPLICATION/X-WWW-FORM-URLENCODED"},
        {"content_type": None, "carries_session": False, "path": "/api/login"},
        {"method": "delete", "content_type": None},
    ],
)
def test_rule_refuses(overrides: dict[str, Any]) -> None:
    with pytest.raises(CsrfRefusal):
        _check(**overrides)


@pytest.mark.parametrize(
    "overrides",
    [
        {},
        {"sec_fetch_site": "same-origin"},
        {"sec_fetch_site": "cross-site", "origin": "https://app.example"},
        {"origin": "HTTPS://APP.EXAMPLE"},
        {"content_type": "application/vnd.pgrst.object+json"},
        {"content_type": "text/csv"},
        {"content_type": None, "carries_session": False},
        {"method": "GET", "sec_fetch_site": "cross-site", "content_type": None},
    ],
)
def test_rule_allows(overrides: dict[str, Any]) -> None:
    _check(**overrides)
