"""The data API's path dispatcher: which requests it serves, and which it leaves to FastAPI."""

from __future__ import annotations

import httpx


async def test_account_routes_keep_their_paths(dapi: httpx.AsyncClient) -> None:
    # Answered by the account routes, not read as relations named login or me.
    login = await dapi.post(
        "/api/login", json={"email": "nobody@example.com", "password": "x" * 12}
    )
    assert login.status_code == 401
    assert not login.json()["code"].startswith("PGRST")
    me = await dapi.get("/api/me")
    assert me.status_code == 401
    assert not me.json()["code"].startswith("PGRST")
    sessions = await dapi.get("/api/sessions")
    assert sessions.status_code == 401
    assert not sessions.json()["code"].startswith("PGRST")


async def test_data_paths_reach_the_data_api(dapi: httpx.AsyncClient) -> None:
    authors = await dapi.get("/api/authors?select=name&order=id&limit=1")
    assert authors.status_code == 200, authors.text
    assert authors.json() == [{"name": "Ursula"}]
    assert authors.headers["content-range"] == "0-0/*"
    added = await dapi.post("/api/rpc/add", json={"a": 2, "b": 3})
    assert added.status_code == 200, added.text
    assert added.json() == 5
    head = await dapi.head("/api/authors")
    assert head.status_code == 200
    assert head.content == b""


async def test_only_the_two_data_shapes_are_dispatched(dapi: httpx.AsyncClient) -> None:
    unknown = await dapi.get("/api/no_such_table")
    assert unknown.status_code == 404
    assert unknown.json()["code"] == "PGRST205"
    # A percent-encoded name is decoded once, as FastAPI's router would.
    encoded = await dapi.get("/api/bo%6Fks?select=id&limit=1")
    assert encoded.status_code == 200, encoded.text
    # Deeper paths and trailing slashes are FastAPI's: PGRST125 as before.
    for path in ("/api/books/1", "/api/books/", "/api/rpc/add/extra"):
        response = await dapi.get(path)
        assert response.status_code == 404, path
        assert response.json()["code"] == "PGRST125", path
    missing_fn = await dapi.post("/api/rpc/no_such_function", json={})
    assert missing_fn.status_code == 404
    assert missing_fn.json()["code"] == "PGRST202"


async def test_other_methods_are_refused_before_any_handler(dapi: httpx.AsyncClient) -> None:
    # TRACE is "safe" to the CSRF rule, so it must never reach a function call.
    for method in ("TRACE", "PURGE"):
        for path in ("/api/rpc/add", "/api/authors"):
            response = await dapi.request(method, path)
            assert response.status_code == 405, (method, path)
            assert response.json()["code"] == "method_not_allowed"


async def test_names_longer_than_postgresql_allows_are_not_found(dapi: httpx.AsyncClient) -> None:
    response = await dapi.get("/api/" + "a" * 64)
    assert response.status_code == 404
    assert response.json()["code"] == "PGRST205"
    function = await dapi.post("/api/rpc/" + "f" * 64, json={})
    assert function.status_code == 404
    assert function.json()["code"] == "PGRST202"
