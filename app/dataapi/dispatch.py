"""Data API requests reach their handler by a path lookup, not through FastAPI's router.

FastAPI's router tries every account route before the data routes and wraps
each call in its dependency machinery; for a data GET that was about a
quarter of the service's Python time per request (docs/benchmarks.md). The
data API's paths have two fixed shapes, `/api/<relation>` and
`/api/rpc/<function>`, so one split of the path finds the handler.

Nothing changes about who owns a path: a path that any other route matches
(an account route such as /api/login, or a hand-written route a library user
added) goes to FastAPI as before, and so does every path of another shape.
The routes in routes.py stay: they describe the data API in the OpenAPI
document and call the same handlers as this dispatcher.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from functools import lru_cache

import asyncpg
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Match
from starlette.types import ASGIApp, Receive, Scope, Send

from app.dataapi import routes
from app.errors import from_postgres

Handler = Callable[[str, Request], Awaitable[Response]]

_PREFIX = "/api/"
_RPC = "rpc/"
# Which paths other routes own, remembered per path; bounded, since clients
# choose the paths.
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
        path = _route_path(scope)
        if not path.startswith(_PREFIX):
            return None
        rest = path[len(_PREFIX) :]
        if rest.startswith(_RPC):
            handler: Handler = routes.rpc
            name = rest[len(_RPC) :]
        else:
            handler = routes.relation_route
            name = rest
        if not name or "/" in name:
            return None  # another shape: FastAPI's router decides (e.g. PGRST125)
        if self._routes is None:
            # Read once, at the first data request: routes are added before serving.
            self._routes = _other_routes(scope["app"].router.routes)
        if self._owned(path):
            return None
        return handler, name

    def _owned_by_other_route(self, path: str) -> bool:
        # A wrong method is still a match (PARTIAL: the owner answers 405),
        # so the answer depends on the path alone and can be cached by it.
        probe = {"type": "http", "path": path, "root_path": "", "method": "GET"}
        return any(route.matches(probe)[0] is not Match.NONE for route in self._routes or ())


_DATA_ENDPOINTS = frozenset({routes.relation_route, routes.rpc, routes.invalid_path})


def _other_routes(all_routes: list[BaseRoute]) -> list[BaseRoute]:
    """Every route but the data API's own, however this FastAPI version nests them."""
    return [
        route
        for route in all_routes
        # FastAPI 0.16x keeps an included router whole; older ones copy its routes.
        if getattr(route, "original_router", None) is not routes.router
        and getattr(route, "endpoint", None) not in _DATA_ENDPOINTS
    ]


def _route_path(scope: Scope) -> str:
    """The path below the app's root_path, as Starlette's router sees it."""
    path: str = scope["path"]
    root: str = scope.get("root_path", "")
    if root and path.startswith(root + "/"):
        return path[len(root) :]
    return path
