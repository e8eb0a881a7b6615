"""Hostile query strings (deep nesting, nested spreads, NUL bytes) end in PostgREST's
400 PGRST100 or in SQL that grows with the request, not exponentially; never in a 5xx."""

from __future__ import annotations

import asyncpg
import httpx
import pytest

from app.dataapi import statements
from app.dataapi.grammar import MAX_DEPTH, parse_logic, parse_select
from app.dataapi.negotiation import Media
from app.dataapi.plan import Planner
from app.dataapi.schema import SchemaCache
from app.errors import ApiError
from tests.conftest import TestDatabase


@pytest.fixture(scope="module")
async def cache(database: TestDatabase, dapi_schema: str) -> SchemaCache:
    """The schema cache of the dapi schema, for planning without a server."""
    loaded = SchemaCache([dapi_schema])
    conn = await asyncpg.connect(database.runtime_dsn)
    try:
        await loaded.load(conn)
    finally:
        await conn.close()
    return loaded


def _chain(depth: int, *, spread: bool = True) -> str:
    """n1:name,...parent_id(n2:name,...parent_id(...)): `depth` levels of dapi.nodes."""
    text = f"n{depth}:name"
    for level in range(depth - 1, 0, -1):
        text = f"n{level}:name,{'...' if spread else ''}parent_id({text})"
    return text


def _read_sql(cache: SchemaCache, select: str) -> str:
    relation = cache.find("dapi", "nodes")
    assert relation is not None
    node = Planner(cache, "dapi").root(relation, select)
    return statements.read(node, Media.JSON, exact_count=False).sql


def _nested(depth: int, opening: str, inner: str) -> str:
    return opening * depth + inner + ")" * depth


def _assert_parse_error(response: httpx.Response) -> None:
    assert response.status_code == 400, response.text[:300]
    assert response.json()["code"] == "PGRST100"


async def test_nested_spreads_render_each_level_once(
    dapi: httpx.AsyncClient, cache: SchemaCache
) -> None:
    # Each level of spread used to copy the whole level below once per column:
    # depth 8 was 1.8 MB of SQL, depth 9 14 MB. (Small depths first: the old
    # planner would not finish the large ones.)
    def size(depth: int, *, inside_embed: bool) -> int:
        select = f"id,parent_id({_chain(depth)})" if inside_embed else _chain(depth)
        return len(_read_sql(cache, select))

    for inside_embed in (False, True):
        first_step = size(5, inside_embed=inside_embed) - size(4, inside_embed=inside_embed)
        for depth in (9, MAX_DEPTH):
            step = size(depth, inside_embed=inside_embed) - size(
                depth - 1, inside_embed=inside_embed
            )
            assert step <= first_step * 1.2, (inside_embed, depth)
    # ...and the rows keep PostgREST's shape.
    inside = await dapi.get(f"/api/nodes?select=id,parent_id({_chain(3)})&id=eq.3")
    assert inside.json() == [{"id": 3, "parent_id": {"n1": "child", "n2": "root", "n3": None}}]
    top = await dapi.get(f"/api/nodes?select={_chain(4)}&order=id")
    assert top.json() == [
        {"n1": "root", "n2": None, "n3": None, "n4": None},
        {"n1": "child", "n2": "root", "n3": None, "n4": None},
        {"n1": "grandchild", "n2": "child", "n3": "root", "n4": None},
    ]
    filtered = await dapi.get("/api/nodes?select=id,...parent_id(up:name)&parent_id.name=eq.child")
    assert filtered.json() == [
        {"id": 1, "up": None},
        {"id": 2, "up": None},
        {"id": 3, "up": "child"},
    ]
    csv = await dapi.get(f"/api/nodes?select={_chain(3)}&id=eq.3", headers={"Accept": "text/csv"})
    assert csv.text == "n1,n2,n3\ngrandchild,child,root"


def test_wide_spreads_grow_the_sql_linearly(cache: SchemaCache) -> None:
    # Each column of a top-level spread repeated the spread's whole select:
    # 2,000 columns (a 21 KB query string) were 90 MB of SQL.
    def size(columns: int) -> int:
        keys = ",".join(f"a{i}:name" for i in range(columns))
        return len(_read_sql(cache, f"id,...parent_id({keys})"))

    assert size(400) < size(200) * 2.2
    assert size(2000) < size(200) * 11


async def test_logic_trees_nest_at_most_max_depth(dapi: httpx.AsyncClient) -> None:
    deepest = _nested(MAX_DEPTH - 1, "or(", "id.eq.1")
    assert (await dapi.get(f"/api/books?select=id&or=({deepest})")).json() == [{"id": 1}]
    too_deep = await dapi.get(f"/api/books?select=id&or=(or({deepest}))")
    _assert_parse_error(too_deep)
    assert f"at most {MAX_DEPTH} levels" in too_deep.json()["details"]


async def test_very_deep_logic_trees_are_parse_errors_not_crashes(dapi: httpx.AsyncClient) -> None:
    # Depth ~500 was a RecursionError (500), ~990 dropped the connection.
    for depth in (500, 2000):
        tree = _nested(depth, "and(", "id.eq.1")
        _assert_parse_error(await dapi.get(f"/api/books?or=({tree})"))
        _assert_parse_error(await dapi.get(f"/api/books?not.and=({tree})"))
        _assert_parse_error(await dapi.get(f"/api/books?select=id,authors(id)&authors.or=({tree})"))
    with pytest.raises(ApiError) as raised:
        parse_logic("or", "(" + _nested(100_000, "or(", "a.eq.1") + ")", False)
    assert raised.value.code == "PGRST100"


async def test_select_embeds_nest_at_most_max_depth(dapi: httpx.AsyncClient) -> None:
    deepest = await dapi.get(f"/api/nodes?select={_chain(MAX_DEPTH + 1, spread=False)}&id=eq.1")
    assert deepest.status_code == 200, deepest.text[:300]
    too_deep = await dapi.get(f"/api/nodes?select={_chain(MAX_DEPTH + 2, spread=False)}")
    _assert_parse_error(too_deep)
    assert f"at most {MAX_DEPTH} levels" in too_deep.json()["details"]
    spreads = await dapi.get(f"/api/nodes?select={_chain(MAX_DEPTH + 2)}")
    _assert_parse_error(spreads)


async def test_very_deep_selects_are_parse_errors_not_crashes(dapi: httpx.AsyncClient) -> None:
    for depth in (500, 2000):
        _assert_parse_error(await dapi.get(f"/api/books?select={_nested(depth, 'a(', 'id')}"))
        _assert_parse_error(await dapi.get(f"/api/books?select={_nested(depth, '...a(', 'id')}"))
    with pytest.raises(ApiError) as raised:
        parse_select(_nested(100_000, "a(", "id"))
    assert raised.value.code == "PGRST100"


@pytest.mark.parametrize(
    "query",
    [
        "select=a%00b:id",
        "select=id%00",
        'select="id%00"',
        "select=meta->a%00b",
        "select=meta->>a%00b",
        "select=id,authors!a%00b(name)",
        "select=id,auth%00ors(name)",
        "order=id%00",
        "order=meta->a%00b.desc",
        "meta->>a%00b=eq.1",
        "id%00=eq.1",
        "or=(id%00.eq.1)",
        "or=(meta->a%00b.eq.1)",
    ],
)
async def test_nul_in_a_name_is_a_parse_error(dapi: httpx.AsyncClient, query: str) -> None:
    # A NUL in an alias reached the SQL text: PostgreSQL dropped the statement
    # as a protocol violation (503 08P01).
    response = await dapi.get(f"/api/books?{query}")
    _assert_parse_error(response)
    body = response.json()
    assert "NUL" in body["details"]
    assert "\x00" not in body["message"] + body["details"]
