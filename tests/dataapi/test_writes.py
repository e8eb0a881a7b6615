"""Writing over /api/<relation>: insert, upsert, update, delete, PUT, preferences, tx end."""

from __future__ import annotations

import secrets
from typing import Any

import asyncpg
import httpx

from app.dataapi.view_defaults import plain_columns
from tests.conftest import LiveServer, make_client, sign_in


def _word() -> str:
    return "note-" + secrets.token_hex(4)


async def test_insert_returns_what_prefer_asks_for(dapi: httpx.AsyncClient) -> None:
    body = _word()
    minimal = await dapi.post("/api/notes", json={"body": body})
    assert minimal.status_code == 201
    assert minimal.content == b""
    assert "content-type" not in minimal.headers
    assert minimal.headers["content-range"] == "*/*"

    headers_only = await dapi.post(
        "/api/notes", json={"body": _word()}, headers={"Prefer": "return=headers-only"}
    )
    assert headers_only.status_code == 201
    assert headers_only.headers["location"].startswith("/notes?id=eq.")
    assert headers_only.headers["preference-applied"] == "return=headers-only"

    shown = await dapi.post(
        "/api/notes?select=body,method",
        json=[{"body": "one " + body}, {"body": "two " + body}],
        headers={"Prefer": "return=representation, count=exact"},
    )
    assert shown.status_code == 201
    assert shown.json() == [
        {"body": "one " + body, "method": "POST"},
        {"body": "two " + body, "method": "POST"},
    ]
    assert shown.headers["content-range"] == "*/2"
    assert shown.headers["preference-applied"] == "return=representation, count=exact"


async def test_columns_parameter_limits_what_is_written(dapi: httpx.AsyncClient) -> None:
    response = await dapi.post(
        "/api/notes?columns=body&select=body,method",
        json={"body": "only body", "method": "forged", "junk": 1},
        headers={"Prefer": "return=representation"},
    )
    assert response.json() == [{"body": "only body", "method": "POST"}]
    unknown = await dapi.post("/api/notes", json={"nope": 1})
    assert unknown.status_code == 400
    assert unknown.json()["code"] == "PGRST204"
    broken = await dapi.post(
        "/api/notes", content=b"{not json", headers={"Content-Type": "application/json"}
    )
    assert broken.status_code == 400
    assert broken.json()["code"] == "PGRST102"


async def test_upsert_merges_or_ignores_duplicates(dapi: httpx.AsyncClient) -> None:
    key = 1000 + secrets.randbelow(10**6)
    first = await dapi.post(
        "/api/authors",
        json=[{"id": key, "name": "first"}],
        headers={"Prefer": "return=representation, resolution=merge-duplicates"},
    )
    assert first.status_code == 201
    merged = await dapi.post(
        "/api/authors",
        json=[{"id": key, "name": "merged"}],
        headers={"Prefer": "return=representation, resolution=merge-duplicates"},
    )
    assert merged.status_code == 200
    assert merged.json() == [{"id": key, "name": "merged"}]
    assert merged.headers["preference-applied"] == (
        "resolution=merge-duplicates, return=representation"
    )
    ignored = await dapi.post(
        "/api/authors?on_conflict=id",
        json=[{"id": key, "name": "ignored"}],
        headers={"Prefer": "return=representation, resolution=ignore-duplicates"},
    )
    assert ignored.json() == []
    duplicate = await dapi.post("/api/authors", json={"id": key, "name": "again"})
    assert duplicate.status_code == 409
    assert duplicate.json()["code"] == "23505"


async def test_put_upserts_one_row_by_primary_key(dapi: httpx.AsyncClient) -> None:
    key = 2_000_000 + secrets.randbelow(10**6)
    created = await dapi.put(
        f"/api/authors?id=eq.{key}",
        json={"id": key, "name": "put"},
        headers={"Prefer": "return=representation"},
    )
    assert created.status_code == 201
    replaced = await dapi.put(f"/api/authors?id=eq.{key}", json={"id": key, "name": "again"})
    assert replaced.status_code == 204
    mismatch = await dapi.put(f"/api/authors?id=eq.{key}", json={"id": key + 1, "name": "x"})
    assert mismatch.json()["code"] == "PGRST115"
    not_pk = await dapi.put("/api/authors?name=eq.x", json={"id": 1, "name": "x"})
    assert not_pk.status_code == 405
    assert not_pk.json()["code"] == "PGRST105"


async def test_patch_and_delete_touch_only_filtered_rows(dapi: httpx.AsyncClient) -> None:
    body = _word()
    await dapi.post("/api/notes", json=[{"body": body}, {"body": body}, {"body": "other"}])
    patched = await dapi.patch(
        f"/api/notes?body=eq.{body}",
        json={"body": body + "!"},
        headers={"Prefer": "return=representation"},
    )
    assert patched.status_code == 200
    assert [row["body"] for row in patched.json()] == [body + "!", body + "!"]
    assert patched.headers["content-range"] == "0-1/*"
    quiet = await dapi.patch(f"/api/notes?body=eq.{body}!", json={"body": body})
    assert quiet.status_code == 204
    too_many = await dapi.delete(
        f"/api/notes?body=eq.{body}", headers={"Prefer": "handling=strict, max-affected=1"}
    )
    assert too_many.status_code == 400
    assert too_many.json()["code"] == "PGRST124"
    gone = await dapi.delete(
        f"/api/notes?body=eq.{body}", headers={"Prefer": "return=representation"}
    )
    assert len(gone.json()) == 2
    left = await dapi.get(f"/api/notes?body=eq.{body}")
    assert left.json() == []


async def test_permissions_come_from_the_database(dapi: httpx.AsyncClient) -> None:
    denied = await dapi.post("/api/books", json={"id": 99, "title": "nope"})
    assert denied.status_code == 401
    assert denied.json()["code"] == "42501"


async def _notes_with(admin: asyncpg.Connection, body: str) -> int:
    count: int = await admin.fetchval("SELECT count(*) FROM dapi.notes WHERE body = $1", body)
    return count


async def test_db_tx_end_rollback_and_override(
    server_factory: Any, dapi_schema: str, admin_db: asyncpg.Connection
) -> None:
    fixed: LiveServer = server_factory(db_schemas=[dapi_schema], db_tx_end="rollback")
    body = _word()
    async with make_client(fixed.url) as http:
        response = await http.post(
            "/api/notes", json={"body": body}, headers={"Prefer": "tx=commit"}
        )
        assert response.status_code == 201
        assert "preference-applied" not in response.headers
    assert await _notes_with(admin_db, body) == 0

    flexible: LiveServer = server_factory(
        db_schemas=[dapi_schema], db_tx_end="rollback-allow-override"
    )
    async with make_client(flexible.url) as http:
        kept = await http.post("/api/notes", json={"body": body}, headers={"Prefer": "tx=commit"})
        assert kept.headers["preference-applied"] == "tx=commit"
        await http.post("/api/notes", json={"body": body})
    assert await _notes_with(admin_db, body) == 1


async def test_missing_default_fills_absent_keys_per_row(dapi: httpx.AsyncClient) -> None:
    body = _word()
    response = await dapi.post(
        "/api/notes?select=body,method",
        json=[{"body": body, "method": "given"}, {"body": body}],
        headers={"Prefer": "return=representation, missing=default"},
    )
    assert response.status_code == 201, response.text
    assert response.json() == [
        {"body": body, "method": "given"},
        {"body": body, "method": "POST"},
    ]
    assert response.headers["preference-applied"] == "missing=default, return=representation"
    ids = await dapi.get(f"/api/notes?select=id&body=eq.{body}")
    assert len({row["id"] for row in ids.json()}) == 2


async def test_limit_and_order_bound_patch_and_delete(dapi: httpx.AsyncClient) -> None:
    body = _word()
    await dapi.post("/api/notes", json=[{"body": body}, {"body": body}, {"body": body}])
    first = await dapi.patch(
        f"/api/notes?body=eq.{body}&order=id.desc&limit=1",
        json={"body": body + "-last"},
        headers={"Prefer": "return=representation"},
    )
    assert first.status_code == 200
    assert len(first.json()) == 1
    ids = [
        row["id"]
        for row in (await dapi.get(f"/api/notes?select=id&body=like.{body}*&order=id")).json()
    ]
    assert first.json()[0]["id"] == ids[-1]
    removed = await dapi.delete(
        f"/api/notes?body=eq.{body}&order=id&limit=1", headers={"Prefer": "return=representation"}
    )
    assert [row["id"] for row in removed.json()] == [ids[0]]
    left = await dapi.get(f"/api/notes?select=id&body=like.{body}*&order=id")
    assert [row["id"] for row in left.json()] == ids[1:]


async def test_csv_bodies_insert_rows(dapi: httpx.AsyncClient) -> None:
    body = _word()
    response = await dapi.post(
        "/api/notes?select=body,method",
        content=f'body,method\n{body},NULL\n"{body}, quoted",csv\n'.encode(),
        headers={"Content-Type": "text/csv", "Prefer": "return=representation"},
    )
    assert response.status_code == 201, response.text
    assert response.json() == [
        {"body": body, "method": None},
        {"body": f"{body}, quoted", "method": "csv"},
    ]
    ragged = await dapi.post(
        "/api/notes", content=b"body\nx,y\n", headers={"Content-Type": "text/csv"}
    )
    assert ragged.status_code == 400
    assert ragged.json()["code"] == "PGRST102"


async def test_location_percent_encodes_the_key(dapi: httpx.AsyncClient) -> None:
    tag = secrets.token_hex(4)
    cases = {
        # A second filter smuggled into the key must stay part of the value.
        f"a&b=eq.{tag}": f"a%26b%3Deq.{tag}",
        # Non-ASCII text: the row is committed, so a failure here came too late.
        f"é€ {tag}": f"%C3%A9%E2%82%AC%20{tag}",
        # A line break must not end the header (or start a new one).
        f"x\r\nSet-Cookie: pwned=1 {tag}": f"x%0D%0ASet-Cookie%3A%20pwned%3D1%20{tag}",
    }
    for code, encoded in cases.items():
        response = await dapi.post(
            "/api/codes", json={"code": code}, headers={"Prefer": "return=headers-only"}
        )
        assert response.status_code == 201, (code, response.text)
        assert response.headers["location"] == f"/codes?code=eq.{encoded}"
        assert "set-cookie" not in response.headers
        # The Location finds exactly the inserted row again.
        found = await dapi.get("/api" + response.headers["location"])
        assert found.json() == [{"code": code, "note": None}]


async def test_missing_default_on_a_view_takes_the_base_column_default(
    dapi: httpx.AsyncClient,
) -> None:
    # The view's body column shows notes.method: its default is the request
    # method, not notes.body's (none), and not NULL.
    for view in ("notes_relabelled", "notes_relabelled_again"):
        text = _word()
        response = await dapi.post(
            f"/api/{view}?select=text,body",
            json=[{"text": text, "body": "given"}, {"text": text}],
            headers={"Prefer": "return=representation, missing=default"},
        )
        assert response.status_code == 201, (view, response.text)
        assert response.json() == [
            {"text": text, "body": "given"},
            {"text": text, "body": "POST"},
        ], view


async def test_missing_default_on_todos_takes_app_todos_defaults(dapi_server: LiveServer) -> None:
    async with make_client(dapi_server.url) as http:
        await sign_in(http)
        word = _word()
        response = await http.post(
            "/api/todos?select=description,done,public",
            json=[{"description": word, "done": True}, {"description": word}],
            headers={"Content-Profile": "api", "Prefer": "return=representation, missing=default"},
        )
    assert response.status_code == 201, response.text
    assert response.json() == [
        {"description": word, "done": True, "public": False},
        {"description": word, "done": False, "public": False},
    ]


async def test_missing_default_refuses_what_it_cannot_know(dapi: httpx.AsyncClient) -> None:
    title = _word()
    refused = await dapi.post(
        "/api/book_cards",
        json=[{"id": 900, "title": title, "author": "Ann"}, {"id": 901, "title": title}],
        headers={"Prefer": "missing=default"},
    )
    assert refused.status_code == 400, refused.text
    assert refused.json()["code"] == "missing_default"
    assert "'author'" in refused.json()["message"]
    # Nothing reached the trigger.
    notes = await dapi.get("/api/notes", params={"body": f"like.{title}*"})
    assert notes.json() == []
    # Rows that give every column need no default.
    given = await dapi.post(
        "/api/book_cards",
        json=[{"id": 902, "title": title, "author": "Ann"}],
        headers={"Prefer": "missing=default"},
    )
    assert given.status_code == 201, given.text
    notes = await dapi.get("/api/notes", params={"select": "body", "body": f"like.{title}*"})
    assert notes.json() == [{"body": f"{title} by Ann"}]


async def test_view_columns_are_traced_through_the_stored_query(
    admin_db: asyncpg.Connection,
) -> None:
    # Real query trees from this PostgreSQL: odd names, expressions and
    # subqueries (whose own target lists sit deeper) must not confuse the walk.
    await admin_db.execute(
        """
        CREATE SCHEMA trees;
        CREATE TABLE trees.t (a int, "b c" text, ":resno 9" int);
        CREATE VIEW trees.v AS
          SELECT "b c" AS "we(i}rd", upper("b c") AS shout,
                 (SELECT max(a) FROM trees.t) AS top, a AS ":resorigtbl 0", ":resno 9",
                 -- PostgreSQL writes these unescaped: not token breaks.
                 a AS "x\u00a0:resno\u00a01", a AS "y\r:resno\r2"
            FROM trees.t
           WHERE a > (SELECT min(a) FROM trees.t);
        """
    )
    try:
        table = await admin_db.fetchval("SELECT 'trees.t'::regclass::oid")
        tree = await admin_db.fetchval(
            "SELECT ev_action::text FROM pg_rewrite WHERE ev_class = 'trees.v'::regclass"
        )
        assert plain_columns(tree) == {
            1: (table, 2),
            4: (table, 1),
            5: (table, 3),
            6: (table, 1),
            7: (table, 1),
        }
    finally:
        await admin_db.execute("DROP SCHEMA trees CASCADE")
