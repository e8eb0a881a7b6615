"""GET and HEAD on a relation: the rows, their range, count and representation."""

from __future__ import annotations

import asyncpg
import orjson
from starlette.responses import Response

from app.dataapi import statements
from app.dataapi.negotiation import Media
from app.dataapi.plan import Node, Planner
from app.dataapi.request import RESERVED, DataRequest, apply_range, csv_body, media_for, not_one
from app.dataapi.responses import Outcome, content_range, range_not_satisfiable, range_status


async def _planned_count(driver: asyncpg.Connection, statement: statements.Statement) -> int:
    raw = await driver.fetchval(statement.sql, *statement.args)
    plan = orjson.loads(raw) if isinstance(raw, str) else raw
    return int(plan[0]["Plan"]["Plan Rows"])


async def _count_for(
    data: DataRequest,
    driver: asyncpg.Connection,
    node: Node,
    exact: int | None,
) -> tuple[int | None, bool]:
    """The total for Prefer: count= (None without it), and whether it took an EXPLAIN."""
    mode = data.prefs.get("count")
    if mode == "exact" or (mode in ("planned", "estimated") and _exact_only(node)):
        return exact, False
    if mode in ("planned", "estimated"):
        if mode == "estimated" and exact is not None:
            cap = data.max_rows()
            if cap is None or exact <= cap:
                return exact, False
        return await _planned_count(driver, statements.plan_count(node)), True
    return None, False


def _exact_only(node: Node) -> bool:
    """Whether planned and estimated counts must be exact counts instead.

    The planner estimates from statistics over every row of a table, those
    row level security hides included: `description=eq.<guess>` would tell
    by its estimate whether hidden rows hold the guess. Where RLS may hide
    rows, only the exact count (of the rows the caller sees) is given.
    Embedded relations count too: an `!inner` embed or a null filter puts
    the child's conditions into the estimated statement.
    """
    return node.relation.row_security or any(_exact_only(child) for child in node.embeds.values())


async def read(data: DataRequest, name: str) -> Response:
    """GET/HEAD /api/<relation>."""
    relation = data.relation(name)
    media = media_for(data)
    planner = Planner(data.gateway.schema, data.schema)
    node = planner.root(relation, data.first("select"))
    planner.apply(node, data.params, skip=RESERVED - {"order", "limit", "offset"} | {"select"})
    apply_range(data, node)
    mode = data.prefs.get("count")
    want_exact = mode in ("exact", "estimated") or (mode == "planned" and _exact_only(node))
    statement = statements.read(node, media, exact_count=want_exact)
    async with data.transaction(readonly=True) as tx:
        driver = await tx.driver()
        row = await driver.fetchrow(statement.sql, *statement.args)
        assert row is not None
        exact, rows, body, guc_headers, guc_status, final_identity = row
        total, explained = await _count_for(data, driver, node, exact)
        # Planning may run stable functions too: after an EXPLAIN the role
        # guard asks again rather than trust the data statement's answer.
        if not explained:
            tx.confirm_identity(final_identity)
        outcome = _read_outcome(data, node, media, rows, body, total)
        outcome.apply_gucs(guc_headers, guc_status)
    return data.finish(outcome)


def _read_outcome(
    data: DataRequest, node: Node, media: Media, rows: int, body: str, total: int | None
) -> Outcome:
    lower = node.offset
    if total is not None and lower > 0 and lower >= total and rows == 0:
        raise range_not_satisfiable(
            f"An offset of {lower} was requested, but there are only {total} rows.", total
        )
    if media is Media.OBJECT and rows != 1:
        raise not_one(rows)
    if media is Media.CSV:
        body = csv_body(node, body)
    outcome = Outcome(range_status(lower, rows, total), body, media.value)
    outcome.headers.append(("Content-Range", content_range(lower, rows, total)))
    if not data.params:
        outcome.headers.append(("Content-Location", data.api_path))
    applied = data.applied({"count"} if data.prefs.get("count") else set())
    if applied:
        outcome.headers.append(("Preference-Applied", applied))
    return outcome
