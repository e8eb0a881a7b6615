"""Data API requests reach their handler by a path lookup, not through FastAPI's router.

FastAPI's router tries every account route before the data routes and wraps
each call in its dependency machinery; for a data GET that was about a
quarter of the service's Python time per request (docs/benchmarks.md). The
data API's paths have two fixed shapes, `/api/<relation>` and
`/api/rpc/<function>`, so one split of the path finds the handler.

Nothing changes about who answers a request. FastAPI tries routes in order
and the data routes come after the account routes, so only a route before
them can take a data-shaped path; a path any of those matches goes to
FastAPI as before (an account route such as /api/login), as does every
other shape, method and over-long name. Routes added after the data routes
(a library user's) could never take such a path from them, here or in
FastAPI. The routes in routes.py stay: they describe the data API in the
OpenAPI document and call the same handlers as this dispatcher.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from functools import lru_cache

import asyncpg
from starlette._utils import get_route_path
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Match
from starlette.types import ASGIApp, Receive, Scope, Send

from app.dataapi import routes
from app.errors import from_postgres

Handler = Callable[[str, Request], Awaitable[Response]]

_PREFIX = "/api/"
_RPC = "rpc/"
_METHODS = frozenset(routes.TABLE_METHODS)
# PostgreSQL's identifier limit (NAMEDATALEN - 1, in bytes): no relation or
# function has a longer name, and the cache below never holds a longer key.
_MAX_NAME_BYTES = 63
# Whether a route before the data routes matches a path, remembered per
# path; bounded in entries and, by the limit above, in size.
_OWNER_CACHE_SIZE = 4096


class DataDispatch:
    """Pure ASGI: serve data API paths directly, pass everything else on.

    Install it innermost (inside CSRF, CORS and the security headers), so
    every defence still runs before a data request is handled.
    """

    def __init__(self, app: ASGIApp) -> None:
        self.app = app
        self._owned = lru_cache(maxsize=_OWNER_CACHE_SIZE)(self._owned_by_other_route)
        self._routes: list[BaseRoute] | None = None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            target = self._target(scope)
            if target is not None:
                handler, name = target
                request = Request(scope, receive)
                try:
                    response = await handler(name, request)
                except asyncpg.PostgresError as error:
                    # Inside FastAPI its exception handler maps these; here, so do we.
                    response = from_postgres(error).response()
                await response(scope, receive, send)
                return
        await self.app(scope, receive, send)

    def _target(self, scope: Scope) -> tuple[Handler, str] | None:
        if scope["method"] not in _METHODS:
            return None  # FastAPI's 405, as before
        # The path below root_path, with the function FastAPI's own router uses.
        path = get_route_path(scope)
        if not path.startswith(_PREFIX):
            return None
        rest = path[len(_PREFIX) :]
        if rest.startswith(_RPC):
            handler: Handler = routes.rpc
            name = rest[len(_RPC) :]
        else:
            handler = routes.relation_route
            name = rest
        if not name or "/" in name or len(name.encode()) > _MAX_NAME_BYTES:
            return None  # another shape, or no such name: FastAPI decides (PGRST125, 404)
        if self._routes is None:
            # Read once, at the first data request: the routes before the
            # data routes are the account routes create_app() includes.
            self._routes = _routes_before_data(scope["app"].router.routes)
        if self._owned(path):
            return None
        return handler, name

    def _owned_by_other_route(self, path: str) -> bool:
        # Any match, even PARTIAL (a wrong method), sends the request to
        # FastAPI, which then decides exactly as it always did; so the
        # answer depends on the path alone and can be cached by it.
        probe = {"type": "http", "path": path, "root_path": "", "method": "GET", "headers": []}
        return any(route.matches(probe)[0] is not Match.NONE for route in self._routes or ())


_DATA_ENDPOINTS = frozenset({routes.relation_route, routes.rpc, routes.invalid_path})


def _routes_before_data(all_routes: list[BaseRoute]) -> list[BaseRoute]:
    """The routes FastAPI tries before the data API's, however its version nests them."""
    before: list[BaseRoute] = []
    for route in all_routes:
        # FastAPI 0.16x keeps an included router whole; older ones copy its routes.
        if (
            getattr(route, "original_router", None) is routes.router
            or getattr(route, "endpoint", None) in _DATA_ENDPOINTS
        ):
            break
        before.append(route)
    return before
