"""POST, PATCH, PUT and DELETE on a relation."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any
from urllib.parse import quote

import asyncpg
import orjson
from starlette.responses import Response

from app.dataapi import statements
from app.dataapi.grammar import parse_columns
from app.dataapi.negotiation import Media
from app.dataapi.plan import Node, Planner
from app.dataapi.request import (
    RESERVED,
    DataRequest,
    check_max_affected,
    csv_body,
    csv_rows,
    json_body,
    media_for,
    not_one,
)
from app.dataapi.responses import Outcome, content_range
from app.dataapi.schema import Relation
from app.errors import ApiError


def write_columns(
    data: DataRequest, relation: Relation, rows: list[dict[str, Any]], *, union: bool = False
) -> list[str]:
    """The columns a write sets: `columns=`, else the first object's keys; each must exist.

    With `union` (Prefer: missing=default) objects may differ; every key counts.
    """
    given = data.first("columns")
    if given is not None:
        columns = parse_columns(given)
    elif union:
        columns = list(dict.fromkeys(key for row in rows for key in row))
    else:
        columns = list(rows[0]) if rows else []
        if any(set(row) != set(columns) for row in rows[1:]):
            raise ApiError(400, "PGRST102", "All object keys must match")
    for column in columns:
        if column not in relation.columns:
            raise ApiError(
                400,
                "PGRST204",
                f"Could not find the '{column}' column of '{relation.name}' in the schema cache",
            )
    return columns


def _check_defaults(relation: Relation, columns: list[str], rows: list[dict[str, Any]]) -> None:
    """missing=default: a column some row leaves out needs a default we know.

    Rather than store NULL where PostgreSQL would have stored something else
    (a view column over an unknown base, an identity column underneath),
    the request is refused.
    """
    for name in columns:
        if relation.columns[name].default_known or all(name in row for row in rows):
            continue
        raise ApiError(
            400,
            "missing_default",
            f"The default of column '{name}' of '{relation.name}' is not known,"
            " so a row cannot leave it out with Prefer: missing=default",
            details="A view column without a default of its own takes its base column's"
            " only in a simple view over one table, and not from an identity or generated"
            " column.",
            hint="Give the column in every row, or set a default on the view column"
            " (ALTER VIEW ... ALTER COLUMN ... SET DEFAULT).",
        )


def representation(data: DataRequest) -> Media | None:
    """The representation to return, or None without Prefer: return=representation."""
    if data.prefs.get("return") == "representation":
        return media_for(data)
    return None


def _write_outcome(
    data: DataRequest,
    node: Node,
    media: Media | None,
    status: int,
    row: asyncpg.Record,
    applied: set[str],
) -> Outcome:
    _, rows, body, guc_headers, guc_status = row[:5]
    check_max_affected(data, rows)
    total = rows if data.prefs.get("count") == "exact" else None
    if media is Media.OBJECT and rows != 1:
        raise not_one(rows)
    if media is Media.CSV and body is not None:
        body = csv_body(node, body)
    outcome = Outcome(status, body if media is not None else None, media.value if media else None)
    if data.method == "PATCH":
        outcome.headers.append(("Content-Range", content_range(0, rows, total)))
    elif data.method != "PUT":
        outcome.headers.append(("Content-Range", content_range(0, 0, total)))
    names = set(applied)
    if "return" in data.prefs.values:
        names.add("return")
    if data.prefs.get("count"):
        names.add("count")
    names.add("max-affected")
    value = data.applied(names)
    if value:
        outcome.headers.append(("Preference-Applied", value))
    outcome.apply_gucs(guc_headers, guc_status)
    return outcome


async def insert(data: DataRequest, name: str) -> Response:
    """POST /api/<relation>: insert one object or an array; upsert with resolution=."""
    relation = data.relation(name)
    raw = await data.request.body()
    content_type = data.request.headers.get("content-type", "").split(";")[0].strip().lower()
    payload = csv_rows(raw) if content_type == "text/csv" else json_body(raw)
    single = isinstance(payload, dict)
    rows = [payload] if single else payload
    if not isinstance(rows, list) or not all(isinstance(r, dict) for r in rows):
        raise ApiError(400, "PGRST102", "Empty or invalid json")
    missing_default = data.prefs.get("missing") == "default"
    columns = write_columns(data, relation, rows, union=missing_default)
    if missing_default:
        _check_defaults(relation, columns, rows)
    media = representation(data)
    planner = Planner(data.gateway.schema, data.schema)
    node = planner.root(relation, data.first("select"))
    planner.apply(
        node,
        [
            (k, v)
            for k, v in data.params
            if k.endswith(("order", "limit", "offset", "or", "and")) or "." in k
        ],
        skip=RESERVED,
    )
    resolution = data.prefs.get("resolution")
    on_conflict: tuple[str, ...] | None = None
    applied: set[str] = set()
    if resolution is not None:
        given = data.first("on_conflict")
        on_conflict = tuple(parse_columns(given)) if given else relation.primary_key or None
        if on_conflict:
            for column in on_conflict:
                if column not in relation.columns:
                    raise ApiError(400, "42703", f"column {relation.name}.{column} does not exist")
            applied.add("resolution")
        else:
            resolution = None
    if missing_default:
        applied.add("missing")
    location = data.prefs.get("return") == "headers-only"
    statement = statements.insert(
        node,
        media,
        columns,
        orjson.dumps(rows).decode(),
        on_conflict=on_conflict,
        resolution=resolution,
        location=location,
        empty=not rows,
        missing_default=missing_default,
    )
    async with data.transaction(readonly=False) as tx:
        driver = await tx.driver()
        row = await driver.fetchrow(statement.sql, *statement.args)
        assert row is not None
        status = 201
        if resolution is not None and (not rows or (relation.is_table and row[7] == 0)):
            status = 200
        outcome = _write_outcome(data, node, media, status, row, applied)
        if (
            location
            and row[6] is not None
            and row[1] == 1
            and not any(k.lower() == "location" for k, _ in outcome.headers)
        ):
            keys = zip(relation.primary_key, orjson.loads(row[6]), strict=True)
            outcome.headers.append(("Location", _location(relation, keys)))
    return data.finish(outcome)


def _location(relation: Relation, keys: Iterable[tuple[str, str | None]]) -> str:
    """The Location of an inserted row: its primary key as eq. filters.

    Names and values are percent-encoded as PostgREST encodes them (every byte
    but letters, digits and -._~), so a key holding &, =, non-ASCII text or a
    line break stays one filter and the header stays valid. A null key is
    is.null, as in PostgREST.
    """
    query = "&".join(
        f"{quote(column, safe='')}={'is.null' if value is None else 'eq.' + quote(value, safe='')}"
        for column, value in keys
    )
    return f"/{quote(relation.name, safe='')}?{query}"


def limited_write(relation: Relation, node: Node) -> None:
    """limit/offset on PATCH/DELETE need rows to be identifiable (a key, or a table's ctid)."""
    if (node.limit is not None or node.offset) and not (relation.primary_key or relation.is_table):
        raise ApiError(
            400,
            "limited_write",
            "limit/offset on PATCH or DELETE need a primary key or a table",
            hint="Filter the rows instead, or expose a view with a primary key.",
        )


def _safe_update(data: DataRequest, relation: Relation, node: Node, verb: str) -> None:
    if relation.name in data.settings.db_safe_update_tables and not node.conditions:
        raise ApiError(400, "21000", f"{verb} requires a WHERE clause")


async def update(data: DataRequest, name: str) -> Response:
    """PATCH /api/<relation>: update the filtered rows with one object."""
    relation = data.relation(name)
    payload = json_body(await data.request.body())
    if isinstance(payload, list) and len(payload) == 1:
        payload = payload[0]
    if not isinstance(payload, dict):
        raise ApiError(400, "PGRST102", "Empty or invalid json")
    columns = write_columns(data, relation, [payload])
    media = representation(data)
    planner = Planner(data.gateway.schema, data.schema)
    node = planner.root(relation, data.first("select"))
    planner.apply(node, data.params, skip=(RESERVED - {"order", "limit", "offset"}) | {"select"})
    limited_write(relation, node)
    _safe_update(data, relation, node, "UPDATE")
    if not columns:
        outcome = Outcome(
            200 if media else 204, "[]" if media else None, media.value if media else None
        )
        outcome.headers.append(("Content-Range", "*/*"))
        return data.finish(outcome)
    statement = statements.update(node, media, columns, orjson.dumps(payload).decode())
    async with data.transaction(readonly=False) as tx:
        driver = await tx.driver()
        row = await driver.fetchrow(statement.sql, *statement.args)
        assert row is not None
        outcome = _write_outcome(data, node, media, 200 if media else 204, row, set())
    return data.finish(outcome)


async def delete(data: DataRequest, name: str) -> Response:
    """DELETE /api/<relation>: delete the filtered rows."""
    relation = data.relation(name)
    media = representation(data)
    planner = Planner(data.gateway.schema, data.schema)
    node = planner.root(relation, data.first("select"))
    planner.apply(node, data.params, skip=(RESERVED - {"order", "limit", "offset"}) | {"select"})
    limited_write(relation, node)
    _safe_update(data, relation, node, "DELETE")
    statement = statements.delete(node, media)
    async with data.transaction(readonly=False) as tx:
        driver = await tx.driver()
        row = await driver.fetchrow(statement.sql, *statement.args)
        assert row is not None
        outcome = _write_outcome(data, node, media, 200 if media else 204, row, set())
    return data.finish(outcome)


_PUT_FILTERS = "Filters must include all and only primary key columns with 'eq' operators"


async def put(data: DataRequest, name: str) -> Response:
    """PUT /api/<relation>?pk=eq.x: insert or replace one row by its primary key."""
    relation = data.relation(name)
    if data.first("limit") is not None or data.first("offset") is not None:
        raise ApiError(
            400, "PGRST114", "limit/offset querystring parameters are not allowed for PUT"
        )
    filters = {k: v for k, v in data.params if k not in RESERVED}
    pk = relation.primary_key
    if not pk or set(filters) != set(pk) or not all(v.startswith("eq.") for v in filters.values()):
        raise ApiError(405, "PGRST105", _PUT_FILTERS)
    payload = json_body(await data.request.body())
    rows = [payload] if isinstance(payload, dict) else payload
    if not isinstance(rows, list) or len(rows) != 1 or not isinstance(rows[0], dict):
        raise ApiError(400, "PGRST116", "PUT payload must contain a single row")
    for column in pk:
        value = rows[0].get(column)
        if value is None or _text(value) != filters[column][3:]:
            raise ApiError(
                400, "PGRST115", "Payload values do not match URL in primary key column(s)"
            )
    columns = write_columns(data, relation, rows)
    media = representation(data)
    planner = Planner(data.gateway.schema, data.schema)
    node = planner.root(relation, data.first("select"))
    statement = statements.insert(
        node,
        media,
        columns,
        orjson.dumps(rows).decode(),
        on_conflict=pk,
        resolution="merge-duplicates",
        location=False,
        empty=False,
    )
    async with data.transaction(readonly=False) as tx:
        driver = await tx.driver()
        row = await driver.fetchrow(statement.sql, *statement.args)
        assert row is not None
        status = 204
        if media is not None:
            status = 201 if (relation.is_table and row[7]) else 200
        outcome = _write_outcome(data, node, media, status, row, set())
    return data.finish(outcome)


def _text(value: Any) -> str:
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "true" if value else "false"
    return orjson.dumps(value).decode()
