"""Functions over /api/rpc/<name>: arguments, shapes, read-only GET, GUC hooks, errors."""

from __future__ import annotations

import secrets
from typing import Any

import asyncpg
import httpx

from tests.conftest import LiveServer, make_client, sign_in


async def test_arguments_from_query_or_body(dapi: httpx.AsyncClient) -> None:
    got = await dapi.get("/api/rpc/add?a=2&b=3")
    assert got.status_code == 200
    assert got.json() == 5
    posted = await dapi.post("/api/rpc/add", json={"a": 4, "b": 5})
    assert posted.json() == 9
    missing = await dapi.get("/api/rpc/add?a=1&c=2")
    assert missing.status_code == 404
    assert missing.json()["code"] == "PGRST202"
    assert missing.json()["hint"] == "Perhaps you meant to call the function dapi.add(a, b)"


async def test_set_returning_functions_take_filters_select_order(dapi: httpx.AsyncClient) -> None:
    response = await dapi.get(
        "/api/rpc/books_since?y=1970&select=id,authors(name)&order=id.desc&id=neq.2",
        headers={"Prefer": "count=exact"},
    )
    assert response.json() == [{"id": 3, "authors": {"name": "Terry"}}]
    assert response.headers["content-range"] == "0-0/1"


async def test_void_functions_answer_204_and_volatile_get_is_refused(
    dapi: httpx.AsyncClient,
) -> None:
    posted = await dapi.post("/api/rpc/write_note", json={"body": "from rpc"})
    assert posted.status_code == 204
    assert posted.content == b""
    via_get = await dapi.get("/api/rpc/write_note?body=sneaky")
    assert via_get.status_code == 405
    assert via_get.json()["code"] == "25006"
    wrong_method = await dapi.delete("/api/rpc/add")
    assert wrong_method.status_code == 405
    assert wrong_method.json()["code"] == "PGRST101"


async def test_request_settings_are_visible_to_sql(dapi: httpx.AsyncClient) -> None:
    response = await dapi.get(
        "/api/rpc/whoami", headers={"X-Probe": "42", "Cookie": "flavour=mint"}
    )
    assert response.json() == {
        "method": "GET",
        "path": "/rpc/whoami",
        "probe": "42",
        "cookie": "mint",
        "role": "anonymous",
    }


async def test_response_gucs_set_headers_and_status(dapi: httpx.AsyncClient) -> None:
    response = await dapi.get("/api/rpc/greet")
    assert response.status_code == 202
    assert response.json() == "hello"
    assert response.headers["x-greeting"] == "hi"
    assert response.headers.get_list("set-cookie") == ["a=1; Path=/", "b=2"]


async def test_raised_errors_map_to_statuses(dapi: httpx.AsyncClient) -> None:
    paid = await dapi.post("/api/rpc/pay", json={})
    assert paid.status_code == 402
    assert paid.json() == {
        "code": "PT402",
        "message": "Payment Required",
        "details": "Quota exceeded",
        "hint": None,
    }
    teapot = await dapi.post("/api/rpc/teapot", json={})
    assert teapot.status_code == 418
    assert teapot.headers["x-pot"] == "tea"
    assert teapot.json()["code"] == "T418"


async def test_pre_request_runs_inside_the_transaction(dapi: httpx.AsyncClient) -> None:
    blocked = await dapi.get("/api/books", headers={"X-Block": "yes"})
    assert blocked.status_code == 403
    assert blocked.json()["message"] == "blocked by pre-request"
    allowed = await dapi.get("/api/books", headers={"X-Block": "no"})
    assert allowed.status_code == 200


async def test_stable_void_functions_are_really_called(
    server_factory: Any, dapi_schema: str
) -> None:
    # No pre-request here, so only the RPC call itself can refuse.
    server: LiveServer = server_factory(db_schemas=[dapi_schema])
    async with make_client(server.url) as http:
        allowed = await http.post("/api/rpc/guard", json={}, headers={"X-Block": "no"})
        assert allowed.status_code == 204
        # guard() is STABLE and returns void: the call must still happen.
        blocked = await http.post("/api/rpc/guard", json={}, headers={"X-Block": "yes"})
        assert blocked.status_code == 403


async def test_prefer_timezone_is_strict_or_lenient(dapi: httpx.AsyncClient) -> None:
    applied = await dapi.get(
        "/api/rpc/current_zone", headers={"Prefer": "timezone=America/Los_Angeles"}
    )
    assert applied.headers["preference-applied"] == "timezone=America/Los_Angeles"
    assert applied.json() == "America/Los_Angeles"
    default = (await dapi.get("/api/rpc/current_zone")).json()
    lenient = await dapi.get("/api/rpc/current_zone", headers={"Prefer": "timezone=Nowhere/Land"})
    assert lenient.status_code == 200
    assert lenient.json() == default
    strict = await dapi.get(
        "/api/rpc/whoami", headers={"Prefer": "handling=strict, timezone=Nowhere/Land"}
    )
    assert strict.status_code == 400
    assert strict.json()["code"] == "22023"


async def test_sql_never_sees_the_session_or_device_cookie(dapi_server: LiveServer) -> None:
    async with make_client(dapi_server.url) as http:
        user = await sign_in(http)
        assert user["id"]
        secret = http.cookies["sessiongate"]
        device = http.cookies["sessiongate-device"]
        response = await http.post(
            "/api/rpc/echo_cookies",
            json={},
            headers={"Cookie": f"sessiongate={secret}; flavour=mint; sessiongate-device={device}"},
        )
    assert response.status_code == 200, response.text
    seen = response.json()
    assert secret not in str(seen)
    assert device not in str(seen)
    assert seen["cookies"] == {"flavour": "mint"}
    assert seen["role"] == "webuser"


async def test_a_single_unnamed_json_parameter_gets_the_whole_body(
    dapi: httpx.AsyncClient,
) -> None:
    response = await dapi.post("/api/rpc/echo_json", json={"any": ["shape", 1]})
    assert response.status_code == 200
    assert response.json() == {"any": ["shape", 1]}


async def test_schema_aliases_name_profiles(server_factory: Any, dapi_schema: str) -> None:
    server: LiveServer = server_factory(
        db_schemas=[dapi_schema, "api"], db_schema_aliases={"library": dapi_schema}
    )
    async with make_client(server.url) as http:
        response = await http.get("/api/authors?id=eq.1", headers={"Accept-Profile": "library"})
    assert response.status_code == 200
    assert response.json() == [{"id": 1, "name": "Ursula"}]


async def test_a_counted_call_runs_the_function_once(
    dapi: httpx.AsyncClient, admin_db: asyncpg.Connection
) -> None:
    # The count and the rows must read one evaluation of the call: a second
    # one would commit a second row.
    for mode in ("exact", "estimated"):
        msg = f"counted {mode} {secrets.token_hex(4)}"
        response = await dapi.post(
            "/api/rpc/add_log?select=msg", json={"msg": msg}, headers={"Prefer": f"count={mode}"}
        )
        assert response.status_code == 200, response.text
        assert response.json() == [{"msg": msg}]
        assert response.headers["content-range"] == "0-0/1"
        stored = await admin_db.fetchval("SELECT count(*) FROM dapi.logs WHERE msg = $1", msg)
        assert stored == 1, mode


async def test_a_counted_call_still_filters_orders_and_pages(dapi: httpx.AsyncClient) -> None:
    response = await dapi.get(
        "/api/rpc/books_since?y=0&select=id,authors(name)&id=neq.2&order=id.desc&limit=1",
        headers={"Prefer": "count=exact"},
    )
    assert response.status_code == 206, response.text
    assert response.json() == [{"id": 3, "authors": {"name": "Terry"}}]
    assert response.headers["content-range"] == "0-0/2"
