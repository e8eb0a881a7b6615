"""Reading over /api/<relation>: filters, select, embedding, order, ranges, negotiation."""

from __future__ import annotations

import secrets
from typing import Any

import asyncpg
import httpx

from tests.conftest import LiveServer, make_client, sign_up


async def _ids(http: httpx.AsyncClient, query: str) -> list[Any]:
    response = await http.get(f"/api/books?select=id&order=id&{query}")
    assert response.status_code == 200, response.text
    return [row["id"] for row in response.json()]


async def test_horizontal_filters_follow_postgrest_operators(dapi: httpx.AsyncClient) -> None:
    assert await _ids(dapi, "year=gte.1974") == [2, 3]
    assert await _ids(dapi, "year=not.gte.1974") == [1]
    assert await _ids(dapi, "id=in.(1,3)") == [1, 3]
    assert await _ids(dapi, "id=not.in.(1,3)") == [2, 4]
    assert await _ids(dapi, "year=is.null") == [4]
    assert await _ids(dapi, "title=like.*sea") == [1]
    assert await _ids(dapi, "title=ilike.the*") == [2]
    assert await _ids(dapi, "title=match.^M") == [3]
    assert await _ids(dapi, "tags=cs.{fantasy}") == [1, 3]
    assert await _ids(dapi, "tags=ov.{scifi,death}") == [2, 3]
    assert await _ids(dapi, "id=eq(any).{2,4}") == [2, 4]
    assert await _ids(dapi, "title=like(all).{*e*,*s*}") == [1, 2, 4]
    assert await _ids(dapi, "year=isdistinct.1968") == [2, 3, 4]
    assert await _ids(dapi, "title=fts.wizard") == [1]
    assert await _ids(dapi, "title=wfts(english).wizards or death") == [1]


async def test_logic_trees_nest_and_negate(dapi: httpx.AsyncClient) -> None:
    assert await _ids(dapi, "or=(id.eq.1,and(year.gt.1980,title.eq.Mort))") == [1, 3]
    assert await _ids(dapi, "not.or=(id.eq.1,id.eq.2)") == [3, 4]
    assert await _ids(dapi, 'or=(title.eq."A Wizard of Earthsea",id.in.("4"))') == [1, 4]


async def test_json_paths_filter_select_and_order(dapi: httpx.AsyncClient) -> None:
    response = await dapi.get(
        "/api/books?select=id,pages:meta->pages,isbn:meta->isbn->>ten"
        "&meta->>pages=gt.200&order=meta->pages.desc"
    )
    assert response.status_code == 200
    assert response.json() == [
        {"id": 2, "pages": 387, "isbn": None},
        {"id": 3, "pages": 243, "isbn": None},
    ]


async def test_select_aliases_and_casts(dapi: httpx.AsyncClient) -> None:
    response = await dapi.get("/api/books?select=key:id::text,title&id=eq.3")
    assert response.json() == [{"key": "3", "title": "Mort"}]


async def test_embedding_follows_foreign_keys_in_every_direction(dapi: httpx.AsyncClient) -> None:
    to_one = await dapi.get("/api/books?select=title,writer:authors(name)&id=in.(1,4)&order=id")
    assert to_one.json() == [
        {"title": "A Wizard of Earthsea", "writer": {"name": "Ursula"}},
        {"title": "Anonymous pamphlet", "writer": None},
    ]
    to_many = await dapi.get(
        "/api/authors?select=name,books(id)&books.order=id.desc&books.limit=1&order=id&id=lte.3"
    )
    assert to_many.json() == [
        {"name": "Ursula", "books": [{"id": 2}]},
        {"name": "Terry", "books": [{"id": 3}]},
        {"name": "Nobody", "books": []},
    ]
    many_to_many = await dapi.get("/api/genres?select=name,books(title)&id=eq.1")
    titles = {b["title"] for b in many_to_many.json()[0]["books"]}
    assert titles == {"A Wizard of Earthsea", "Mort"}


async def test_inner_embedding_filters_the_parent(dapi: httpx.AsyncClient) -> None:
    response = await dapi.get("/api/authors?select=name,books!inner(title)&books.year=lt.1970")
    assert response.json() == [{"name": "Ursula", "books": [{"title": "A Wizard of Earthsea"}]}]


async def test_order_by_related_to_one_column(dapi: httpx.AsyncClient) -> None:
    response = await dapi.get(
        "/api/books?select=id,authors(name)&order=authors(name).asc.nullsfirst,id"
    )
    assert [row["id"] for row in response.json()] == [4, 3, 1, 2]


async def test_limit_offset_range_and_content_range(dapi: httpx.AsyncClient) -> None:
    page = await dapi.get(
        "/api/books?select=id&order=id&limit=2&offset=1", headers={"Prefer": "count=exact"}
    )
    assert page.status_code == 206
    assert page.headers["content-range"] == "1-2/4"
    assert page.headers["preference-applied"] == "count=exact"
    ranged = await dapi.get("/api/books?select=id&order=id", headers={"Range": "2-"})
    assert ranged.headers["content-range"] == "2-3/*"
    assert [row["id"] for row in ranged.json()] == [3, 4]
    beyond = await dapi.get("/api/books?offset=10", headers={"Prefer": "count=exact"})
    assert beyond.status_code == 416
    assert beyond.json()["code"] == "PGRST103"
    assert beyond.headers["content-range"] == "*/4"
    negative = await dapi.get("/api/books?limit=-1")
    assert negative.status_code == 416


async def test_db_max_rows_caps_every_read(server_factory: Any, dapi_schema: str) -> None:
    server: LiveServer = server_factory(db_schemas=[dapi_schema], db_max_rows=2)
    async with make_client(server.url) as http:
        response = await http.get("/api/books?order=id")
    assert [row["id"] for row in response.json()] == [1, 2]
    assert response.headers["content-range"] == "0-1/*"


async def test_accept_picks_object_csv_or_406(dapi: httpx.AsyncClient) -> None:
    one = await dapi.get(
        "/api/books?select=id,title&id=eq.3",
        headers={"Accept": "application/vnd.pgrst.object+json"},
    )
    assert one.json() == {"id": 3, "title": "Mort"}
    assert one.headers["content-type"].startswith("application/vnd.pgrst.object+json")
    many = await dapi.get("/api/books", headers={"Accept": "application/vnd.pgrst.object+json"})
    assert many.status_code == 406
    assert many.json()["code"] == "PGRST116"
    csv = await dapi.get("/api/authors?select=id,name&order=id", headers={"Accept": "text/csv"})
    assert csv.text == "id,name\n1,Ursula\n2,Terry\n3,Nobody"
    assert csv.headers["content-type"] == "text/csv; charset=utf-8"
    refused = await dapi.get("/api/books", headers={"Accept": "application/xml"})
    assert refused.status_code == 406
    assert refused.json()["code"] == "PGRST107"


async def test_profiles_choose_the_schema(dapi: httpx.AsyncClient) -> None:
    other = await dapi.get("/api/todos", headers={"Accept-Profile": "api"})
    assert other.status_code == 200
    assert other.headers["content-profile"] == "api"
    missing = await dapi.get("/api/todos")
    assert missing.status_code == 404
    assert missing.json()["code"] == "PGRST205"
    unknown = await dapi.get("/api/books", headers={"Accept-Profile": "auth"})
    assert unknown.status_code == 406
    assert unknown.json()["code"] == "PGRST106"


async def test_errors_are_postgrest_shaped(dapi: httpx.AsyncClient) -> None:
    column = await dapi.get("/api/books?select=nope")
    assert column.status_code == 400
    assert column.json() == {
        "code": "42703",
        "message": "column books.nope does not exist",
        "details": None,
        "hint": None,
    }
    grammar = await dapi.get("/api/books?order=id.sideways")
    assert grammar.status_code == 400
    assert grammar.json()["code"] == "PGRST100"
    embed = await dapi.get("/api/books?select=id&authors.name=eq.x")
    assert embed.json()["code"] == "PGRST108"
    nested = await dapi.get("/api/books/1")
    assert nested.status_code == 404
    assert nested.json()["code"] == "PGRST125"
    assert nested.headers["proxy-status"] == "PostgREST; error=PGRST125"
    # A deeper path an account route owns keeps its 405 for a wrong method.
    account = await dapi.get("/api/password/reset")
    assert account.status_code == 405
    assert account.json()["code"] == "method_not_allowed"


async def test_values_never_become_sql(dapi: httpx.AsyncClient) -> None:
    hostile = "x'); DROP TABLE dapi.books; --"
    response = await dapi.get("/api/books", params={"title": f"eq.{hostile}"})
    assert response.status_code == 200
    assert response.json() == []
    quoted = await dapi.get('/api/books?select="id"; DROP TABLE dapi.books; --')
    assert quoted.status_code == 400
    assert len((await dapi.get("/api/books")).json()) == 4


async def test_head_and_options(dapi: httpx.AsyncClient) -> None:
    head = await dapi.head("/api/books", headers={"Prefer": "count=exact"})
    assert head.status_code == 200
    assert head.headers["content-range"] == "0-3/4"
    assert head.content == b""
    options = await dapi.options("/api/notes")
    assert options.status_code == 200
    assert "POST" in options.headers["allow"]


async def test_out_of_range_numbers_are_client_errors(dapi: httpx.AsyncClient) -> None:
    for query in ("limit=99999999999999999999", "offset=-99999999999999999999"):
        response = await dapi.get(f"/api/books?{query}")
        assert response.status_code == 400, query
        assert response.json()["code"] == "PGRST100"
    path = await dapi.get("/api/books?select=meta->99999999999999999999")
    assert path.status_code == 200
    huge_range = await dapi.get("/api/books", headers={"Range": "0-99999999999999999999"})
    assert huge_range.status_code == 200


async def test_spread_flattens_a_to_one_embed(dapi: httpx.AsyncClient) -> None:
    response = await dapi.get("/api/books?select=id,...authors(writer:name)&id=in.(3,4)&order=id")
    assert response.json() == [{"id": 3, "writer": "Terry"}, {"id": 4, "writer": None}]
    to_many = await dapi.get("/api/authors?select=...books(id)")
    assert to_many.status_code == 400
    assert to_many.json()["code"] == "PGRST119"


async def test_aggregates_are_refused_like_postgrest_by_default(dapi: httpx.AsyncClient) -> None:
    response = await dapi.get("/api/books?select=count()")
    assert response.status_code == 400
    assert response.json()["code"] == "PGRST123"


async def test_planned_counts_do_not_see_rows_rls_hides(dapi: httpx.AsyncClient) -> None:
    # EXPLAIN's estimate comes from statistics over all 302 rows: it would
    # tell an anonymous caller how many hidden rows match a guess.
    for mode in ("planned", "estimated"):
        prefer = {"Prefer": f"count={mode}"}
        guessed = await dapi.get("/api/diary?entry=eq.the hidden secret&limit=1", headers=prefer)
        assert guessed.status_code == 200, guessed.text
        assert guessed.json() == []
        assert guessed.headers["content-range"] == "*/0", mode
        everything = await dapi.get("/api/diary?select=id&order=id", headers=prefer)
        assert everything.json() == [{"id": 301}, {"id": 302}]
        assert everything.headers["content-range"] == "0-1/2", mode


async def test_planned_counts_through_an_inner_embed_do_not_see_hidden_rows(
    dapi: httpx.AsyncClient,
) -> None:
    # diary_marks has no RLS, but the !inner embed carries the guess about
    # diary's hidden entries into the estimated statement.
    for mode in ("planned", "estimated"):
        response = await dapi.get(
            "/api/diary_marks?select=id,diary!inner(id)&diary.entry=eq.the hidden secret&limit=1",
            headers={"Prefer": f"count={mode}"},
        )
        assert response.status_code == 200, response.text
        assert response.json() == []
        assert response.headers["content-range"] == "*/0", mode


async def test_estimated_counts_past_max_rows_stay_exact_under_rls(
    server_factory: Any, dapi_schema: str
) -> None:
    server: LiveServer = server_factory(db_schemas=[dapi_schema], db_max_rows=1)
    async with make_client(server.url) as http:
        response = await http.get("/api/diary?select=id", headers={"Prefer": "count=estimated"})
    assert response.json() == [{"id": 301}]
    assert response.headers["content-range"] == "0-0/2"


async def test_views_with_an_unknown_base_count_exactly(dapi: httpx.AsyncClient) -> None:
    # The function could read anything, RLS-protected tables included.
    response = await dapi.get(
        "/api/books_by_function?select=id", headers={"Prefer": "count=planned"}
    )
    assert response.status_code == 200, response.text
    assert response.headers["content-range"] == "0-3/4"


async def test_planned_count_on_todos_does_not_reveal_private_todos(
    dapi_server: LiveServer, admin_db: asyncpg.Connection
) -> None:
    # The demo's api.todos is a view over app.todos, whose policies hide
    # other users' private todos: an anonymous guess must not learn of them.
    secret = f"private {secrets.token_hex(6)}"
    async with make_client(dapi_server.url) as victim:
        owner = await sign_up(victim)
    await admin_db.execute(
        "INSERT INTO app.todos (user_id, description)"
        " SELECT $1::uuid, $2 FROM generate_series(1, 750)",
        owner["id"],
        secret,
    )
    try:
        await admin_db.execute("ANALYZE app.todos")
        async with make_client(dapi_server.url) as anonymous:
            for guess in (secret, f"absent {secrets.token_hex(6)}"):
                for mode in ("planned", "estimated"):
                    response = await anonymous.get(
                        "/api/todos",
                        params={"description": f"eq.{guess}", "limit": "1"},
                        headers={"Accept-Profile": "api", "Prefer": f"count={mode}"},
                    )
                    assert response.status_code == 200, response.text
                    assert response.headers["content-range"] == "*/0", (guess, mode)
    finally:
        await admin_db.execute("DELETE FROM app.todos WHERE description = $1", secret)
