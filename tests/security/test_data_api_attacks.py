"""SQL injection through every query parameter and JSON key, and role escalation attempts."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any
from urllib.parse import quote

import asyncpg
import httpx
import pytest

from tests.conftest import TEST_PASSWORD, LiveServer, make_client, sign_in, unique_email

PAYLOADS = [
    "'; DROP TABLE app.sg_canary; --",
    '"; DROP TABLE app.sg_canary; --',
    "id) ; DROP TABLE app.sg_canary; --",
    "1 OR 1=1",
    "$1",
    "description)::text, (SELECT password_hash FROM auth.users LIMIT 1",
    "pg_sleep(5)",
    "x\\' UNION SELECT * FROM auth.users --",
    "\x00",
    "todos.id",
]
PARAMS = ["select", "order", "limit", "offset", "columns", "on_conflict", "id", "description"]


@pytest.fixture(scope="module")
def canary_name() -> str:
    """The table every payload tries to drop."""
    return "app.sg_canary"


@pytest.fixture
async def canary(admin_db: asyncpg.Connection, canary_name: str) -> AsyncIterator[None]:
    """A table that must still exist, unchanged, after the attacks."""
    await admin_db.execute(f"CREATE TABLE IF NOT EXISTS {canary_name} (v int)")
    await admin_db.execute(f"TRUNCATE {canary_name}; INSERT INTO {canary_name} VALUES (42)")
    yield
    assert await admin_db.fetchval(f"SELECT v FROM {canary_name}") == 42
    # Gone again: the contract tests expect only the owner's tables in app.
    await admin_db.execute(f"DROP TABLE {canary_name}")


def _assert_refused_cleanly(response: httpx.Response, what: str) -> None:
    assert response.status_code < 500, (what, response.status_code, response.text)
    if response.status_code >= 400:
        body = response.json()
        assert set(body) == {"code", "message", "details", "hint"}, what
        # A PostgreSQL syntax error would mean request text reached its parser.
        assert body["code"] != "42601", (what, body)
    assert "$argon2" not in response.text, what


async def test_sql_in_every_query_parameter(
    signed_in: tuple[httpx.AsyncClient, dict[str, Any]], canary: None
) -> None:
    http, _ = signed_in
    assert (await http.post("/api/todos", json={"description": "mine"})).status_code == 201
    for payload in PAYLOADS:
        for param in PARAMS:
            for value in (payload, f"eq.{payload}", f"in.({payload})"):
                response = await http.get("/api/todos", params={param: value})
                _assert_refused_cleanly(response, f"GET {param}={value!r}")
            # The payload as a parameter name: a column name from the URL.
            response = await http.get("/api/todos", params={payload: "eq.1"})
            _assert_refused_cleanly(response, f"GET {payload!r}=eq.1")
        for method in ("PATCH", "DELETE"):
            response = await http.request(
                method, "/api/todos", params={"id": f"eq.{payload}"}, json={"done": True}
            )
            _assert_refused_cleanly(response, f"{method} id=eq.{payload!r}")
        response = await http.get(f"/api/rpc/{quote(payload, safe='')}")
        _assert_refused_cleanly(response, f"rpc {payload!r}")
        response = await http.get(f"/api/{quote(payload, safe='')}")
        _assert_refused_cleanly(response, f"relation {payload!r}")


async def test_sql_in_every_json_key_and_value(
    signed_in: tuple[httpx.AsyncClient, dict[str, Any]],
    canary: None,
    admin_db: asyncpg.Connection,
) -> None:
    http, user = signed_in
    created = await http.post(
        "/api/todos", json={"description": "target"}, headers={"Prefer": "return=representation"}
    )
    todo_id = created.json()[0]["id"]
    for payload in PAYLOADS:
        for body in ({payload: "x"}, {"description": "x", payload: 1}, [{payload: None}]):
            for method, path in (
                ("POST", "/api/todos"),
                ("PATCH", f"/api/todos?id=eq.{todo_id}"),
                ("PUT", f"/api/todos?id=eq.{todo_id}"),
                ("POST", "/api/rpc/sg_nothing"),
            ):
                response = await http.request(method, path, json=body)
                _assert_refused_cleanly(response, f"{method} {path} {body!r}")
        if "\x00" not in payload:
            # Values are bound parameters: stored as the literal text.
            stored = await http.post(
                "/api/todos",
                json={"description": payload},
                headers={"Prefer": "return=representation"},
            )
            assert stored.status_code == 201, stored.text
            assert stored.json()[0]["description"] == payload
    count = await admin_db.fetchval(
        "SELECT count(*) FROM app.todos WHERE user_id = $1 AND id = $2", user["id"], todo_id
    )
    assert count == 1


async def test_no_escalation_through_sign_up_or_profile_fields(
    live_server: LiveServer, admin_db: asyncpg.Connection
) -> None:
    async with make_client(live_server.url) as http:
        email = unique_email()
        signup = await http.post(
            "/api/signup",
            json={"email": email, "password": TEST_PASSWORD, "role": "admin", "verified": True},
        )
        assert signup.status_code in {201, 422}
        stored = await admin_db.fetchval("SELECT role FROM auth.users WHERE email = $1", email)
        assert stored in {None, "webuser"}
        user = await sign_in(http)
        for body in (
            {"role": "admin"},
            {"email": user["email"], "current_password": TEST_PASSWORD, "role": "admin"},
        ):
            response = await http.patch("/api/me", json=body)
            assert response.status_code in {400, 422}, response.text
        assert (await http.get("/api/me")).json()["role"] == "webuser"
        # Admin routes, and the "settings" a request might try to smuggle in.
        assert (await http.get("/api/admin/users")).status_code == 403
        patched = await http.patch(f"/api/admin/users/{user['id']}", json={"role": "admin"})
        assert patched.status_code == 403
        for path in (
            "/api/rpc/set_config",
            "/api/rpc/authenticate",
            "/api/users",
            "/api/sessions_raw",
        ):
            assert (await http.get(path)).status_code in {404, 405}, path
        hidden = await http.get("/api/users", headers={"Accept-Profile": "auth"})
        assert hidden.status_code == 406
        assert (await http.get("/demo/summary?role=admin")).json()["role"] == "webuser"
        assert (await http.get("/demo/summary")).json()["role"] == "webuser"
        role = await admin_db.fetchval("SELECT role FROM auth.users WHERE id = $1", user["id"])
        assert role == "webuser"


async def test_no_escalation_through_row_patches(
    live_server: LiveServer, admin_db: asyncpg.Connection
) -> None:
    async with make_client(live_server.url) as victim, make_client(live_server.url) as attacker:
        victim_user = await sign_in(victim)
        attacker_user = await sign_in(attacker)
        mine = await attacker.post(
            "/api/todos",
            json={"description": "attacker's"},
            headers={"Prefer": "return=representation"},
        )
        theirs = await victim.post(
            "/api/todos",
            json={"description": "victim's"},
            headers={"Prefer": "return=representation"},
        )
        mine_id, theirs_id = mine.json()[0]["id"], theirs.json()[0]["id"]
        attempts = [
            ("POST", "/api/todos", {"description": "as victim", "user_id": victim_user["id"]}),
            ("PATCH", f"/api/todos?id=eq.{mine_id}", {"user_id": victim_user["id"]}),
            ("PATCH", f"/api/todos?id=eq.{theirs_id}", {"description": "defaced"}),
            ("PATCH", f"/api/todos?id=eq.{mine_id}", {"id": theirs_id}),
            ("DELETE", f"/api/todos?id=eq.{theirs_id}", None),
            ("PUT", f"/api/todos?id=eq.{theirs_id}", {"id": theirs_id, "description": "x"}),
        ]
        for method, path, body in attempts:
            response = await attacker.request(method, path, json=body)
            assert response.status_code < 500, (method, path, response.text)
    rows = await admin_db.fetch(
        "SELECT id, user_id, description FROM app.todos WHERE id = ANY($1::bigint[]) ORDER BY id",
        [mine_id, theirs_id],
    )
    assert [(str(r["user_id"]), r["description"]) for r in rows] == [
        (attacker_user["id"], "attacker's"),
        (victim_user["id"], "victim's"),
    ]
    planted = await admin_db.fetchval(
        "SELECT count(*) FROM app.todos WHERE user_id = $1 AND description = 'as victim'",
        victim_user["id"],
    )
    assert planted == 0
