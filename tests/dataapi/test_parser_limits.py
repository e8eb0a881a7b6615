"""Hostile query strings (deep nesting, NUL bytes) end in PostgREST's 400 PGRST100,
never in a 5xx."""

from __future__ import annotations

import httpx
import pytest

from app.dataapi.grammar import MAX_DEPTH, parse_logic, parse_select
from app.errors import ApiError


def _chain(depth: int, *, spread: bool = True) -> str:
    """n1:name,...parent_id(n2:name,...parent_id(...)): `depth` levels of dapi.nodes."""
    text = f"n{depth}:name"
    for level in range(depth - 1, 0, -1):
        text = f"n{level}:name,{'...' if spread else ''}parent_id({text})"
    return text


def _nested(depth: int, opening: str, inner: str) -> str:
    return opening * depth + inner + ")" * depth


def _assert_parse_error(response: httpx.Response) -> None:
    assert response.status_code == 400, response.text[:300]
    assert response.json()["code"] == "PGRST100"


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
