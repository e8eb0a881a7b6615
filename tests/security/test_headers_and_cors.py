"""Security headers on every response, no-store on session responses, and the CORS allow-list."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from pydantic import ValidationError

from app.main import create_app
from tests.conftest import LiveServer, make_settings, sign_in
from tests.conftest import TestDatabase as Database
from tests.security.conftest import raw_client

TRUSTED = "https://front.example.test"


@pytest.mark.parametrize("path", ["/", "/static/app.js", "/api/todos", "/api/me", "/nowhere"])
async def test_every_response_carries_the_security_headers(
    client: httpx.AsyncClient, path: str
) -> None:
    response = await client.get(path)
    headers = response.headers
    assert headers["x-content-type-options"] == "nosniff"
    assert headers["x-frame-options"] == "DENY"
    assert headers["referrer-policy"] == "no-referrer"
    csp = headers["content-security-policy"]
    assert "frame-ancestors 'none'" in csp
    assert "script-src 'self'" in csp
    assert "unsafe-inline" not in csp
    assert "object-src 'none'" in csp
    assert "strict-transport-security" not in headers  # plain HTTP: HSTS would be ignored


async def test_csrf_refusals_carry_the_security_headers(live_server: LiveServer) -> None:
    async with raw_client(live_server.url) as http:
        response = await http.post(
            "/api/login", content=b"x", headers={"Content-Type": "text/plain"}
        )
    assert response.status_code == 403
    assert response.headers["x-frame-options"] == "DENY"


async def test_hsts_over_https(database: Database) -> None:
    settings = make_settings(database, public_url="https://sessiongate.example")
    transport = httpx.ASGITransport(app=create_app(settings))
    async with httpx.AsyncClient(transport=transport, base_url="https://sessiongate.example") as h:
        response = await h.get("/static/app.js")
    assert response.headers["strict-transport-security"].startswith("max-age=63072000")


async def test_session_responses_are_never_cached(
    signed_in: tuple[httpx.AsyncClient, dict[str, Any]],
) -> None:
    http, _ = signed_in
    for path in ("/api/me", "/api/todos", "/demo/summary"):
        response = await http.get(path)
        assert response.status_code == 200, path
        assert response.headers["cache-control"] == "no-store", path
        assert "Cookie" in response.headers["vary"], path
    refreshed = await http.post("/api/refresh")
    assert refreshed.headers["cache-control"] == "no-store"


async def test_anonymous_data_responses_vary_by_cookie(client: httpx.AsyncClient) -> None:
    response = await client.get("/api/todos")
    assert "Cookie" in response.headers["vary"]


async def test_logout_clears_site_data(
    signed_in: tuple[httpx.AsyncClient, dict[str, Any]],
) -> None:
    http, _ = signed_in
    response = await http.post("/api/logout")
    assert response.status_code == 204
    # Not "cookies": that would also drop the device cookie, which must
    # outlive the session (the browser test checks it survives).
    assert response.headers["clear-site-data"] == '"storage"'
    assert "sessiongate-device" not in response.headers.get("set-cookie", "")
    assert response.headers["cache-control"] == "no-store"


async def test_no_cors_headers_without_trusted_origins(live_server: LiveServer) -> None:
    async with raw_client(live_server.url) as http:
        response = await http.get("/api/todos", headers={"Origin": "https://evil.example"})
        preflight = await http.options(
            "/api/todos",
            headers={
                "Origin": "https://evil.example",
                "Access-Control-Request-Method": "POST",
                "Access-Control-Request-Headers": "content-type",
            },
        )
    assert "access-control-allow-origin" not in response.headers
    assert "access-control-allow-origin" not in preflight.headers
    assert "access-control-allow-credentials" not in preflight.headers


async def test_cors_allows_exactly_the_trusted_origins(server_factory: Any) -> None:
    server: LiveServer = server_factory(trusted_origins=[TRUSTED])
    async with raw_client(server.url) as http:
        await sign_in(http)
        good = await http.options(
            "/api/todos",
            headers={
                "Origin": TRUSTED,
                "Access-Control-Request-Method": "POST",
                "Access-Control-Request-Headers": "content-type",
            },
        )
        assert good.status_code == 200
        assert good.headers["access-control-allow-origin"] == TRUSTED
        assert good.headers["access-control-allow-credentials"] == "true"
        assert "Origin" in good.headers["vary"]
        simple = await http.get("/api/todos", headers={"Origin": TRUSTED})
        assert simple.headers["access-control-allow-origin"] == TRUSTED
        assert "Content-Range" in simple.headers["access-control-expose-headers"]
        for evil in (
            "https://evil.example",
            "null",
            TRUSTED + ".evil.example",
            "http://front.example.test",
        ):
            bad = await http.options(
                "/api/todos",
                headers={"Origin": evil, "Access-Control-Request-Method": "POST"},
            )
            assert bad.headers.get("access-control-allow-origin") is None, evil
            read = await http.get("/api/todos", headers={"Origin": evil})
            assert read.headers.get("access-control-allow-origin") not in {evil, "*"}, evil
            assert "Origin" in read.headers["vary"]


@pytest.mark.parametrize(
    "origins", [["*"], ["https://ok.example/path"], ["ftp://x.example"], ["not a url"]]
)
def test_wildcard_or_malformed_trusted_origins_are_refused(
    database: Database, origins: list[str]
) -> None:
    with pytest.raises(ValidationError):
        make_settings(database, trusted_origins=origins)


async def test_api_docs_get_their_own_policy_still_without_framing(
    client: httpx.AsyncClient,
) -> None:
    csp = (await client.get("/docs")).headers["content-security-policy"]
    for directive in ("object-src 'none'", "base-uri 'none'", "frame-ancestors 'none'"):
        assert directive in csp
    assert "https://cdn.jsdelivr.net" in csp
