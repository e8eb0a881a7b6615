"""The baseline: bare FastAPI + an asyncpg pool running sessiongate's SQL with no auth at all.

It connects as a superuser (Row Level Security does not apply), takes the
user id from an `x-user-id` header instead of a session cookie, and runs
the statements sessiongate's data API runs for the same requests, with
the user filter written into the WHERE clause. Whatever sessiongate costs
on top of this (cookie check, pooled SQLAlchemy connection, transaction,
auth.authenticate(), RLS) is what the benchmark's ratio measures.

Configured from the environment: BARE_DATABASE_URL (an asyncpg DSN) and
BARE_POOL_SIZE. Run with `uvicorn --factory bench.bare:create_app`.
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import asyncpg
import orjson
from fastapi import FastAPI, Request
from starlette.responses import Response

JSON_TYPE = "application/json; charset=utf-8"

# GET /api/todos: every row of one user, as one JSON array built by PostgreSQL.
# The columns are api.todos's, in its order, so both servers send the same bytes.
READ = (
    "SELECT coalesce(json_agg(_row), '[]')::text, count(*) FROM ("
    "SELECT id, user_id, description, done, public, created_at"
    " FROM app.todos WHERE user_id = $1) _row"
)

# GET /api/todos?done=eq.false&order=id.desc&limit=5
READ_FILTERED = (
    "SELECT coalesce(json_agg(_row), '[]')::text, count(*) FROM ("
    "SELECT id, user_id, description, done, public, created_at"
    " FROM app.todos WHERE user_id = $1 AND done = false "
    "ORDER BY id DESC LIMIT 5) _row"
)

# POST /api/todos with one object: the row takes the table's defaults.
INSERT = "INSERT INTO app.todos (user_id, description) VALUES ($1, $2)"


def _content_range(count: int) -> str:
    return f"0-{count - 1}/*" if count else "*/*"


def create_app() -> FastAPI:
    """The baseline app, reading its settings from the environment."""
    dsn = os.environ["BARE_DATABASE_URL"]
    pool_size = int(os.environ.get("BARE_POOL_SIZE", "10"))
    pools: dict[str, asyncpg.Pool] = {}

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        pools["main"] = await asyncpg.create_pool(dsn, min_size=pool_size, max_size=pool_size)
        try:
            yield
        finally:
            await pools["main"].close()

    app = FastAPI(lifespan=lifespan, openapi_url=None, docs_url=None, redoc_url=None)

    async def _read(sql: str, request: Request) -> Response:
        row = await pools["main"].fetchrow(sql, request.headers["x-user-id"])
        assert row is not None
        body, count = row
        return Response(
            body, media_type=JSON_TYPE, headers={"Content-Range": _content_range(count)}
        )

    @app.get("/todos")
    async def read(request: Request) -> Response:
        """One user's todos."""
        return await _read(READ, request)

    @app.get("/todos/filtered")
    async def read_filtered(request: Request) -> Response:
        """One user's five newest open todos."""
        return await _read(READ_FILTERED, request)

    @app.post("/todos", status_code=201)
    async def insert(request: Request) -> Response:
        """Insert one todo for the user."""
        payload = orjson.loads(await request.body())
        await pools["main"].execute(INSERT, request.headers["x-user-id"], payload["description"])
        return Response(status_code=201, headers={"Content-Range": "*/1"})

    @app.get("/health")
    async def health() -> Response:
        """Readiness probe for bench/run.py."""
        return Response(b"ok")

    return app
