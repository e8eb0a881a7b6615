"""HTTP routes of the data API: /api/<relation>."""

from __future__ import annotations

from typing import Any

import orjson
from fastapi import APIRouter, Request
from starlette.responses import Response

from app.dataapi.identifiers import qualified, quote_ident
from app.dataapi.schema import Relation
from app.errors import JSON_TYPE, ApiError
from app.gateway import Gateway, get_gateway
from app.rls import request_transaction

router = APIRouter(tags=["data"])


def _relation(gateway: Gateway, name: str) -> Relation:
    schema = gateway.settings.db_schemas[0]
    relation = gateway.schema.find(schema, name)
    if relation is None:
        raise ApiError(
            404,
            "PGRST205",
            f"Could not find the table '{schema}.{name}' in the schema cache",
            hint="Check the relation's name; the schema cache lists only exposed schemas.",
        )
    return relation


def _content_range(count: int) -> str:
    return f"0-{count - 1}/*" if count else "*/*"


@router.get("/api/{relation}", summary="Read rows of an exposed table or view")
async def read_rows(relation: str, request: Request) -> Response:
    """All rows the caller may see, as a JSON array built by PostgreSQL."""
    gateway = get_gateway(request)
    target = _relation(gateway, relation)
    limit = gateway.settings.db_max_rows
    sql = (
        "SELECT coalesce(json_agg(_row), '[]')::text, count(*) FROM ("
        f"SELECT * FROM {qualified(target.schema, target.name)}"
        + (" LIMIT $1" if limit is not None else "")
        + ") _row"
    )
    args: list[Any] = [] if limit is None else [limit]
    async with request_transaction(gateway, request, readonly=True) as tx:
        driver = await tx.driver()
        row = await driver.fetchrow(sql, *args)
        assert row is not None
        body, count = row
    return Response(body, media_type=JSON_TYPE, headers={"Content-Range": _content_range(count)})


def _rows_from_body(raw: bytes, target: Relation) -> tuple[list[str], str]:
    """The column names a JSON body sets, and the body normalised to a JSON array."""
    try:
        payload = orjson.loads(raw)
    except orjson.JSONDecodeError as error:
        raise ApiError(400, "PGRST102", "Empty or invalid json", details=str(error)) from error
    rows = payload if isinstance(payload, list) else [payload]
    if not rows or not all(isinstance(row, dict) for row in rows):
        raise ApiError(400, "PGRST102", "Expected a JSON object or a non-empty array of objects")
    keys = list(rows[0])
    if any(set(row) != set(keys) for row in rows):
        raise ApiError(400, "PGRST102", "All object keys must match")
    for key in keys:
        if key not in target.columns:
            raise ApiError(
                400,
                "PGRST204",
                f"Could not find the '{key}' column of '{target.name}' in the schema cache",
            )
    return keys, orjson.dumps(rows).decode()


@router.post("/api/{relation}", status_code=201, summary="Insert rows into an exposed relation")
async def insert_rows(relation: str, request: Request) -> Response:
    """Insert one object or an array of objects; PostgREST's Prefer: return= applies."""
    gateway = get_gateway(request)
    target = _relation(gateway, relation)
    keys, rows_json = _rows_from_body(await request.body(), target)
    columns = ", ".join(quote_ident(key) for key in keys)
    table = qualified(target.schema, target.name)
    representation = "return=representation" in request.headers.get("prefer", "")
    insert = (
        f"INSERT INTO {table} ({columns}) "
        f"SELECT {columns} FROM json_populate_recordset(NULL::{table}, $1::json)"
    )
    async with request_transaction(gateway, request) as tx:
        driver = await tx.driver()
        if representation:
            row = await driver.fetchrow(
                f"WITH _ins AS ({insert} RETURNING {table}.*) "
                "SELECT coalesce(json_agg(_ins), '[]')::text, count(*) FROM _ins",
                rows_json,
            )
            assert row is not None
            body, count = row
        else:
            body, count = None, int((await driver.execute(insert, rows_json)).split()[-1])
    headers = {"Content-Range": f"*/{count}"}
    if representation:
        headers["Preference-Applied"] = "return=representation"
        return Response(body, status_code=201, media_type=JSON_TYPE, headers=headers)
    return Response(status_code=201, headers=headers)
