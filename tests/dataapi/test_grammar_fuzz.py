"""Fuzzing the URL grammar: no query string may produce anything but a clean 4xx or a result."""

from __future__ import annotations

import asyncio

import httpx
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from app.dataapi.grammar import (
    parse_condition,
    parse_logic,
    parse_order,
    parse_select,
)
from app.errors import ApiError
from tests.conftest import LiveServer

# Characters the grammar gives meaning to, plus a few ordinary ones.
_ALPHABET = st.sampled_from([*"abcdeixyz019_*.,:()!\"'-> {}[]%\\&=+;/", "->", "->>", "::"])
_TEXT = st.lists(_ALPHABET, max_size=40).map("".join)
_OPERATORS = st.sampled_from(
    ["eq", "neq", "in", "is", "like", "fts", "cs", "not.eq", "eq(any)", "fts(english)", "zz"]
)
_VALUE = st.builds(lambda op, rest: f"{op}.{rest}", _OPERATORS, _TEXT) | _TEXT


@settings(max_examples=400, deadline=None)
@given(select=_TEXT, order=_TEXT, field=_TEXT, value=_VALUE, tree=_TEXT)
def test_parsers_fail_only_with_api_errors(
    select: str, order: str, field: str, value: str, tree: str
) -> None:
    for parse in (
        lambda: parse_select(select),
        lambda: parse_order(order),
        lambda: parse_condition(field, value),
        lambda: parse_logic("or", tree, False),
    ):
        problem: ApiError | None = None
        try:
            parse()
        except ApiError as error:
            problem = error
        if problem is not None:
            assert (problem.status, problem.code) == (400, "PGRST100")


_KEYS = st.sampled_from(
    [
        "select",
        "order",
        "limit",
        "offset",
        "or",
        "and",
        "not.or",
        "id",
        "title",
        "meta->>pages",
        "authors.name",
        "books.order",
        "tags",
        "year",
    ]
)


@settings(
    max_examples=150,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(pairs=st.lists(st.tuples(_KEYS, _VALUE), max_size=4))
def test_no_query_string_yields_a_server_error(
    dapi_server: LiveServer, pairs: list[tuple[str, str]]
) -> None:
    async def probe() -> int:
        async with httpx.AsyncClient(base_url=dapi_server.url, timeout=30) as http:
            params: list[tuple[str, str | int | float | bool | None]] = list(pairs)
            response = await http.get("/api/books", params=params)
            body = response.json()
            if response.status_code >= 400:
                assert set(body) == {"code", "message", "details", "hint"}
            return response.status_code

    status = asyncio.run(probe())
    assert status < 500


_JSON = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=8),
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=6), inner, max_size=3)
    ),
    max_leaves=6,
)
_BODY_KEYS = st.sampled_from(["body", "method", "id", "nope", ""])


@settings(
    max_examples=120,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(
    method=st.sampled_from(["POST", "PATCH", "PUT", "DELETE"]),
    target=st.sampled_from(["/api/notes", "/api/rpc/add", "/api/rpc/whoami", "/api/authors"]),
    pairs=st.lists(st.tuples(_KEYS | _BODY_KEYS, _VALUE), max_size=3),
    body=_JSON | st.dictionaries(_BODY_KEYS, _JSON, max_size=3),
    prefer=st.sampled_from(
        [
            "",
            "return=representation",
            "resolution=merge-duplicates",
            "missing=default",
            "handling=strict, max-affected=1",
            "count=exact, return=headers-only",
            "tx=rollback",
        ]
    ),
)
def test_no_write_or_call_yields_a_server_error(
    dapi_rollback_server: LiveServer,
    method: str,
    target: str,
    pairs: list[tuple[str, str]],
    body: object,
    prefer: str,
) -> None:
    async def probe() -> int:
        async with httpx.AsyncClient(base_url=dapi_rollback_server.url, timeout=30) as http:
            params: list[tuple[str, str | int | float | bool | None]] = list(pairs)
            response = await http.request(
                method,
                target,
                params=params,
                json=body,
                headers={"Prefer": prefer, "Content-Type": "application/json"},
            )
            if response.status_code >= 400:
                assert set(response.json()) == {"code", "message", "details", "hint"}
            return response.status_code

    status = asyncio.run(probe())
    assert status < 500
