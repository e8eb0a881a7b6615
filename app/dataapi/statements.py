"""Whole statements: read, insert, update, delete, upsert and function calls.

Each statement returns one row: total count, page count, the body built by
PostgreSQL as text, the response.headers and response.status settings, and
for writes the inserted-row count and the first row's primary key.
"""

from __future__ import annotations

from dataclasses import dataclass

import orjson

from app.dataapi.identifiers import qualified, quote_ident
from app.dataapi.negotiation import Media
from app.dataapi.plan import (
    Node,
    Params,
    order_sql,
    range_sql,
    select_sql,
    spread_joins_sql,
    where_sql,
)
from app.dataapi.schema import Column, Function, Relation
from app.role_guard import IDENTITY_SETTINGS

_GUCS = (
    "nullif(current_setting('response.headers', true), '') AS response_headers,"
    " nullif(current_setting('response.status', true), '') AS response_status,"
    # The role and identity settings at the end of the statement, for the
    # role guard (app/role_guard.py).
    f" {IDENTITY_SETTINGS} AS pgrst_identity"
)


def body_sql(media: Media | None, row: str = "_p") -> str:
    """How the rows of `row` become the response body, PostgREST's byte shape."""
    if media is None:
        return "NULL::text"
    if media is Media.OBJECT:
        return f"coalesce((json_agg({row})->0)::text, 'null')"
    if media is Media.CSV:
        return (
            f"coalesce(string_agg(substring({row}::text, 2, length({row}::text) - 2), E'\\n'), '')"
        )
    return f"coalesce(json_agg({row}), '[]')::text"


@dataclass
class Statement:
    """SQL text and its bind values."""

    sql: str
    args: list[object]


def _rows(
    node: Node,
    media: Media,
    from_sql: str,
    params: Params,
    *,
    exact_count: bool,
    once: bool = False,
) -> str:
    """The rows of `node` read from `from_sql`, wrapped in the one-row result.

    The count reads the source a second time. With `once` (a function call,
    which may write) both read one materialized copy instead, as PostgREST's
    pgrst_source does, so the call runs once; a plain read keeps re-reading
    the relation, which lets the count use its own plan.
    """
    where = where_sql(node, params)
    where_text = (" WHERE " + " AND ".join(where)) if where else ""
    source = f"{from_sql} AS {node.alias}{node.alias_columns}"
    prefix = ""
    if exact_count and once:
        prefix = f"WITH pgrst_source AS MATERIALIZED (SELECT {node.alias}.* FROM {source}) "
        source = f"pgrst_source AS {node.alias}"
    count = "NULL"
    if exact_count:
        count = f"(SELECT pg_catalog.count(*) FROM {source}{where_text})"
    columns = select_sql(node, params) or "NULL AS pgrst_nothing"
    joins = spread_joins_sql(node, params)
    tail = order_sql(node, params) + range_sql(node.limit, node.offset, params)
    inner = f"SELECT {columns} FROM {source}{joins}{where_text}{tail}"
    return (
        f"{prefix}SELECT {count}::bigint, pg_catalog.count(_p)::bigint, {body_sql(media)},"
        f" {_GUCS} FROM ({inner}) _p"
    )


def read(node: Node, media: Media, *, exact_count: bool) -> Statement:
    """SELECT for GET/HEAD on a relation."""
    params = Params()
    source = qualified(node.relation.schema, node.relation.name)
    return Statement(_rows(node, media, source, params, exact_count=exact_count), params.values)


def plan_count(node: Node, source: str | None = None) -> Statement:
    """EXPLAIN of the count query, for count=planned."""
    params = Params()
    relation = node.relation
    from_sql = source or qualified(relation.schema, relation.name)
    where = where_sql(node, params)
    where_text = (" WHERE " + " AND ".join(where)) if where else ""
    return Statement(
        f"EXPLAIN (FORMAT JSON) SELECT 1 FROM {from_sql}"
        f" AS {node.alias}{node.alias_columns}{where_text}",
        params.values,
    )


def _mutation(
    node: Node,
    media: Media | None,
    cte: str,
    params: Params,
    *,
    location: bool,
    inserted: bool,
) -> Statement:
    relation = node.relation
    extras = ["NULL::text", "NULL::bigint"]
    if location and relation.primary_key:
        cols = ", ".join(f"{quote_ident(c)}::text" for c in relation.primary_key)
        extras[0] = f"(SELECT json_build_array({cols})::text FROM pgrst_source LIMIT 1)"
    if inserted:
        extras[1] = "(SELECT pg_catalog.count(*) FROM pgrst_source WHERE pgrst_inserted)"
    select = joins = ""
    if media is not None:
        select, joins = select_sql(node, params), spread_joins_sql(node, params)
    inner = f"SELECT {select or 'NULL AS pgrst_nothing'} FROM pgrst_source AS {node.alias}{joins}"
    sql = (
        f"WITH pgrst_source AS ({cte}) SELECT NULL::bigint, pg_catalog.count(_p)::bigint,"
        f" {body_sql(media)}, {_GUCS}, {extras[0]}, {extras[1]} FROM ({inner}) _p"
    )
    return Statement(sql, params.values)


def insert(
    node: Node,
    media: Media | None,
    columns: list[str],
    rows_json: str,
    *,
    on_conflict: tuple[str, ...] | None,
    resolution: str | None,
    location: bool,
    empty: bool,
    missing_default: bool = False,
) -> Statement:
    """INSERT (or upsert with ON CONFLICT) of a JSON array of objects."""
    params = Params()
    relation = node.relation
    table = qualified(relation.schema, relation.name)
    track = resolution is not None and relation.is_table
    returning = "RETURNING _ins.*" + (", (_ins.xmax = 0) AS pgrst_inserted" if track else "")
    if empty:
        flag = ", true AS pgrst_inserted" if track else ""
        cte = f"SELECT {table}.*{flag} FROM {table} WHERE false"
    elif not columns:
        cte = f"INSERT INTO {table} AS _ins DEFAULT VALUES {returning}"
    else:
        cols = ", ".join(quote_ident(c) for c in columns)
        body = params.add(rows_json, "json")
        if missing_default:
            # Per row: a key that is absent takes the column's default.
            values = ", ".join(
                f"CASE WHEN _j.value::jsonb ? {params.add(c, 'text')} THEN _.{quote_ident(c)}"
                f" ELSE {relation.columns[c].default or 'NULL'} END"
                for c in columns
            )
            source = (
                f"json_array_elements({body}) _j,"
                f" LATERAL json_populate_record(NULL::{table}, _j.value) _"
            )
        else:
            values = cols
            source = f"json_populate_recordset(NULL::{table}, {body}) _"
        cte = f"INSERT INTO {table} AS _ins ({cols}) SELECT {values} FROM {source}"
        if on_conflict:
            target = ", ".join(quote_ident(c) for c in on_conflict)
            if resolution == "ignore-duplicates":
                cte += f" ON CONFLICT ({target}) DO NOTHING"
            else:
                updates = ", ".join(
                    f"{quote_ident(c)} = EXCLUDED.{quote_ident(c)}" for c in columns
                )
                cte += (
                    f" ON CONFLICT ({target}) DO UPDATE SET {updates}"
                    if updates
                    else (f" ON CONFLICT ({target}) DO NOTHING")
                )
        cte += " " + returning
    return _mutation(node, media, cte, params, location=location, inserted=track)


def _targets(node: Node, params: Params) -> tuple[str, str]:
    """The alias and WHERE of an UPDATE/DELETE; with limit/offset, a keyed subquery.

    A limited write picks its rows in a subquery (filters, order, limit,
    offset) and matches them by primary key, or by ctid on a table without one.
    """
    where = where_sql(node, params)
    where_text = (" WHERE " + " AND ".join(where)) if where else ""
    if node.limit is None and not node.offset:
        return node.alias, where_text
    relation = node.relation
    target = f"{node.alias}_w"
    keys = [quote_ident(c) for c in relation.primary_key] or ["ctid"]
    outer = ", ".join(f"{target}.{k}" for k in keys)
    inner = ", ".join(f"{node.alias}.{k}" for k in keys)
    source = qualified(relation.schema, relation.name)
    picked = (
        f"SELECT {inner} FROM {source} AS {node.alias}{where_text}{order_sql(node, params)}"
        f"{range_sql(node.limit, node.offset, params)}"
    )
    return target, f" WHERE ({outer}) IN ({picked})"


def update(node: Node, media: Media | None, columns: list[str], row_json: str) -> Statement:
    """UPDATE the filtered rows with the columns of one JSON object."""
    params = Params()
    relation = node.relation
    table = qualified(relation.schema, relation.name)
    body = params.add(row_json, "json")
    sets = ", ".join(f"{quote_ident(c)} = _.{quote_ident(c)}" for c in columns)
    target, where_text = _targets(node, params)
    cte = (
        f"UPDATE {table} AS {target} SET {sets} FROM"
        f" (SELECT * FROM json_populate_record(NULL::{table}, {body})) _"
        f"{where_text} RETURNING {target}.*"
    )
    return _mutation(node, media, cte, params, location=False, inserted=False)


def delete(node: Node, media: Media | None) -> Statement:
    """DELETE the filtered rows."""
    params = Params()
    relation = node.relation
    table = qualified(relation.schema, relation.name)
    target, where_text = _targets(node, params)
    cte = f"DELETE FROM {table} AS {target}{where_text} RETURNING {target}.*"
    return _mutation(node, media, cte, params, location=False, inserted=False)


def call_source(
    function: Function, arguments: dict[str, object] | None, raw_body: str | None
) -> tuple[str, list[object], str]:
    """The FROM item calling `function`, its bind values, and the call expression.

    Named arguments travel as one JSON object read by json_to_record, so
    PostgreSQL converts each to the parameter's type (arrays included).
    """
    name = qualified(function.schema, function.name)
    if raw_body is not None:
        return "", [raw_body], f"{name}($1::{function.params[0].type})"
    arguments = arguments or {}
    params = [p for p in function.params if p.name in arguments]
    if not params:
        return "", [], f"{name}()"
    defs = ", ".join(f"{quote_ident(p.name)} {p.type}" for p in params)
    call_args = ", ".join(
        f"{'VARIADIC ' if p.variadic else ''}{quote_ident(p.name)} => _a.{quote_ident(p.name)}"
        for p in params
    )
    return (
        f"json_to_record($1::json) AS _a({defs})",
        [orjson.dumps(arguments).decode()],
        f"{name}({call_args})",
    )


def call(
    function: Function,
    node: Node | None,
    media: Media,
    arguments: dict[str, object] | None,
    raw_body: str | None,
    *,
    exact_count: bool,
) -> Statement:
    """SELECT over a function call, shaped like PostgREST's RPC responses."""
    prefix, args, expr = call_source(function, arguments, raw_body)
    params = Params()
    params.values.extend(args)
    lateral = f"{prefix}, LATERAL " if prefix else ""
    from_args = f" FROM {prefix}" if prefix else ""
    if function.shape == "void":
        sql = (
            # count(_p) reads the call's column: an unread STABLE call would be skipped.
            f"SELECT NULL::bigint, pg_catalog.count(_p)::bigint, NULL::text, {_GUCS}"
            f" FROM (SELECT {expr}{from_args}) _p"
        )
        return Statement(sql, params.values)
    if node is None:
        source = f"(SELECT {expr} AS pgrst_scalar{from_args})"
        if function.returns_set:
            source = f"(SELECT pgrst_scalar FROM {lateral}{expr} AS pgrst_scalar)"
        if media is Media.CSV:
            body = body_sql(media)
        elif function.returns_set:
            body = "coalesce(json_agg(_p.pgrst_scalar), '[]')::text"
        else:
            body = "coalesce((json_agg(_p.pgrst_scalar)->0)::text, 'null')"
        sql = (
            f"SELECT pg_catalog.count(_p)::bigint, pg_catalog.count(_p)::bigint, {body}, {_GUCS}"
            f" FROM {source} _p"
        )
        return Statement(sql, params.values)
    from_sql = f"{lateral}{expr}"
    if function.returns_relation is None and len(function.out_columns) == 1:
        # A single OUT column would otherwise be named after the alias.
        node.alias_columns = f"({quote_ident(function.out_columns[0][0])})"
    effective = media
    if not function.returns_set and media is Media.JSON:
        effective = Media.OBJECT
    return Statement(
        _rows(node, effective, from_sql, params, exact_count=exact_count, once=True),
        params.values,
    )


def function_relation(function: Function, cache_relation: Relation | None) -> Relation:
    """The relation an RPC's rows look like: its table, or its OUT columns."""
    if cache_relation is not None:
        return cache_relation
    columns = {name: Column(name, kind, True, False, kind) for name, kind in function.out_columns}
    return Relation(function.schema, function.name, "f", columns, (), False)
