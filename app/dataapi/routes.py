"""HTTP routes of the data API: /api/<relation> and /api/rpc/<function>.

The routes translate HTTP into a planned statement and back; the grammar,
the planner, the statements and the response shaping live in their own
modules.
"""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable
from typing import Any
from urllib.parse import parse_qsl

import asyncpg
import orjson
from fastapi import APIRouter, Request
from starlette.responses import Response
from starlette.routing import Match

from app.dataapi import statements
from app.dataapi.grammar import looks_like_filter, parse_columns
from app.dataapi.identifiers import qualified, quote_ident
from app.dataapi.negotiation import Media, negotiate
from app.dataapi.plan import Node, Planner
from app.dataapi.preferences import Preferences, parse_prefer
from app.dataapi.prelude import Prelude
from app.dataapi.responses import Outcome, content_range, range_not_satisfiable, range_status
from app.dataapi.schema import Function, Relation
from app.errors import ApiError
from app.gateway import Gateway, get_gateway
from app.rls import request_transaction

router = APIRouter(tags=["data"])

_RESERVED = {"select", "order", "limit", "offset", "columns", "on_conflict"}
_WRITES = {"POST", "PATCH", "PUT", "DELETE"}


class DataRequest:
    """One data API request: its parsed headers, parameters and target schema."""

    def __init__(self, request: Request) -> None:
        self.request = request
        self.gateway: Gateway = get_gateway(request)
        self.settings = self.gateway.settings
        self.method = request.method
        self.params = parse_qsl(request.url.query, keep_blank_values=True)
        self.prefs: Preferences = parse_prefer(request.headers.getlist("prefer"))
        self.schema = self._profile()

    def _profile(self) -> str:
        """The schema chosen by Accept-Profile (reads) or Content-Profile (writes)."""
        header = "content-profile" if self.method in _WRITES else "accept-profile"
        wanted = self.request.headers.get(header)
        schemas = self.settings.db_schemas
        if wanted is None:
            return schemas[0]
        wanted = self.settings.db_schema_aliases.get(wanted, wanted)
        if wanted not in schemas:
            raise ApiError(
                406,
                "PGRST106",
                f"Invalid schema: {wanted}",
                hint="Only the following schemas are exposed: " + ", ".join(schemas),
            )
        return wanted

    def first(self, name: str) -> str | None:
        """The first value of a reserved query parameter."""
        for key, value in self.params:
            if key == name:
                return value
        return None

    def relation(self, name: str) -> Relation:
        """The exposed relation `name` in the request's schema, or PGRST205."""
        relation = self.gateway.schema.find(self.schema, name)
        if relation is None:
            raise ApiError(
                404,
                "PGRST205",
                f"Could not find the table '{self.schema}.{name}' in the schema cache",
            )
        return relation

    def max_rows(self) -> int | None:
        """db_max_rows for this schema."""
        return self.settings.db_max_rows_by_schema.get(self.schema, self.settings.db_max_rows)

    def rollback(self) -> bool:
        """Whether the transaction ends in ROLLBACK (db_tx_end and Prefer: tx)."""
        mode = self.settings.db_tx_end
        wanted = self.prefs.get("tx")
        if mode.endswith("allow-override") and wanted is not None:
            return wanted == "rollback"
        return mode.startswith("rollback")

    def applied(self, names: set[str]) -> str | None:
        """Preference-Applied for this request."""
        names = set(names) | {"handling"}
        if "timezone" in self.prefs.values:
            names.add("timezone")
        if self.settings.db_tx_end.endswith("allow-override"):
            names.add("tx")
        if self.prefs.get("handling") != "strict":
            names.discard("max-affected")
        return self.prefs.applied(names)

    def prelude(self) -> Prelude:
        """Settings for the request's transaction: search_path, request.*, timezone, pre-request."""
        path = ", ".join(quote_ident(s) for s in [self.schema, *self.settings.db_extra_search_path])
        headers = {k.lower(): v for k, v in self.request.headers.items()}
        settings = [
            ("search_path", path),
            ("request.method", self.method),
            # Relative to the data API root, as PostgREST's is to its own root.
            ("request.path", self.request.url.path.removeprefix("/api")),
            ("request.headers", orjson.dumps(headers).decode()),
            ("request.cookies", orjson.dumps(dict(self.request.cookies)).decode()),
        ]
        timezone = self.prefs.get("timezone")
        if timezone is not None:
            settings.append(("timezone", timezone))
        call = None
        pre = self.settings.db_pre_request
        if pre:
            schema, _, name = pre.rpartition(".")
            call = qualified(schema, name) if schema else quote_ident(name)
        return Prelude(tuple(settings), call, lenient_timezone=not self.prefs.strict)

    def transaction(self, *, readonly: bool) -> Any:
        """The request transaction with this request's prelude and tx end."""
        return request_transaction(
            self.gateway,
            self.request,
            readonly=readonly,
            prelude=self.prelude(),
            rollback=self.rollback(),
        )

    def finish(self, outcome: Outcome) -> Response:
        """Headers every data response carries."""
        if len(self.settings.db_schemas) > 1:
            outcome.headers.insert(0, ("Content-Profile", self.schema))
        return outcome.response()


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


# -- reads -------------------------------------------------------------------


def _range(data: DataRequest, node: Node) -> None:
    """limit/offset and the Range header, intersected; db_max_rows applied."""
    if node.limit is not None and node.limit < 0:
        raise range_not_satisfiable("Limit should be greater than or equal to zero.")
    header = data.request.headers.get("range")
    if header and data.method in ("GET", "HEAD"):
        match = re.fullmatch(r"\s*(?:items=)?(\d{1,18})-(\d{0,18})\s*", header)
        if match:
            lower = int(match.group(1))
            upper = int(match.group(2)) if match.group(2) else None
            if upper is not None and lower > upper:
                raise range_not_satisfiable(
                    "The lower boundary must be lower than or equal to the upper boundary"
                    " in the Range header."
                )
            q_lower = node.offset
            q_upper = None if node.limit is None else node.offset + node.limit - 1
            new_lower = max(lower, q_lower)
            uppers = [u for u in (upper, q_upper) if u is not None]
            new_upper = min(uppers) if uppers else None
            node.offset = new_lower
            node.limit = None if new_upper is None else max(new_upper - new_lower + 1, 0)
    cap = data.max_rows()
    if cap is not None:
        node.limit = cap if node.limit is None else min(node.limit, cap)


async def _planned_count(driver: asyncpg.Connection, statement: statements.Statement) -> int:
    raw = await driver.fetchval(statement.sql, *statement.args)
    plan = orjson.loads(raw) if isinstance(raw, str) else raw
    return int(plan[0]["Plan"]["Plan Rows"])


async def _count_for(
    data: DataRequest,
    driver: asyncpg.Connection,
    node: Node,
    exact: int | None,
    source: str | None = None,
    args_prefix: list[Any] | None = None,
) -> int | None:
    mode = data.prefs.get("count")
    if mode == "exact":
        return exact
    if mode in ("planned", "estimated"):
        if mode == "estimated" and exact is not None:
            cap = data.max_rows()
            if cap is None or exact <= cap:
                return exact
        statement = statements.plan_count(node, source)
        if args_prefix:
            statement.args = [*args_prefix, *statement.args]
        return await _planned_count(driver, statement)
    return None


def _media(data: DataRequest) -> Media:
    return negotiate(data.request.headers.get("accept"))


def _csv(node: Node, body: str) -> str:
    header = ",".join(
        '"' + k.replace('"', '""') + '"' if re.search(r'[,"\s]', k) else k
        for k in node.output_keys()
    )
    return header + ("\n" + body if body else "")


async def _read(data: DataRequest, name: str) -> Response:
    relation = data.relation(name)
    media = _media(data)
    planner = Planner(data.gateway.schema, data.schema)
    node = planner.root(relation, data.first("select"))
    planner.apply(node, data.params, skip=_RESERVED - {"order", "limit", "offset"} | {"select"})
    _range(data, node)
    mode = data.prefs.get("count")
    want_exact = mode == "exact" or (mode == "estimated")
    statement = statements.read(node, media, exact_count=want_exact)
    async with data.transaction(readonly=True) as tx:
        driver = await tx.driver()
        row = await driver.fetchrow(statement.sql, *statement.args)
        assert row is not None
        exact, rows, body, guc_headers, guc_status, final_role = row
        tx.confirm_role(final_role)
        total = await _count_for(data, driver, node, exact)
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
        raise _not_one(rows)
    if media is Media.CSV:
        body = _csv(node, body)
    outcome = Outcome(range_status(lower, rows, total), body, media.value)
    outcome.headers.append(("Content-Range", content_range(lower, rows, total)))
    if not data.params:
        outcome.headers.append(("Content-Location", data.request.url.path.removeprefix("/api")))
    applied = data.applied({"count"} if data.prefs.get("count") else set())
    if applied:
        outcome.headers.append(("Preference-Applied", applied))
    return outcome


def _not_one(rows: int) -> ApiError:
    return ApiError(
        406,
        "PGRST116",
        "JSON object requested, multiple (or no) rows returned",
        details=f"The result contains {rows} rows",
    )


# -- writes ------------------------------------------------------------------


def _json_body(raw: bytes) -> Any:
    try:
        return orjson.loads(raw)
    except orjson.JSONDecodeError:
        raise ApiError(400, "PGRST102", "Empty or invalid json") from None


def _write_columns(
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


def _representation(data: DataRequest) -> Media | None:
    if data.prefs.get("return") == "representation":
        return _media(data)
    return None


def _check_max_affected(data: DataRequest, rows: int) -> None:
    cap = data.prefs.max_affected
    if data.prefs.strict and cap is not None and rows > cap:
        raise ApiError(
            400,
            "PGRST124",
            "Query result exceeds max-affected preference constraint",
            details=f"The query affects {rows} rows",
        )


def _write_outcome(
    data: DataRequest,
    node: Node,
    media: Media | None,
    status: int,
    row: asyncpg.Record,
    applied: set[str],
) -> Outcome:
    _, rows, body, guc_headers, guc_status = row[:5]
    _check_max_affected(data, rows)
    total = rows if data.prefs.get("count") == "exact" else None
    if media is Media.OBJECT and rows != 1:
        raise _not_one(rows)
    if media is Media.CSV and body is not None:
        body = _csv(node, body)
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


async def _insert(data: DataRequest, name: str) -> Response:
    relation = data.relation(name)
    payload = _json_body(await data.request.body())
    single = isinstance(payload, dict)
    rows = [payload] if single else payload
    if not isinstance(rows, list) or not all(isinstance(r, dict) for r in rows):
        raise ApiError(400, "PGRST102", "Empty or invalid json")
    missing_default = data.prefs.get("missing") == "default"
    columns = _write_columns(data, relation, rows, union=missing_default)
    media = _representation(data)
    planner = Planner(data.gateway.schema, data.schema)
    node = planner.root(relation, data.first("select"))
    planner.apply(
        node,
        [
            (k, v)
            for k, v in data.params
            if k.endswith(("order", "limit", "offset", "or", "and")) or "." in k
        ],
        skip=_RESERVED,
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
        if location and row[6] is not None and row[1] == 1:
            values = orjson.loads(row[6])
            query = "&".join(
                f"{col}=eq.{value}" for col, value in zip(relation.primary_key, values, strict=True)
            )
            if not any(k.lower() == "location" for k, _ in outcome.headers):
                outcome.headers.append(("Location", f"/{relation.name}?{query}"))
    return data.finish(outcome)


def _safe_update(data: DataRequest, relation: Relation, node: Node, verb: str) -> None:
    if relation.name in data.settings.db_safe_update_tables and not node.conditions:
        raise ApiError(400, "21000", f"{verb} requires a WHERE clause")


async def _update(data: DataRequest, name: str) -> Response:
    relation = data.relation(name)
    payload = _json_body(await data.request.body())
    if isinstance(payload, list) and len(payload) == 1:
        payload = payload[0]
    if not isinstance(payload, dict):
        raise ApiError(400, "PGRST102", "Empty or invalid json")
    columns = _write_columns(data, relation, [payload])
    media = _representation(data)
    planner = Planner(data.gateway.schema, data.schema)
    node = planner.root(relation, data.first("select"))
    planner.apply(node, data.params, skip=_RESERVED | {"select"})
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


async def _delete(data: DataRequest, name: str) -> Response:
    relation = data.relation(name)
    media = _representation(data)
    planner = Planner(data.gateway.schema, data.schema)
    node = planner.root(relation, data.first("select"))
    planner.apply(node, data.params, skip=_RESERVED | {"select"})
    _safe_update(data, relation, node, "DELETE")
    statement = statements.delete(node, media)
    async with data.transaction(readonly=False) as tx:
        driver = await tx.driver()
        row = await driver.fetchrow(statement.sql, *statement.args)
        assert row is not None
        outcome = _write_outcome(data, node, media, 200 if media else 204, row, set())
    return data.finish(outcome)


_PUT_FILTERS = "Filters must include all and only primary key columns with 'eq' operators"


async def _put(data: DataRequest, name: str) -> Response:
    relation = data.relation(name)
    if data.first("limit") is not None or data.first("offset") is not None:
        raise ApiError(
            400, "PGRST114", "limit/offset querystring parameters are not allowed for PUT"
        )
    filters = {k: v for k, v in data.params if k not in _RESERVED}
    pk = relation.primary_key
    if not pk or set(filters) != set(pk) or not all(v.startswith("eq.") for v in filters.values()):
        raise ApiError(405, "PGRST105", _PUT_FILTERS)
    payload = _json_body(await data.request.body())
    rows = [payload] if isinstance(payload, dict) else payload
    if not isinstance(rows, list) or len(rows) != 1 or not isinstance(rows[0], dict):
        raise ApiError(400, "PGRST116", "PUT payload must contain a single row")
    for column in pk:
        value = rows[0].get(column)
        if value is None or _text(value) != filters[column][3:]:
            raise ApiError(
                400, "PGRST115", "Payload values do not match URL in primary key column(s)"
            )
    columns = _write_columns(data, relation, rows)
    media = _representation(data)
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


# -- rpc ---------------------------------------------------------------------


def _not_found_function(
    data: DataRequest, name: str, keys: list[str], candidates: list[Function], json_body: bool
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
    if json_body:
        searched += " or with a single unnamed json/jsonb parameter"
    hint = None
    if candidates and not json_body:
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


async def _rpc(data: DataRequest, name: str) -> Response:
    functions = data.gateway.schema.find_functions(data.schema, name)
    method = data.method
    arguments: dict[str, Any] = {}
    raw_body: str | None = None
    filter_params: list[tuple[str, str]] = []
    json_body = False
    if method in ("GET", "HEAD"):
        names = {p.name for f in functions for p in f.params}
        variadic = {p.name for f in functions for p in f.params if p.variadic}
        for key, value in data.params:
            if key in _RESERVED or key.split(".")[-1] in ("or", "and", "order", "limit", "offset"):
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
        payload = _json_body(raw) if raw.strip() else {}
        if isinstance(payload, list):
            payload = payload[0] if payload and isinstance(payload[0], dict) else {}
        if not isinstance(payload, dict):
            raise ApiError(400, "PGRST102", "Empty or invalid json")
        arguments = payload
        json_body = True
        filter_params = list(data.params)
    keys = set(arguments)
    chosen = _choose(functions, keys)
    if not chosen and json_body:
        unnamed = [f for f in functions if f.single_unnamed_json]
        if unnamed:
            chosen = unnamed
            raw_body = orjson.dumps(arguments).decode()
    if not chosen:
        raise _not_found_function(data, name, list(arguments), functions, json_body and bool(keys))
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
    media = _media(data)
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
            node, filter_params, skip=_RESERVED - {"order", "limit", "offset"} | {"select"}
        )
        _range(data, node)
    readonly = method in ("GET", "HEAD") or function.volatility in ("i", "s")
    exact = data.prefs.get("count") in ("exact", "estimated")
    statement = statements.call(function, node, media, arguments, raw_body, exact_count=exact)
    async with data.transaction(readonly=readonly) as tx:
        driver = await tx.driver()
        row = await driver.fetchrow(statement.sql, *statement.args)
        assert row is not None
        count, rows, body, guc_headers, guc_status, final_role = row
        tx.confirm_role(final_role)
        _check_max_affected(data, rows)
        if function.shape == "void":
            outcome = Outcome(204)
        else:
            if media is Media.OBJECT and function.returns_set and rows != 1:
                raise _not_one(rows)
            if media is Media.CSV and node is not None:
                body = _csv(node, body)
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


# -- routing -----------------------------------------------------------------

_TABLE_METHODS = ("GET", "HEAD", "POST", "PATCH", "PUT", "DELETE", "OPTIONS")


@router.api_route("/api/rpc/{function}", methods=list(_TABLE_METHODS), summary="Call a function")
async def rpc(function: str, request: Request) -> Response:
    """GET (read-only, arguments in the query) or POST (JSON object) to a function."""

    async def work() -> Response:
        if request.method in ("PATCH", "PUT", "DELETE"):
            raise ApiError(405, "PGRST101", f"Cannot use the {request.method} method on RPC")
        data = DataRequest(request)
        data.prefs.check()
        if request.method == "OPTIONS":
            return Response(status_code=200, headers={"Allow": "OPTIONS,GET,HEAD,POST"})
        return await _rpc(data, function)

    return await _guarded(request, work)


@router.api_route(
    "/api/{relation}", methods=list(_TABLE_METHODS), summary="Rows of an exposed table or view"
)
async def relation_route(relation: str, request: Request) -> Response:
    """GET/HEAD read, POST insert, PATCH update, PUT upsert one row, DELETE, OPTIONS."""

    async def work() -> Response:
        data = DataRequest(request)
        data.prefs.check()
        handlers = {
            "GET": _read,
            "HEAD": _read,
            "POST": _insert,
            "PATCH": _update,
            "PUT": _put,
            "DELETE": _delete,
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


@router.api_route("/api/{first}/{rest:path}", methods=list(_TABLE_METHODS), include_in_schema=False)
async def invalid_path(first: str, rest: str, request: Request) -> Response:
    """Deeper paths are not resources (PGRST125), unless another route owns the path."""
    for route in request.app.router.routes:
        if route.matches(request.scope)[0] is Match.PARTIAL:
            # e.g. GET on a POST-only account route: keep Starlette's 405.
            return ApiError(405, "method_not_allowed", "Method Not Allowed").response()
    return _error_response(ApiError(404, "PGRST125", "Invalid path specified in request URL"))
