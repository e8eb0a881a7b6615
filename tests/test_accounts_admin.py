"""Admin user management over HTTP, with the clearance check attacked for real."""

from __future__ import annotations

import secrets
from collections.abc import AsyncIterator
from typing import Any

import asyncpg
import httpx
import pytest

from app.passwords import hash_password
from tests.accounts_support import accounts_server, http, log_in, smtp
from tests.conftest import TEST_PASSWORD, LiveServer, make_client, unique_email

__all__ = ["accounts_server", "http", "smtp"]


async def _make_user(admin_db: asyncpg.Connection, role: str = "webuser") -> dict[str, Any]:
    row = await admin_db.fetchrow(
        "SELECT id::text, email FROM auth.create_user($1, $2, $3, true)",
        unique_email(role),
        await hash_password(TEST_PASSWORD),
        role,
    )
    assert row is not None
    return dict(row)


@pytest.fixture
async def admin(
    accounts_server: LiveServer, admin_db: asyncpg.Connection
) -> AsyncIterator[httpx.AsyncClient]:
    """A client signed in as a user with the admin role."""
    user = await _make_user(admin_db, "admin")
    async with make_client(accounts_server.url) as client:
        assert (await log_in(client, user["email"])).status_code == 200
        yield client


@pytest.fixture
async def extra_role(admin_db: asyncpg.Connection) -> AsyncIterator[str]:
    """A role authenticator may switch into but admin is not a member of."""
    name = f"sg_test_auditor_{secrets.token_hex(4)}"
    await admin_db.execute(f"CREATE ROLE {name} NOLOGIN")
    await admin_db.execute(f"GRANT {name} TO authenticator")
    yield name
    await admin_db.execute("DELETE FROM auth.users WHERE role = $1", name)
    await admin_db.execute(f"REVOKE {name} FROM authenticator")
    await admin_db.execute(f"DROP ROLE {name}")


async def test_admin_routes_refuse_anonymous_and_plain_users(
    accounts_server: LiveServer, http: httpx.AsyncClient, admin_db: asyncpg.Connection
) -> None:
    assert (await http.get("/api/admin/users")).status_code == 401
    user = await _make_user(admin_db)
    target = await _make_user(admin_db)
    await log_in(http, user["email"])
    attempts = [
        http.get("/api/admin/users"),
        http.get(f"/api/admin/users/{target['id']}"),
        http.post("/api/admin/users", json={"email": unique_email(), "password": TEST_PASSWORD}),
        http.patch(f"/api/admin/users/{target['id']}", json={"role": "admin"}),
        http.delete(f"/api/admin/users/{target['id']}"),
        http.delete(f"/api/admin/users/{target['id']}/sessions"),
    ]
    for attempt in attempts:
        response = await attempt
        assert response.status_code == 403, response.text
        assert set(response.json()) == {"code", "message", "details", "hint"}
    row = await admin_db.fetchrow("SELECT role FROM auth.users WHERE id = $1::uuid", target["id"])
    assert row is not None
    assert row["role"] == "webuser"


async def test_admin_lists_creates_and_updates_users(
    admin: httpx.AsyncClient, admin_db: asyncpg.Connection
) -> None:
    email = unique_email("created")
    created = await admin.post(
        "/api/admin/users", json={"email": email, "password": TEST_PASSWORD, "verified": True}
    )
    assert created.status_code == 201, created.text
    user = created.json()
    assert (user["email"], user["role"], user["verified"]) == (email, "webuser", True)
    listed = await admin.get("/api/admin/users")
    assert listed.status_code == 200
    assert email in {u["email"] for u in listed.json()}
    assert all("password" not in key for u in listed.json() for key in u)

    fetched = await admin.get(f"/api/admin/users/{user['id']}")
    assert fetched.json() == user
    promoted = await admin.patch(f"/api/admin/users/{user['id']}", json={"role": "admin"})
    assert promoted.status_code == 200
    assert promoted.json()["role"] == "admin"
    demoted = await admin.patch(
        f"/api/admin/users/{user['id']}", json={"role": "webuser", "verified": False}
    )
    assert (demoted.json()["role"], demoted.json()["verified"]) == ("webuser", False)

    duplicate = await admin.post(
        "/api/admin/users", json={"email": email, "password": TEST_PASSWORD}
    )
    assert duplicate.status_code == 409
    missing = await admin.get(f"/api/admin/users/{'0' * 8}-0000-4000-8000-{'0' * 12}")
    assert missing.status_code == 404


async def test_an_admin_cannot_grant_a_role_they_do_not_hold(
    admin: httpx.AsyncClient, admin_db: asyncpg.Connection, extra_role: str
) -> None:
    target = await _make_user(admin_db)
    response = await admin.patch(f"/api/admin/users/{target['id']}", json={"role": extra_role})
    assert response.status_code == 403
    assert "clearance" in response.json()["message"]
    created = await admin.post(
        "/api/admin/users",
        json={"email": unique_email(), "password": TEST_PASSWORD, "role": extra_role},
    )
    assert created.status_code == 403
    stored = await admin_db.fetchval(
        "SELECT count(*) FROM auth.users WHERE role = $1 OR (id = $2::uuid AND role <> 'webuser')",
        extra_role,
        target["id"],
    )
    assert stored == 0
    # A role that does not exist at all is a bad request, not a privilege question.
    nonexistent = await admin.patch(
        f"/api/admin/users/{target['id']}", json={"role": "no_such_role_anywhere"}
    )
    assert nonexistent.status_code == 400


async def test_an_admin_cannot_manage_someone_above_their_clearance(
    accounts_server: LiveServer,
    admin: httpx.AsyncClient,
    admin_db: asyncpg.Connection,
    extra_role: str,
) -> None:
    boss = await _make_user(admin_db, extra_role)
    async with make_client(accounts_server.url) as boss_browser:
        assert (await log_in(boss_browser, boss["email"])).status_code == 200
        for attempt in (
            admin.patch(f"/api/admin/users/{boss['id']}", json={"disabled": True}),
            admin.patch(f"/api/admin/users/{boss['id']}", json={"role": "webuser"}),
            admin.delete(f"/api/admin/users/{boss['id']}/sessions"),
            admin.delete(f"/api/admin/users/{boss['id']}"),
        ):
            assert (await attempt).status_code == 403
        assert (await boss_browser.get("/api/me")).json()["role"] == extra_role


async def test_disabling_a_user_ends_their_sessions_at_once(
    accounts_server: LiveServer, admin: httpx.AsyncClient, admin_db: asyncpg.Connection
) -> None:
    user = await _make_user(admin_db)
    async with make_client(accounts_server.url) as victim:
        await log_in(victim, user["email"])
        disabled = await admin.patch(f"/api/admin/users/{user['id']}", json={"disabled": True})
        assert disabled.status_code == 200
        assert disabled.json()["disabled"] is True
        assert (await victim.get("/api/me")).status_code == 401
        live = await admin_db.fetchval(
            "SELECT count(*) FROM auth.sessions WHERE user_id = $1::uuid AND revoked_at IS NULL",
            user["id"],
        )
        assert live == 0
        assert (await log_in(victim, user["email"])).status_code == 403
        enabled = await admin.patch(f"/api/admin/users/{user['id']}", json={"disabled": False})
        assert enabled.json()["disabled"] is False
        assert (await log_in(victim, user["email"])).status_code == 200


async def test_deleting_a_user_ends_their_sessions(
    accounts_server: LiveServer, admin: httpx.AsyncClient, admin_db: asyncpg.Connection
) -> None:
    user = await _make_user(admin_db)
    async with make_client(accounts_server.url) as victim:
        await log_in(victim, user["email"])
        assert (await admin.delete(f"/api/admin/users/{user['id']}")).status_code == 204
        assert (await victim.get("/api/me")).status_code == 401
        assert (await admin.delete(f"/api/admin/users/{user['id']}")).status_code == 404
    left = await admin_db.fetchval(
        "SELECT count(*) FROM auth.sessions WHERE user_id = $1::uuid", user["id"]
    )
    assert left == 0


async def test_admin_ends_a_users_sessions(
    accounts_server: LiveServer, admin: httpx.AsyncClient, admin_db: asyncpg.Connection
) -> None:
    user = await _make_user(admin_db)
    async with make_client(accounts_server.url) as one, make_client(accounts_server.url) as two:
        await log_in(one, user["email"])
        await log_in(two, user["email"])
        ended = await admin.delete(f"/api/admin/users/{user['id']}/sessions")
        assert ended.status_code == 200
        assert ended.json() == {"revoked": 2}
        assert (await one.get("/api/me")).status_code == 401
        assert (await two.get("/api/me")).status_code == 401
    assert (await admin.get("/api/me")).status_code == 200


async def test_admin_check_happens_in_sql_not_only_in_the_service(
    authenticator_db: asyncpg.Connection,
) -> None:
    # Even the service's own connection cannot act as admin without an admin session.
    with pytest.raises(asyncpg.InsufficientPrivilegeError):
        await authenticator_db.fetch(
            "SELECT * FROM auth.admin_list_users($1, 'admin')", secrets.token_bytes(32)
        )
