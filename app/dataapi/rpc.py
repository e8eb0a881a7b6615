"""Calling a function: /rpc/<name> with GET (query arguments) or POST (a JSON object)."""

from __future__ import annotations

from typing import Any

import orjson
from starlette.responses import Response

from app.dataapi import statements
from app.dataapi.grammar import looks_like_filter
from app.dataapi.negotiation import Media
from app.dataapi.plan import Node, Planner
from app.dataapi.request import (
    RESERVED,
    DataRequest,
    apply_range,
    check_max_affected,
    csv_body,
    json_body,
    media_for,
    not_one,
)
from app.dataapi.responses import Outcome, content_range, range_status
from app.dataapi.schema import Function
from app.errors import ApiError


def _not_found_function(
    data: DataRequest, name: str, keys: list[str], candidates: list[Function], from_body: bool
) -> ApiError:
    qualified_name = f"{data.schema}.{name}"
    ordered = sorted(keys)
    if ordered:
        listed = ", ".join(ordered)
        message = f"Could not find the function {qualified_name}({listed}) in the schema cache"
        searched = (
            f"Searched for the function {qualified_name} with parameters {', '.join(ordered)}"
        )
    else:
        message = (
            f"Could not find the function {qualified_name} without parameters in the schema cache"
        )
        searched = f"Searched for the function {qualified_name} without parameters"
    if from_body:
        searched += " or with a single unnamed json/jsonb parameter"
    hint = None
    if candidates and not from_body:
        hint = f"Perhaps you meant to call the function {candidates[0].signature()}"
    return ApiError(
        404,
        "PGRST202",
        message,
        details=searched + ", but no matches were found in the schema cache.",
        hint=hint,
    )


def _choose(functions: list[Function], keys: set[str]) -> list[Function]:
    matches = [f for f in functions if keys <= {p.name for p in f.params} and f.required <= keys]
    exact = [f for f in matches if len(f.params) == len(keys)]
    return exact or matches


async def call(data: DataRequest, name: str) -> Response:
    """GET/HEAD/POST /api/rpc/<name>: choose the overload, call it, shape the result."""
    functions = data.gateway.schema.find_functions(data.schema, name)
    method = data.method
    arguments: dict[str, Any] = {}
    raw_body: str | None = None
    filter_params: list[tuple[str, str]] = []
    from_body = False
    if method in ("GET", "HEAD"):
        names = {p.name for f in functions for p in f.params}
        variadic = {p.name for f in functions for p in f.params if p.variadic}
        for key, value in data.params:
            if key in RESERVED or key.split(".")[-1] in ("or", "and", "order", "limit", "offset"):
                filter_params.append((key, value))
            elif key in names:
                if key in variadic:
                    arguments.setdefault(key, []).append(value)
                else:
                    arguments[key] = value
            elif looks_like_filter(value) or "." in key:
                filter_params.append((key, value))
            else:
                arguments[key] = value
    else:
        raw = await data.request.body()
        payload = json_body(raw) if raw.strip() else {}
        if isinstance(payload, list):
            payload = payload[0] if payload and isinstance(payload[0], dict) else {}
        if not isinstance(payload, dict):
            raise ApiError(400, "PGRST102", "Empty or invalid json")
        arguments = payload
        from_body = True
        filter_params = list(data.params)
    keys = set(arguments)
    chosen = _choose(functions, keys)
    if not chosen and from_body:
        unnamed = [f for f in functions if f.single_unnamed_json]
        if unnamed:
            chosen = unnamed
            raw_body = orjson.dumps(arguments).decode()
    if not chosen:
        raise _not_found_function(data, name, list(arguments), functions, from_body and bool(keys))
    if len(chosen) > 1:
        raise ApiError(
            300,
            "PGRST203",
            "Could not choose the best candidate function between: "
            + ", ".join(f.signature() for f in chosen),
            hint="Try renaming the parameters or the function itself in the database so"
            " function overloading can be resolved",
        )
    function = chosen[0]
    if data.prefs.strict and data.prefs.max_affected is not None and not function.returns_set:
        raise ApiError(
            400,
            "PGRST128",
            "Function must return SETOF or TABLE when max-affected preference is used with"
            " handling=strict",
        )
    media = media_for(data)
    node: Node | None = None
    if function.shape == "composite":
        relation = statements.function_relation(
            function,
            data.gateway.schema.find(*function.returns_relation)
            if function.returns_relation
            else None,
        )
        planner = Planner(data.gateway.schema, data.schema)
        node = planner.root(relation, data.first("select"))
        planner.apply(
            node, filter_params, skip=RESERVED - {"order", "limit", "offset"} | {"select"}
        )
        apply_range(data, node)
    readonly = method in ("GET", "HEAD") or function.volatility in ("i", "s")
    exact = data.prefs.get("count") in ("exact", "estimated")
    statement = statements.call(function, node, media, arguments, raw_body, exact_count=exact)
    async with data.transaction(readonly=readonly) as tx:
        driver = await tx.driver()
        row = await driver.fetchrow(statement.sql, *statement.args)
        assert row is not None
        count, rows, body, guc_headers, guc_status, final_identity = row
        tx.confirm_identity(final_identity)
        check_max_affected(data, rows)
        if function.shape == "void":
            outcome = Outcome(204)
        else:
            if media is Media.OBJECT and function.returns_set and rows != 1:
                raise not_one(rows)
            if media is Media.CSV and node is not None:
                body = csv_body(node, body)
            elif media is Media.CSV:
                body = "pgrst_scalar" + ("\n" + body if body else "")
            lower = node.offset if node is not None else 0
            total = count if data.prefs.get("count") in ("exact", "estimated") else None
            outcome = Outcome(range_status(lower, rows, total), body, media.value)
            if function.returns_set:
                outcome.headers.append(("Content-Range", content_range(lower, rows, total)))
        applied = data.applied({"count"} if data.prefs.get("count") else set() | {"max-affected"})
        if applied:
            outcome.headers.append(("Preference-Applied", applied))
        outcome.apply_gucs(guc_headers, guc_status)
    return data.finish(outcome)
