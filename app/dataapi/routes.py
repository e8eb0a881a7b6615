"""HTTP routes of the data API: /api/<relation> and /api/rpc/<function>.

The routes only pick a handler; the request (request.py), reads (reads.py),
writes (writes.py) and calls (rpc.py) live in their own modules.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from fastapi import APIRouter, Request
from starlette.responses import Response
from starlette.routing import Match

from app.dataapi import reads, writes
from app.dataapi import rpc as functions
from app.dataapi.request import DataRequest
from app.errors import ApiError

router = APIRouter(tags=["data"])


def _error_response(error: ApiError) -> Response:
    """PostgREST also names the error code in Proxy-Status."""
    response = error.response()
    response.headers["Proxy-Status"] = f"PostgREST; error={error.code}"
    return response


async def _guarded(request: Request, work: Callable[[], Awaitable[Response]]) -> Response:
    try:
        return await work()
    except ApiError as error:
        return _error_response(error)


# The methods the data API answers; any other gets FastAPI's 405.
TABLE_METHODS = ("GET", "HEAD", "POST", "PATCH", "PUT", "DELETE", "OPTIONS")


async def rpc(function: str, request: Request) -> Response:
    """GET (read-only, arguments in the query) or POST (JSON object) to a function."""

    async def work() -> Response:
        if request.method in ("PATCH", "PUT", "DELETE"):
            raise ApiError(405, "PGRST101", f"Cannot use the {request.method} method on RPC")
        data = DataRequest(request)
        data.prefs.check()
        if request.method == "OPTIONS":
            return Response(status_code=200, headers={"Allow": "OPTIONS,GET,HEAD,POST"})
        return await functions.call(data, function)

    return await _guarded(request, work)


async def relation_route(relation: str, request: Request) -> Response:
    """GET/HEAD read, POST insert, PATCH update, PUT upsert one row, DELETE, OPTIONS."""

    async def work() -> Response:
        data = DataRequest(request)
        data.prefs.check()
        handlers = {
            "GET": reads.read,
            "HEAD": reads.read,
            "POST": writes.insert,
            "PATCH": writes.update,
            "PUT": writes.put,
            "DELETE": writes.delete,
        }
        if request.method == "OPTIONS":
            target = data.relation(relation)
            allow = ["OPTIONS", "GET", "HEAD"]
            if target.insertable:
                allow += ["POST", "PUT"]
            if target.updatable:
                allow.append("PATCH")
            if target.deletable:
                allow.append("DELETE")
            return Response(status_code=200, headers={"Allow": ",".join(allow)})
        return await handlers[request.method](data, relation)

    return await _guarded(request, work)


async def invalid_path(first: str, rest: str, request: Request) -> Response:
    """Deeper paths are not resources (PGRST125), unless another route owns the path."""
    for route in request.app.router.routes:
        if route.matches(request.scope)[0] is Match.PARTIAL:
            # e.g. GET on a POST-only account route: keep Starlette's 405.
            return ApiError(405, "method_not_allowed", "Method Not Allowed").response()
    return _error_response(ApiError(404, "PGRST125", "Invalid path specified in request URL"))


# One route per method, so each has its own OpenAPI operation id.
for _method in TABLE_METHODS:
    router.add_api_route(
        "/api/rpc/{function}",
        rpc,
        methods=[_method],
        name=f"rpc_{_method.lower()}",
        summary=f"{_method} a function",
    )
    router.add_api_route(
        "/api/{relation}",
        relation_route,
        methods=[_method],
        name=f"relation_{_method.lower()}",
        summary=f"{_method} rows of an exposed table or view",
    )
router.add_api_route(
    "/api/{first}/{rest:path}",
    invalid_path,
    methods=list(TABLE_METHODS),
    include_in_schema=False,
)
