"""The data path end to end: cookie → authenticate() → RLS-filtered rows over HTTP."""

from __future__ import annotations

from typing import Any

import httpx
from fastapi import Request
from sqlalchemy import text

from app.rls import RlsSession
from tests.conftest import LiveServer, TestDatabase, make_client, make_settings, sign_in

Client = tuple[httpx.AsyncClient, dict[str, Any]]


async def _add(
    http: httpx.AsyncClient, description: str, *, public: bool = False
) -> dict[str, Any]:
    response = await http.post(
        "/api/todos",
        json={"description": description, "public": public},
        headers={"Prefer": "return=representation"},
    )
    assert response.status_code == 201, response.text
    rows: list[dict[str, Any]] = response.json()
    assert len(rows) == 1
    return rows[0]


async def test_users_see_their_own_and_public_rows_only(live_server: LiveServer) -> None:
    async with make_client(live_server.url) as alice, make_client(live_server.url) as bob:
        alice_user = await sign_in(alice)
        await sign_in(bob)
        mine = await _add(alice, "alice: buy milk")
        shared = await _add(alice, "alice: public note", public=True)
        assert mine["user_id"] == alice_user["id"]

        alice_ids = {row["id"] for row in (await alice.get("/api/todos")).json()}
        bob_ids = {row["id"] for row in (await bob.get("/api/todos")).json()}
        assert {mine["id"], shared["id"]} <= alice_ids
        assert shared["id"] in bob_ids
        assert mine["id"] not in bob_ids


async def test_anonymous_sees_public_rows_and_cannot_write(live_server: LiveServer) -> None:
    async with make_client(live_server.url) as owner, make_client(live_server.url) as visitor:
        await sign_in(owner)
        private = await _add(owner, "private")
        public = await _add(owner, "for everyone", public=True)
        seen = {row["id"] for row in (await visitor.get("/api/todos")).json()}
        assert public["id"] in seen
        assert private["id"] not in seen
        refused = await visitor.post("/api/todos", json={"description": "graffiti"})
        assert refused.status_code == 401
        assert refused.json()["code"] == "42501"


async def test_a_user_cannot_create_rows_for_someone_else(live_server: LiveServer) -> None:
    async with make_client(live_server.url) as alice, make_client(live_server.url) as mallory:
        victim = await sign_in(alice)
        await sign_in(mallory)
        response = await mallory.post(
            "/api/todos", json={"description": "forged", "user_id": victim["id"]}
        )
        assert response.status_code == 403
        assert set(response.json()) == {"code", "message", "details", "hint"}
        rows = (await alice.get("/api/todos")).json()
        assert all(row["description"] != "forged" for row in rows)


async def test_bulk_insert_takes_an_array(signed_in: Client) -> None:
    http, user = signed_in
    response = await http.post(
        "/api/todos",
        json=[{"description": "one"}, {"description": "two"}],
        headers={"Prefer": "return=representation"},
    )
    assert response.status_code == 201
    rows = response.json()
    assert [row["description"] for row in rows] == ["one", "two"]
    assert {row["user_id"] for row in rows} == {user["id"]}


async def test_insert_without_prefer_returns_no_body(signed_in: Client) -> None:
    http, _ = signed_in
    response = await http.post("/api/todos", json={"description": "quiet"})
    assert response.status_code == 201
    assert response.content == b""


async def test_json_is_built_by_postgresql(signed_in: Client) -> None:
    http, _ = signed_in
    await _add(http, "first")
    await _add(http, "second")
    response = await http.get("/api/todos")
    assert response.headers["content-type"] == "application/json; charset=utf-8"
    # json_agg's own separator between elements: no Python serialiser writes this.
    assert b"}, \n {" in response.content
    assert "content-range" in response.headers


async def test_unknown_relation_and_column_are_json_errors(signed_in: Client) -> None:
    http, _ = signed_in
    missing = await http.get("/api/no_such_table")
    assert missing.status_code == 404
    assert missing.json()["code"] == "PGRST205"
    bad_column = await http.post("/api/todos", json={"descriptoin": "typo"})
    assert bad_column.status_code == 400
    assert bad_column.json()["code"] == "PGRST204"
    bad_json = await http.post(
        "/api/todos", content=b"{oops", headers={"content-type": "application/json"}
    )
    assert bad_json.status_code == 400
    assert set(bad_json.json()) == {"code", "message", "details", "hint"}


async def test_check_constraint_violation_is_a_400_and_writes_nothing(signed_in: Client) -> None:
    http, _ = signed_in
    before = len((await http.get("/api/todos")).json())
    response = await http.post("/api/todos", json=[{"description": "ok"}, {"description": ""}])
    assert response.status_code == 400
    assert response.json()["code"] == "23514"
    assert len((await http.get("/api/todos")).json()) == before


async def test_rls_session_dependency_carries_the_callers_role(signed_in: Client) -> None:
    http, user = signed_in
    await _add(http, "counted", public=False)
    summary = (await http.get("/demo/summary")).json()
    assert summary["role"] == "webuser"
    assert summary["user_id"] == user["id"]
    assert summary["mine"] >= 1


async def test_pooled_connection_carries_nothing_into_the_next_request(
    database: TestDatabase,
) -> None:
    # One connection in the pool, so the anonymous request must reuse the
    # connection the signed-in request just used.
    server = LiveServer(make_settings(database, pool_size=1, pool_max_overflow=0))

    @server.app.get("/test/whoami")
    async def whoami(session: RlsSession, request: Request) -> dict[str, Any]:
        row = (
            await session.execute(
                text(
                    "SELECT pg_backend_pid() AS pid, current_user AS role,"
                    " current_setting('auth.user_id', true) AS uid,"
                    " current_setting('request.jwt.claims', true) AS claims,"
                    " (SELECT count(*) FROM api.todos WHERE NOT public) AS private_rows"
                )
            )
        ).one()
        return dict(row._mapping)

    with server:
        async with make_client(server.url) as user, make_client(server.url) as stranger:
            await sign_in(user)
            await _add(user, "secret plans")
            signed = (await user.get("/test/whoami")).json()
            assert signed["role"] == "webuser"
            assert signed["private_rows"] >= 1

            anonymous = (await stranger.get("/test/whoami")).json()
            assert anonymous["pid"] == signed["pid"]
            assert anonymous["role"] == "anonymous"
            assert anonymous["uid"] == ""
            assert anonymous["claims"] == "{}"
            assert anonymous["private_rows"] == 0
            rows = (await stranger.get("/api/todos")).json()
            assert all(row["description"] != "secret plans" for row in rows)


async def test_a_failed_request_leaves_the_connection_clean(database: TestDatabase) -> None:
    server = LiveServer(make_settings(database, pool_size=1, pool_max_overflow=0))

    @server.app.get("/test/role")
    async def role(session: RlsSession) -> dict[str, Any]:
        return {"role": (await session.execute(text("SELECT current_user"))).scalar_one()}

    with server:
        async with make_client(server.url) as user, make_client(server.url) as stranger:
            await sign_in(user)
            failed = await user.post("/api/todos", json={"description": ""})
            assert failed.status_code == 400
            assert (await stranger.get("/test/role")).json() == {"role": "anonymous"}
            assert (await user.get("/test/role")).json() == {"role": "webuser"}
